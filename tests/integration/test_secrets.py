"""Credentials never echoed (issue 10 item 5): the CLI run as a subprocess, stdout + stderr read."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.servers import free_port

SECRET = "S3CRETpa55"
PEM = f"-----BEGIN PRIVATE KEY-----\nMIIEv{SECRET}QIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"


def run(command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "LOG_LEVEL": "DEBUG", "TRADEAGG_KAFKA_TOPIC": "t"}
    base.update({k: v for k, v in __import__("os").environ.items() if k == "PYTHONPATH"})
    return subprocess.run(
        [sys.executable, "-m", "tradeagg", *command],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def no_secret(out: subprocess.CompletedProcess[str]) -> str:
    text = out.stdout + out.stderr
    assert SECRET not in text, text
    assert "MIIEv" not in text, text
    return text


@pytest.mark.parametrize(
    "url",
    [
        f"http://admin:{SECRET}@host:6379/0",  # wrong scheme
        f"redis:/admin:{SECRET}@host",  # no "://"
        f"http://u:{SECRET * 12}@h",  # longer than the 60 characters shown
        f"redis://:{SECRET}@localhost:notaport/0",  # urllib's own error
    ],
    ids=["scheme", "no-slashes", "long", "bad-port"],
)
def test_invalid_redis_url_is_named_not_echoed(url: str) -> None:
    out = run(["stats"], REDIS_URL=url)
    text = no_secret(out)
    assert out.returncode == 2, text
    assert "REDIS_URL" in text and "Traceback" not in text
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "userinfo", [f"u:{SECRET}", f":{SECRET}", f"u:p@ss/{SECRET}"], ids=["user", "no-user", "at"]
)
def test_unreachable_redis_with_password(userinfo: str) -> None:
    out = run(["stats"], REDIS_URL=f"redis://{userinfo}@127.0.0.1:{free_port()}/0")
    text = no_secret(out)
    assert out.returncode == 1, text


def test_kafka_url_with_credentials_is_refused() -> None:
    out = run(["bridge"], KAFKA_URL=f"kafka+ssl://user:{SECRET}@h1:9096")
    text = no_secret(out)
    assert out.returncode == 2 and "KAFKA_URL: credentials in the URL" in text


@pytest.mark.parametrize("command", ["bridge", "produce"])
def test_bad_kafka_certificates_never_echo_key_material(command: str, tmp_path) -> None:
    feed = tmp_path / "empty.jsonl"
    feed.write_text("")
    out = run(
        [command] + ([str(feed)] if command == "produce" else []),
        REDIS_URL=f"redis://:{SECRET}@127.0.0.1:{free_port()}/0",
        KAFKA_URL="kafka+ssl://127.0.0.1:1",
        KAFKA_TRUSTED_CERT=PEM.replace("PRIVATE KEY", "CERTIFICATE"),
        KAFKA_CLIENT_CERT=PEM.replace("PRIVATE KEY", "CERTIFICATE"),
        KAFKA_CLIENT_CERT_KEY=PEM,
    )
    text = no_secret(out)
    assert out.returncode == 2, text
    assert "Kafka" in text and "Traceback" not in text
