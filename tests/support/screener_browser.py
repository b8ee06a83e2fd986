"""Drives the live screener in headless Chromium (Debian's binary, no browser download).

Run as its own process (``python -m tests.support.screener_browser URL OUTDIR``)
so that Playwright's event loop never meets the test process's gevent patches.
Protocol on stdin/stdout, one JSON object per line:

1. loads URL, waits for rows, prints ``{"token": T, "trades": N, "rows": R}``
   for the third row;
2. reads ``settle M`` on stdin (the test has drained the streams; M is T's
   exact count read from the API), waits up to ``SETTLE_S`` for T's row to
   show M (the last announcements of the drain may still be on their way: a
   baseline taken before them would never see M + 1), prints
   ``{"settled": M}`` (or ``{"error": ...}``);
3. waits for a line on stdin (the test has appended a trade for T);
4. waits up to ``--within`` s for T's row to show M + 1 trades, prints
   ``{"changed_after_s": S}`` (or ``{"error": ...}``), saves screenshots
   in OUTDIR, clicks the row and prints ``{"detail_windows": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from playwright.sync_api import Error, sync_playwright

CHROMIUM = "/usr/bin/chromium"
SETTLE_S = 30.0
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TRADES_OF = """(t) => {
  const tr = document.querySelector(`#top tbody tr[data-token="${t}"]`);
  if (!tr) return -1;
  return Number(tr.querySelector("td.buys").textContent) +
         Number(tr.querySelector("td.sells").textContent);
}"""


def say(doc: dict) -> None:
    print(json.dumps(doc), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--within", type=float, default=2.0)
    ap.add_argument("--hold", type=float, default=0.0, help="seconds before the screenshot")
    args = ap.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 820})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(args.url)
        page.wait_for_selector("#top tbody tr:nth-child(3)", timeout=20_000)
        page.wait_for_function(
            "() => document.getElementById('status').textContent === 'live'", timeout=20_000
        )
        token = page.get_attribute("#top tbody tr:nth-child(3)", "data-token")
        trades = page.evaluate(TRADES_OF, token)
        rows = page.locator("#top tbody tr").count()
        say({"token": token, "trades": trades, "rows": rows})
        trades = int(sys.stdin.readline().split()[1])
        try:
            page.wait_for_function(
                f"(t) => ({TRADES_OF})(t) === {trades}", arg=token, timeout=SETTLE_S * 1000
            )
            say({"settled": trades})
        except Error as exc:
            say({"error": str(exc).splitlines()[0], "trades_now": page.evaluate(TRADES_OF, token)})
            return 1
        sys.stdin.readline()
        t0 = time.monotonic()
        try:
            page.wait_for_function(
                f"(t) => ({TRADES_OF})(t) === {trades + 1}", arg=token, timeout=args.within * 1000
            )
            say({"changed_after_s": round(time.monotonic() - t0, 3)})
        except Error as exc:
            now = page.evaluate(TRADES_OF, token)
            say({"error": str(exc).splitlines()[0], "trades_before": trades, "trades_now": now})
        if args.hold:
            page.wait_for_timeout(args.hold * 1000)
        page.screenshot(path=str(args.outdir / "screener.png"))
        page.click(f'#top tbody tr[data-token="{token}"]')
        page.wait_for_selector("#detail:not([hidden]) #detail-table tbody tr", timeout=5_000)
        labels = page.eval_on_selector_all(
            "#detail-table thead th", "els => els.map(e => e.textContent)"
        )
        page.screenshot(path=str(args.outdir / "screener-detail.png"), full_page=True)
        say({"detail_windows": labels[1:], "page_errors": errors})
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
