"""``running(proc)``: the block's own failure wins over the exit-code check."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.bridge_procs import running


class StubProc:
    """Stands in for Proc (a subprocess wrapper); records what ``running`` did to it."""

    def __init__(self, code: int | None) -> None:
        self.log = Path("stub.log")
        self.code = code
        self.calls: list[str] = []

    def text(self) -> str:
        return "log tail"

    def kill(self) -> None:
        self.calls.append("kill")

    def terminate(self, timeout: float, sig: int) -> int:
        self.calls.append(f"terminate {sig}")
        if self.code is None:
            raise subprocess.TimeoutExpired("stub", timeout)
        return self.code


def test_a_failing_block_keeps_its_error_and_kills() -> None:
    proc = StubProc(code=1)
    with pytest.raises(ValueError, match="the real failure"), running(proc):  # type: ignore[arg-type]
        raise ValueError("the real failure")
    assert proc.calls == ["kill"]


def test_a_passing_block_checks_the_exit_code() -> None:
    proc = StubProc(code=3)
    with pytest.raises(AssertionError, match="exited 3"), running(proc, sig=signal.SIGINT):  # type: ignore[arg-type]
        pass
    assert proc.calls == [f"terminate {signal.SIGINT}"]


def test_a_clean_exit_passes_and_a_hang_fails() -> None:
    with running(StubProc(code=0)):  # type: ignore[arg-type]
        pass
    hung = StubProc(code=None)
    with pytest.raises(AssertionError, match="still running"), running(hung):  # type: ignore[arg-type]
        pass
    assert hung.calls == [f"terminate {signal.SIGTERM}", "kill"]
