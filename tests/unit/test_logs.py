"""Log lines are logfmt: ``ts= level= logger= process= msg="..." key=value...``, one per event."""

from __future__ import annotations

import logging
import re

from tradeagg.logs import LogfmtFormatter, kv, metric_segment, process_name

PAIR = re.compile(r'([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?:\s+|$)')


def parse(line: str) -> dict[str, str]:
    """A strict logfmt reader: the whole line must be key=value pairs."""
    out, pos = {}, 0
    while pos < len(line):
        match = PAIR.match(line, pos)
        assert match and match.end() > pos, f"not logfmt at {pos}: {line[pos:]!r}"
        value = match.group(2)
        if value.startswith('"'):
            value = re.sub(
                r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value[1:-1]
            )
        out[match.group(1)] = value
        pos = match.end()
    return out


def line_of(msg: str, *args: object, exc: bool = False) -> str:
    record = logging.LogRecord("tradeagg.worker", logging.WARNING, "f.py", 1, msg, args, None)
    if exc:
        try:
            raise ValueError('bad "thing"')
        except ValueError:
            import sys

            record.exc_info = sys.exc_info()
    return LogfmtFormatter("worker.worker.1").format(record)


def test_text_becomes_msg_and_context_stays_keys() -> None:
    line = line_of("warning cleared %s", kv(warning="pool", on_for_s=3, detail='say "hi"\nbye'))
    fields = parse(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["ts"])
    assert fields["level"] == "WARNING" and fields["logger"] == "tradeagg.worker"
    assert fields["process"] == "worker.worker.1"
    assert fields["msg"] == "warning cleared"
    assert (fields["warning"], fields["on_for_s"]) == ("pool", "3")
    assert fields["detail"] == 'say "hi"\nbye'
    assert "\n" not in line


def test_free_text_with_equals_signs_is_all_msg() -> None:
    fields = parse(line_of('a = b and "quoted" x=1 y'))
    assert fields["msg"] == 'a = b and "quoted" x=1 y'


def test_an_exception_stays_on_the_line() -> None:
    line = line_of("part crashed %s", kv(part="shard-1"), exc=True)
    fields = parse(line)
    assert "\n" not in line and fields["part"] == "shard-1"
    assert 'ValueError: bad "thing"' in fields["exc"]


def test_process_names_for_metric_paths() -> None:
    assert process_name("worker.3") == "worker.3"
    assert re.fullmatch(r".+-\d+", process_name(""))
    assert metric_segment("worker.3") == "worker_3"
    assert metric_segment("run.1 x/y") == "run_1_x_y"
