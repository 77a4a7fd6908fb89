"""Command line: build a BILLmanager sandbox database.

    python -m tests.sandbox --clients 1000 --services 100000 --db billmgr_sandbox --drop
    python -m tests.sandbox --write-db-conf      # also point $MGR5_ROOT's db.conf at it
    python -m tests.sandbox --without-requisite-columns --fake-mgrctl
        # `profile` with its confirmed columns only, and $MGR5_ROOT/sbin/mgrctl answering
        # paramlist and profile.edit from the sandbox (tests.sandbox.fake_mgrctl)

Server credentials come from TEST_DB_HOST/TEST_DB_PORT/TEST_DB_USER/TEST_DB_PASSWORD
(defaults 127.0.0.1, 3306, root, empty), like the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from datetime import date
from typing import Optional, Sequence

import pymysql

from billmgr_amocrm.dbconf import DbSettings
from billmgr_amocrm.foundation.files import write_atomic
from billmgr_amocrm.paths import host_paths

from .dbconf import render_db_conf
from .fake_mgrctl import install_fake_mgrctl
from .generate import create_sandbox


def server_settings_from_env(database: str = "") -> DbSettings:
    return DbSettings(
        host=os.environ.get("TEST_DB_HOST", "127.0.0.1"),
        port=int(os.environ.get("TEST_DB_PORT", "3306")),
        user=os.environ.get("TEST_DB_USER", "root"),
        password=os.environ.get("TEST_DB_PASSWORD", ""),
        database=database,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--db", default="billmgr_sandbox", help="database name (default billmgr_sandbox)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--today", type=date.fromisoformat, default=None,
                        help="anchor date YYYY-MM-DD (default: today)")
    parser.add_argument("--drop", action="store_true", help="drop the database first if it exists")
    parser.add_argument("--write-db-conf", action="store_true",
                        help="write $MGR5_ROOT/etc/billmgr.conf.d/db.conf pointing at the sandbox")
    parser.add_argument("--without-requisite-columns", action="store_true",
                        help="give `profile` only its confirmed columns (requisites: through mgrctl)")
    parser.add_argument("--fake-mgrctl", action="store_true",
                        help="install $MGR5_ROOT/sbin/mgrctl answering from the sandbox")
    args = parser.parse_args(argv)
    settings = replace(server_settings_from_env(), database=args.db)
    try:
        summary = create_sandbox(settings, clients=args.clients, services=args.services, seed=args.seed,
                                 today=args.today, drop=args.drop,
                                 requisite_columns=not args.without_requisite_columns)
    except pymysql.err.ProgrammingError as exc:
        if exc.args and exc.args[0] == 1007:
            print(f"database {args.db} already exists: add --drop to replace it", file=sys.stderr)
            return 2
        raise
    except pymysql.err.OperationalError as exc:
        print(f"cannot reach MariaDB at {settings.host}:{settings.port} as {settings.user}: {exc.args[-1]}\n"
              "start it with: tests/tools/ensure-mariadb", file=sys.stderr)
        return 2
    print(f"sandbox {summary.database}: {summary.clients} clients, {summary.users} users, "
          f"{summary.payers} payers {dict(sorted(summary.payers_by_type.items()))}, "
          f"{summary.services} services {dict(sorted(summary.services_by_status.items()))}, "
          f"{summary.itemparams} params in {summary.seconds:.2f} s"
          + ("" if summary.requisite_columns else "; payers without requisite columns"))
    if args.write_db_conf:
        path = host_paths().db_conf
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, render_db_conf(settings))
        print(f"wrote {path}")
    if args.fake_mgrctl:
        print(f"wrote {install_fake_mgrctl(host_paths().root, settings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
