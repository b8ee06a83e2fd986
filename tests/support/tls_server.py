"""A redis-server that speaks only TLS, with a self-signed certificate made here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import redis

from tests.support.servers import free_port, stop_process, wait_port


def self_signed(workdir: Path) -> tuple[Path, Path]:
    """``(cert.pem, key.pem)`` for CN=localhost, valid for 127.0.0.1 and localhost."""
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class TLSRedis:
    """``--port 0 --tls-port P``: nothing but TLS, no client certificates asked."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.cert, self.key = self_signed(workdir)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise RuntimeError("redis-server is not on PATH (apt-get install redis-server)")
        args = [
            binary, "--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1",
            "--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key),
            "--tls-auth-clients", "no", "--save", "", "--dir", str(self.workdir),
            "--logfile", str(self.workdir / "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, 15.0, self.proc)

    def client(self) -> redis.Redis:
        """A test-side client that trusts the certificate made here."""
        return redis.Redis(host="127.0.0.1", port=self.port, ssl=True, ssl_ca_certs=str(self.cert))

    def stop(self) -> None:
        stop_process(self.proc)
