"""Real servers for tests: redis-server processes on free loopback ports."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from tradeagg.devtools.embedded import free_port, wait_port

__all__ = ["RedisServer", "free_port", "stop_process", "wait_port"]


def stop_process(proc: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL if it is still there after 10 s."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class RedisServer:
    """A redis-server we own: start, kill, restart (optionally with AOF)."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        appendonly: bool = False,
        extra: list[str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.extra = extra or []
        self.proc: subprocess.Popen | None = None
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is not on PATH (apt-get install redis-server)")
        self.binary = binary

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(self.workdir),
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "always",
            "--logfile",
            str(self.workdir / "redis.log"),
            *self.extra,
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, 15.0, self.proc)
        client = self.client()
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.BusyLoadingError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        """SIGKILL: the server dies as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        stop_process(self.proc)

    def restart(self) -> None:
        self.kill()
        self.start()

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)
