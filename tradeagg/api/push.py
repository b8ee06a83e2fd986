"""Writing an event stream straight to its client socket, from the hub.

Once ``gevent.pywsgi`` has sent an event stream's headers, the hub can write
each tick's events for a client itself: one non-blocking ``write(2)`` of one
HTTP chunk, no switch to the client's greenlet and no pass through pywsgi's
write path. With 1,000 clients and a tick every 50 ms that is the work that
grows with clients times ticks, so it is kept to the syscall.

What the kernel does not take at once (a slow client: its socket buffer is
full) is left to the client's own greenlet, which writes it cooperatively
while the hub writes nothing more for that client (the rest waits in its
bounded mailbox; see ``hub.Subscriber``).
"""

from __future__ import annotations

import os
import socket
from typing import Any

import gevent.socket


class DirectWriter:
    """The socket of one event stream whose headers are out, framed as pywsgi frames."""

    __slots__ = ("sock", "fd", "chunked")

    def __init__(self, sock: Any, chunked: bool) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.chunked = chunked

    @classmethod
    def of(cls, sock: Any, handler: Any) -> DirectWriter | None:
        """A writer for a plain (non-TLS) non-blocking gevent socket whose response
        headers pywsgi has sent; else None (the stream is written through pywsgi)."""
        if sock is None or handler is None or not getattr(handler, "headers_sent", False):
            return None
        if type(sock) is not gevent.socket.socket:  # e.g. TLS: bytes must go through it
            return None
        try:
            if os.get_blocking(sock.fileno()):
                return None
        except OSError:
            return None
        return cls(sock, bool(getattr(handler, "response_use_chunked", False)))

    def frame(self, data: bytes) -> bytes:
        """``data`` as pywsgi would put it on the wire: one chunk when chunked."""
        if not self.chunked:
            return data
        return b"%x\r\n%b\r\n" % (len(data), data)

    def try_send(self, data: bytes) -> bytes:
        """Write what the kernel takes now, without waiting; return the rest.
        Raises OSError when the client is gone."""
        try:
            sent = os.write(self.fd, data)
        except BlockingIOError:
            return data
        return data[sent:]

    def send(self, data: bytes) -> None:
        """Write all of ``data``, waiting cooperatively (the client's greenlet)."""
        self.sock.sendall(data)

    def abort(self) -> None:
        """Shut the connection, so that a greenlet blocked writing to it returns."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
