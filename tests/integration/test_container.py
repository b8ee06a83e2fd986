"""The image and the compose stack, for real, where a Docker engine is reachable.

These machines have the docker CLI but no engine: here every test skips with
the reason (never fails). With an engine (``DOCKER_HOST`` or the default
socket), the image is built from this tree with the Docker SDK and its CLI,
user and health check are exercised against a Redis container.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.docker_backend import REDIS_IMAGE, engine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def docker_client():
    client, reason = engine()
    if client is None:
        pytest.skip(reason)
    return client


@pytest.fixture(scope="module")
def image(docker_client):
    built, _logs = docker_client.images.build(path=str(ROOT), tag="tradeagg:test", rm=True)
    yield built
    docker_client.images.remove(built.id, force=True)


def test_image_runs_the_cli_as_an_unprivileged_user(docker_client, image):
    out = docker_client.containers.run(image.id, ["--help"], remove=True).decode()
    assert "usage: tradeagg" in out
    uid = docker_client.containers.run(image.id, entrypoint=["id", "-u"], remove=True)
    assert uid.decode().strip() != "0"


def test_image_health_check_passes_against_a_live_redis(docker_client, image):
    network = docker_client.networks.create("tradeagg-test")
    redis_c = docker_client.containers.run(
        REDIS_IMAGE, detach=True, remove=True, network=network.name, name="tradeagg-test-redis"
    )
    try:
        env = {"REDIS_URL": "redis://tradeagg-test-redis:6379/0"}
        # containers.run raises ContainerError unless the command exits 0
        docker_client.containers.run(
            image.id, ["health", "--expect", ""], environment=env, network=network.name,
            remove=True,
        )
    finally:
        redis_c.stop(timeout=5)
        network.remove()


def test_compose_file_is_valid_for_docker_compose():
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True).returncode:
        pytest.skip("the docker compose plugin is not installed here")
    check = subprocess.run(
        [docker, "compose", "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
