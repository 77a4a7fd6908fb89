"""A private MariaDB server for one test: scenario 4 kills and restarts it.

The machine's shared server (127.0.0.1:3306) serves every other test running in parallel,
so it is never restarted. This one lives in its own temporary directory (datadir, socket,
error log) on a free loopback port; root has an empty password on 127.0.0.1 (what
``mariadb-install-db --auth-root-authentication-method=normal`` creates), so the product's
db.conf points at it unchanged. ``stop()`` ends the server and removes the directory,
whatever state the test left it in.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import pymysql

from billmgr_amocrm.dbconf import DbSettings

INSTALL_DB = ("mariadb-install-db", "mysql_install_db")
SERVER = ("mariadbd", "mysqld")
SEARCH_PATH = "/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin:/sbin:/bin"
# Small files and buffers: the server starts in well under a second.
SERVER_OPTIONS = ("--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M", "--skip-log-bin",
                  "--max-connections=50")
START_TIMEOUT = 30.0


def find_binaries() -> Optional[tuple[str, str]]:
    """(install-db, server) executables, or None when MariaDB is not installed here."""
    install = next((p for p in (shutil.which(n, path=SEARCH_PATH) for n in INSTALL_DB) if p), None)
    server = next((p for p in (shutil.which(n, path=SEARCH_PATH) for n in SERVER) if p), None)
    return (install, server) if install and server else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateMariaDB:
    """``start()`` (installs the datadir the first time), ``kill()`` (SIGKILL), ``stop()``."""

    def __init__(self, install_db: str, server: str) -> None:
        self.install_db = install_db
        self.server = server
        # /tmp, not pytest's tmp_path: a unix socket path must stay under 108 bytes
        self.base = Path(tempfile.mkdtemp(prefix="amocrm-mdb-"))
        self.datadir = self.base / "data"
        self.socket = self.base / "sock"
        self.error_log = self.base / "error.log"
        self.port = free_port()
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.starts = 0

    @property
    def settings(self) -> DbSettings:
        """The server (no database selected), as db.conf would name it."""
        return DbSettings(host="127.0.0.1", port=self.port, user="root", password="", database="")

    def _install(self) -> None:
        subprocess.run([self.install_db, "--no-defaults", f"--datadir={self.datadir}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db", *SERVER_OPTIONS],
                       check=True, capture_output=True, timeout=120)

    def _command(self) -> List[str]:
        return [self.server, "--no-defaults", "--user=root", f"--datadir={self.datadir}",
                f"--socket={self.socket}", f"--port={self.port}", "--bind-address=127.0.0.1",
                f"--pid-file={self.base / 'pid'}", f"--log-error={self.error_log}", *SERVER_OPTIONS]

    def start(self) -> None:
        if not self.datadir.exists():
            self._install()
        self.process = subprocess.Popen(self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="",
                                connect_timeout=2).close()
                return
            except pymysql.err.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the private MariaDB did not start (exit {self.process.poll()}): "
                                       f"{self.tail_of_log()}") from None
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown (InnoDB recovers on the next start)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        """End the server (gracefully if it answers) and remove every file of it."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=30)
            self.process = None
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def tail_of_log(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.error_log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no error log)"
