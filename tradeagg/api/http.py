"""The few HTTP pieces the API needs on plain WSGI: responses, headers, auth, CORS.

No framework: the API has six routes, all GET, and a streaming one; a
``Response`` is a status, headers and a body iterable, which ``gevent.pywsgi``
writes chunk by chunk (what Server-Sent Events need).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from tradeagg.api.params import ApiError

REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    414: "URI Too Long",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
CORS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Allow-Headers", "Authorization"),
    ("Access-Control-Allow-Methods", "GET, OPTIONS"),
]
JSON = "application/json"


@dataclass
class Response:
    status: int
    body: Iterable[bytes]
    headers: list[tuple[str, str]] = field(default_factory=list)

    def status_line(self) -> str:
        return f"{self.status} {REASONS.get(self.status, 'Error')}"


def json_text(status: int, text: str, extra: list[tuple[str, str]] | None = None) -> Response:
    """A JSON response from already-rendered JSON text (exact numbers kept as written)."""
    body = text.encode()
    headers = [
        ("Content-Type", JSON),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        *(extra or []),
    ]
    return Response(status, [body], headers)


def error(exc: ApiError) -> Response:
    extra = [("WWW-Authenticate", "Bearer")] if exc.status == 401 else []
    if exc.status == 405:
        extra.append(("Allow", "GET, OPTIONS"))
    return json_text(exc.status, json.dumps({"error": exc.message}), extra)


def preflight() -> Response:
    return Response(204, [], [("Access-Control-Max-Age", "600"), ("Content-Length", "0")])


def authorize(environ: dict, token: str) -> None:
    """With ``TRADEAGG_API_TOKEN`` set, the request must carry ``Authorization: Bearer <it>``."""
    if not token:
        return
    given = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        value.strip().encode("utf-8", "replace"), token.encode()
    ):
        raise ApiError(401, "missing or wrong bearer token")
