"""Progress lines: periodic plain lines when not on a terminal, a bar on one."""

from __future__ import annotations

import io

from tradeagg.commands.progress import Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    p = Progress("produce", 200, out=out, every_s=0.0)
    p.update(50)
    p.update(200)
    p.close()
    lines = out.getvalue().splitlines()
    assert [ln.split(" (")[0] for ln in lines] == ["produce: 50/200", "produce: 200/200"]
    assert "(100%)" in lines[-1] and "\r" not in out.getvalue()


def test_a_bar_redrawn_in_place_on_a_terminal() -> None:
    out = Tty()
    p = Progress("produce", 10, out=out, every_s=0.0)
    p.update(4)
    p.done = 10
    p.close()
    text = out.getvalue()
    assert "\r" in text and text.removesuffix("\x1b[?25h").endswith("\n")  # cursor shown again
    last = text.rsplit("\r", 1)[-1]
    assert "produce" in last and "10/10" in last and "100%" in last
    assert "produce: " not in text  # no plain lines on a terminal


def test_unknown_total_shows_count_and_rate_only() -> None:
    out = io.StringIO()
    p = Progress("reclaim", 0, out=out, every_s=0.0)
    p.update(7)
    p.close()
    assert out.getvalue().startswith("reclaim: 7 ") and "%" not in out.getvalue()
