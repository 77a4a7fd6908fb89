"""The command line of ``sbin/amocrm-install``: arguments, the root check, errors -> exit status."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, NoReturn, Optional

from ..foundation.exitstatus import ExitStatus
from .install import install
from .layout import DEFAULT_ROOT, Layout
from .source import Source, default_source
from .system import InstallError
from .uninstall import uninstall


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors exit with ExitStatus.USAGE."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(ExitStatus.USAGE, f"{self.prog}: error: {message}\n")


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = _Parser(
        prog="amocrm-install", description="Install, upgrade or remove billmgr-amocrm in BILLmanager.")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="BILLmanager root (default %(default)s)")
    parser.add_argument("--source", default=str(default_source()),
                        help="the module's source tree (default: %(default)s, the tree holding "
                             "this installer)")
    parser.add_argument("--uninstall", action="store_true", help="remove the module (keeps data)")
    parser.add_argument("--drop-data", action="store_true",
                        help="with --uninstall: also drop the module's tables and remove etc/amocrm "
                             "and var/amocrm")
    parser.add_argument("--python", help="interpreter for the virtualenv (>= 3.9; default: this one)")
    parser.add_argument("--wheelhouse", help="install the dependencies offline from this wheel directory "
                        "(the packages pass their own); without it they come from the package index")
    parser.add_argument("--host-python", help="interpreter of the event hook and the purge command "
                        "(>= 3.9; default: /usr/bin/python3 if new enough, else the venv's base interpreter)")
    parser.add_argument("--systemd-dir", help="write the worker's systemd unit here (no systemctl)")
    parser.add_argument("--cron-dir", help="write the worker's cron entry here")
    args = parser.parse_args(argv)
    if args.drop_data and not args.uninstall:
        parser.error("--drop-data only goes with --uninstall")
    return args


def main(argv: Optional[List[str]] = None) -> ExitStatus:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    layout = Layout(Path(args.root).absolute())
    source = Source(Path(args.source).absolute())
    try:
        if os.geteuid() != 0:
            raise InstallError("must run as root (the panel runs its handlers as root)")
        if not layout.root.is_dir():
            raise InstallError(f"{layout.root} does not exist: is BILLmanager installed? (see --root)")
        if args.uninstall:
            return uninstall(layout, source, drop_data=args.drop_data)
        return install(layout, source, python=args.python or sys.executable,
                       wheelhouse=Path(args.wheelhouse) if args.wheelhouse else None,
                       systemd_dir=args.systemd_dir, cron_dir=args.cron_dir, hook_python=args.host_python)
    except InstallError as exc:
        sys.stderr.write(f"amocrm-install: ERROR: {exc}\n")
        if not args.uninstall and not layout.switched:
            sys.stderr.write("amocrm-install: nothing was switched; the previous install (if any) "
                             "is unchanged.\n")
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        sys.stderr.write("amocrm-install: interrupted\n")
        return ExitStatus.INTERRUPTED
