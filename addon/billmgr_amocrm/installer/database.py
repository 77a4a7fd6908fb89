"""The module's tables: migrated and dropped by ``python -m billmgr_amocrm.store.migrations``.

Both run through a release's own python (the installer itself has no MySQL driver),
with the credentials from R/etc/billmgr.conf.d/db.conf.  The drop removes exactly the
tables the migrations list as the module's (``MODULE_TABLES``): a table of another
module whose name happens to start with ``amocrm_`` is never touched.
"""

from __future__ import annotations

import os
from pathlib import Path

from .layout import PACKAGE, Layout
from .release import release_env
from .system import InstallError, Report, run, step

MIGRATIONS = f"{PACKAGE}.store.migrations"


def migrate(layout: Layout, release: Path, report: Report) -> None:
    step("migrating the database tables")
    run([str(release / "bin" / "python3"), "-m", MIGRATIONS],
        "migrating the database (credentials from db.conf)", env=release_env(layout), timeout=600)
    report.add("database", "tables migrated (credentials from etc/billmgr.conf.d/db.conf)")


def drop_tables(layout: Layout, report: Report) -> None:
    """Drop the module's tables (the migrations' list) through the live release's python."""
    if not os.access(layout.venv_python, os.X_OK):
        raise InstallError(
            f"{layout.venv_python} is missing, so the tables cannot be dropped; reinstall, then run "
            "--uninstall --drop-data again (or drop by hand the tables MODULE_TABLES lists in "
            "billmgr_amocrm/store/migrations.py)")
    step("dropping the module's tables")
    proc = run([str(layout.venv_python), "-m", MIGRATIONS, "--drop"],
               "dropping the module's tables", env=release_env(layout), timeout=300)
    said = proc.stdout.strip().splitlines()  # "dropped: <names>" or "no module tables found"
    report.add("database", said[-1] if said else "no module tables found")
