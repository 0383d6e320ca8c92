"""The API's Service: one stable address in front of the ready API pods, as kube-proxy and a
Service give a cluster, so clients never see a pod's own address come and go.

It runs as its own process (`python -m devcluster.proxy PORT`), so its latency is not the
demo's event loop's. It forwards HTTP/1.1 request by request (httptools finds where each
request and response ends; the bytes pass through untouched) to the backends in round
robin, keeping one upstream connection per client connection while its backend stays in
service. Its stdin takes one command a line, `backends HOST:PORT,...`, and it answers `ok`
on stdout once no request is in flight on a backend that left the set: the controller
stops an old pod only then, so a rolling restart drops nothing (endpoints removed before
the pod's SIGTERM, as a Service does with a terminating pod); `samples` answers with the
time each request spent behind the Service (read to response relayed), as an ingress
measures it. An upstream connection idle
for longer than IDLE_SECONDS is not reused: the API closes idle keep-alive connections
after 5 s, and a request sent just then would be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httptools

from devcluster.net import free_port

ROOT = Path(__file__).resolve().parent.parent
IDLE_SECONDS = 2.0
SAMPLES_LIMIT = 1 << 28  # one `samples` answer is one line: a whole run's requests
CHUNK = 65536
BAD_GATEWAY = (b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")


class _Message:
    """Collects the bytes of one HTTP message from a stream; `done` once it ended."""

    def __init__(self, response: bool) -> None:
        self.done = False
        self.keep_alive = True
        self.parser: httptools.HttpRequestParser | httptools.HttpResponseParser = (
            httptools.HttpResponseParser(self) if response else httptools.HttpRequestParser(self))

    def on_message_complete(self) -> None:
        self.done = True
        self.keep_alive = self.parser.should_keep_alive()


@dataclass
class Upstream:
    backend: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used_at: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


@dataclass
class Balancer:
    backends: list[str] = field(default_factory=list)
    inflight: dict[str, int] = field(default_factory=dict)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    samples: list[tuple[float, float]] = field(default_factory=list)  # (monotonic, took)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def pick(self, current: Upstream | None) -> str | None:
        if current is not None and current.backend in self.backends:
            return current.backend
        if not self.backends:
            return None
        return self.backends[next(self._turn) % len(self.backends)]

    def begin(self, backend: str) -> None:
        self.inflight[backend] = self.inflight.get(backend, 0) + 1

    def end(self, backend: str) -> None:
        self.inflight[backend] -= 1
        self.idle.set()

    async def set_backends(self, backends: list[str]) -> None:
        """Serve from `backends` from now on; return once the others have no request in
        flight."""
        self.backends = backends
        while any(n for b, n in self.inflight.items() if b not in backends):
            self.idle.clear()
            await self.idle.wait()

    async def connect(self, backend: str) -> Upstream:
        host, port = backend.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        return Upstream(backend, reader, writer)

    async def read_request(self, reader: asyncio.StreamReader) -> tuple[bytes, bool] | None:
        """(one request's bytes, keep-alive), or None at the end of the stream. Clients
        here (httpx, the Jobs) never pipeline, so a request ends its chunk."""
        msg = _Message(response=False)
        data = bytearray()
        while not msg.done:
            chunk = await reader.read(CHUNK)
            if not chunk:
                return None
            data += chunk
            msg.parser.feed_data(chunk)
        return bytes(data), msg.keep_alive

    async def relay_response(self, up: Upstream, client: asyncio.StreamWriter) -> bool:
        """Forward one response; True when both sides may keep the connection. A backend
        gone before its first byte becomes a 502 (never a silent retry: the request may
        have been applied)."""
        msg = _Message(response=True)
        sent = False
        while not msg.done:
            chunk = await up.reader.read(CHUNK)
            if not chunk:
                if not sent:
                    client.write(BAD_GATEWAY)
                    await client.drain()
                raise ConnectionError("the backend closed the connection mid-response")
            msg.parser.feed_data(chunk)
            client.write(chunk)
            sent = True
        await client.drain()
        return msg.keep_alive

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up: Upstream | None = None
        try:
            while True:
                got = await self.read_request(reader)
                if got is None:
                    return
                request, keep = got
                read_at = time.monotonic()
                backend = self.pick(up)
                if backend is None:
                    writer.write(BAD_GATEWAY)
                    await writer.drain()
                    return
                self.begin(backend)
                try:
                    if up is not None and (up.backend != backend or
                                           time.monotonic() - up.used_at > IDLE_SECONDS):
                        up.close()
                        up = None
                    if up is None:
                        try:
                            up = await self.connect(backend)
                        except OSError:
                            writer.write(BAD_GATEWAY)
                            await writer.drain()
                            return
                    up.writer.write(request)
                    await up.writer.drain()
                    keep = await self.relay_response(up, writer) and keep
                    up.used_at = time.monotonic()
                    self.samples.append((read_at, up.used_at - read_at))
                finally:
                    self.end(backend)
                if not keep:
                    return
        except (ConnectionError, OSError, httptools.HttpParserError):
            return
        finally:
            if up is not None:
                up.close()
            with contextlib.suppress(Exception):
                writer.close()


@dataclass
class Service:
    """The proxy process, as the controller drives it."""

    log_path: Path
    port: int = field(default_factory=free_port)
    backends: list[str] = field(default_factory=list)
    process: asyncio.subprocess.Process | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = await asyncio.to_thread(open, self.log_path, "ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "devcluster.proxy", str(self.port), cwd=str(ROOT),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
                start_new_session=True, limit=SAMPLES_LIMIT)
        finally:
            log.close()  # the process has its own copy
        await self._answer("listening")

    async def _answer(self, expected: str) -> None:
        assert self.process is not None and self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 60)
        if line.decode().strip() != expected:
            raise RuntimeError(f"the Service proxy said {line!r}, not {expected!r}; see "
                               f"{self.log_path}")

    async def set_backends(self, backends: list[str]) -> None:
        """Route to `backends` only; returns once no request is left on the others."""
        async with self._lock:
            assert self.process is not None and self.process.stdin is not None
            self.process.stdin.write(f"backends {','.join(backends)}\n".encode())
            await self.process.stdin.drain()
            await self._answer("ok")
            self.backends = list(backends)

    async def samples(self) -> list[tuple[float, float]]:
        """(monotonic time the request was read, seconds until its response was relayed)
        for every request since the last call: the Service's own view of the latency."""
        async with self._lock:
            assert self.process is not None and self.process.stdin is not None
            assert self.process.stdout is not None
            self.process.stdin.write(b"samples\n")
            await self.process.stdin.drain()
            line = await asyncio.wait_for(self.process.stdout.readline(), 60)
        return [(float(a), float(b)) for a, b in json.loads(line)]

    async def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def control(balancer: Balancer) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        command, _, arg = line.partition(" ")
        if command == "backends":
            await balancer.set_backends([b for b in arg.split(",") if b])
            sys.stdout.write("ok\n")
        elif command == "samples":
            taken, balancer.samples = balancer.samples, []
            sys.stdout.write(json.dumps(taken) + "\n")
        sys.stdout.flush()


async def main(port: int) -> None:
    balancer = Balancer()
    server = await asyncio.start_server(balancer.serve, "127.0.0.1", port, backlog=512)
    sys.stdout.write("listening\n")
    sys.stdout.flush()
    async with server:
        await control(balancer)  # stdin closed: the controller is gone, so are we


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(int(sys.argv[1])))
    else:
        uvloop.run(main(int(sys.argv[1])))
