"""MySQL/MariaDB connections for the worker, the tools and the panel handlers.

SQL everywhere in the module uses bound parameters (``%s``); identifiers are never
built from input.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any, Optional

import pymysql
import pymysql.cursors

from .dbconf import DbSettings, load_db_settings


class _Connection(pymysql.connections.Connection):
    """PyMySQL's connection with one SSL context shared by its "preferred" TLS.

    Given no TLS option, PyMySQL (1.2, the locked version) still offers TLS to a server that
    supports it, with a context it builds for every connection (``ssl.create_default_context``
    loads the system's CA store: about 18 ms of CPU and 0.9 MiB, against 0.4 ms for the rest
    of a connect) whose settings never differ (no CA, no hostname check, no certificate
    verification). An export opens 18 connections (its lanes among them): about a tenth of
    the export process's CPU in the bench's pipeline figure, and 15 MiB. An ``SSLContext`` is
    made to be shared; what is negotiated is unchanged. Explicit TLS options still get a
    context of their own (PyMySQL passes them as a non-empty dict)."""

    _preferred: Optional[ssl.SSLContext] = None
    _preferred_lock = threading.Lock()

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        create = super()._create_ssl_ctx  # type: ignore[misc]
        if not (isinstance(sslp, dict) and not sslp):
            return create(sslp)
        with _Connection._preferred_lock:
            if _Connection._preferred is None:
                _Connection._preferred = create(sslp)
            return _Connection._preferred


def connect(settings: Optional[DbSettings] = None, *, autocommit: bool = False,
            connect_timeout: float = 5.0, read_committed: bool = False) -> pymysql.connections.Connection:
    """Open a utf8mb4 connection using db.conf (or the given settings); ``read_committed``: its
    transactions run at READ COMMITTED (row locks only, no gap locks)."""
    settings = settings or load_db_settings()
    return _Connection(
        host=settings.host,
        port=settings.port,
        user=settings.user,
        password=settings.password,
        database=settings.database,
        charset="utf8mb4",
        autocommit=autocommit,
        connect_timeout=int(max(1, connect_timeout)),
        read_timeout=60,
        write_timeout=60,
        unix_socket=settings.unix_socket,
        init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED" if read_committed else None,
    )
