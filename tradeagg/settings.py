"""One typed configuration object, read from the environment once.

``Settings.from_env()`` is the only reader of ``os.environ`` in tradeagg. It
checks every variable and reports every bad one at once in a single
``ConfigError`` line, so an operator fixes a Procfile in one go.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TypeVar

from tradeagg.errors import ConfigError

T = TypeVar("T")

_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_LABEL_RE = re.compile(r"^([1-9][0-9]{0,6})(ms|s|m|h|d)$")
CLOCKS = ("wall", "event")


@dataclass(frozen=True)
class Window:
    """A sliding window: its label as configured (``5m``) and its length."""

    label: str
    ms: int


def parse_windows(spec: str) -> tuple[Window, ...]:
    """Parse ``1m,5m,1h`` into windows sorted by length, shortest first."""
    labels = [part.strip() for part in spec.split(",") if part.strip()]
    if not labels:
        raise ValueError("no window given")
    windows: dict[int, Window] = {}
    for label in labels:
        match = _LABEL_RE.match(label)
        if not match:
            raise ValueError(f"{label!r} is not a window label like 30s, 5m or 4h")
        ms = int(match.group(1)) * _UNIT_MS[match.group(2)]
        if ms in windows:
            raise ValueError(f"{label!r} repeats {windows[ms].label!r}")
        windows[ms] = Window(label, ms)
    if len(windows) > 16:
        raise ValueError("at most 16 windows")
    return tuple(windows[ms] for ms in sorted(windows))


def _int(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return value

    return parse


def _float(lo: float, hi: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g}")
        return value

    return parse


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be 1/0, true/false, yes/no or on/off")


def _redis_url(raw: str) -> str:
    if not re.match(r"^(redis|rediss|redis\+cluster|rediss\+cluster|unix)://", raw):
        raise ValueError("must start with redis://, rediss://, redis+cluster:// or unix://")
    return raw


def _str(raw: str) -> str:
    return raw


@dataclass(frozen=True)
class Settings:
    """Every knob of tradeagg. Field docs name the environment variable."""

    redis_url: str = "redis://127.0.0.1:6379/0"  # REDIS_URL
    redis_cluster: bool = False  # TRADEAGG_REDIS_CLUSTER, or a redis+cluster:// URL
    kafka_bootstrap_servers: str = "127.0.0.1:9092"  # KAFKA_BOOTSTRAP_SERVERS
    kafka_url: str = ""  # KAFKA_URL (Heroku, kafka+ssl://h1:9096,h2:9096)
    kafka_trusted_cert: str = ""  # KAFKA_TRUSTED_CERT (PEM text)
    kafka_client_cert: str = ""  # KAFKA_CLIENT_CERT (PEM text)
    kafka_client_cert_key: str = ""  # KAFKA_CLIENT_CERT_KEY (PEM text)
    kafka_prefix: str = ""  # KAFKA_PREFIX, prepended to topic and group
    kafka_topic: str = "trades"  # TRADEAGG_KAFKA_TOPIC
    kafka_group: str = "tradeagg"  # TRADEAGG_KAFKA_GROUP
    windows: tuple[Window, ...] = field(
        default_factory=lambda: parse_windows("1m,5m,15m,30m,1h")
    )  # TRADEAGG_WINDOWS
    clock: str = "wall"  # TRADEAGG_CLOCK: wall (windows end now) or event
    maintenance_interval: float = 60.0  # TRADEAGG_MAINTENANCE_INTERVAL, seconds
    stale_after: float = 10.0  # TRADEAGG_STALE_AFTER, seconds
    shards: int = 8  # TRADEAGG_SHARDS
    worker_pool: int = 8  # TRADEAGG_WORKER_POOL: concurrent Lua applies per process
    max_skew_ms: int = 5_000  # TRADEAGG_MAX_SKEW_MS
    read_count: int = 64  # TRADEAGG_READ_COUNT: stream entries per XREADGROUP
    block_ms: int = 1_000  # TRADEAGG_BLOCK_MS: XREADGROUP BLOCK
    tokens_per_call: int = 64  # TRADEAGG_TOKENS_PER_CALL: tokens per Lua call
    entry_trades: int = 200  # TRADEAGG_ENTRY_TRADES: trades packed per stream entry
    max_backlog: int = 200_000  # TRADEAGG_MAX_BACKLOG: stream entries before the bridge pauses
    dead_letter_max: int = 10_000  # TRADEAGG_DEAD_LETTER_MAX: dead-letter stream cap
    max_deliveries: int = 5  # TRADEAGG_MAX_DELIVERIES: then an entry is dead-lettered
    reclaim_idle_ms: int = 60_000  # TRADEAGG_RECLAIM_IDLE_MS: workers claim entries idle this long
    max_token_trades: int = 2_000_000  # TRADEAGG_MAX_TOKEN_TRADES: list cap per token (<= 9e6:
    # with quotes <= 1e9 units a window's volume stays below 2^53 units, exact in Lua)
    statsd_host: str = ""  # STATSD_HOST; empty: metrics off
    statsd_port: int = 8125  # STATSD_PORT
    statsd_prefix: str = "tradeagg"  # STATSD_PREFIX
    metrics_interval: float = 10.0  # TRADEAGG_METRICS_INTERVAL, seconds between flushes
    heartbeat_interval: float = 5.0  # TRADEAGG_HEARTBEAT_INTERVAL: heartbeat and probe period, s
    warn_backlog: int = 10_000  # TRADEAGG_WARN_BACKLOG: undelivered entries in one shard
    warn_pending_age_ms: int = 30_000  # TRADEAGG_WARN_PENDING_AGE_MS: oldest unacked entry idle
    warn_memory_pct: float = 80.0  # TRADEAGG_WARN_MEMORY_PCT: used_memory / maxmemory
    warn_loop_block_ms: int = 250  # TRADEAGG_WARN_LOOP_BLOCK_MS: event-loop wake-up lateness
    warn_pool_pct: float = 95.0  # TRADEAGG_WARN_POOL_PCT: worker pool utilisation
    warn_repeat_s: float = 60.0  # TRADEAGG_WARN_REPEAT_S: repeat a standing warning this often
    log_level: str = "INFO"  # LOG_LEVEL
    consumer_name: str = ""  # TRADEAGG_CONSUMER, else DYNO (Heroku), else host-pid
    test_crash_after_apply: float = 0.0  # TRADEAGG_TEST_CRASH_AFTER_APPLY: tests only

    @property
    def longest_ms(self) -> int:
        return self.windows[-1].ms

    @property
    def topic(self) -> str:
        return self.kafka_prefix + self.kafka_topic

    @property
    def group(self) -> str:
        return self.kafka_prefix + self.kafka_group

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``).

        Raises ``ConfigError`` naming every bad variable.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        problems: list[str] = []

        def take(name: str, attr: str, parse: Callable[[str], T]) -> None:
            raw = env.get(name)
            if raw is None or raw == "":
                return
            try:
                values[attr] = parse(raw)
            except ValueError as exc:
                problems.append(f"{name}={raw[:60]!r}: {exc}")

        take("REDIS_URL", "redis_url", _redis_url)
        take("TRADEAGG_REDIS_CLUSTER", "redis_cluster", _bool)
        take("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers", _str)
        take("KAFKA_URL", "kafka_url", _str)
        take("KAFKA_TRUSTED_CERT", "kafka_trusted_cert", _str)
        take("KAFKA_CLIENT_CERT", "kafka_client_cert", _str)
        take("KAFKA_CLIENT_CERT_KEY", "kafka_client_cert_key", _str)
        take("KAFKA_PREFIX", "kafka_prefix", _str)
        take("TRADEAGG_KAFKA_TOPIC", "kafka_topic", _str)
        take("TRADEAGG_KAFKA_GROUP", "kafka_group", _str)
        take("TRADEAGG_WINDOWS", "windows", parse_windows)
        take("TRADEAGG_CLOCK", "clock", _choice(*CLOCKS))
        take("TRADEAGG_MAINTENANCE_INTERVAL", "maintenance_interval", _float(0.05, 86_400))
        take("TRADEAGG_STALE_AFTER", "stale_after", _float(0.0, 86_400))
        take("TRADEAGG_SHARDS", "shards", _int(1, 1024))
        take("TRADEAGG_WORKER_POOL", "worker_pool", _int(1, 1024))
        take("TRADEAGG_MAX_SKEW_MS", "max_skew_ms", _int(0, 86_400_000))
        take("TRADEAGG_READ_COUNT", "read_count", _int(1, 10_000))
        take("TRADEAGG_BLOCK_MS", "block_ms", _int(1, 60_000))
        take("TRADEAGG_TOKENS_PER_CALL", "tokens_per_call", _int(1, 1_000))
        take("TRADEAGG_ENTRY_TRADES", "entry_trades", _int(1, 10_000))
        take("TRADEAGG_MAX_BACKLOG", "max_backlog", _int(100, 100_000_000))
        take("TRADEAGG_DEAD_LETTER_MAX", "dead_letter_max", _int(1, 10_000_000))
        take("TRADEAGG_MAX_DELIVERIES", "max_deliveries", _int(1, 1_000))
        take("TRADEAGG_RECLAIM_IDLE_MS", "reclaim_idle_ms", _int(100, 86_400_000))
        take("TRADEAGG_TEST_CRASH_AFTER_APPLY", "test_crash_after_apply", _float(0.0, 1.0))
        take("TRADEAGG_MAX_TOKEN_TRADES", "max_token_trades", _int(1_000, 9_000_000))
        take("STATSD_HOST", "statsd_host", _str)
        take("STATSD_PORT", "statsd_port", _int(1, 65_535))
        take("STATSD_PREFIX", "statsd_prefix", _str)
        take("TRADEAGG_METRICS_INTERVAL", "metrics_interval", _float(0.05, 3_600))
        take("TRADEAGG_HEARTBEAT_INTERVAL", "heartbeat_interval", _float(0.05, 3_600))
        take("TRADEAGG_WARN_BACKLOG", "warn_backlog", _int(1, 1_000_000_000))
        take("TRADEAGG_WARN_PENDING_AGE_MS", "warn_pending_age_ms", _int(1, 86_400_000))
        take("TRADEAGG_WARN_MEMORY_PCT", "warn_memory_pct", _float(1, 100))
        take("TRADEAGG_WARN_LOOP_BLOCK_MS", "warn_loop_block_ms", _int(1, 600_000))
        take("TRADEAGG_WARN_POOL_PCT", "warn_pool_pct", _float(1, 100))
        take("TRADEAGG_WARN_REPEAT_S", "warn_repeat_s", _float(0, 86_400))
        take(
            "LOG_LEVEL",
            "log_level",
            lambda raw: _choice("debug", "info", "warning", "error", "critical")(raw).upper(),
        )

        take("DYNO", "consumer_name", _str)
        take("TRADEAGG_CONSUMER", "consumer_name", _str)

        url = str(values.get("redis_url", cls.redis_url))
        if "+cluster://" in url:
            values["redis_cluster"] = True
        if values.get("kafka_url"):
            if not re.match(r"^kafka(\+ssl)?://[^,\s]+(,[^,\s]+)*$", str(values["kafka_url"])):
                problems.append("KAFKA_URL: must look like kafka+ssl://host:port[,host:port...]")
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return cls(**values)  # type: ignore[arg-type]

    def describe(self) -> dict[str, object]:
        """Settings as plain values, secrets masked (for logs and ``stats``)."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("kafka_client_cert_key", "kafka_client_cert", "kafka_trusted_cert"):
                value = "<set>" if value else ""
            elif f.name == "windows":
                value = ",".join(w.label for w in value)
            elif f.name == "redis_url":
                value = re.sub(r"://[^@/]*@", "://***@", str(value))
            out[f.name] = value
        return out
