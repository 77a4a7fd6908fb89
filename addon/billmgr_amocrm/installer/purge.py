"""Remove the module's data: its tables, R/etc/amocrm, R/var/amocrm and what is left in R/lib/amocrm.

Two ways in, both saying first what they will remove:

* ``amocrm-install --uninstall --drop-data``: the module goes, and its data with it;
* ``R/lib/amocrm/amocrm-purge [--yes]``: the command a plain uninstall leaves behind (the
  package's removal runs one), for when the data is to go later: ``dpkg --purge`` runs it,
  and after ``rpm -e`` (RPM has no purge) the admin does. Without ``--yes`` it only says
  what it would remove.

The tables are dropped by ``billmgr_amocrm.store.migrations --drop`` (exactly
``MODULE_TABLES``, never by a name prefix), run on the host's Python from
R/lib/amocrm/core/current, which carries its own PyMySQL (core.py): neither the virtualenv
nor the package's source tree is needed, and after a package removal both are gone. If the
drop fails (the database is down, another table references ours), nothing else is removed
and the command can be run again. The logs (var/amocrm_task.log, var/amocrm_action.log)
are kept.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import List, Optional

from ..foundation.exitstatus import ExitStatus
from .database import drop_tables, module_tables
from .layout import Layout, install_lock
from .system import EXEC_MODE, InstallError, Report, remove_path, write_file

COMMAND = "amocrm-purge"
LAUNCHER = '''#!{python} -IS
"""Remove billmgr-amocrm's data from this BILLmanager: see billmgr_amocrm/installer/purge.py.

    {path} [--yes]      without --yes it only says what it would remove
"""
import os
import sys

sys.dont_write_bytecode = True
here = os.path.dirname(os.path.realpath(__file__))  # R/lib/amocrm
sys.path.insert(0, os.path.join(here, "core", "current"))
from billmgr_amocrm.installer.purge import main  # noqa: E402

sys.exit(main(os.path.dirname(os.path.dirname(here)), sys.argv[1:]))
'''


def write_purge_command(layout: Layout, python: str) -> None:
    """R/lib/amocrm/amocrm-purge, run by ``python`` (the host's, see core.py), root 0750."""
    text = LAUNCHER.format(python=python, path=layout.purge_command)
    write_file(layout.purge_command, text.encode(), EXEC_MODE)


def plan(layout: Layout) -> List[str]:
    """What a purge removes, as it is told to the admin before anything happens."""
    return [
        f"  tables:      {', '.join(module_tables())} (those that exist; {database_of(layout)})",
        f"  config:      {layout.amocrm_etc} (amocrm.conf, presets, the client secret, the tokens)",
        f"  state:       {layout.state} (the spool, locks, client state)",
        f"  module:      {layout.lib} (what was left of the module, this command included)",
        f"  kept:        the logs {layout.root / 'var' / 'amocrm_task.log'}, "
        f"{layout.root / 'var' / 'amocrm_action.log'}",
    ]


def database_of(layout: Layout) -> str:
    from ..dbconf import DbConfigError, load_db_settings
    from ..paths import HostPaths

    try:
        db = load_db_settings(HostPaths(layout.root))
    except DbConfigError as exc:
        return f"the database of {layout.db_conf}: {exc}"
    return f"database {db.database} on {db.unix_socket or f'{db.host}:{db.port}'}, from {layout.db_conf}"


def purge_data(layout: Layout, report: Report) -> None:
    """Drop the tables, then remove etc/amocrm and var/amocrm. The caller holds the install lock."""
    drop_tables(layout, report)
    remove_path(layout.amocrm_etc)
    remove_path(layout.state)
    report.add("data", f"removed {layout.amocrm_etc} and {layout.state}")


def remove_lib(layout: Layout) -> None:
    """R/lib/amocrm and everything in it (the core copy, this command, the lock)."""
    remove_path(layout.lib)
    with contextlib.suppress(OSError):
        layout.lib.parent.rmdir()  # R/lib, if the module was all it held


def main(root: str, argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description="Remove billmgr-amocrm's data: its tables, "
                                     "etc/amocrm and var/amocrm (the module itself is already removed).")
    parser.add_argument("--yes", action="store_true", help="remove it (without: only say what would go)")
    args = parser.parse_args(argv)
    layout = Layout(Path(root))
    if layout.manifest.exists():
        sys.stderr.write(f"{COMMAND}: the module is still installed in {layout.root}: remove it with its "
                         "data (amocrm-install --uninstall --drop-data, or purge the package)\n")
        return ExitStatus.ERROR
    sys.stdout.write(f"{COMMAND}: {'removing' if args.yes else 'this would remove'} the module's data "
                     f"from {layout.root}:\n" + "\n".join(plan(layout)) + "\n")
    sys.stdout.flush()
    if not args.yes:
        sys.stdout.write(f"{COMMAND}: nothing removed; run again with --yes\n")
        return ExitStatus.OK
    report = Report()
    try:
        with install_lock(layout):
            purge_data(layout, report)
    except InstallError as exc:
        sys.stderr.write(f"{COMMAND}: ERROR: {exc}\n{COMMAND}: nothing else was removed; run it again "
                         "once the cause is fixed\n")
        return ExitStatus.ERROR
    remove_lib(layout)
    report.add("module", f"removed {layout.lib}")
    report.show(f"billmgr-amocrm data removed from {layout.root}")
    return ExitStatus.OK
