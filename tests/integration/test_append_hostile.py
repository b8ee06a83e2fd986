"""`tradeagg append` fed hostile lines: one clear stderr line each, counters, exit 1, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.support.bridge_procs import stream_records
from tradeagg.devtools.synthetic import SyntheticFeed, to_message

SHARDS = 4
TOKEN = "So11111111111111111111111111111111111111112"


def test_append_survives_hostile_lines(redis_server, redis_client, tmp_path: Path) -> None:
    trades = SyntheticFeed(tokens=4, seed=9).trades(20, int(time.time() * 1000) - 30_000, 10)
    good = [json.dumps(to_message(t)).encode() for t in trades]
    partly = json.dumps([to_message(trades[0]), 0]).encode().replace(b"0]", b"1e1000000]")
    hostile = [
        b'{"id":"a","token":"%s","side":"buy","amount":1,"quote":1e1000000,"price":1,'
        b'"ts":1,"trader":"%s"}' % (TOKEN.encode(), TOKEN.encode()),  # 1 element
        b"[" + b",".join([b"0"] * 520_000) + b"]",  # over the element cap: 1
        b"[" + b"9" * 100_000 + b"]",  # 1 element
        b"[" * 300_000 + b"]" * 300_000,  # 1
        b"\xff\xfe\x00 not utf-8",  # 1
        b'["\\ud800", "\\u0000"]',  # 2 elements
        b"[" + b" " * (3 << 20) + b"]",  # a 3 MiB line: 1
        partly,  # the valid trade goes in, 1 element rejected
    ]
    lines = [v for pair in zip(good[:8], hostile, strict=True) for v in pair] + good[8:]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    env = {"REDIS_URL": redis_server.url, "TRADEAGG_SHARDS": str(SHARDS), "PATH": ""}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    out = subprocess.run(
        [sys.executable, "-m", "tradeagg", "append", str(path)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    stderr = out.stderr.decode()
    assert out.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert out.stdout.decode().strip() == f"appended={len(good) + 1} invalid=9 invalid_lines=8"
    reported = stderr.strip().splitlines()
    assert [r.split(":")[0] for r in reported] == [f"line {2 * i + 2}" for i in range(8)]
    assert all(len(r) <= 320 for r in reported)
    assert "quote: exponent over 4 digits" in reported[0]
    assert "more than 10000 elements" in reported[1]
    assert "over 1048576 bytes" in reported[6]
    want = {t.record for t in trades}
    assert {r for _, _, r in stream_records(redis_client, SHARDS)} == want
