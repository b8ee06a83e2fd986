"""A StatsD stand-in for tests: a real UDP socket that records every metric line."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Stat:
    """One StatsD line: ``name:value|type[|@rate]``."""

    name: str
    value: float
    type: str
    rate: float = 1.0

    @classmethod
    def parse(cls, line: str) -> Stat:
        name, _, rest = line.partition(":")
        parts = rest.split("|")
        rate = float(parts[2][1:]) if len(parts) > 2 else 1.0
        return cls(name, float(parts[0]), parts[1], rate)


class StatsdListener:
    """Binds 127.0.0.1 on a free UDP port; a thread keeps every datagram received."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.packets: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65_536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.packets.append(data)

    def stats(self) -> list[Stat]:
        with self._lock:
            packets = list(self.packets)
        return [Stat.parse(line) for p in packets for line in p.decode().split("\n") if line]

    def named(self, name: str) -> list[Stat]:
        return [s for s in self.stats() if s.name == name]

    def counter(self, name: str) -> float:
        return sum(s.value / s.rate for s in self.named(name) if s.type == "c")

    def wait_for(self, check: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                names = sorted({s.name for s in self.stats()})
                raise AssertionError(f"condition not met in {timeout}s; names seen: {names}")
            time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
