"""The screener's files (``tradeagg/web``), read once from the package, served from memory.

Only the files listed here are served: a path never reaches the file system.
"""

from __future__ import annotations

from importlib import resources

from tradeagg.api.http import Response

FILES = {
    "index.html": "text/html; charset=utf-8",
    "screener.js": "text/javascript; charset=utf-8",
    "screener.css": "text/css; charset=utf-8",
}
SECURITY = [
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
]


class Static:
    def __init__(self) -> None:
        root = resources.files("tradeagg.web")
        self.files = {name: (root / name).read_bytes() for name in FILES}

    def get(self, name: str) -> Response | None:
        body = self.files.get(name)
        if body is None:
            return None
        headers = [
            ("Content-Type", FILES[name]),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-cache"),
            *SECURITY,
        ]
        return Response(200, [body], headers)
