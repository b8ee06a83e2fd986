"""Mutation check of the core: plant one-line bugs, the chosen tests must notice each.

Run on demand, not in every CI run (docs/mutants.md has the last kill table)::

    python -m tests.mutants [--list] [--only NAME ...] [--jobs 1]

Each mutant replaces one exact text (found exactly once) in one file of a
temporary copy of the working tree, then runs its tests there in a
subprocess (``pytest -x -q -p no:cacheprovider``, ``PYTHONPATH`` = the copy,
so the copy's code and Lua win over any installed tradeagg). Failing tests
kill the mutant; passing tests let it survive; an original text that is not
found exactly once is an error (the code moved on: update the list, which
``tests/unit/test_mutant_list.py`` checks cheaply in every CI run), and so is
a pytest that stops without running tests (collection or import error). The
chosen tests are first run once unmutated and must pass. The exit status is
non-zero if any mutant survived or errored.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600  # per pytest run; a mutant that hangs its tests this long counts as killed
TESTS_FAILED = 1  # pytest's exit code when tests ran and some failed
IGNORED = shutil.ignore_patterns(
    ".git", "__pycache__", "*.pyc", ".pytest_cache", ".hypothesis", ".ruff_cache",
    ".mypy_cache", "*.egg-info", "build", "dist", ".venv",
)  # fmt: skip

REQUIRED_CATEGORIES = (
    "ordering",
    "window boundaries",
    "dedup",
    "late cutoff",
    "expiry",
    "ack-after-commit",
    "dead-lettering",
    "trimming",
    "validation",
)

EDGES = "tests/integration/test_core_edges.py"
IDS = "tests/integration/test_ids.py"
RECLAIM = "tests/integration/test_reclaim.py"
SCHEMA = "tests/unit/test_schema.py"


@dataclass(frozen=True)
class Mutant:
    """One planted bug: ``original`` (exactly once in ``file``) becomes ``replacement``."""

    name: str
    file: str
    original: str
    replacement: str
    category: str
    tests: tuple[str, ...]


def _m(name: str, file: str, original: str, replacement: str, category: str, *tests: str):
    return Mutant(name, file, original, replacement, category, tests)


A, T = "lua/apply_trades.lua", "lua/trim_stream.lua"
ENTRY, INSERT, SLIDE, STATE = (f"lua/lib/{n}.lua" for n in ("entry", "insert", "slide", "state"))
CONSUMER, BRIDGE = "tradeagg/runtime/consumer.py", "tradeagg/runtime/bridge.py"
VALIDATION = "tradeagg/contract/validation.py"
LATE_LINE = "if x.ts <= at - longest then late = late + 1"
SEEN_LINE = "if not ids_has(ix, k, x.bucket) and not batch[k] then"

MUTANTS: tuple[Mutant, ...] = (
    # -- ordering: (ts, seq, id), byte order of ids, across calls
    _m("append-compares-ts-only", INSERT,
       "if n == 0 or cmp(st.tail, news[1]) < 0 then",
       "if n == 0 or st.tail.ts <= news[1].ts then",
       "ordering", f"{EDGES}::test_a_later_call_tying_the_tail_on_ts_is_ordered_by_seq"),
    _m("seq-order-reversed", ENTRY,
       "if a.seq ~= b.seq then return a.seq < b.seq and -1 or 1 end",
       "if a.seq ~= b.seq then return a.seq > b.seq and -1 or 1 end",
       "ordering", f"{EDGES}::test_a_later_call_tying_the_tail_on_ts_is_ordered_by_seq"),
    _m("id-prefix-sorts-last", ENTRY,
       "return #a < #b",
       "return #a > #b",
       "ordering", f"{EDGES}::test_ties_on_ts_and_seq_follow_the_byte_order_of_ids"),
    _m("id-byte-order-reversed", ENTRY,
       "if x ~= y then return x < y end",
       "if x ~= y then return x > y end",
       "ordering", f"{EDGES}::test_ties_on_ts_and_seq_follow_the_byte_order_of_ids"),
    _m("late-insert-after-its-successor", "lua/lib/core.lua",
       "if redis.call('LINSERT', key, 'BEFORE', pivot, raw) < 0 then",
       "if redis.call('LINSERT', key, 'AFTER', pivot, raw) < 0 then",
       "ordering",
       "tests/integration/test_late_inserts.py::test_late_batches_into_a_long_list_match_the_reference"),
    # -- window boundaries: at - w < ts <= at
    _m("window-end-excludes-at", SLIDE,
       "st.e, _, last = walk(K[1], st.e, limit, at, enter, st.tot, nil, nil, cap)",
       "st.e, _, last = walk(K[1], st.e, limit, at - 1, enter, st.tot, nil, nil, cap)",
       "window boundaries", f"{EDGES}::test_window_boundaries_at_minus_w_and_at"),
    _m("trade-at-last-update-taken-for-future", STATE,
       "if st.tail.ts > st.at then e = first_after(K[1], n, st.at) end",
       "if st.tail.ts >= st.at then e = first_after(K[1], n, st.at) end",
       "window boundaries",
       f"{EDGES}::test_a_future_trade_at_last_update_is_not_mistaken_for_a_future_one",
       f"{EDGES}::test_a_list_tail_at_last_update_is_inside_and_the_stored_state_stands"),
    _m("rebuild-keeps-window-start", STATE,
       "if es[j].ts <= at - w.ms then break end",
       "if es[j].ts < at - w.ms then break end",
       "window boundaries", f"{EDGES}::test_a_damaged_token_read_keeps_the_window_boundaries"),
    # -- expiry: what leaves a window, TTLs
    _m("expiry-keeps-ts-equal-at-minus-w", SLIDE,
       "st.idx[i], open = walk(K[1], i0, st.e, at - w.ms, leave, ctx, buf, first, cap)",
       "st.idx[i], open = walk(K[1], i0, st.e, at - w.ms - 1, leave, ctx, buf, first, cap)",
       "expiry", f"{EDGES}::test_window_boundaries_at_minus_w_and_at"),
    _m("ttl-twice-the-longest-window", A,
       "local ttl = conf.long and max(longest, conf.long[#conf.long].ms) or longest",
       "local ttl = conf.long and max(longest, conf.long[#conf.long].ms) or 2 * longest",
       "expiry", f"{EDGES}::test_ttl_is_the_longest_window_and_refreshed_per_trade"),
    _m("ttl-not-refreshed-by-trades", A,
       "if fresh_ttl or rebuilt then",
       "if rebuilt then",
       "expiry", f"{EDGES}::test_ttl_is_the_longest_window_and_refreshed_per_trade"),
    # -- dedup: the id index, within a batch, result fields
    _m("duplicate-check-ignores-id-index", A,
       SEEN_LINE, "if not batch[k] then",
       "dedup", f"{IDS}::test_an_id_seen_again_with_other_ts_or_seq_is_a_duplicate"),
    _m("duplicate-check-ignores-the-batch", A,
       SEEN_LINE, "if not ids_has(ix, k, x.bucket) then",
       "dedup", f"{IDS}::test_an_id_seen_again_with_other_ts_or_seq_is_a_duplicate"),
    _m("result-fields-duplicates-and-late-swapped", "lua/lib/status.lua",
       "local R = {status = 1, applied = 2, duplicates = 3, late = 4, over_capacity = 5,",
       "local R = {status = 1, applied = 2, duplicates = 4, late = 3, over_capacity = 5,",
       "dedup", f"{IDS}::test_an_id_seen_again_with_other_ts_or_seq_is_a_duplicate"),
    # -- late cutoff: ts <= at - longest is late, counted, not applied
    _m("late-cutoff-doubled", A,
       LATE_LINE, "if x.ts <= at - 2 * longest then late = late + 1",
       "late cutoff", f"{EDGES}::test_late_cutoff_counts_and_drops_exactly_what_no_window_holds"),
    _m("late-cutoff-exclusive", A,
       LATE_LINE, "if x.ts < at - longest then late = late + 1",
       "late cutoff", f"{EDGES}::test_late_cutoff_counts_and_drops_exactly_what_no_window_holds"),
    # -- trimming: token list, id index, token cap, shard streams, dead letters
    _m("list-keeps-one-trade-too-many", A,
       "local drop = st.idx[#ws]",
       "local drop = math.max(st.idx[#ws] - 1, 0)",
       "trimming", f"{IDS}::test_the_id_index_follows_the_list_and_is_rebuilt_when_lost"),
    _m("id-index-never-pruned", A,
       "for _, k in ipairs(ks) do ids_remove(st.ids, k) end",
       "for _, k in ipairs({}) do ids_remove(st.ids, k) end",
       "trimming", f"{IDS}::test_the_id_index_follows_the_list_and_is_rebuilt_when_lost"),
    _m("token-cap-off-by-one", A,
       "elseif st.n + #valid >= cap then over = over + 1",
       "elseif st.n + #valid > cap then over = over + 1",
       "trimming", f"{EDGES}::test_max_token_trades_refuses_and_counts_the_rest"),
    _m("stream-trim-ignores-pending", T,
       "if tonumber(p[1]) > 0 and p[2] then cut = lower(cut, parse_id(p[2])) end",
       "if false then cut = lower(cut, parse_id(p[2])) end",
       "trimming",
       "tests/integration/test_janitor.py::test_trim_never_passes_pending_or_undelivered_entries"),
    _m("worker-dead-letters-uncapped", CONSUMER,
       "self.stream = ShardStream(engine.client, shard, settings.dead_letter_max)",
       "self.stream = ShardStream(engine.client, shard)",
       "trimming", f"{EDGES}::test_worker_dead_letters_are_kept_and_capped"),
    _m("bridge-dead-letters-uncapped", BRIDGE,
       "ShardStream(client, shard, settings.dead_letter_max) for shard in",
       "ShardStream(client, shard) for shard in",
       "trimming", f"{EDGES}::test_bridge_dead_letters_are_capped"),
    # -- ack-after-commit: XACK only what committed; Kafka offsets only after Redis
    _m("ack-entries-of-a-failed-call", CONSUMER,
       "failed_tokens.update(token for token, _ in call)",
       "failed_tokens.update(())",
       "ack-after-commit", f"{EDGES}::test_entries_of_a_failed_apply_stay_pending"),
    _m("ack-entries-of-a-failed-token", CONSUMER,
       "failed_tokens.add(r.token)",
       "failed_tokens.discard(r.token)",
       "ack-after-commit", f"{EDGES}::test_entries_of_a_token_failing_in_lua_stay_pending"),
    _m("ack-every-entry", CONSUMER,
       "done = [i for i in batch.ids if i not in held and not (batch.tokens_of[i] & failed_tokens)]",
       "done = list(batch.ids)",
       "ack-after-commit", f"{EDGES}::test_entries_of_a_failed_apply_stay_pending"),
    _m("reclaim-acks-without-applying", "tradeagg/runtime/reclaim.py",
       "out.left_pending += sc.process(kept)",
       "out.left_pending += 0",
       "ack-after-commit", f"{RECLAIM}::test_reclaim_applies_what_a_dead_consumer_held"),
    _m("reclaim-ignores-min-idle", "tradeagg/runtime/reclaim.py",
       "nxt, entries = sc.stream.claim(self.consumer, min_idle_ms, start, count)",
       "nxt, entries = sc.stream.claim(self.consumer, 0, start, count)",
       "ack-after-commit", f"{RECLAIM}::test_min_idle_leaves_recent_entries_alone"),
    _m("bridge-commits-after-a-failed-write", BRIDGE,
       "return  # stopping while Redis is down: commit nothing, Kafka redelivers",
       "pass",
       "ack-after-commit", f"{EDGES}::test_bridge_commits_offsets_only_after_redis_has_the_batch"),
    _m("bridge-commits-the-last-offset-not-the-next", BRIDGE,
       "TopicPartition(t, p, hi + 1)",
       "TopicPartition(t, p, hi)",
       "ack-after-commit", f"{EDGES}::test_bridge_commits_offsets_only_after_redis_has_the_batch"),
    # -- dead-lettering: bad input is kept with its reason, poison leaves the shard
    _m("worker-rejected-entry-not-dead-lettered", CONSUMER,
       "held = {e for e, reason, raw in batch.rejected if not self.dead_letter(e, reason, raw)}",
       "held = set()",
       "dead-lettering", f"{EDGES}::test_worker_dead_letters_are_kept_and_capped"),
    _m("worker-unparsable-record-not-dead-lettered", "tradeagg/contract/entry.py",
       'out.bad.append(("unparsable record", line[:RAW_KEEP]))',
       "pass",
       "dead-lettering", f"{EDGES}::test_worker_dead_letters_are_kept_and_capped"),
    _m("poison-threshold-off-by-one", CONSUMER,
       "if n <= limit:",
       "if n <= limit + 1:",
       "dead-lettering", f"{RECLAIM}::test_poison_entry_goes_to_dead_letters_and_is_acked"),
    _m("reclaim-skips-the-poison-screen", "tradeagg/runtime/reclaim.py",
       "kept = sc.screen(entries)",
       "kept = entries",
       "dead-lettering", f"{RECLAIM}::test_poison_entry_goes_to_dead_letters_and_is_acked"),
    _m("bridge-invalid-element-not-dead-lettered", "tradeagg/runtime/intake.py",
       "out.dead = (_shard(where, parsed.samples[0], shards), fields)",
       "pass",
       "dead-lettering",
       f"{EDGES}::test_bridge_commits_offsets_only_after_redis_has_the_batch"),
    # -- validation: CONTRACT §1 rules at their edges
    _m("skew-limit-exclusive", VALIDATION,
       "if ts > now_ms + max_skew_ms:",
       "if ts >= now_ms + max_skew_ms:",
       "validation", f"{SCHEMA}::test_ts_within_skew_is_fine_beyond_is_invalid"),
    _m("zero-accepted-as-positive", VALIDATION,
       "if d <= 0:",
       "if d < 0:",
       "validation", f"{SCHEMA}::test_hostile_elements_are_invalid_with_a_reason"),
    _m("id-of-129-chars-accepted", VALIDATION,
       'ID_RE = re.compile(r"[!-~]{1,128}")',
       'ID_RE = re.compile(r"[!-~]{1,129}")',
       "validation", f"{SCHEMA}::test_hostile_elements_are_invalid_with_a_reason"),
    _m("base58-accepts-zero", "tradeagg/contract/address.py",
       r'ADDRESS_RE = re.compile(r"(?:[1-9A-HJ-NP-Za-km-z]{32,44}|0x[0-9a-fA-F]{40})\Z")',
       r'ADDRESS_RE = re.compile(r"(?:[0-9A-HJ-NP-Za-km-z]{32,44}|0x[0-9a-fA-F]{40})\Z")',
       "validation", f"{SCHEMA}::test_hostile_elements_are_invalid_with_a_reason"),
)  # fmt: skip


@dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed | survived | error
    seconds: float
    detail: str = ""


def copy_tree(dest: Path) -> Path:
    """The working tree (not .git, not caches) copied under ``dest``."""
    target = dest / "repo"
    shutil.copytree(ROOT, target, ignore=IGNORED)
    return target


def occurrences(root: Path, m: Mutant) -> int:
    return (root / m.file).read_text().count(m.original)


def apply(root: Path, m: Mutant) -> str:
    """Plant ``m`` in the copy at ``root``; returns "" or why it could not be planted."""
    path = root / m.file
    if not path.is_file():
        return f"{m.file} does not exist"
    text = path.read_text()
    n = text.count(m.original)
    if n != 1:
        return f"original text found {n} times in {m.file}"
    path.write_text(text.replace(m.original, m.replacement))
    return ""


def run_tests(root: Path, tests: tuple[str, ...] | list[str]) -> tuple[int | None, float, str]:
    """pytest on ``tests`` inside the copy; (exit code or None on timeout, seconds, output tail)."""
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    t0 = time.monotonic()
    # its own process group: on a timeout (or ^C) the servers the tests started go too
    proc = subprocess.Popen(
        cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return None, time.monotonic() - t0, f"timed out after {TIMEOUT_S} s"
    except BaseException:
        _kill_group(proc)
        raise
    lines = out.strip().splitlines()
    return proc.returncode, time.monotonic() - t0, "\n".join(lines[-15:])


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def check(m: Mutant) -> Outcome:
    """One mutant in a fresh temporary copy."""
    with tempfile.TemporaryDirectory(prefix=f"mutant-{m.name}-") as tmp:
        root = copy_tree(Path(tmp))
        problem = apply(root, m)
        if problem:
            return Outcome(m, "error", 0.0, problem)
        code, seconds, tail = run_tests(root, m.tests)
    if code == 0:
        return Outcome(m, "survived", seconds, tail)
    if code in (TESTS_FAILED, None):
        return Outcome(m, "killed", seconds, tail)
    # collection or import error, usage error, no tests: the mutant broke more than behaviour
    return Outcome(m, "error", seconds, f"pytest exit {code}\n{tail}")


def baseline(mutants: list[Mutant]) -> tuple[int | None, float, str]:
    """The union of the chosen tests, once, on an unmutated copy."""
    tests = sorted({t for m in mutants for t in m.tests})
    with tempfile.TemporaryDirectory(prefix="mutant-baseline-") as tmp:
        return run_tests(copy_tree(Path(tmp)), tests)


def table(outcomes: list[Outcome]) -> str:
    rows = ["| mutant | category | file | result | seconds |", "|---|---|---|---|---:|"]
    for o in outcomes:
        m = o.mutant
        rows.append(f"| {m.name} | {m.category} | {m.file} | {o.status} | {o.seconds:.1f} |")
    return "\n".join(rows)


def select(only: list[str] | None) -> list[Mutant]:
    """The mutants named in ``only`` (all if None); ValueError names the unknown ones."""
    if not only:
        return list(MUTANTS)
    names = {m.name for m in MUTANTS}
    unknown = [n for n in only if n not in names]
    if unknown:
        raise ValueError(f"unknown mutant(s): {', '.join(unknown)} (see --list)")
    return [m for m in MUTANTS if m.name in only]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.mutants", description=__doc__.split("\n")[0])
    p.add_argument("--list", action="store_true", help="print the mutants and exit")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    p.add_argument("--jobs", type=int, default=1, help="mutants run side by side (default 1)")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    try:
        mutants = select(args.only)
    except ValueError as exc:
        p.error(str(exc))
    if args.list:
        for m in mutants:
            print(f"{m.name}  [{m.category}]  {m.file}\n    {' '.join(m.tests)}")
        return 0
    started = time.monotonic()
    print(f"baseline: {len(mutants)} mutants, running their tests unmutated", flush=True)
    code, seconds, tail = baseline(mutants)
    if code != 0:
        print(f"baseline FAILED in {seconds:.1f} s: fix the suite first\n{tail}", file=sys.stderr)
        return 2
    print(f"baseline passed in {seconds:.1f} s", flush=True)
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(args.jobs) as pool:
        for i, o in enumerate(pool.map(check, mutants), 1):
            outcomes.append(o)
            m = o.mutant
            print(f"[{i}/{len(mutants)}] {m.name} ({m.category}, {m.file}): {o.status} "
                  f"in {o.seconds:.1f} s", flush=True)  # fmt: skip
            if o.status != "killed":
                print("    " + o.detail.replace("\n", "\n    "), flush=True)
    total = time.monotonic() - started
    killed = sum(o.status == "killed" for o in outcomes)
    print()
    print(table(outcomes))
    print(f"\n{killed}/{len(outcomes)} killed; total {total:.0f} s (baseline {seconds:.0f} s)")
    return 0 if killed == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
