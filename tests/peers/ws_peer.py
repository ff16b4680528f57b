"""A WebSocket peer Spindle did not write: Python's `websockets` (Debian python3-websockets, 10.x).

client PORT  checks a Spindle server (the routes of tests/ws_conformance_test.cpp) and prints one line
             per check, "ok NAME" or "fail NAME: why", then "done".
server       serves the routes a Spindle client is checked against; prints "listening PORT".
"""

import asyncio
import sys

import websockets
from websockets.frames import OP_CONT, OP_PING, OP_TEXT


def report(name, passed, why=""):
    print(("ok " if passed else "fail ") + name + ("" if passed else ": " + why), flush=True)


async def check(name, coroutine):
    try:
        await asyncio.wait_for(coroutine, 10)
    except Exception as error:  # a failed check, whatever it raised
        report(name, False, repr(error))


async def expect_close(ws, code):
    """Reads until the connection closes; the close code the server sent."""
    try:
        while True:
            await ws.recv()
    except websockets.ConnectionClosed:
        pass
    return ws.close_code


async def client(port):
    base = f"ws://127.0.0.1:{port}"

    async def echo_kinds():
        async with websockets.connect(base + "/echo", compression=None) as ws:
            await ws.send("h\u00e9llo \U0001F600")
            text = await ws.recv()
            await ws.send(bytes(range(256)))
            data = await ws.recv()
            report("text_and_binary_echo", text == "h\u00e9llo \U0001F600" and data == bytes(range(256)),
                   f"{text!r} {data[:8]!r}")

    async def fragmented():
        async with websockets.connect(base + "/echo", compression=None) as ws:
            await ws.send(["frag", "ment", "ed"])  # an iterable is sent as a fragmented message
            report("fragmented_message", await ws.recv() == "fragmented")

    async def control_inside_fragments():
        async with websockets.connect(base + "/echo", compression=None) as ws:
            await ws.write_frame(False, OP_TEXT, b"ab")
            await ws.write_frame(True, OP_PING, b"mid")
            await ws.write_frame(False, OP_CONT, b"c\xc3")  # a character cut between two fragments
            await ws.write_frame(True, OP_CONT, b"\xa9d")
            text = await ws.recv()
            report("control_frame_inside_fragments", text == "abc\u00e9d", repr(text))

    async def ping_pong():
        async with websockets.connect(base + "/echo") as ws:
            waiter = await ws.ping(b"payload")
            await asyncio.wait_for(waiter, 5)
            report("ping_answered", True)

    async def deflate():
        async with websockets.connect(base + "/echo") as ws:  # offers permessage-deflate by default
            names = [extension.name for extension in ws.extensions]
            text = "compress me, " * 5000
            await ws.send(text)
            report("permessage_deflate", names == ["permessage-deflate"] and await ws.recv() == text, repr(names))

    async def client_close():
        ws = await websockets.connect(base + "/echo")
        await ws.close(code=4001, reason="bye")
        report("close_code_echoed", ws.close_code == 4001, repr(ws.close_code))

    async def server_close():
        async with websockets.connect(base + "/close") as ws:
            code = await expect_close(ws, 4002)
            report("server_close_code", code == 4002 and ws.close_reason == "server bye",
                   f"{code} {ws.close_reason!r}")

    async def invalid_utf8():
        async with websockets.connect(base + "/echo", compression=None) as ws:
            await ws.write_frame(True, OP_TEXT, b"\xc0\xaf")
            code = await expect_close(ws, 1007)
            report("invalid_utf8_1007", code == 1007, repr(code))

    async def oversize():
        async with websockets.connect(base + "/echo", compression=None) as ws:
            await ws.send("x" * (70 * 1024))  # the server's limit is 64 KiB
            code = await expect_close(ws, 1009)
            report("oversize_1009", code == 1009, repr(code))

    async def oversize_deflated():
        async with websockets.connect(base + "/echo") as ws:  # a small compressed frame, too big inflated
            await ws.send("y" * (200 * 1024))
            code = await expect_close(ws, 1009)
            report("deflate_bomb_1009", code == 1009, repr(code))

    for name, test in [("text_and_binary_echo", echo_kinds), ("fragmented_message", fragmented),
                       ("control_frame_inside_fragments", control_inside_fragments), ("ping_answered", ping_pong),
                       ("permessage_deflate", deflate), ("close_code_echoed", client_close),
                       ("server_close_code", server_close), ("invalid_utf8_1007", invalid_utf8),
                       ("oversize_1009", oversize), ("deflate_bomb_1009", oversize_deflated)]:
        await check(name, test())
    print("done", flush=True)


async def serve_path(ws, path):
    if path == "/echo":
        async for message in ws:
            await ws.send(message)
    elif path == "/fragments":
        await ws.write_frame(False, OP_TEXT, b"one ")
        await ws.write_frame(True, OP_PING, b"mid")
        await ws.write_frame(True, OP_CONT, b"two")
        await ws.wait_closed()
    elif path == "/close":
        await ws.close(code=4003, reason="done")
    elif path == "/bad-utf8":
        await ws.write_frame(True, OP_TEXT, b"ok \xed\xa0\x80")  # a surrogate
        await ws.wait_closed()
    elif path == "/big":
        await ws.send("z" * (2 * 1024 * 1024))
        await ws.wait_closed()


async def server():
    async with websockets.serve(serve_path, "127.0.0.1", 0, max_size=8 * 1024 * 1024) as running:
        port = running.sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    if sys.argv[1] == "client":
        asyncio.run(client(int(sys.argv[2])))
    else:
        asyncio.run(server())
