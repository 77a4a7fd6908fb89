"""Database credentials as a BILLmanager host gives them.

Where ``$MGR5_ROOT/sbin/mgrctl`` exists they come from ``mgrctl -m billmgr -o xml
paramlist``, as ISPsystem's own modules read them; otherwise, or when mgrctl gives no
usable answer, from ``$MGR5_ROOT/etc/billmgr.conf.d/db.conf``. Both use the same names.
db.conf holds ``Name value`` lines::

    DBHost localhost
    DBUser root
    DBPassword secret
    DBName billmgr
    DBPort 3306          # optional; DBHost may also be "host:port"
    DBSocket /run/mysqld/mysqld.sock   # optional

Unknown lines and ``#`` comments are ignored. The password never reaches a log line, an
error message or a ``repr``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional

from .paths import HostPaths, host_paths

if TYPE_CHECKING:
    from lxml import etree

log = logging.getLogger(__name__)

NAMES = ("DBHost", "DBUser", "DBPassword", "DBName", "DBPort", "DBSocket")
# paramlist is one small answer; a panel that does not give it in this time is not worth waiting for
PARAMLIST_TIMEOUT = 10.0


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
    return settings_from(values, source)


def settings_from(values: Mapping[str, str], source: str) -> DbSettings:
    """``DbSettings`` from the db.conf names (``DBHost``, ...); ``source`` names where they came from."""
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


def paramlist_values(root: etree._Element) -> dict[str, str]:
    """The db.conf names in paramlist's answer: ``<elem><DBHost>..</DBHost>..</elem>`` or
    ``<elem><name>DBHost</name><value>..</value></elem>`` (the first of each name wins)."""
    values: dict[str, str] = {}
    for node in root.iter():
        tag = node.tag if isinstance(node.tag, str) else ""
        if tag in NAMES and not len(node):
            values.setdefault(tag, (node.text or "").strip())
        elif tag == "elem":
            name, value = node.findtext("name"), node.findtext("value")
            if name in NAMES and value is not None:
                values.setdefault(name, value.strip())
    return values


def read_paramlist(paths: HostPaths) -> Optional[DbSettings]:
    """The credentials mgrctl gives, or None where there is no mgrctl.

    Raises ``MgrctlError`` or :class:`DbConfigError` when mgrctl is there but its answer is
    unusable; neither message holds anything mgrctl printed."""
    from .mgrctl import Mgrctl

    mgrctl = Mgrctl.on_host(paths, timeout=PARAMLIST_TIMEOUT)
    if mgrctl is None:
        return None
    return settings_from(paramlist_values(mgrctl.call("paramlist")), "mgrctl paramlist")


def read_db_conf(path: Path) -> DbSettings:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DbConfigError(f"cannot read {path}: {exc.strerror}") from None
    return parse_db_conf(text, str(path))


def load_db_settings(paths: Optional[HostPaths] = None) -> DbSettings:
    """The host's credentials: mgrctl's paramlist where mgrctl is, else db.conf (see the docstring)."""
    paths = paths or host_paths()
    try:
        from .mgrctl import MgrctlError
    except ImportError:
        # the standard-library copy the purge runs from has no lxml to read mgrctl's answer
        return read_db_conf(paths.db_conf)
    try:
        settings = read_paramlist(paths)
    except (MgrctlError, DbConfigError) as exc:
        if not paths.db_conf.is_file():
            raise DbConfigError(f"{exc}; and {paths.db_conf} does not exist") from None
        log.warning("%s; reading %s instead", exc, paths.db_conf)
        settings = None
    return settings if settings is not None else read_db_conf(paths.db_conf)
