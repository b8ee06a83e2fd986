"""librdkafka configuration built from Settings: plain brokers, Heroku Kafka, or SASL.

``KAFKA_URL`` (Heroku: ``kafka+ssl://h1:9096,kafka+ssl://h2:9096``, or
``kafka+ssl://h1:9096,h2:9096``) wins over ``KAFKA_BOOTSTRAP_SERVERS``. With
``kafka+ssl`` the PEM texts of ``KAFKA_TRUSTED_CERT``, ``KAFKA_CLIENT_CERT`` and
``KAFKA_CLIENT_CERT_KEY`` are handed to librdkafka as ``ssl.*.pem`` values, so no
key material is written to disk. Heroku's broker certificates are signed by the
add-on's own CA and do not name the hosts, hence hostname verification is off
when a trusted cert is given (the CA pin still authenticates the broker).

Managed Kafka elsewhere (Confluent Cloud, Aiven, Redpanda Cloud, Upstash, MSK)
authenticates with SASL: ``TRADEAGG_KAFKA_SASL_MECHANISM`` (PLAIN, SCRAM-SHA-256,
SCRAM-SHA-512, or OAUTHBEARER through an OIDC token endpoint) with
``TRADEAGG_KAFKA_SASL_USERNAME``/``_PASSWORD``; the security protocol defaults to
``sasl_ssl`` and the broker certificate is checked against the system CAs, host
name included. Anything else librdkafka knows goes in ``TRADEAGG_KAFKA_CONFIG``
(a JSON object, applied last), except the properties at-least-once delivery
depends on. Config errors are reported with every secret value masked.

The consumer commits by hand (after Redis acknowledged), a new group starts
at the earliest offset, and ``session.timeout.ms`` stays at 6 s (group joins
with the Tansu broker take ~23 s above that). librdkafka's own stderr log is
limited to critical lines unless ``LOG_LEVEL=DEBUG``: with a broker down it
prints a connect failure every ~50 ms; the bridge reports those errors
itself (``error_cb``), rate-limited.
"""

from __future__ import annotations

import re
from typing import Any

from tradeagg.errors import ConfigError
from tradeagg.logs import PROCESS
from tradeagg.settings import Settings, mask

_SCHEME = re.compile(r"^kafka(\+ssl)?://")


def brokers(settings: Settings) -> tuple[str, bool]:
    """``(bootstrap.servers, uses TLS)`` from KAFKA_URL or KAFKA_BOOTSTRAP_SERVERS."""
    if not settings.kafka_url:
        return settings.kafka_bootstrap_servers, False
    hosts, tls = [], False
    for part in settings.kafka_url.split(","):
        part = part.strip()
        match = _SCHEME.match(part)
        if match:
            tls = tls or bool(match.group(1))
            part = part[match.end() :]
        part = part.rstrip("/")
        if not part:
            raise ConfigError(f"KAFKA_URL: empty host in {mask(settings.kafka_url)!r}")
        hosts.append(part)
    return ",".join(hosts), tls


MECHANISM_HELP = "TRADEAGG_KAFKA_SASL_MECHANISM"
# at-least-once depends on these: the bridge commits offsets itself, after Redis acknowledged
PROTECTED = ("enable.auto.commit", "enable.auto.offset.store", "group.id")
_SECRET_WORDS = ("password", "secret", "key", "token", "jaas", "pem")


def _protocol(settings: Settings, tls: bool) -> str:
    if settings.kafka_security_protocol:
        return settings.kafka_security_protocol
    if settings.kafka_sasl_mechanism:
        return "sasl_ssl"
    return "ssl" if tls else "plaintext"


def _sasl(settings: Settings, protocol: str) -> dict[str, Any]:
    mechanism = settings.kafka_sasl_mechanism
    if not mechanism:
        if protocol.startswith("sasl_"):
            raise ConfigError(f"security protocol {protocol} needs {MECHANISM_HELP}")
        return {}
    if not protocol.startswith("sasl_"):
        raise ConfigError(
            f"{MECHANISM_HELP} needs TRADEAGG_KAFKA_SECURITY_PROTOCOL=sasl_ssl or sasl_plaintext"
        )
    missing = [
        name
        for name, value in (
            ("TRADEAGG_KAFKA_SASL_USERNAME", settings.kafka_sasl_username),
            ("TRADEAGG_KAFKA_SASL_PASSWORD", settings.kafka_sasl_password),
        )
        if not value
    ]
    conf: dict[str, Any] = {"sasl.mechanism": mechanism}
    if mechanism == "OAUTHBEARER":
        extra = dict(settings.kafka_config)
        if not settings.kafka_oauth_token_url:
            if any(k.startswith("sasl.oauthbearer.") for k in extra):
                return conf  # configured entirely through TRADEAGG_KAFKA_CONFIG
            raise ConfigError("OAUTHBEARER needs TRADEAGG_KAFKA_OAUTH_TOKEN_URL")
        if missing:
            raise ConfigError(f"OAUTHBEARER needs {' and '.join(missing)} (client id, secret)")
        conf.update(
            {
                "sasl.oauthbearer.method": "oidc",
                "sasl.oauthbearer.client.id": settings.kafka_sasl_username,
                "sasl.oauthbearer.client.secret": settings.kafka_sasl_password,
                "sasl.oauthbearer.token.endpoint.url": settings.kafka_oauth_token_url,
            }
        )
        return conf
    if missing:
        raise ConfigError(f"{mechanism} needs {' and '.join(missing)}")
    conf["sasl.username"] = settings.kafka_sasl_username
    conf["sasl.password"] = settings.kafka_sasl_password
    return conf


def common(settings: Settings, role: str) -> dict[str, Any]:
    """Connection settings shared by consumer and producer."""
    servers, tls = brokers(settings)
    protocol = _protocol(settings, tls)
    conf: dict[str, Any] = {
        "bootstrap.servers": servers,
        "client.id": f"tradeagg-{role}-{PROCESS}",
        "socket.keepalive.enable": True,
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 5_000,
        "log_level": 7 if settings.log_level == "DEBUG" else 2,
    }
    if protocol != "plaintext":
        conf["security.protocol"] = protocol
    if tls:
        # Heroku's CA signs broker certificates that do not name the hosts
        if settings.kafka_trusted_cert:
            conf["ssl.ca.pem"] = settings.kafka_trusted_cert
            conf["ssl.endpoint.identification.algorithm"] = "none"
        if settings.kafka_client_cert or settings.kafka_client_cert_key:
            if not (settings.kafka_client_cert and settings.kafka_client_cert_key):
                raise ConfigError("KAFKA_CLIENT_CERT and KAFKA_CLIENT_CERT_KEY go together")
            conf["ssl.certificate.pem"] = settings.kafka_client_cert
            conf["ssl.key.pem"] = settings.kafka_client_cert_key
    elif settings.kafka_client_cert or settings.kafka_trusted_cert:
        raise ConfigError("KAFKA_*_CERT given but KAFKA_URL is not kafka+ssl://")
    conf.update(_sasl(settings, protocol))
    return conf


def with_passthrough(settings: Settings, conf: dict[str, Any]) -> dict[str, Any]:
    """``conf`` with TRADEAGG_KAFKA_CONFIG applied last (protected properties refused)."""
    extra = dict(settings.kafka_config)
    refused = [k for k in extra if k in PROTECTED]
    if refused:
        raise ConfigError(
            f"TRADEAGG_KAFKA_CONFIG may not set {', '.join(refused)}: the bridge commits "
            "offsets itself, after Redis acknowledged"
        )
    return {**conf, **extra}


def secret_values(settings: Settings) -> list[str]:
    """Every configured value that must never be printed."""
    values = [
        settings.kafka_sasl_password,
        settings.kafka_client_cert_key,
        *(
            str(v)
            for k, v in settings.kafka_config
            if any(word in k.lower() for word in _SECRET_WORDS)
        ),
    ]
    return sorted((v for v in values if v and len(v) >= 3), key=len, reverse=True)


def scrub(text: str, settings: Settings) -> str:
    """``text`` (a librdkafka error) with every secret value replaced by ``***``."""
    for value in secret_values(settings):
        text = text.replace(value, "***")
    return text


def consumer_config(settings: Settings) -> dict[str, Any]:
    """The bridge's consumer: group ``settings.group``, manual commits, earliest start."""
    conf = common(settings, "bridge")
    conf.update(
        {
            "group.id": settings.group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6_000,
            "heartbeat.interval.ms": 1_500,
            "max.poll.interval.ms": 300_000,
            "fetch.wait.max.ms": 25,
            "queued.max.messages.kbytes": 65_536,
            "topic.metadata.refresh.interval.ms": 10_000,
        }
    )
    return with_passthrough(settings, conf)


def producer_config(settings: Settings) -> dict[str, Any]:
    """``produce`` and bench: batched, acknowledged by the leader and replicas.

    Bounded waits, so a producer with no broker gives up in seconds, not minutes.
    """
    conf = common(settings, "produce")
    conf.update(
        {
            "acks": "all",
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
            "message.timeout.ms": 30_000,
            "socket.connection.setup.timeout.ms": 5_000,
            "socket.timeout.ms": 10_000,
        }
    )
    return with_passthrough(settings, conf)
