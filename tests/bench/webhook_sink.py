#!/usr/bin/python3
"""webhook_sink.py: a fast webhook receiver for bench_alarms.py (its own process, so it does
not share a GIL with the simulated edges).

An asyncio Protocol parsing HTTP/1.1 minimally (keep-alive, Content-Length bodies, no
chunked uploads: libcurl sends Content-Length for POSTFIELDS) and answering 200 at once.
For every request it keeps the receipt time (time.time(), taken when the whole request is
in), webhook-id, webhook-timestamp, webhook-signature and the body; the body is only
looked at when the records are dumped, so the receiving path stays short.

Control, one line each on stdin, answers one line on stdout:
  secret whsec_...   signatures of a sample are checked with it (Standard Webhooks v1)
  count              "count N": requests received so far (all time)
  dump PATH          writes the records since the last dump to PATH, one per line:
                     recv_time<TAB>webhook-id<TAB>data.event_id<TAB>data.time; answers
                     "dumped N sig_checked K sig_bad B malformed M"
  quit
Started with --port 0 it prints "port N" first. Stand-alone (for load-testing it alone with
wrk): tests/bench/webhook_sink.py --port 8099 --no-control
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import socket
import sys
import threading
import time

RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            b"\r\n{}")
BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
SAMPLE_EVERY = 100  # one signature in this many is checked


class Sink:
    def __init__(self):
        self.records: list[tuple] = []  # (recv, msg_id, ts, sig, body)
        self.total = 0
        self.malformed = 0
        self.key: bytes | None = None


class HttpProtocol(asyncio.Protocol):
    __slots__ = ("sink", "transport", "buf")

    def __init__(self, sink: Sink):
        self.sink = sink
        self.transport = None
        self.buf = b""

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        sink = self.sink
        out = []
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            clen = 0
            msg_id = ts = sig = b""
            for line in buf[:end].split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                k = k.strip().lower()
                if k == b"content-length":
                    clen = int(v)
                elif k == b"webhook-id":
                    msg_id = v.strip()
                elif k == b"webhook-timestamp":
                    ts = v.strip()
                elif k == b"webhook-signature":
                    sig = v.strip()
            stop = end + 4 + clen
            if len(buf) < stop:
                break
            sink.records.append((time.time(), msg_id, ts, sig, buf[end + 4:stop]))
            sink.total += 1
            buf = buf[stop:]
            out.append(RESPONSE)
        if len(buf) > (4 << 20):
            self.transport.write(BAD)
            self.transport.close()
            sink.malformed += 1
            buf = b""
        self.buf = buf
        if out:
            self.transport.write(b"".join(out))


def field(body: bytes, name: bytes) -> str:
    """A top-level-looking "name": "value" string from jsonb text output (data.time, data.event_id)."""
    key = b'"' + name + b'": "'
    i = body.find(key)
    if i < 0:
        return ""
    i += len(key)
    return body[i:body.find(b'"', i)].decode()


def verify(key: bytes, msg_id: bytes, ts: bytes, sig: bytes, body: bytes) -> bool:
    want = base64.b64encode(hmac.new(key, msg_id + b"." + ts + b"." + body,
                                     hashlib.sha256).digest())
    return any(hmac.compare_digest(want, s.split(b",", 1)[1]) for s in sig.split(b" ")
               if s.startswith(b"v1,"))


def dump(sink: Sink, path: str) -> str:
    recs, sink.records = sink.records, []
    checked = bad = 0
    with open(path, "w") as f:
        for i, (recv, msg_id, ts, sig, body) in enumerate(recs):
            f.write(f"{recv:.6f}\t{msg_id.decode()}\t{field(body, b'event_id')}\t"
                    f"{field(body, b'time')}\n")
            if sink.key is not None and i % SAMPLE_EVERY == 0:
                checked += 1
                if not verify(sink.key, msg_id, ts, sig, body):
                    bad += 1
    return f"dumped {len(recs)} sig_checked {checked} sig_bad {bad} malformed {sink.malformed}"


def control(loop, sink: Sink, done: asyncio.Event):
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if not cmd:
            continue
        if cmd == "quit":
            break
        fut = asyncio.run_coroutine_threadsafe(run_cmd(sink, cmd, arg), loop)
        print(fut.result(), flush=True)
    loop.call_soon_threadsafe(done.set)


async def run_cmd(sink: Sink, cmd: str, arg: str) -> str:
    # On the loop: nothing is appended while the records are swapped out.
    if cmd == "secret":
        sink.key = base64.b64decode(arg.removeprefix("whsec_"))
        return "ok"
    if cmd == "count":
        return f"count {sink.total}"
    if cmd == "dump":
        return dump(sink, arg)
    return f"error unknown command {cmd}"


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--no-control", action="store_true", help="no stdin commands; run until killed")
    args = ap.parse_args()
    sink = Sink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(sink), "127.0.0.1", args.port,
                                      backlog=512)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    done = asyncio.Event()
    if args.no_control:
        while True:
            await asyncio.sleep(1)
            sink.records.clear()
    threading.Thread(target=control, args=(loop, sink, done), daemon=True).start()
    await done.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
