#!/usr/bin/python3
"""The HTTP request parser against a parser that is not ours: the same bytes go to Spindle's
RequestParser and ChunkedDecoder (through http_parse_dump) and to h11 (Debian python3-h11), and every
case must come out the same: refused by both, incomplete for both, or accepted by both with the same
method, target, version, fields, body and the same bytes left over for the next request.

    tests/differential/http_parser_differential_test.py --dump build/release/tests/http_parse_dump [--markdown F]

Where the two parsers may rightly differ (RFC 9112 lets a server reject what h11 tolerates, or h11
rejects what the RFC allows), the case is listed in KNOWN with the RFC's words; an unlisted disagreement
fails the test, and so does a listed one that no longer disagrees, so the list stays true. --markdown
writes the table of cases and disagreements for docs/reliability.md.
"""

import argparse
import json
import struct
import subprocess
import sys

import h11

# --- the corpus: named cases, valid and invalid ---
CASES = {
    "get": b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "get-query": b"GET /users?limit=20&q=%C3%A9 HTTP/1.1\r\nHost: a\r\n\r\n",
    "get-http10-no-host": b"GET /x HTTP/1.0\r\n\r\n",
    "post-length": b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    "post-length-zero": b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    "post-length-short": b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello",
    "post-chunked": b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "chunked-two": b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    "chunked-upper-hex": b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
    "chunked-extension": b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5;a=b;c=\"d\"\r\nhello\r\n0\r\n\r\n",
    "chunked-trailers": b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n",
    "chunked-case-insensitive": b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
    "chunked-incomplete": b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
    "chunked-size-overflow": b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"FFFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n",
    "chunked-size-not-hex": b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\nx\r\n0\r\n\r\n",
    "chunked-missing-crlf": b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX0\r\n\r\n",
    "chunked-negative": b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
    "chunked-space-after-size": b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                                b"5 \r\nhello\r\n0\r\n\r\n",
    "chunked-lf-only": b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
    "chunked-bad-extension-byte": b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  b"5;\x01\r\nhello\r\n0\r\n\r\n",
    "pipelined": b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
    "pipelined-after-body": b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nokGET /b HTTP/1.1\r\n",
    "absolute-form": b"GET http://a.test/p?q HTTP/1.1\r\nHost: a.test\r\n\r\n",
    "asterisk-form": b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "authority-form": b"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n",
    "extension-method": b"PURGE /cache HTTP/1.1\r\nHost: a\r\n\r\n",
    "ows-around-value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \t spaced out \t\r\n\r\n",
    "no-space-after-colon": b"GET / HTTP/1.1\r\nHost:a\r\nX-A:b\r\n\r\n",
    "empty-value": b"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n",
    "many-fields": b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-F%d: %d\r\n" % (i, i) for i in range(60)) + b"\r\n",
    "obs-text-value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xe9\r\n\r\n",
    "utf8-value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xc3\xa9\r\n\r\n",
    "head-incomplete": b"GET / HTTP/1.1\r\nHost: a\r\n",
    "request-line-incomplete": b"GET / HT",
    "upgrade": b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    # Smuggling and framing attacks.
    "cl-te": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-cl": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    "te-xchunked": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "te-chunked-then-gzip": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "te-gzip-then-chunked": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "te-twice": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-space-before-colon": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "te-tab-value": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n",
    "te-vertical-tab": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n",
    "te-http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-identity": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
    "cl-twice-same": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "cl-twice-different": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "cl-list-same": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
    "cl-plus": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
    "cl-negative": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    "cl-hex": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc",
    "cl-overflow": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    "cl-empty": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
    "cl-leading-zeros": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 003\r\n\r\nabc",
    # Malformed heads.
    "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n",
    "first-field-folded": b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
    "space-before-colon": b"GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n",
    "no-colon": b"GET / HTTP/1.1\r\nHost: a\r\nX-A b\r\n\r\n",
    "empty-name": b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n",
    "bad-name-char": b"GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n",
    "nul-in-value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n",
    "cr-in-value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n",
    "del-in-value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x7fb\r\n\r\n",
    "lf-line-ends": b"GET / HTTP/1.1\nHost: a\n\n",
    "mixed-line-ends": b"GET / HTTP/1.1\r\nHost: a\n\r\n",
    "no-host": b"GET / HTTP/1.1\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "empty-host": b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
    "bad-version": b"GET / HTTP/2.7\r\nHost: a\r\n\r\n",
    "http09": b"GET /\r\n\r\n",
    "version-lowercase": b"GET / http/1.1\r\nHost: a\r\n\r\n",
    "version-two-digits": b"GET / HTTP/1.10\r\nHost: a\r\n\r\n",
    "bad-method-char": b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
    "lowercase-method": b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
    "space-in-target": b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    "two-spaces-after-method": b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    "tab-separator": b"GET\t/\tHTTP/1.1\r\nHost: a\r\n\r\n",
    "trailing-space-request-line": b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
    "empty-target": b"GET  HTTP/1.1\r\nHost: a\r\n\r\n",
    "bare-cr": b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
    "leading-crlf": b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "leading-garbage": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    "target-del": b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
    "target-high-byte": b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
}


def generated_cases():
    """Each byte value in each place of a request: the method, the target, a field name, a field value,
    a chunk extension. Most are refused by both; the ones that are not show where the grammars differ."""
    cases = {}
    for b in range(256):
        c = bytes([b])
        cases[f"byte-{b:02x}-in-method"] = b"GE" + c + b"T / HTTP/1.1\r\nHost: a\r\n\r\n"
        cases[f"byte-{b:02x}-in-target"] = b"GET /a" + c + b"b HTTP/1.1\r\nHost: a\r\n\r\n"
        cases[f"byte-{b:02x}-in-name"] = b"GET / HTTP/1.1\r\nHost: a\r\nX-" + c + b"A: v\r\n\r\n"
        cases[f"byte-{b:02x}-in-value"] = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: v" + c + b"w\r\n\r\n"
        cases[f"byte-{b:02x}-in-chunk-ext"] = (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                                              b"1;e" + c + b"\r\nx\r\n0\r\n\r\n")
    return cases


# Where the two may rightly differ: each case with why, in the RFC's words. An unlisted disagreement
# fails the test, and so does a listed case on which the two now agree.
KNOWN = {}


def known(names, reason):
    for name in ([names] if isinstance(names, str) else names):
        KNOWN[name] = reason


CONTROLS = [*range(0x01, 0x09), *range(0x0e, 0x20), 0x7f]  # CTLs other than HTAB, LF, VT, FF, CR, NUL

known("bad-version", "RFC 9112 2.3: a server may answer 505 to a major version it does not support; h11 "
      "takes HTTP/2.7 as a version")
known(["cl-te", "te-cl"], "RFC 9112 6.1: a server MAY reject a request with both Transfer-Encoding and "
      "Content-Length (the classic smuggling pair); Spindle does, h11 frames it by Transfer-Encoding")
known("te-http10", "RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 request MUST be treated as faulty framing; "
      "Spindle refuses it")
known("obs-fold", "RFC 9112 5.2: a server MUST either reject obs-fold with 400 or replace it with SP; Spindle "
      "rejects, h11 unfolds")
known(["lf-line-ends", "mixed-line-ends", "chunked-lf-only"],
      "RFC 9112 2.2: a recipient MAY take a bare LF as a line end; Spindle does not (two parsers that disagree "
      "on line ends can be made to frame differently), h11 does")
known("leading-crlf", "RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line; "
      "Spindle does, h11 refuses")
known("del-in-value", "RFC 9110 5.5: field-vchar is VCHAR (0x21-0x7E) or obs-text; DEL is neither. Spindle "
      "refuses it, h11 accepts")
known([f"byte-{b:02x}-in-value" for b in CONTROLS],
      "RFC 9110 5.5: a value with a control character is invalid (a recipient MAY keep it for robustness); "
      "Spindle refuses, h11 accepts")
known([f"byte-{b:02x}-in-chunk-ext" for b in [0x00, *CONTROLS, 0x0b, 0x0c, 0x0d]],
      "RFC 9112 7.1.1: a chunk extension is a token, or a token = token / quoted-string; Spindle refuses "
      "controls in it, h11 ignores extensions whatever they hold")
known(["chunked-bad-extension-byte"], "RFC 9112 7.1.1: a control character is not part of a chunk extension's "
      "grammar; Spindle refuses it, h11 accepts")
known("chunked-space-after-size", "RFC 9112 7.1: whitespace after the chunk size is allowed only before a ';' "
      "(BWS of chunk-ext); Spindle refuses `5 CRLF`, h11 accepts")
known(["cl-overflow", "chunked-size-overflow"], "RFC 9112 6.3 and 7.1: a length that overflows is an "
      "unrecoverable error; Spindle refuses at once, h11 waits for the bytes")
known("cl-list-same", "RFC 9110 8.6: a recipient MAY reject a Content-Length list of identical values or "
      "replace it with one; Spindle rejects, h11 replaces")


def h11_view(data):
    """What h11 makes of `data`, in the shape http_parse_dump prints."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(data)
    view = {"outcome": "incomplete"}
    body = b""
    try:
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                if view["outcome"] == "complete":
                    view["body_outcome"] = "incomplete"
                return view
            if isinstance(event, h11.Request):
                view = {"outcome": "complete", "method": event.method.hex(), "target": event.target.hex(),
                        "version": 1 if event.http_version == b"1.1" else 0,
                        "headers": [[name.hex(), value.hex()] for name, value in event.headers.raw_items()]}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                view["body_outcome"] = "complete"
                view["body"] = body.hex()
                view["rest"] = len(connection.trailing_data[0])
                return view
            elif event is h11.PAUSED:
                return view
    except h11.RemoteProtocolError as error:
        if view["outcome"] == "complete":
            view["body_outcome"] = "error"
            return view
        return {"outcome": "error", "status": error.error_status_hint, "reason": str(error)}


def spindle_views(dump, cases):
    stdin = b"".join(struct.pack(">I", len(data)) + data for data in cases.values())
    out = subprocess.run([dump], input=stdin, capture_output=True, check=True, timeout=120).stdout
    lines = out.decode().splitlines()
    if len(lines) != len(cases):
        raise SystemExit(f"http_parse_dump answered {len(lines)} cases of {len(cases)}")
    return dict(zip(cases, (json.loads(line) for line in lines)))


def summary(view):
    """The comparable part: headers by lower-case name (h11 lower-cases them; RFC 9110 5.1: names are
    case-insensitive), the body only when both read it whole. What h11 normalises is normalised on both
    sides, since it changes no meaning: Transfer-Encoding's value lower-cased (codings are
    case-insensitive, RFC 9112 7), and identical Content-Length fields as one (RFC 9110 8.6)."""
    if view["outcome"] != "complete":
        return (view["outcome"],)
    headers = []
    for n, v in view["headers"]:
        name, value = bytes.fromhex(n).lower(), bytes.fromhex(v)
        if name == b"transfer-encoding":
            value = value.lower()
        if name == b"content-length" and (name, value) in headers:
            continue
        headers.append((name, value))
    headers = tuple(headers)
    body_outcome = view.get("body_outcome", "complete")
    if body_outcome != "complete":
        return ("complete", view["method"], view["target"], view["version"], headers, body_outcome)
    return ("complete", view["method"], view["target"], view["version"], headers, view["body"], view["rest"])


def describe(view):
    if view["outcome"] == "error":
        return f"refused ({view['status']}: {view['reason'][:60]})"
    if view["outcome"] == "incomplete":
        return "incomplete"
    body = view.get("body_outcome", "complete")
    return "accepted" + ("" if body == "complete" else f", body {body}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dump", required=True)
    parser.add_argument("--markdown")
    args = parser.parse_args()

    cases = dict(CASES)
    cases.update(generated_cases())
    ours = spindle_views(args.dump, cases)
    disagreements = {}
    for name, data in cases.items():
        theirs = h11_view(data)
        if summary(ours[name]) != summary(theirs):
            disagreements[name] = (ours[name], theirs)

    unlisted = sorted(set(disagreements) - set(KNOWN))
    stale = sorted(set(KNOWN) - set(disagreements))
    accepted = sum(1 for view in ours.values() if view["outcome"] == "complete")
    print(f"{len(cases)} cases: Spindle accepted {accepted}, refused or incomplete {len(cases) - accepted}; "
          f"{len(disagreements)} disagreements with h11 {h11.__version__}, {len(disagreements) - len(unlisted)} "
          f"of them listed with their reason")
    for name in unlisted:
        ours_view, theirs_view = disagreements[name]
        print(f"UNLISTED {name}: Spindle {describe(ours_view)}; h11 {describe(theirs_view)}\n"
              f"    input {cases[name]!r}\n    spindle {summary(ours_view)}\n    h11     {summary(theirs_view)}")
    for name in stale:
        print(f"STALE {name}: listed as a disagreement, but both now agree")

    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(f"{len(cases)} requests ({len(CASES)} written by hand, {len(cases) - len(CASES)} generated: each "
                    f"byte value in the method, the target, a field name, a field value and a chunk extension); "
                    f"{len(disagreements)} disagreements with h11 {h11.__version__}, each listed:\n\n")
            f.write("| cases | Spindle | h11 | why |\n|---|---|---|---|\n")
            by_reason = {}
            for name in sorted(disagreements):
                by_reason.setdefault(KNOWN.get(name, "**not listed**"), []).append(name)
            for reason, names in by_reason.items():
                ours_view, theirs_view = disagreements[names[0]]
                cases_text = ", ".join(f"`{n}`" for n in names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
                f.write(f"| {cases_text} | {describe(ours_view).replace('|', '/')} | "
                        f"{describe(theirs_view).replace('|', '/')} | {reason} |\n")
    return 1 if unlisted or stale else 0


if __name__ == "__main__":
    sys.exit(main())
