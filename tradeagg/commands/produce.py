"""`tradeagg produce`: publish JSON-lines trades (or a synthetic stream) to the Kafka topic.

For demos, benchmarks and backfills. Lines of a file are sent as they are
(invalid ones too: the bridge dead-letters them), keyed by their ``token``
when they have one. ``--synthetic N`` sends N trades of ``SyntheticFeed``:
paced in real time at ``--rate`` trades/s (each trade stamped when sent), or
as fast as possible with timestamps spread over the recent past.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from tradeagg.commands.bridge import on_hub_threadpool
from tradeagg.commands.progress import Progress
from tradeagg.commands.summary import add_json_flag, emit
from tradeagg.contract.trade import Trade
from tradeagg.devtools.synthetic import SyntheticFeed, to_message
from tradeagg.errors import BrokerError, ConfigError, UsageError
from tradeagg.runtime.kafkaconf import brokers, producer_config, scrub
from tradeagg.settings import Settings

EXAMPLES = """examples:
  tradeagg produce trades.jsonl
  cat trades.jsonl | tradeagg produce -
  tradeagg produce --synthetic 200000 --tokens 2000
  tradeagg produce --synthetic 60000 --rate 2000 --batch-per-block
"""

Message = tuple[bytes | None, bytes, int]  # key, value, trades in it
CONNECT_S = 10.0  # at most this long to reach a broker before giving up
BROKER_FATAL = (
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError._AUTHENTICATION,
    KafkaError._RESOLVE,
    KafkaError._SSL,
)
TOPIC_FATAL = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.TOPIC_AUTHORIZATION_FAILED)
MAX_ARRAY = 1_000  # trades per array message: ~400 KB, well under the 1 MiB limit


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "produce",
        help="publish JSON-lines trades (or a synthetic stream) to the Kafka topic.",
        description="Publishes trades to TRADEAGG_KAFKA_TOPIC (with KAFKA_PREFIX): the lines "
        "of FILE (- for stdin), one message per line, keyed by token; or --synthetic N trades "
        "(Zipf token popularity, bursts per 400 ms block, pumps and dumps). Flushes, then "
        "prints how many messages and trades were delivered; exit 1 if any was not.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", nargs="?", metavar="FILE|-", help="JSON lines to send")
    p.add_argument("--synthetic", type=int, metavar="N", help="send N synthetic trades")
    p.add_argument(
        "--rate", type=float, metavar="R", help="pace at R trades/s, stamped now (default: max)"
    )
    p.add_argument("--tokens", type=int, default=2000, metavar="K", help="synthetic tokens")
    p.add_argument("--seed", type=int, default=1, help="synthetic feed seed (default 1)")
    p.add_argument(
        "--batch-per-block",
        action="store_true",
        help="one JSON array message per block (at most 1,000 trades) instead of one per trade",
    )
    add_json_flag(p)
    p.set_defaults(run=run)


def encode(trades: list[Trade], per_block: bool) -> Iterator[Message]:
    """Messages of ``trades``: one per trade keyed by token, or one array per block."""
    if not per_block:
        for t in trades:
            yield t.token.encode(), json.dumps(to_message(t), separators=(",", ":")).encode(), 1
        return
    i = 0
    while i < len(trades):
        j = i
        while j < len(trades) and j - i < MAX_ARRAY and trades[j].block == trades[i].block:
            j += 1
        body = [to_message(t) for t in trades[i:j]]
        yield None, json.dumps(body, separators=(",", ":")).encode(), j - i
        i = j


def past_trades(n: int, tokens: int, seed: int, now_ms: int) -> list[Trade]:
    """``n`` trades stamped over the recent past (at most ~50 minutes), newest ~1 s ago."""
    feed = SyntheticFeed(tokens=tokens, seed=seed)
    rate = max(1000.0, n / 3000.0)
    trades = feed.trades(n, 0, rate)
    shift = now_ms - 1000 - (trades[-1].ts if trades else 0)
    return [_restamp(t, t.ts + shift) for t in trades]


def _restamp(t: Trade, ts: int, block: int | None = None) -> Trade:
    block = ts // 400 if block is None else block
    return Trade(t.id, t.token, t.side, t.quote_nano, t.price, ts, t.seq, t.amount, t.trader, block)


def paced_blocks(n: int, tokens: int, seed: int, rate: float) -> Iterator[list[Trade]]:
    """Blocks of trades, each yielded when the wall clock reaches its timestamp."""
    feed = SyntheticFeed(tokens=tokens, seed=seed)
    start = int(time.time() * 1000)
    block: list[Trade] = []
    for k, t in enumerate(feed.stream(start, rate)):
        if block and t.ts != block[0].ts:
            yield block
            block = []
        if k >= n:
            break
        delay = t.ts / 1000 - time.time()
        if delay > 0 and not block:
            time.sleep(delay)
        block.append(_restamp(t, max(t.ts, int(time.time() * 1000)), t.block))
    if block:
        yield block


class Sender:
    """A Producer with delivery accounting; librdkafka waits run on the hub threadpool."""

    def __init__(self, settings: Settings, blocking: Any = on_hub_threadpool) -> None:
        self.settings = settings
        self.broker_errors: list[Any] = []  # error_cb: librdkafka thread, append only
        conf = {**producer_config(settings), "error_cb": self.broker_errors.append}
        try:
            self.producer = Producer(conf)
        except KafkaException as exc:
            raise ConfigError(
                scrub(f"Kafka producer configuration: {exc.args[0]}", settings)
            ) from None
        self.topic = settings.topic
        self.blocking = blocking
        self.delivered = self.failed = self.trades = 0
        self.errors: list[str] = []

    def _done(self, err: Any, msg: Any) -> None:  # librdkafka thread: count only
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1
            if len(self.errors) < 5:
                self.errors.append(str(err))

    def connect(self, timeout: float = CONNECT_S) -> None:
        """Fail fast, in one line, when no broker answers or the topic is not there."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            meta, failure = self.blocking(self._metadata)
            self.producer.poll(0)  # serves error_cb
            if failure is not None:
                last = failure
            else:
                topic = meta.topics.get(self.topic)
                err = topic.error if topic is not None else None
                if err is None:
                    return
                if err.code() in TOPIC_FATAL:
                    raise BrokerError(
                        f"topic {self.topic}: {err.str()} (create it first; on Heroku "
                        "basic plans: heroku kafka:topics:create, KAFKA_PREFIX is added)"
                    )
                last = err.str()
            fatal = [e for e in self.broker_errors if e.code() in BROKER_FATAL]
            if fatal:
                last = fatal[-1].str()
                break
        where = brokers(self.settings)[0]
        raise BrokerError(scrub(f"Kafka at {where} unreachable: {last}", self.settings))

    def _metadata(self) -> tuple[Any, str | None]:
        """The topic's metadata, or why not (raising on the threadpool would print a traceback)."""
        try:
            return self.producer.list_topics(self.topic, timeout=1.0), None
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            return None, err.str() if isinstance(err, KafkaError) else str(exc)

    def send(self, messages: Iterable[Message]) -> None:
        for key, value, n in messages:
            while True:
                try:
                    self.producer.produce(self.topic, value=value, key=key, on_delivery=self._done)
                    break
                except BufferError:
                    self.blocking(self.producer.poll, 0.05)
            self.trades += n
        self.producer.poll(0)

    def flush(self, timeout: float = 60.0) -> int:
        """Wait for delivery reports; returns the messages still undelivered."""
        return int(self.blocking(self.producer.flush, timeout))


def trades_in(doc: Any) -> int:
    """Trades a message carries: an array's elements, one object, else none."""
    if isinstance(doc, list):
        return len(doc)
    return 1 if isinstance(doc, dict) else 0


def _file_messages(lines: Iterable[str]) -> Iterator[Message]:
    for line in lines:
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        key, n = None, 0
        try:
            doc = json.loads(line)
            n = trades_in(doc)
            if isinstance(doc, dict) and isinstance(doc.get("token"), str):
                key = doc["token"].encode()
        except ValueError:
            pass
        yield key, line.encode(), n


def run(args: argparse.Namespace, settings: Settings) -> int:
    if (args.file is None) == (args.synthetic is None):
        raise UsageError("give FILE (or -) or --synthetic N, not both")
    if args.synthetic is not None and args.synthetic < 0:
        raise UsageError("--synthetic N must be >= 0")
    if args.rate is not None and args.rate <= 0:
        raise UsageError("--rate must be > 0")
    if args.tokens < 1:
        raise UsageError("--tokens must be >= 1")
    sender = Sender(settings)
    sender.connect()
    t0 = time.monotonic()
    if args.file is not None:
        if args.file == "-":
            sender.send(_file_messages(sys.stdin))
        else:
            try:
                with open(args.file, encoding="utf-8") as fh:
                    sender.send(_file_messages(fh))
            except OSError as exc:
                raise UsageError(f"{args.file}: {exc.strerror}") from None
    elif args.rate is None:
        trades = past_trades(args.synthetic, args.tokens, args.seed, int(time.time() * 1000))
        sender.send(encode(trades, args.batch_per_block))
    else:
        progress = Progress("produce", args.synthetic)
        for block in paced_blocks(args.synthetic, args.tokens, args.seed, args.rate):
            sender.send(encode(block, args.batch_per_block))
            progress.update(sender.trades)
        progress.close()
    left = sender.flush()
    took = time.monotonic() - t0
    failed = sender.failed + left
    if args.json:
        emit(
            "produce",
            not failed,
            True,
            topic=sender.topic,
            messages=sender.delivered,
            trades=sender.trades,
            failed=failed,
            seconds=round(took, 1),
        )
    else:
        print(
            f"produced {sender.delivered} messages ({sender.trades} trades) to {sender.topic} "
            f"in {took:.1f}s; failed {failed}",
            flush=True,
        )
    if failed:
        raise BrokerError(f"{failed} messages not delivered: {'; '.join(sender.errors[:3])}")
    return 0
