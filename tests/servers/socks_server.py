"""A small SOCKS4/4a/5 server for the client's tests (tests/curl_parity.rs),
on 127.0.0.1 only, relaying to loopback destinations only.

Debian's microsocks (the real server the tests also use) speaks SOCKS5
alone; this one adds SOCKS4 and 4a, records what each client asked for
(so a test can tell remote from local resolution), and can misbehave:

    python3 socks_server.py PORT MODE LOGFILE [USER:PASS]

MODE: "good"; "lie" (a SOCKS5 reply with version 4 / a
SOCKS4 reply starting with 9); "stall" (reads the greeting, then never
answers); "refuse" (SOCKS5 status 5, SOCKS4 status 91); "bad-atyp" (a
SOCKS5 success reply with address type 9). Each request is appended to
LOGFILE as one line, "socks4 HOST PORT USER" or "socks5 ATYP HOST PORT",
for the test to read.
"""

import asyncio
import ipaddress
import socket
import sys

PORT = int(sys.argv[1])
MODE = sys.argv[2]
LOGFILE = sys.argv[3]
CREDS = sys.argv[4].encode() if len(sys.argv) > 4 else None


def log(*parts):
    with open(LOGFILE, "a") as f:
        print(*parts, file=f)


def loopback(host):
    """Only loopback destinations: the names a test uses and IP literals."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return str(ip) if ip.is_loopback else None


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def relay(reader, writer, host, port):
    target = loopback(host)
    if target is None:
        return None
    try:
        up_reader, up_writer = await asyncio.open_connection(target, port)
    except OSError:
        return None

    async def run():
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return run


async def socks4(reader, writer):
    head = await reader.readexactly(7)
    port = int.from_bytes(head[1:3], "big")
    ip = socket.inet_ntoa(head[3:7])
    user = (await reader.readuntil(b"\0"))[:-1].decode()
    host = ip
    if head[3:6] == b"\0\0\0" and head[6] != 0:
        host = (await reader.readuntil(b"\0"))[:-1].decode()
    log("socks4", host, port, user or "-")
    if MODE == "stall":
        await asyncio.sleep(3600)
    if MODE == "lie":
        writer.write(b"\x09\x5a" + b"\0" * 6)
        return
    run = None if MODE == "refuse" else await relay(reader, writer, host, port)
    if run is None:
        writer.write(b"\x00\x5b" + b"\0" * 6)
        return
    writer.write(b"\x00\x5a" + b"\0" * 6)
    await writer.drain()
    await run()


async def socks5(reader, writer):
    count = (await reader.readexactly(1))[0]
    methods = await reader.readexactly(count)
    if MODE == "stall":
        await asyncio.sleep(3600)
    if CREDS is not None:
        if 2 not in methods:
            writer.write(b"\x05\xff")
            return
        writer.write(b"\x05\x02")
        await reader.readexactly(1)
        user = await reader.readexactly((await reader.readexactly(1))[0])
        password = await reader.readexactly((await reader.readexactly(1))[0])
        ok = user + b":" + password == CREDS
        writer.write(b"\x01\x00" if ok else b"\x01\x01")
        if not ok:
            return
    else:
        writer.write(b"\x05\x00")
    head = await reader.readexactly(4)
    atyp = head[3]
    if atyp == 1:
        host = socket.inet_ntoa(await reader.readexactly(4))
    elif atyp == 4:
        host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
    else:
        host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
    port = int.from_bytes(await reader.readexactly(2), "big")
    log("socks5", atyp, host, port)
    if MODE == "lie":
        writer.write(b"\x04\x00\x00\x01" + b"\0" * 6)
        return
    if MODE == "bad-atyp":
        writer.write(b"\x05\x00\x00\x09" + b"\0" * 6)
        return
    run = None if MODE == "refuse" else await relay(reader, writer, host, port)
    if run is None:
        writer.write(b"\x05\x05\x00\x01" + b"\0" * 6)
        return
    writer.write(b"\x05\x00\x00\x01\x7f\x00\x00\x01" + port.to_bytes(2, "big"))
    await writer.drain()
    await run()


async def handle(reader, writer):
    try:
        version = (await reader.readexactly(1))[0]
        if version == 4:
            await socks4(reader, writer)
        elif version == 5:
            await socks5(reader, writer)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", PORT)
    async with server:
        await server.serve_forever()


asyncio.run(main())
