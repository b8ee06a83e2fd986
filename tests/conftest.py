"""Fixtures shared by every test: real servers started and stopped here.

More fixtures live in tests/fixtures_*.py, loaded below as plugins so that each
area (Kafka broker, Redis Cluster, ...) keeps its own file.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import Phase
from hypothesis import settings as hsettings

from tests.support.docker_backend import DockerRedis, requested_engine
from tests.support.servers import RedisServer

# CI (env CI set, as .ci/run does): the same examples on every run, and no
# shrinking, which can take minutes on a failure; the failing example is
# still printed in full. Property tests keep their own max_examples.
hsettings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    print_blob=True,
)
if os.environ.get("CI"):
    hsettings.load_profile("ci")

pytest_plugins = [
    "tests.support.fixtures_kafka",
    "tests.support.fixtures_cluster",
    "tests.support.fixtures_process",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=("local", "docker"),
        default=os.environ.get("TRADEAGG_TEST_BACKEND", "local"),
        help="servers for the integration tests: local processes (redis-server, Tansu) "
        "or containers of the official Redis and Apache Kafka images (skipped when no "
        "Docker engine is reachable)",
    )


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A Redis of our own on a free port (never the machine's 6379): a local
    redis-server, or the official image with ``--backend docker``."""
    client = requested_engine(request.config)
    if client is not None:
        server = DockerRedis(client)
    else:
        server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer):
    """A client on an empty database of our own server."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()
