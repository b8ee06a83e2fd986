"""The Docker backend of the test servers: Redis and Apache Kafka in real containers.

``pytest --backend docker`` (or ``TRADEAGG_TEST_BACKEND=docker``) makes the
``redis_server`` and ``kafka_broker`` fixtures start the official images with
the ``docker`` package instead of a local ``redis-server`` and the Tansu
broker. The objects offer the same interface as their local twins (``url``,
``port``, ``client()``, ``stop()`` / ``bootstrap``, ``admin()``,
``create_topic()``), so every test runs unchanged on either backend. Where no
engine answers (``DOCKER_HOST`` or the default socket), ``engine()`` says why
and the fixtures skip with that reason.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from tests.support.kafka_admin import KafkaAdmin
from tests.support.servers import free_port

REDIS_IMAGE = "redis:7.2"
KAFKA_IMAGE = "apache/kafka:3.9.0"


def engine() -> tuple[Any, str]:
    """``(client, "")`` when a Docker engine answers, else ``(None, reason)``."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        return client, ""
    except Exception as exc:  # any failure to reach an engine means: no Docker here
        return None, f"no Docker engine reachable ({type(exc).__name__}: {str(exc)[:120]})"


def requested_engine(config: Any) -> Any:
    """The Docker client when ``--backend docker`` was asked for, else None.

    Asked for but unreachable: the test is skipped with the reason (never failed).
    """
    if config.getoption("backend") != "docker":
        return None
    client, reason = engine()
    if client is None:
        pytest.skip(reason)
    return client


class _Container:
    def __init__(self, client: Any) -> None:
        self.docker = client
        self.container: Any = None

    def _run(self, image: str, **kwargs: Any) -> None:
        self.docker.images.pull(image)
        self.container = self.docker.containers.run(image, detach=True, remove=True, **kwargs)

    def stop(self) -> None:
        if self.container is not None:
            self.container.stop(timeout=10)
            self.container = None

    def kill(self) -> None:
        if self.container is not None:
            self.container.kill()
            self.container = None


class DockerRedis(_Container):
    """``redis:7.2`` with its port published on a free loopback port."""

    def __init__(self, client: Any, appendonly: bool = False) -> None:
        super().__init__(client)
        self.port = free_port()
        self.appendonly = appendonly

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--save", "", "--appendonly", "yes" if self.appendonly else "no"]
        self._run(REDIS_IMAGE, command=command, ports={"6379/tcp": ("127.0.0.1", self.port)})
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client().ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def restart(self) -> None:
        self.kill()
        self.start()

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)


class DockerKafka(_Container, KafkaAdmin):
    """``apache/kafka`` in KRaft mode, one node, advertised on a free loopback port."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.port = free_port()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        from confluent_kafka import KafkaException

        env = {
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
            "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{self.port}",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        }
        self._run(KAFKA_IMAGE, environment=env, ports={"9092/tcp": ("127.0.0.1", self.port)})
        deadline = time.monotonic() + 120
        while True:
            try:
                self.admin().list_topics(timeout=2)
                return
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
