"""librdkafka configuration built from Settings: plain brokers or Heroku Kafka.

``KAFKA_URL`` (Heroku: ``kafka+ssl://h1:9096,kafka+ssl://h2:9096``, or
``kafka+ssl://h1:9096,h2:9096``) wins over ``KAFKA_BOOTSTRAP_SERVERS``. With
``kafka+ssl`` the PEM texts of ``KAFKA_TRUSTED_CERT``, ``KAFKA_CLIENT_CERT`` and
``KAFKA_CLIENT_CERT_KEY`` are handed to librdkafka as ``ssl.*.pem`` values, so no
key material is written to disk. Heroku's broker certificates are signed by the
add-on's own CA and do not name the hosts, hence hostname verification is off
when a trusted cert is given (the CA pin still authenticates the broker).

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


def common(settings: Settings, role: str) -> dict[str, Any]:
    """Connection settings shared by consumer and producer."""
    servers, tls = brokers(settings)
    conf: dict[str, Any] = {
        "bootstrap.servers": servers,
        "client.id": f"tradeagg-{role}-{PROCESS}",
        "socket.keepalive.enable": True,
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 5_000,
    }
    if tls:
        conf["security.protocol"] = "ssl"
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
    return conf


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
            "log_level": 7 if settings.log_level == "DEBUG" else 2,
        }
    )
    return conf


def producer_config(settings: Settings) -> dict[str, Any]:
    """``produce`` and bench: batched, acknowledged by the leader and replicas."""
    conf = common(settings, "produce")
    conf.update(
        {
            "acks": "all",
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
            "message.timeout.ms": 60_000,
        }
    )
    return conf
