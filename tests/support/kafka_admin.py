"""What tests need of any Kafka-protocol broker, local (Tansu) or in a container."""

from __future__ import annotations

import time

from confluent_kafka.admin import AdminClient, NewTopic


class KafkaAdmin:
    """Admin calls on ``self.bootstrap``."""

    bootstrap: str

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap})

    def create_topic(self, name: str, partitions: int = 4) -> None:
        """Create ``name`` and wait until its metadata lists every partition."""
        admin = self.admin()  # keep a reference: futures die with their client
        admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=15)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            md = admin.list_topics(name, timeout=5)
            t = md.topics.get(name)
            if t is not None and t.error is None and len(t.partitions) == partitions:
                return
            time.sleep(0.05)
        raise TimeoutError(f"topic {name} not visible")
