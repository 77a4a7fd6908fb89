"""Database credentials as a BILLmanager host keeps them.

``$MGR5_ROOT/etc/billmgr.conf.d/db.conf`` holds ``Name value`` lines::

    DBHost localhost
    DBUser root
    DBPassword secret
    DBName billmgr
    DBPort 3306          # optional; DBHost may also be "host:port"
    DBSocket /run/mysqld/mysqld.sock   # optional

Unknown lines and ``#`` comments are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .paths import host_paths


class DbConfigError(Exception):
    """db.conf is missing or incomplete."""


@dataclass(frozen=True)
class DbSettings:
    host: str
    user: str
    database: str
    password: str = field(default="", repr=False)
    port: int = 3306
    unix_socket: Optional[str] = None


def parse_db_conf(text: str, source: str = "db.conf") -> DbSettings:
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition(" ")
        values[name.strip()] = value.strip()
    missing = [key for key in ("DBHost", "DBUser", "DBName") if not values.get(key)]
    if missing:
        raise DbConfigError(f"{source}: missing {', '.join(missing)}")
    host = values["DBHost"]
    port_text = values.get("DBPort", "")
    if ":" in host and not port_text:
        host, _, port_text = host.rpartition(":")
    try:
        port = int(port_text) if port_text else 3306
    except ValueError:
        raise DbConfigError(f"{source}: DBPort is not a number: {port_text!r}") from None
    return DbSettings(
        host=host,
        user=values["DBUser"],
        password=values.get("DBPassword", ""),
        database=values["DBName"],
        port=port,
        unix_socket=values.get("DBSocket") or None,
    )


def load_db_settings(path: Optional[Path] = None) -> DbSettings:
    path = path or host_paths().db_conf
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DbConfigError(f"cannot read {path}: {exc.strerror}") from None
    return parse_db_conf(text, str(path))

