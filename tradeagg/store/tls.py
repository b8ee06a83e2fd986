"""TLS to Redis (``rediss://``): verification settings and one-line failures.

Heroku Redis serves a self-signed certificate and owns ``REDIS_URL``, so the
verification mode comes from ``TRADEAGG_REDIS_TLS_VERIFY`` (``required`` by
default, ``none`` for Heroku) and an optional CA from
``TRADEAGG_REDIS_CA_CERT`` (a PEM file path or the PEM text itself), never
from the URL.

``TLSConnection`` turns the two failures an operator meets into errors that
say what to change: a certificate the client does not trust, and a plaintext
port. A plaintext Redis never answers a TLS ClientHello (it waits for a
newline), so the handshake first gets ``QUICK_HANDSHAKE_S``; if that runs
out and the port answers a plain ``PING``, it is not a TLS port. Otherwise
(a slow link) the handshake is tried again with the full connect timeout.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any

import redis
from redis.connection import Connection

from tradeagg.errors import ConfigError
from tradeagg.settings import Settings

QUICK_HANDSHAKE_S = 1.0
PROBE_S = 0.5
VERIFY_HINT = (
    "set TRADEAGG_REDIS_CA_CERT to the CA that signed it, or TRADEAGG_REDIS_TLS_VERIFY=none "
    "(Heroku Redis: self-signed)"
)


class TLSSetupError(redis.ConnectionError):
    """A TLS failure that retrying cannot fix: the configuration must change."""


def tls_options(settings: Settings) -> dict[str, Any]:
    """redis-py ``ssl_*`` keyword arguments for a ``rediss://`` client."""
    verify = settings.redis_tls_verify == "required"
    options: dict[str, Any] = {
        "ssl_cert_reqs": "required" if verify else "none",
        "ssl_check_hostname": verify,
    }
    ca = settings.redis_ca_cert.strip()
    if ca:
        if ca.startswith("-----BEGIN"):
            options["ssl_ca_data"] = ca
        elif Path(ca).is_file():
            options["ssl_ca_certs"] = ca
        else:
            raise ConfigError(
                "TRADEAGG_REDIS_CA_CERT: neither PEM text (-----BEGIN ...) nor a readable file"
            )
    return options


def speaks_plain_redis(host: str, port: int) -> bool:
    """True if ``host:port`` answers a plaintext PING the way Redis does."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_S) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16)[:1] in (b"+", b"-")
    except OSError:
        return False


class TLSConnection(redis.SSLConnection):
    """redis-py's SSL connection with a quick plaintext-port check and one-line errors."""

    def _wrap_socket_with_ssl(self, sock: Any) -> Any:
        where = f"{self.host}:{self.port}"
        full = self.socket_connect_timeout or 5.0
        try:
            try:
                sock.settimeout(min(QUICK_HANDSHAKE_S, full))
                wrapped = super()._wrap_socket_with_ssl(sock)
            except TimeoutError:
                if speaks_plain_redis(self.host, self.port):
                    raise TLSSetupError(
                        f"TLS handshake failed: is this a TLS port? ({where} answers plain "
                        "Redis: use redis:// or the TLS port)"
                    ) from None
                sock.close()
                sock = Connection._connect(self)
                sock.settimeout(full)
                wrapped = super()._wrap_socket_with_ssl(sock)
        except ssl.SSLCertVerificationError as exc:
            reason = exc.verify_message or exc.reason or "not trusted"
            raise TLSSetupError(
                f"TLS certificate of {where} rejected ({reason}): {VERIFY_HINT}"
            ) from None
        except ssl.SSLError as exc:
            raise TLSSetupError(
                f"TLS handshake failed: is this a TLS port? ({where}: {exc.reason or exc})"
            ) from None
        wrapped.settimeout(self.socket_timeout)
        return wrapped
