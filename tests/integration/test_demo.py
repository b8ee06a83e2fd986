"""`tradeagg demo` end to end: real child processes, real servers, nothing left behind.

Every demo here runs with a unique marker in its environment, which its
children inherit; afterwards no process on the machine may carry it (a scan
of /proc, no psutil), and the demo's TMPDIR must be empty.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

MARK = "TRADEAGG_DEMO_TEST_MARK"


def marked(mark: str, addresses: tuple[str, ...] = ()) -> list[int]:
    """Pids of live processes whose environment carries ``MARK=mark``, or whose
    command line names one of ``addresses`` (redis-server rewrites its process
    title over its environment, so the marker alone would miss it)."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        hit = needle in env.split(b"\0") or any(a in cmdline for a in addresses)
        if state != "Z" and hit:
            found.append(int(entry.name))
    return found


def addresses(output: str) -> tuple[str, ...]:
    """The embedded servers' host:port, from the demo's second line."""
    found = re.search(r"redis redis://(127\.0\.0\.1:\d+)/0  kafka (127\.0\.0\.1:\d+)", output)
    assert found, output
    return found.group(1), found.group(2)


def wait_none_marked(mark: str, where: tuple[str, ...] = (), timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = marked(mark, where)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


@pytest.fixture
def demo_env(tmp_path: Path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    mark = uuid.uuid4().hex
    env = dict(os.environ, TMPDIR=str(tmp), LOG_LEVEL="WARNING", **{MARK: mark})
    env.pop("REDIS_URL", None)
    yield env, mark, tmp
    for pid in marked(mark):  # never leave a failed test's processes running
        os.kill(pid, signal.SIGKILL)


def test_no_ui_runs_ranks_and_leaves_nothing(demo_env):
    env, mark, tmp = demo_env
    out = subprocess.run(
        [sys.executable, "-m", "tradeagg", "demo", "--no-ui", "--duration", "20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rates = [int(m) for m in re.findall(r"applied_rate=(\d+)/s", out.stdout)]
    fed = [int(m) for m in re.findall(r" fed=(\d+) ", out.stdout)]
    assert rates and max(rates) > 0, out.stdout
    assert fed and fed[-1] > 0
    final = out.stdout[out.stdout.index("top 20 of ") :].splitlines()
    assert final[1].split()[:3] == ["#", "token", "trades"]
    ranks = [line.split()[0] for line in final[2:] if line.strip()[:1].isdigit()]
    assert ranks[:3] == ["1", "2", "3"]
    last = re.findall(r"in_flight=(\d+)", out.stdout)[-1]
    assert last == "0", out.stdout  # every delivered trade was applied before the end
    assert wait_none_marked(mark, addresses(out.stdout)) == []
    assert list(tmp.iterdir()) == []


def _read_until(fd: int, buf: bytearray, done, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done(bytes(buf)) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            buf.extend(chunk)


def _first_full_screen(data: bytes) -> str | None:
    """The first drawn screen that already ranks a token."""
    for frame in data.split(b"\x1b[H")[1:]:
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", frame.decode(errors="replace"))
        text = text.replace("\r", "")
        if re.search(r"^\s*1\s+\S+…\S+\s+\d", text, re.M):
            return text
    return None


def test_live_view_in_a_pseudo_terminal_then_ctrl_c(demo_env):
    env, mark, tmp = demo_env
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 140, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tradeagg", "demo", "--rate", "300", "--tokens", "100"],
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        start_new_session=True,
    )
    os.close(follower)
    buf = bytearray()
    try:
        _read_until(leader, buf, lambda b: _first_full_screen(b) is not None, 90)
        screen = _first_full_screen(bytes(buf))
        assert screen is not None, bytes(buf)[-2000:]
        assert b"\x1b[?1049h" in buf  # the alternate screen
        lines = screen.splitlines()
        assert lines[0].startswith("tradeagg demo") and "Ctrl-C" in lines[0]
        assert re.match(r"fed \S+ trades \(\S+/s\)  applied \S+/s  in flight", lines[1])
        assert "active tokens" in lines[1] and "top by 5m volume, exact as of" in lines[2]
        head = lines[4].split()
        assert head[:3] == ["#", "token", "1m"] and "5m" in head and "1h" in head
        os.kill(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground process
        _read_until(leader, buf, lambda b: False, 60)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(leader)
    tail = bytes(buf).decode(errors="replace")
    assert "\x1b[?1049l" in tail and "top 20 of " in tail.split("\x1b[?1049l")[-1]
    assert wait_none_marked(mark, addresses(tail)) == []
    assert list(tmp.iterdir()) == []


def test_killed_demo_takes_its_children_along(demo_env):
    """SIGKILL leaves no chance to clean up: the children still die (PR_SET_PDEATHSIG)."""
    env, mark, tmp = demo_env
    proc = subprocess.Popen(
        [sys.executable, "-m", "tradeagg", "demo", "--no-ui", "--rate", "100"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("["):  # the first summary: servers and children are up
                break
        where = addresses("".join(seen))
        assert len(marked(mark, where)) == 6, seen  # demo, redis, broker, bridge, worker, serve
        url = re.search(r"live screener: (http://127\.0\.0\.1:\d+/)", "".join(seen))
        assert url, seen
        with urllib.request.urlopen(url.group(1), timeout=10) as page:
            assert page.status == 200 and b"/static/screener.js" in page.read()
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert wait_none_marked(mark, where) == []


def test_bad_options_exit_2(demo_env):
    env, _mark, _tmp = demo_env
    for args in (["--rate", "0"], ["--tokens", "0"], ["--duration", "-1"], ["--rate", "x"]):
        out = subprocess.run(
            [sys.executable, "-m", "tradeagg", "demo", "--no-ui", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.count("\n") == 1, out.stderr
