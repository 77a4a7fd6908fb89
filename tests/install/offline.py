"""Running a command with no network, and proving that a download attempt there fails.

The strong way: a fresh network namespace (``unshare --net``, root only): no interface but a
loopback that is down, so nothing outside the process tree is reachable, not even the
host's 127.0.0.1. MariaDB is then reached through its unix socket, which belongs to the
file system, not the network. Where namespaces cannot be had (or the database has no local
socket), the weaker way: every proxy pointed at an unroutable address.
Either way ``prove_downloads_fail`` shows, under the same conditions, that pip cannot
fetch a package: so an install that succeeds there used no network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional

import pymysql

from billmgr_amocrm.dbconf import DbSettings

UNROUTABLE = "http://192.0.2.1:9"  # TEST-NET-1 (RFC 5737): never routed


@dataclass(frozen=True)
class Offline:
    prefix: List[str]              # put before the command
    env: Dict[str, str]            # added to the command's environment
    how: str                       # said in test output

    def command(self, cmd: List[str]) -> List[str]:
        return [*self.prefix, *cmd]


def _socket_of(db: DbSettings) -> Optional[str]:
    conn = pymysql.connect(host=db.host, port=db.port, user=db.user, password=db.password)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@socket")
            row = cur.fetchone()
    finally:
        conn.close()
    path = str(row[0]) if row and row[0] else ""
    return path if path and os.path.exists(path) else None


def offline_for(db: DbSettings) -> tuple[Offline, DbSettings]:
    """How to run without network here, and the database settings that work under it."""
    socket = _socket_of(db) if db.host in ("127.0.0.1", "localhost", "::1") else None
    can_unshare = (os.geteuid() == 0 and shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "--net", "true"], capture_output=True, check=False).returncode == 0)
    if socket and can_unshare:
        return (Offline(["unshare", "--net"], {}, "a network namespace with no network"),
                replace(db, host="localhost", unix_socket=socket))
    blocked = {"http_proxy": UNROUTABLE, "https_proxy": UNROUTABLE, "HTTP_PROXY": UNROUTABLE,
               "HTTPS_PROXY": UNROUTABLE, "no_proxy": "", "NO_PROXY": ""}
    return Offline([], blocked, "every proxy pointed at an unroutable address"), db


def prove_downloads_fail(offline: Offline, tmp: Path) -> str:
    """pip, run like the install under the same conditions, cannot download a package; returns its error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}  # no mirror of the host's
    env.update({**offline.env, "PIP_CONFIG_FILE": os.devnull})
    # One retry: pip names the connection error only when it retries.
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
           "--disable-pip-version-check", "--retries", "1", "--timeout", "3", "-d", str(tmp),
           "--index-url", "https://pypi.org/simple", "six"]
    proc = subprocess.run(offline.command(cmd), capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert proc.returncode != 0, f"a download worked {offline.how}:\n{proc.stdout}"
    assert not list(tmp.glob("six-*")), "a download worked"
    why = [line.strip() for line in proc.stderr.splitlines()
           if any(word in line.lower() for word in ("connection", "resolution", "unreachable", "proxy"))]
    assert why, f"pip failed {offline.how}, but not for want of a network:\n{proc.stderr}"
    return why[0]
