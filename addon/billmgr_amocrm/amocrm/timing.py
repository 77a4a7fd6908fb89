"""When a request has really left the host, and how long the network takes: for the rate limiter.

amoCRM counts a request when it arrives, so the limiter needs the moment the request's
last byte was written (:mod:`.ratelimit`), not the moment we decided to send it. urllib3
writes the whole request in ``HTTPConnection.request`` and only then waits in
``getresponse``: :class:`TimedAdapter`'s connections call the current thread's
``on_sent`` at the start of ``getresponse``, and time each TCP handshake (``on_connect``
gets the seconds one took: an upper bound of a one-way delay on the route).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


@contextmanager
def watching(on_sent: Callable[[], None], on_connect: Callable[[float], None]) -> Iterator[None]:
    """Report this thread's next request's ``sent`` moment and any handshake it makes."""
    _current.on_sent = on_sent
    _current.on_connect = on_connect
    try:
        yield
    finally:
        _current.on_sent = None
        _current.on_connect = None


def _call(name: str, *args: Any) -> None:
    hook: Optional[Callable[..., None]] = getattr(_current, name, None)
    if hook is not None:
        hook(*args)


class _TimedMixin:
    def _new_conn(self) -> Any:
        started = time.monotonic()
        sock = super()._new_conn()  # type: ignore[misc]
        _call("on_connect", time.monotonic() - started)
        return sock

    def getresponse(self) -> Any:
        _call("on_sent")   # urllib3 has written the whole request by now
        return super().getresponse()  # type: ignore[misc]


class _TimedHTTPConnection(_TimedMixin, HTTPConnection):
    pass


class _TimedHTTPSConnection(_TimedMixin, HTTPSConnection):
    pass


class _TimedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _TimedHTTPConnection


class _TimedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TimedHTTPSConnection


class TimedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections report ``sent`` and handshake times."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _TimedHTTPPool, "https": _TimedHTTPSPool}
