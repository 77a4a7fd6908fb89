"""The part of the module that runs on the host's own Python 3, outside the virtualenv.

    R/lib/amocrm/core/<release>/      billmgr_amocrm (a copy of the release's package) and
                                      pymysql (pure Python, from the release's hash-checked wheel)
    R/lib/amocrm/core/current -> <release>

Two things run from it, because they must keep working when the virtualenv does not:

* the event hook (R/addon/amocrm_event): every hooked save in the panel runs it, and it needs
  only the standard library; if the distribution upgrades or removes the Python the
  virtualenv was built with, the hook must still echo the document and spool the event;
* the purge (R/lib/amocrm/amocrm-purge, see purge.py): it drops the module's tables after
  the package is removed, when the virtualenv and the packaged source tree are gone.

Their interpreter (``host_python``): the host's ``/usr/bin/python3`` when it is 3.9 or newer
(a name that survives the distribution's upgrades of Python), else the interpreter the
virtualenv is built with (AlmaLinux 8's /usr/bin/python3.9), taken out of any virtualenv.
The copy is byte-compiled by that interpreter and switched with one rename, like the venv.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable, Optional, Tuple

from ..foundation.files import fsync_dir
from .layout import PACKAGE, Layout
from .release import check_python
from .system import InstallError, remove_path, run, step

HOST_PYTHON = "/usr/bin/python3"
PURE_DEPENDENCIES = ("pymysql",)  # what the purge needs beyond the standard library
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
_BASE = "import sys; print(sys.base_prefix); print('%d.%d' % sys.version_info[:2])"


def host_python(python: str, explicit: Optional[str] = None) -> Tuple[str, str]:
    """``(path, version)`` of the interpreter for the hook and the purge (see the module docstring)."""
    if explicit:
        return explicit, check_python(explicit)
    if os.access(HOST_PYTHON, os.X_OK):
        try:
            return HOST_PYTHON, check_python(HOST_PYTHON)
        except InstallError:
            pass  # 3.6 on AlmaLinux 8, 3.8 on Ubuntu 20.04: use the venv's interpreter
    base_prefix, version = run([python, "-I", "-c", _BASE], f"running {python}").stdout.splitlines()[:2]
    for candidate in (f"{base_prefix}/bin/python{version}", f"{base_prefix}/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate, check_python(candidate)
    return python, check_python(python)


def build_core(layout: Layout, release: Path, python: str) -> Path:
    """R/lib/amocrm/core/<release>: the release's package and pure dependencies, compiled; not live yet."""
    step(f"copying what runs outside the virtualenv into {layout.core.relative_to(layout.root)}/ ({python})")
    package = (release / "pkg").resolve()
    site_packages = package.parent
    core = layout.core / release.name
    layout.core.mkdir(parents=True, exist_ok=True)
    remove_path(core)
    try:
        shutil.copytree(package, core / PACKAGE, ignore=_IGNORED)
        for name in PURE_DEPENDENCIES:
            source = site_packages / name
            compiled = [p.name for p in source.rglob("*.so")] if source.is_dir() else ["(missing)"]
            if compiled:
                raise InstallError(f"{source} is not the pure-Python package the core copy needs: {compiled}")
            shutil.copytree(source, core / name, ignore=_IGNORED)
        run([python, "-I", "-S", "-m", "compileall", "-q", str(core)], f"byte-compiling {core}")
    except BaseException:
        shutil.rmtree(core, ignore_errors=True)
        raise
    return core


def switch_core(layout: Layout, core: Path) -> None:
    """Point R/lib/amocrm/core/current at ``core`` in one rename."""
    tmp = layout.core / f".current.{os.getpid()}"
    remove_path(tmp)
    os.symlink(core.name, tmp)
    os.replace(tmp, layout.core_current)
    fsync_dir(layout.core)


def prune_cores(layout: Layout, keep: Iterable[str]) -> None:
    """Remove the copies of releases that are gone; the live one always stays."""
    if not layout.core.is_dir():
        return
    kept = set(keep)
    if layout.core_current.is_symlink():
        kept.add(os.readlink(layout.core_current))
    for path in layout.core.iterdir():
        if path.is_dir() and not path.is_symlink() and path.name not in kept:
            shutil.rmtree(path, ignore_errors=True)
