"""MySQL/MariaDB connections for the worker, the tools and the panel handlers.

SQL everywhere in the module uses bound parameters (``%s``); identifiers are never
built from input.
"""

from __future__ import annotations

from typing import Optional

import pymysql
import pymysql.cursors

from .dbconf import DbSettings, load_db_settings


def connect(settings: Optional[DbSettings] = None, *, autocommit: bool = False,
            connect_timeout: float = 5.0, read_committed: bool = False) -> pymysql.connections.Connection:
    """Open a utf8mb4 connection using db.conf (or the given settings); ``read_committed``: its
    transactions run at READ COMMITTED (row locks only, no gap locks)."""
    settings = settings or load_db_settings()
    return pymysql.connect(
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
