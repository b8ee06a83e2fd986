"""Fixtures for cluster tests (see tests/conftest.py).

``redis_cluster`` is one real 3-master Redis Cluster for the whole session;
``cluster_client`` hands each test a redis-py cluster client on an empty
cluster (every node flushed, script caches kept).
"""

from __future__ import annotations

import pytest

from tests.support.cluster_server import RedisClusterServer


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory):
    """Three cluster-enabled redis-servers on free loopback ports, slots assigned."""
    cluster = RedisClusterServer(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    yield cluster
    cluster.stop()
    assert not cluster.running(), f"cluster nodes still running: {cluster.running()}"


@pytest.fixture
def cluster_client(redis_cluster: RedisClusterServer):
    """A RedisCluster client on an empty cluster."""
    redis_cluster.flushall()
    client = redis_cluster.client()
    yield client
    client.close()
