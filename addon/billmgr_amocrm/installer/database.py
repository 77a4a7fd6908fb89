"""The module's tables: migrated and dropped by ``python -m billmgr_amocrm.store.migrations``.

The migrations run through the new release's python (the installer itself has no MySQL
driver), before that release goes live. The drop runs on the interpreter running the
installer or the purge, with the package and PyMySQL of R/lib/amocrm/core/current (core.py):
it must work when the virtualenv is broken or gone. Both take the credentials from
R/etc/billmgr.conf.d/db.conf. The drop removes exactly the tables the migrations list as
the module's (``MODULE_TABLES``): a table of another module whose name happens to start
with ``amocrm_`` is never touched.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Tuple

from .layout import PACKAGE, Layout
from .release import release_env
from .system import InstallError, Report, run, step

MIGRATIONS = f"{PACKAGE}.store.migrations"
# Run with -I -S: the standard library, and the core copy put first on sys.path.
DROP = (f"import sys; sys.path.insert(0, sys.argv[1]); from {MIGRATIONS} import main; "
        "sys.exit(main(['--drop']))")


def module_tables() -> Tuple[str, ...]:
    from ..store.migrations import MODULE_TABLES  # standard library only at import time

    return MODULE_TABLES


def migrate(layout: Layout, release: Path, report: Report) -> None:
    step("migrating the database tables")
    run([str(release / "bin" / "python3"), "-m", MIGRATIONS],
        "migrating the database (credentials from db.conf)", env=release_env(layout), timeout=600)
    report.add("database", "tables migrated (credentials from etc/billmgr.conf.d/db.conf)")


def drop_tables(layout: Layout, report: Report) -> None:
    """Drop the module's tables (the migrations' list) with the core copy, on this interpreter."""
    core = layout.core_current
    if not (core / PACKAGE / "store" / "migrations.py").is_file() or not (core / "pymysql").is_dir():
        raise InstallError(
            f"{core} is missing, so the tables cannot be dropped; reinstall, then remove the module "
            f"with its data again (or drop by hand the tables {', '.join(module_tables())})")
    step("dropping the module's tables")
    proc = run([sys.executable, "-I", "-S", "-c", DROP, str(core)],
               "dropping the module's tables", env=release_env(layout), timeout=300)
    said = proc.stdout.strip().splitlines()  # "dropped: <names>" or "no module tables found"
    report.add("database", said[-1] if said else "no module tables found")
