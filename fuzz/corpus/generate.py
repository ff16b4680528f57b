#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora: fuzz/corpus/<target>/<name>, a few dozen small inputs per target in
each target's input format (see the target's source). Run it again after changing a format; the files
are committed, so the fuzzers start from inputs that reach deep instead of from nothing.

    fuzz/corpus/generate.py

Python's standard library only. Each seed's name says what it is.
"""

import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, seeds):
    directory = os.path.join(HERE, target)
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        os.remove(os.path.join(directory, name))
    for name, data in seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)


def mode_byte(mode, split, modes=3):
    """A first byte b with b % modes == mode and b as close to `split` as possible (it also sets the split)."""
    b = split - split % modes + mode
    return bytes([b % 256])


# --- HTTP: requests (mode 0), chunked bodies (mode 1), responses (mode 2) ---
REQUESTS = {
    "get": b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "get-query": b"GET /users?limit=20&offset=40&q=%C3%A9t%C3%A9 HTTP/1.1\r\nHost: example.test\r\n\r\n",
    "get-http10": b"GET /x HTTP/1.0\r\n\r\n",
    "get-keepalive-http10": b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "post-length": b"POST /users HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n"
                   b'{"name":"a"}\n',
    "post-chunked": b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "put-expect": b"PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    "absolute-form": b"GET http://a.test/p?q HTTP/1.1\r\nHost: a.test\r\n\r\n",
    "options-star": b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "connect": b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n",
    "upgrade-websocket": b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                         b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
    "many-fields": b"GET / HTTP/1.1\r\n" + b"".join(b"X-F%d: v%d\r\n" % (i, i) for i in range(40)) + b"\r\n",
    "pipelined": b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
    "lf-only": b"GET / HTTP/1.1\nHost: a\n\n",
    "ows-values": b"GET / HTTP/1.1\r\nHost:a\r\nX-A:   spaced \t\r\n\r\n",
    # Invalid or hostile: each must be refused (or framed one way).
    "cl-te": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-cl": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    "te-obfuscated": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
    "te-two": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "te-space-before-colon": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
    "cl-duplicate": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "cl-list": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
    "cl-sign": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
    "cl-huge": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n",
    "no-host": b"GET / HTTP/1.1\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "bad-version": b"GET / HTTP/2.7\r\nHost: a\r\n\r\n",
    "bad-method": b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
    "nul-in-value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n",
    "space-in-target": b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    "bare-cr": b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
    "leading-crlf": b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "long-target": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
}

CHUNKED = {
    "one": b"5\r\nhello\r\n0\r\n\r\n",
    "two": b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    "hex-upper": b"A\r\n0123456789\r\n0\r\n\r\n",
    "extensions": b"5;name=value;q=\"quoted\"\r\nhello\r\n0;last\r\n\r\n",
    "trailers": b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\n",
    "empty": b"0\r\n\r\n",
    "size-overflow": b"FFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n",
    "size-leading-zeros": b"0000000005\r\nhello\r\n0\r\n\r\n",
    "missing-crlf-after-data": b"5\r\nhelloX0\r\n\r\n",
    "bad-extension": b"5;\x01\r\nhello\r\n0\r\n\r\n",
    "lf-only": b"5\nhello\n0\n\n",
    "space-after-size": b"5 \r\nhello\r\n0\r\n\r\n",
    "negative": b"-5\r\nhello\r\n0\r\n\r\n",
}

RESPONSES = {
    "ok-length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "ok-chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "close-delimited": b"HTTP/1.0 200 OK\r\n\r\nbody until close",
    "no-content": b"HTTP/1.1 204 No Content\r\n\r\n",
    "not-modified": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    "continue-then-ok": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "switching": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    "no-reason": b"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
    "bad-status": b"HTTP/1.1 20 OK\r\n\r\n",
    "cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}


def http_parser():
    seeds = {}
    for name, data in REQUESTS.items():
        seeds[f"request-{name}"] = mode_byte(0, len(data) // 2) + data
    for name, data in CHUNKED.items():
        seeds[f"chunked-{name}"] = mode_byte(1, 7) + data
    for name, data in RESPONSES.items():
        seeds[f"response-{name}"] = mode_byte(2, len(data) // 2) + data
        # The response to a HEAD request: bit 3 set as well as mode 2 (11 % 3 == 2, 11 & 8).
        seeds[f"response-{name}-to-head"] = bytes([11]) + data
    return seeds


# --- Router: first byte = how many lines are patterns; then patterns, then paths ---
def http_router():
    def lines(patterns, paths):
        return bytes([len(patterns)]) + "\n".join(patterns + paths).encode()
    return {
        "literals": lines(["/", "/users", "/users/new", "/about/team"], ["/users", "/users/new", "/nope", "/"]),
        "params": lines(["/users/{id}", "/users/{id}/posts/{post}", "/users/{id}/edit"],
                        ["/users/7", "/users/7/posts/9", "/users/7/edit", "/users/", "/users/a%2Fb"]),
        "catch-all": lines(["/static/{*path}", "/static/index.html", "/{*rest}"],
                           ["/static/css/app.css", "/static/index.html", "/anything/else", "/"]),
        "conflicts": lines(["/a/{x}", "/a/{y}", "/a/{x}/b", "/a/{*z}"], ["/a/1", "/a/1/b"]),
        "malformed": lines(["users", "/a/{", "/a/{}", "/a/{x}{y}", "/a/{*x}/b", "//double"], ["/a/x"]),
        "unicode": lines(["/caf\u00e9/{name}", "/\u65e5\u672c/{*rest}"], ["/caf\u00e9/x", "/\u65e5\u672c/a/b"]),
        "trailing-slash": lines(["/a/", "/a", "/b/{x}/"], ["/a/", "/a", "/b/1/", "/b/1"]),
    }


# --- URL: percent decoding, queries, UTF-8 (the whole input is one string) ---
def http_url():
    return {
        "plain": b"/users/42",
        "percent": b"/caf%C3%A9/%E6%97%A5%E6%9C%AC",
        "plus": b"q=hello+world&x=1+2",
        "query-pairs": b"a=1&b=&c&=d&a=2&%26=%3D",
        "bad-escape": b"%zz%4",
        "truncated-escape": b"abc%C",
        "overlong-utf8": b"%C0%AF",
        "surrogate": b"%ED%A0%80",
        "four-byte": b"%F0%9F%98%80 \xf0\x9f\x98\x80",
        "invalid-raw": b"\xff\xfe\xc3",
        "nul": b"a%00b",
        "mixed": b"/p/%2F%2f/..%2F/./?q=%20+%2B",
    }


# --- Multipart: the body of a form with boundary XyZ (first byte: where the body is cut) ---
def http_multipart():
    def part(headers, body):
        return b"--XyZ\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body + b"\r\n"
    form = (part([b'Content-Disposition: form-data; name="name"'], b"Ada")
            + part([b'Content-Disposition: form-data; name="file"; filename="a.txt"', b"Content-Type: text/plain"],
                   b"line one\r\nline two --XyZ not a delimiter")
            + b"--XyZ--\r\n")
    return {
        "form": bytes([len(form) // 3 % 256]) + form,
        "empty-part": bytes([5]) + part([b'Content-Disposition: form-data; name="e"'], b"") + b"--XyZ--",
        "preamble-epilogue": bytes([9]) + b"preamble\r\n" + form + b"epilogue",
        "no-close": bytes([3]) + part([b'Content-Disposition: form-data; name="a"'], b"x"),
        "header-folding": bytes([1]) + b"--XyZ\r\nContent-Disposition: form-data;\r\n name=\"a\"\r\n\r\nx\r\n--XyZ--",
        "boundary-in-body": bytes([40]) + part([b'Content-Disposition: form-data; name="a"'], b"--XyZ-") + b"--XyZ--",
        "filename-star": bytes([2]) + part([b"Content-Disposition: form-data; name=\"f\"; filename*=UTF-8''%C3%A9.txt"],
                                           b"\x00\x01\x02") + b"--XyZ--",
    }


# --- JSON extractor: text read as Tree, vector<Leaf> and json::value ---
def json_extract():
    return {
        "tree": b'{"kind":"beta","small":65535,"flag":true,"leaves":[{"name":"a","count":3,"weights":[0.5,1e300]}],'
                b'"named":{"x":null,"y":{"name":"y","weights":[]}},"grid":[[1,-2],[9223372036854775807]]}',
        "leaves": b'[{"name":"a","weights":[1,2.5,-0]},{"name":"\\u00e9\\ud83d\\ude00","count":null,"weights":[]}]',
        "wrong-types": b'{"kind":"delta","small":70000,"flag":"yes","leaves":{}}',
        "missing-field": b'{"kind":"alpha"}',
        "extra-field": b'[{"name":"a","weights":[],"unknown":[1,{"deep":true}]}]',
        "deep": b"[" * 200 + b"]" * 200,
        "numbers": b"[1e400,-1e-400,0.1,123456789012345678901234567890]",
        "bad-utf8": b'[{"name":"\xff","weights":[]}]',
        "lone-surrogate": b'[{"name":"\\ud800","weights":[]}]',
        "trailing": b'{"kind":"alpha"} x',
        "empty": b"",
    }


# --- WebSocket frames: a control byte (masked required, RSV1 allowed, small limit, piece size), then frames ---
def ws_frame():
    def frame(opcode, payload, fin=True, mask=b"\x01\x02\x03\x04", rsv1=False):
        first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
        n = len(payload)
        if n < 126:
            length = bytes([n | (0x80 if mask else 0)])
        elif n < 65536:
            length = bytes([126 | (0x80 if mask else 0)]) + struct.pack(">H", n)
        else:
            length = bytes([127 | (0x80 if mask else 0)]) + struct.pack(">Q", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if mask else payload
        return bytes([first]) + length + (mask or b"") + body
    masked, rsv1 = 1, 2
    return {
        "text": bytes([masked]) + frame(1, b"hello"),
        "binary-16bit": bytes([masked | (3 << 3)]) + frame(2, bytes(range(256)) * 2),
        "fragmented": bytes([masked]) + frame(1, b"hel", fin=False) + frame(9, b"ping") + frame(0, b"lo"),
        "close-code": bytes([masked]) + frame(8, struct.pack(">H", 1000) + b"bye"),
        "close-bad-code": bytes([masked]) + frame(8, struct.pack(">H", 999)),
        "close-one-byte": bytes([masked]) + frame(8, b"\x03"),
        "ping-too-long": bytes([masked]) + frame(9, b"x" * 126),
        "unmasked": bytes([masked]) + frame(1, b"hi", mask=None),
        "unmasked-allowed": bytes([0]) + frame(1, b"hi", mask=None),
        "compressed": bytes([masked | rsv1]) + frame(1, b"\xf2\x48\xcd\xc9\xc9\x07\x00", rsv1=True),
        "rsv1-not-negotiated": bytes([masked]) + frame(1, b"x", rsv1=True),
        "reserved-opcode": bytes([masked]) + frame(3, b"x"),
        "over-limit": bytes([masked | 4]) + frame(2, b"y" * 100),
        "length-64bit-huge": bytes([masked]) + b"\x82\xff" + struct.pack(">Q", 1 << 63) + b"\x00\x00\x00\x00",
        "length-not-minimal": bytes([masked]) + b"\x81\xfe\x00\x05\x01\x02\x03\x04" + bytes(5),
    }


# --- permessage-deflate: byte 0 = window bits / no context takeover / piece, byte 1 = where the two
#     messages split; then raw DEFLATE payloads without the final 00 00 ff ff, as on the wire ---
def ws_inflate():
    def deflate(data, wbits=15, level=6):
        c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
        out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]
    text = b"The quick brown fox jumps over the lazy dog. " * 20
    one = deflate(b"hello")
    two = deflate(text)
    bomb = deflate(b"\x00" * (1 << 20), level=9)
    return {
        "hello-hello": bytes([7, 127]) + one + one,
        "text": bytes([7 | 0x30, 40]) + two,
        "small-window": bytes([1, 128]) + deflate(text, wbits=9) * 2,
        "no-context-takeover": bytes([7 | 8, 128]) + one + deflate(b"again"),
        "bomb": bytes([7, 255]) + bomb,
        "garbage": bytes([7, 100]) + b"\xff\xff\xff\xff garbage",
        "stored-block": bytes([7, 255]) + b"\x00\x05\x00\xfa\xffhello",
    }


# --- PostgreSQL binary values: a type selector byte (the index of the type's OID in the target's kTypes),
#     then the value's bytes in binary format ---
def pg_value():
    bool_, bytea, name, int8, int2, int4, text, oid, json_, float4, float8, unknown = range(12)
    bpchar, varchar, timestamp, timestamptz, uuid, jsonb, numeric, custom = range(12, 20)
    values = [
        ("bool", bool_, b"\x01"), ("bool-two", bool_, b"\x02"),
        ("bytea", bytea, b"\x00\xff\x10"), ("name", name, b"relname"),
        ("int8", int8, struct.pack(">q", -42)), ("int8-short", int8, b"\x00\x01"),
        ("int2", int2, struct.pack(">h", -1)), ("int4", int4, struct.pack(">i", 7)),
        ("text", text, "caf\u00e9".encode()), ("text-bad-utf8", text, b"\xc3\x28"),
        ("oid", oid, struct.pack(">I", 16384)), ("json", json_, b'{"a":[1,2]}'),
        ("float4", float4, struct.pack(">f", 0.25)), ("float8", float8, struct.pack(">d", 3.5)),
        ("float8-nan", float8, struct.pack(">d", float("nan"))), ("unknown", unknown, b"?"),
        ("bpchar", bpchar, b"ab  "), ("varchar", varchar, b""),
        ("timestamp", timestamp, struct.pack(">q", 788_918_400_000_000)),
        ("timestamp-infinity", timestamp, struct.pack(">q", 2**63 - 1)),
        ("timestamptz", timestamptz, struct.pack(">q", -1)), ("uuid", uuid, bytes(range(16))),
        ("uuid-short", uuid, bytes(15)), ("jsonb", jsonb, b"\x01{}"), ("jsonb-bad-version", jsonb, b"\x02{}"),
        ("numeric", numeric, b"\x00\x02\x00\x01\x00\x00\x00\x02\x00\x0c\x04\xd2"),
        ("custom", custom, b"\x00"),
    ]
    return {label: bytes([selector]) + data for label, selector, data in values}


def main():
    write("http_parser_fuzz", http_parser())
    write("http_router_fuzz", http_router())
    write("http_url_fuzz", http_url())
    write("http_multipart_fuzz", http_multipart())
    write("json_extract_fuzz", json_extract())
    write("ws_frame_fuzz", ws_frame())
    write("ws_inflate_fuzz", ws_inflate())
    write("pg_value_fuzz", pg_value())


if __name__ == "__main__":
    main()
