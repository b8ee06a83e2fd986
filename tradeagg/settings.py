"""One typed configuration object, read from the environment once.

``Settings.from_env()`` is the only reader of ``os.environ`` in tradeagg. Each
setting is declared once, as a field with its variable, parser and doc
(``setting()``); ``from_env`` reads them all in one loop, checks every
variable and reports every bad one at once in a single ``ConfigError`` line,
so an operator fixes a Procfile in one go.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar
from urllib.parse import urlsplit

from tradeagg.errors import ConfigError

T = TypeVar("T")

_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_LABEL_RE = re.compile(r"^([1-9][0-9]{0,6})(ms|s|m|h|d)$")
CLOCKS = ("wall", "event")
METRIC_SETS = ("full", "seed")


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


def parse_duration(raw: str) -> int:
    """A duration written as a window label (``1h``, ``1m``) in ms."""
    match = _LABEL_RE.match(raw.strip())
    if not match:
        raise ValueError(f"{raw!r} is not a duration like 30s, 1m or 1h")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def long_windows_problem(windows: tuple[Window, ...], horizon_ms: int, bucket_ms: int) -> str | None:
    """Why the bucketed windows (CONTRACT §2c) cannot be kept with these settings, or None.

    The bucket must divide every window and the horizon and be at most the
    shortest window, so that a bucketed window is a whole number of buckets.
    """
    if horizon_ms % bucket_ms:
        return f"TRADEAGG_EXACT_HORIZON ({horizon_ms} ms) is not a multiple of TRADEAGG_BUCKET"
    if bucket_ms > windows[0].ms:
        return f"TRADEAGG_BUCKET is longer than the shortest window {windows[0].label!r}"
    for w in windows:
        if w.ms % bucket_ms:
            return f"TRADEAGG_BUCKET ({bucket_ms} ms) does not divide window {w.label!r}"
    return None


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
    if not re.match(r"^(redis|rediss)(\+cluster|\+sentinel)?://|^unix://", raw):
        raise ValueError(
            "must start with redis://, rediss://, redis+cluster://, redis+sentinel:// or unix://"
        )
    try:
        if "+sentinel://" not in raw:  # several host:port pairs: store/sentinel.py checks them
            urlsplit(raw).port  # noqa: B018  (the property raises on a port that is no number)
    except ValueError:
        raise ValueError("the port is not a number from 0 to 65535") from None
    return raw


def _str(raw: str) -> str:
    return raw


def _upper_choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().upper()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse


def _json_object(raw: str) -> tuple[tuple[str, str | int | float | bool], ...]:
    """A JSON object of librdkafka properties as sorted pairs (Settings stays hashable).

    Values are not echoed in errors: they may be secret.
    """
    try:
        value = json.loads(raw)
    except ValueError:
        raise ValueError("not valid JSON") from None
    if not isinstance(value, dict):
        raise ValueError('must be a JSON object like {"property": "value"}')
    for key, item in value.items():
        if not isinstance(item, str | int | float | bool):
            raise ValueError(f"property {key!r}: value must be a string, number or boolean")
    return tuple(sorted(value.items()))


def _log_level(raw: str) -> str:
    return _choice("debug", "info", "warning", "error", "critical")(raw).upper()


def setting(
    default: Any,
    env: str | tuple[str, ...],
    parse: Callable[[str], Any],
    doc: str,
    *,
    secret: bool = False,
) -> Any:
    """A field of ``Settings``: its default, variable(s), parser and doc, in one place.

    With several variables the last one set wins (``DYNO`` then
    ``TRADEAGG_CONSUMER``). ``secret`` masks the value in ``describe()``.
    """
    names = (env,) if isinstance(env, str) else env
    meta = {"env": names, "parse": parse, "doc": doc, "secret": secret}
    if callable(default):
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """Every knob of tradeagg; ``docs()`` lists them with their variables."""

    redis_url: str = setting(
        "redis://127.0.0.1:6379/0",
        "REDIS_URL",
        _redis_url,
        "Redis (redis://, rediss://, redis+cluster://, redis+sentinel://, unix://)",
    )
    redis_cluster: bool = setting(
        False, "TRADEAGG_REDIS_CLUSTER", _bool, "Redis Cluster (also implied by a +cluster URL)"
    )
    redis_tls_verify: str = setting(
        "required",
        "TRADEAGG_REDIS_TLS_VERIFY",
        _choice("required", "none"),
        "rediss:// certificate check: required, or none (Heroku Redis is self-signed)",
    )
    redis_ca_cert: str = setting(
        "", "TRADEAGG_REDIS_CA_CERT", _str, "CA for rediss://: a PEM file path or PEM text"
    )
    redis_max_connections: int = setting(
        24,
        "TRADEAGG_REDIS_MAX_CONNECTIONS",
        _int(4, 10_000),
        "Redis connections per process (per node on a cluster); a worker needs shards + 3",
    )
    redis_wait_replicas: int = setting(
        0,
        "TRADEAGG_REDIS_WAIT_REPLICAS",
        _int(0, 16),
        "replicas that must hold writes before Kafka commit / stream ack (0: do not wait)",
    )
    redis_wait_timeout_ms: int = setting(
        1_000, "TRADEAGG_REDIS_WAIT_TIMEOUT_MS", _int(1, 60_000), "WAIT timeout, ms (then retry)"
    )
    kafka_bootstrap_servers: str = setting(
        "127.0.0.1:9092", "KAFKA_BOOTSTRAP_SERVERS", _str, "Kafka brokers host:port,..."
    )
    kafka_url: str = setting("", "KAFKA_URL", _str, "Heroku Kafka: kafka+ssl://h1:9096,h2:9096")
    kafka_trusted_cert: str = setting(
        "", "KAFKA_TRUSTED_CERT", _str, "Heroku Kafka CA (PEM text)", secret=True
    )
    kafka_client_cert: str = setting(
        "", "KAFKA_CLIENT_CERT", _str, "Heroku Kafka client certificate (PEM text)", secret=True
    )
    kafka_client_cert_key: str = setting(
        "", "KAFKA_CLIENT_CERT_KEY", _str, "Heroku Kafka client key (PEM text)", secret=True
    )
    kafka_security_protocol: str = setting(
        "",
        "TRADEAGG_KAFKA_SECURITY_PROTOCOL",
        _choice("plaintext", "ssl", "sasl_plaintext", "sasl_ssl"),
        "Kafka security.protocol; default: sasl_ssl with a SASL mechanism, ssl with kafka+ssl://",
    )
    kafka_sasl_mechanism: str = setting(
        "",
        "TRADEAGG_KAFKA_SASL_MECHANISM",
        _upper_choice("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"),
        "Kafka SASL: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
    )
    kafka_sasl_username: str = setting(
        "", "TRADEAGG_KAFKA_SASL_USERNAME", _str, "SASL user (API key); OAUTHBEARER: client id"
    )
    kafka_sasl_password: str = setting(
        "",
        "TRADEAGG_KAFKA_SASL_PASSWORD",
        _str,
        "SASL password (API secret); OAUTHBEARER: client secret",
        secret=True,
    )
    kafka_oauth_token_url: str = setting(
        "", "TRADEAGG_KAFKA_OAUTH_TOKEN_URL", _str, "OAUTHBEARER (OIDC) token endpoint"
    )
    kafka_config: tuple[tuple[str, Any], ...] = setting(
        (),
        "TRADEAGG_KAFKA_CONFIG",
        _json_object,
        "extra librdkafka properties for bridge and produce, a JSON object (applied last)",
        secret=True,
    )
    kafka_prefix: str = setting("", "KAFKA_PREFIX", _str, "prepended to topic and group")
    kafka_topic: str = setting("trades", "TRADEAGG_KAFKA_TOPIC", _str, "trade topic")
    kafka_group: str = setting("tradeagg", "TRADEAGG_KAFKA_GROUP", _str, "bridge consumer group")
    windows: tuple[Window, ...] = setting(
        lambda: parse_windows("1m,5m,15m,30m,1h"),
        "TRADEAGG_WINDOWS",
        parse_windows,
        "window labels: digits + ms|s|m|h|d, comma-separated",
    )
    clock: str = setting(
        "wall", "TRADEAGG_CLOCK", _choice(*CLOCKS), "wall (windows end now) or event (newest trade)"
    )
    exact_horizon_ms: int = setting(
        3_600_000,
        "TRADEAGG_EXACT_HORIZON",
        parse_duration,
        "windows up to this long are exact to the ms; longer ones are bucketed (e.g. 1h)",
    )
    bucket_ms: int = setting(
        60_000,
        "TRADEAGG_BUCKET",
        parse_duration,
        "resolution of the windows beyond TRADEAGG_EXACT_HORIZON (e.g. 1m)",
    )
    metrics: str = setting(
        "full",
        "TRADEAGG_METRICS",
        _choice(*METRIC_SETS),
        "full (with makers, buyers, sellers, high, low) or seed (without them)",
    )
    prev_windows: bool = setting(
        True,
        "TRADEAGG_PREV_WINDOWS",
        _bool,
        "with TRADEAGG_METRICS=full, keep each window's previous window (prev_buys, "
        "prev_sells, prev_volume, volume_change_pct); off saves Redis time and deletes them",
    )
    prev_makers: bool = setting(
        True,
        "TRADEAGG_PREV_MAKERS",
        _bool,
        "with the previous windows kept, also their distinct traders (prev_makers; "
        "lua/lib/pmakers.lua: ~25-35 % more Redis time per trade, a few KB per trader); "
        "off: prev_makers null and not kept",
    )
    maintenance_interval: float = setting(
        60.0, "TRADEAGG_MAINTENANCE_INTERVAL", _float(0.05, 86_400), "janitor period, seconds"
    )
    stale_after: float = setting(
        10.0,
        "TRADEAGG_STALE_AFTER",
        _float(0.0, 86_400),
        "janitor refreshes tokens quiet this long, s",
    )
    shards: int = setting(8, "TRADEAGG_SHARDS", _int(1, 1024), "shard streams")
    worker_pool: int = setting(
        8, "TRADEAGG_WORKER_POOL", _int(1, 1024), "concurrent Lua applies per process"
    )
    max_skew_ms: int = setting(
        5_000,
        "TRADEAGG_MAX_SKEW_MS",
        _int(0, 86_400_000),
        "a trade further in the future is invalid",
    )
    read_count: int = setting(
        64, "TRADEAGG_READ_COUNT", _int(1, 10_000), "stream entries per XREADGROUP"
    )
    block_ms: int = setting(1_000, "TRADEAGG_BLOCK_MS", _int(1, 60_000), "XREADGROUP BLOCK, ms")
    tokens_per_call: int = setting(
        64, "TRADEAGG_TOKENS_PER_CALL", _int(1, 1_000), "tokens per Lua call"
    )
    entry_trades: int = setting(
        200, "TRADEAGG_ENTRY_TRADES", _int(1, 10_000), "trades packed per stream entry"
    )
    max_backlog: int = setting(
        200_000,
        "TRADEAGG_MAX_BACKLOG",
        _int(100, 100_000_000),
        "stream entries per shard before the bridge pauses",
    )
    dead_letter_max: int = setting(
        10_000, "TRADEAGG_DEAD_LETTER_MAX", _int(1, 10_000_000), "dead-letter stream cap per shard"
    )
    max_deliveries: int = setting(
        5, "TRADEAGG_MAX_DELIVERIES", _int(1, 1_000), "then an entry is dead-lettered"
    )
    reclaim_idle_ms: int = setting(
        60_000,
        "TRADEAGG_RECLAIM_IDLE_MS",
        _int(100, 86_400_000),
        "workers claim entries pending this long on another consumer",
    )
    # <= 9e6: with quotes <= 1e9 units a window's volume stays below 2^53 units, exact in Lua
    max_token_trades: int = setting(
        2_000_000, "TRADEAGG_MAX_TOKEN_TRADES", _int(1_000, 9_000_000), "list cap per token"
    )
    statsd_host: str = setting("", "STATSD_HOST", _str, "StatsD host; empty: metrics off")
    statsd_port: int = setting(8125, "STATSD_PORT", _int(1, 65_535), "StatsD port")
    statsd_prefix: str = setting("tradeagg", "STATSD_PREFIX", _str, "metric name prefix")
    metrics_interval: float = setting(
        10.0, "TRADEAGG_METRICS_INTERVAL", _float(0.05, 3_600), "seconds between metric flushes"
    )
    heartbeat_interval: float = setting(
        5.0, "TRADEAGG_HEARTBEAT_INTERVAL", _float(0.05, 3_600), "heartbeat and probe period, s"
    )
    warn_backlog: int = setting(
        10_000, "TRADEAGG_WARN_BACKLOG", _int(1, 1_000_000_000), "undelivered entries in one shard"
    )
    warn_pending_age_ms: int = setting(
        30_000, "TRADEAGG_WARN_PENDING_AGE_MS", _int(1, 86_400_000), "oldest unacked entry idle, ms"
    )
    warn_memory_pct: float = setting(
        80.0, "TRADEAGG_WARN_MEMORY_PCT", _float(1, 100), "used_memory / maxmemory, %"
    )
    warn_loop_block_ms: int = setting(
        250, "TRADEAGG_WARN_LOOP_BLOCK_MS", _int(1, 600_000), "event-loop wake-up lateness, ms"
    )
    warn_pool_pct: float = setting(
        95.0, "TRADEAGG_WARN_POOL_PCT", _float(1, 100), "worker pool utilisation, %"
    )
    warn_repeat_s: float = setting(
        60.0, "TRADEAGG_WARN_REPEAT_S", _float(0, 86_400), "repeat a standing warning this often, s"
    )
    progress_every_s: float = setting(
        5.0,
        "TRADEAGG_PROGRESS_EVERY_S",
        _float(0, 3_600),
        "progress line interval when stderr is not a terminal, s",
    )
    feed_hz: float = setting(
        4.0, "TRADEAGG_FEED_HZ", _float(0.01, 1_000), "change announcements per token per second"
    )
    feed_maxlen: int = setting(
        10_000, "TRADEAGG_FEED_MAXLEN", _int(10, 10_000_000), "change stream entries per shard"
    )
    output_topic: str = setting(
        "", "TRADEAGG_OUTPUT_TOPIC", _str, "Kafka topic of changed tokens' JSON; empty: off"
    )
    http_port: int = setting(
        8080, ("TRADEAGG_HTTP_PORT", "PORT"), _int(1, 65_535), "serve: HTTP port (PORT wins)"
    )
    http_host: str = setting("0.0.0.0", "TRADEAGG_HTTP_HOST", _str, "serve: address to bind")
    api_token: str = setting(
        "", "TRADEAGG_API_TOKEN", _str, "serve: bearer token of /v1/*; empty: open", secret=True
    )
    log_level: str = setting("INFO", "LOG_LEVEL", _log_level, "debug, info, warning, error")
    process_name: str = setting(
        "",
        ("DYNO", "TRADEAGG_PROCESS_NAME"),
        _str,
        "process name in logs and per-process metric paths; default host-pid",
    )
    consumer_name: str = setting(
        "", ("DYNO", "TRADEAGG_CONSUMER"), _str, "consumer name; default host-pid"
    )

    @property
    def longest_ms(self) -> int:
        """The longest window, bucketed ones included (TTLs, the active index)."""
        return self.windows[-1].ms

    @property
    def prev_metrics(self) -> bool:
        """Whether the previous windows' metrics are kept (CONTRACT §2b, lua/lib/prev.lua):
        with TRADEAGG_METRICS=full and TRADEAGG_PREV_WINDOWS on, when TRADEAGG_BUCKET
        divides every window (else a previous window would not be a whole number of
        buckets ending by ``at``)."""
        r = self.bucket_ms
        return (
            self.metrics == "full"
            and self.prev_windows
            and all(w.ms % r == 0 for w in self.windows)
        )

    @property
    def keeps_prev_makers(self) -> bool:
        """Whether prev_makers is kept and read (with the previous windows, and
        TRADEAGG_PREV_MAKERS on): its two keys go to the scripts (contract.keys)."""
        return self.prev_metrics and self.prev_makers

    @property
    def prev_dropped(self) -> bool:
        """Whether the previous windows are turned off by choice (TRADEAGG_PREV_WINDOWS=off
        with TRADEAGG_METRICS=full): the scripts then delete what an earlier setting kept."""
        return self.metrics == "full" and not self.prev_windows

    @property
    def exact_windows(self) -> tuple[Window, ...]:
        """The windows exact to the ms (at most TRADEAGG_EXACT_HORIZON): the list's."""
        return tuple(w for w in self.windows if w.ms <= self.exact_horizon_ms)

    @property
    def long_windows(self) -> tuple[Window, ...]:
        """The bucketed windows (longer than TRADEAGG_EXACT_HORIZON, CONTRACT §2c)."""
        return tuple(w for w in self.windows if w.ms > self.exact_horizon_ms)

    @property
    def exact_longest_ms(self) -> int:
        """The longest exact window: the list's trim and the lateness cutoff."""
        return self.exact_windows[-1].ms

    def window_start(self, at: int, ms: int) -> int:
        """Where window ``ms`` starts at ``at``: ``at - w``, or for a bucketed window
        ``ceil((at - w) / r) * r`` (it holds the trades after it, CONTRACT §2c)."""
        if ms <= self.exact_horizon_ms:
            return at - ms
        r = self.bucket_ms
        return -((ms - at) // r) * r

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
        for f in fields(cls):
            for name in f.metadata["env"]:
                raw = env.get(name)
                if raw is None or raw == "":
                    continue
                try:
                    values[f.name] = f.metadata["parse"](raw)
                except ValueError as exc:
                    shown = "<hidden>" if f.metadata["secret"] else mask(raw)[:60]
                    problems.append(f"{name}={shown!r}: {exc}")
        url = str(values.get("redis_url", cls.redis_url))
        if "+cluster://" in url:
            values["redis_cluster"] = True
        if values.get("kafka_url"):
            kafka_url = str(values["kafka_url"])
            if not re.match(r"^kafka(\+ssl)?://[^,\s]+(,[^,\s]+)*$", kafka_url):
                problems.append("KAFKA_URL: must look like kafka+ssl://host:port[,host:port...]")
            elif "@" in kafka_url:
                problems.append("KAFKA_URL: credentials in the URL are not supported")
        if not problems:
            problem = _long_problem(values)
            if problem:
                problems.append(problem)
        if problems:
            raise ConfigError("invalid configuration: " + "; ".join(problems))
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def docs(cls) -> list[tuple[str, str, str]]:
        """(variables, default, doc) per setting, for help texts and the README."""
        out = []
        for f in fields(cls):
            default = f.default_factory() if f.default_factory is not MISSING else f.default
            if f.name == "windows":
                default = ",".join(w.label for w in default)
            elif f.name in ("exact_horizon_ms", "bucket_ms"):  # as the variable is written
                default = {3_600_000: "1h", 60_000: "1m"}.get(default, default)
            out.append((" or ".join(f.metadata["env"]), str(default), f.metadata["doc"]))
        return out

    def describe(self) -> dict[str, object]:
        """Settings as plain values, secrets masked (for logs and ``stats``)."""
        out: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata["secret"]:
                value = "<set>" if value else ""
            elif f.name == "windows":
                value = ",".join(w.label for w in value)
            elif isinstance(value, str):
                value = mask(value)
            out[f.name] = value
        return out


def _long_problem(values: Mapping[str, object]) -> str | None:
    """Why the configured bucketed windows (CONTRACT §2c) cannot be kept, or None
    (no window beyond TRADEAGG_EXACT_HORIZON: nothing to check)."""
    windows: tuple[Window, ...] = values.get("windows") or parse_windows(  # type: ignore[assignment]
        "1m,5m,15m,30m,1h"
    )
    horizon = int(values.get("exact_horizon_ms", 3_600_000))  # type: ignore[call-overload]
    bucket = int(values.get("bucket_ms", 60_000))  # type: ignore[call-overload]
    if all(w.ms <= horizon for w in windows):
        return None
    if windows[0].ms > horizon:
        return "TRADEAGG_WINDOWS: at least one window must be exact (TRADEAGG_EXACT_HORIZON)"
    return long_windows_problem(windows, horizon, bucket)


_AT_RUN = re.compile(r'[^\s"]*@[^\s"]*')  # a run of text holding an "@" (userinfo)
_SCHEME_HEAD = re.compile(r"^[^@]*?[A-Za-z][A-Za-z0-9+.-]*:/+")  # kept: "NAME='redis://"
_KEYWORD = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|sasl[._]password|api[_-]?key)(\s*[=:]\s*)(\"?)[^\s\"&,;]+"
)
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(?:-----END [A-Z0-9 ]+-----|\Z)")


def _userinfo(match: re.Match[str]) -> str:
    run = match.group(0)
    head = _SCHEME_HEAD.match(run)
    return (head.group(0) if head else "") + "***@" + run[run.rindex("@") + 1 :]


def mask(text: str) -> str:
    """``text`` with credentials hidden, for every message and log line that may hold one.

    The one masking helper: URL userinfo (``scheme://user:password@host`` ->
    ``scheme://***@host``, up to the last ``@`` so a password holding ``@``
    or ``/`` is hidden whole; also without ``://``), ``password=...``-style
    pairs (SASL, query strings) and PEM blocks (Kafka certificates and keys).
    Over-masking an e-mail address is the price of never echoing a secret.
    """
    if "@" in text:
        text = _AT_RUN.sub(_userinfo, text)
    if "-----BEGIN" in text:
        text = _PEM.sub("<PEM hidden>", text)
    return _KEYWORD.sub(r"\1\2\3***", text)
