"""The live screener in a real browser (headless Chromium): rows, then a live change.

The whole chain is real: trades appended to the shard streams, a worker
process applying and announcing them, a serve process pushing them over SSE,
and the page's JavaScript redrawing the row. Screenshots go to
``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.integration.test_worker import drained, worker_env
from tests.support.bridge_procs import Proc, wait_for
from tests.support.serve_procs import ServeProc
from tradeagg.contract.trade import Trade
from tradeagg.devtools.synthetic import SyntheticFeed
from tradeagg.engine.apply import now_ms
from tradeagg.settings import Settings
from tradeagg.store.streams import append

ARTIFACTS = Path(os.environ.get("TRADEAGG_TEST_ARTIFACTS", "test-artifacts"))


def test_screener_shows_rows_and_a_trade_within_two_seconds(
    redis_server, redis_client, tmp_path: Path
) -> None:
    env = worker_env(redis_server.url)
    s = Settings.from_env(env)
    trades = SyntheticFeed(tokens=20, seed=31).trades(800, now_ms() - 200_000, rate=4)
    append(redis_client, s, trades)
    worker = Proc("worker", env, tmp_path / "worker.log")
    server = ServeProc(redis_server.url, tmp_path / "serve.log", TRADEAGG_SHARDS=str(s.shards))
    blog = open(tmp_path / "browser.log", "wb")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GEVENT_")}
    browser = subprocess.Popen(
        [sys.executable, "-m", "tests.support.screener_browser", server.base + "/", str(ARTIFACTS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=blog,
        text=True,
        env=clean,
    )
    passed = False
    try:
        wait_for(lambda: drained(redis_client), 60, "worker to drain")
        first = json.loads(browser.stdout.readline() or "{}")
        assert first.get("rows", 0) >= 3, (first, (tmp_path / "browser.log").read_text())
        token = first["token"]
        assert first["trades"] > 0
        # the page may have taken its count before the drain's last announcements came: it
        # settles on the token's exact count first, so that the trade below is the one change
        window = server.get("/v1/windows")[1]["default"]
        shown = server.get(f"/v1/tokens/{token}")[1]["windows"][window]
        browser.stdin.write(f"settle {shown['buys'] + shown['sells']}\n")
        browser.stdin.flush()
        settled = json.loads(browser.stdout.readline())
        assert "settled" in settled, settled
        trade = Trade(
            id=f"browser-{uuid.uuid4().hex}",
            token=token,
            side="buy",
            quote_nano=2_500_000_000,
            price="0.0000000175",
            ts=now_ms() - 50,
        )
        append(redis_client, s, [trade])
        browser.stdin.write("go\n")
        browser.stdin.flush()
        changed = json.loads(browser.stdout.readline())
        assert "changed_after_s" in changed, changed
        assert changed["changed_after_s"] <= 2.0
        detail = json.loads(browser.stdout.readline())
        assert detail["detail_windows"] == [w.label for w in s.windows]
        assert detail["page_errors"] == []
        assert browser.wait(30) == 0
        passed = True
    finally:
        if browser.poll() is None:
            browser.kill()
            browser.wait(10)
        blog.close()
        server_code = server.stop()
        if passed:  # a failing body keeps its own error (see bridge_procs.running)
            worker_code = worker.terminate()
        else:
            worker.kill()
    assert server_code == 0
    assert worker_code == 0
    assert (ARTIFACTS / "screener.png").stat().st_size > 10_000
    assert "Traceback" not in server.text() and "Traceback" not in worker.text()
