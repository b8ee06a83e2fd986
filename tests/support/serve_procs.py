"""A real `tradeagg serve` process on a free loopback port, and plain HTTP/SSE clients."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.servers import free_port


class ServeProc:
    def __init__(self, redis_url: str, log: Path, **extra: str) -> None:
        self.port = free_port()
        self.log = log
        env = dict(os.environ)
        env.update(
            REDIS_URL=redis_url,
            PORT=str(self.port),
            TRADEAGG_HTTP_HOST="127.0.0.1",
            TRADEAGG_SHARDS="2",
            TRADEAGG_API_TOKEN="",
            LOG_LEVEL="INFO",
            GEVENT_MONITOR_THREAD_ENABLE="1",
            GEVENT_MAX_BLOCKING_TIME="0.1",
        )
        env.update(extra)
        self.fh = open(log, "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tradeagg", "serve"], env=env, stdout=self.fh, stderr=self.fh
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.get("/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("serve did not start:\n" + self.text()[-3000:])
            time.sleep(0.1)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        status, hdrs, body = self.request("GET", path, headers)
        if hdrs.get("content-type", "").startswith("application/json"):
            return status, json.loads(body)
        return status, body

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(30)
        finally:
            self.fh.close()


class SseClient:
    """A raw-socket SSE client: the request is sent, reading is up to the test."""

    def __init__(self, port: int, path: str, headers: dict[str, str] | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        self.received = 0

    def read_some(self, timeout: float = 5.0) -> bytes:
        self.sock.settimeout(timeout)
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("server closed the stream")
        self.received += len(data)
        self.buf += data
        return data

    def events(self, deadline_s: float = 10.0) -> list[tuple[str, str]]:
        """Read until at least one complete event arrived; returns every complete one."""
        deadline = time.monotonic() + deadline_s
        while not self._complete():
            if time.monotonic() > deadline:
                raise TimeoutError("no event")
            self.read_some(max(0.05, deadline - time.monotonic()))
        return self.take_events()

    def _complete(self) -> bool:
        start = self.buf.find(b"event: ")
        return start >= 0 and self.buf.find(b"\n\n", start) >= 0

    def take_events(self) -> list[tuple[str, str]]:
        out = []
        while True:
            start = self.buf.find(b"event: ")
            end = self.buf.find(b"\n\n", start)
            if start < 0 or end < 0:
                return out
            block = self.buf[start:end].decode()
            self.buf = self.buf[end + 2 :]
            name, data = "", ""
            for line in block.split("\n"):
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data += line[6:]
            out.append((name, data))

    def close(self) -> None:
        self.sock.close()
