"""The panel's handlers and the admin's tools in R/addon and R/sbin, the package link, the descriptor."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List

from .layout import DESCRIPTOR, PACKAGE, Layout
from .source import Source
from .system import EXEC_MODE, PUBLIC_FILE, InstallError, Report, remove_path, write_file

# The event hook runs on the host's own Python (core.py), not the virtualenv's: a save in the
# panel must not depend on the venv. It skips site-packages (-S) and the environment (-I): it
# needs only the standard library and its own modules (from R/lib/amocrm/core/current), and
# that saves milliseconds on every save.
HOST_PYTHON_EXECUTABLES = frozenset({"amocrm_event"})
FAST_START_FLAGS = {"amocrm_event": "-IS"}  # one word: Linux passes a shebang's flags as ONE argument


def rewrite_shebang(data: bytes, python: Path, flags: str = "") -> bytes:
    """Point a Python script at the module's interpreter; leave other scripts alone."""
    first, sep, rest = data.partition(b"\n")
    if first.startswith(b"#!") and b"python" in first:
        line = f"#!{python} {flags}".rstrip()
        return line.encode() + sep + rest
    return data


def install_executables(layout: Layout, source: Source, report: Report, host_python: str) -> List[str]:
    """Every executable of the source's addon/ and sbin/, root 0750; returns the paths written."""
    installed: List[str] = []
    targets: Dict[str, Path] = {"addon": layout.addon, "sbin": layout.sbin}
    for sub, files in source.executables().items():
        for src in files:
            dest = targets[sub] / src.name
            python = Path(host_python) if src.name in HOST_PYTHON_EXECUTABLES else layout.venv_python
            flags = FAST_START_FLAGS.get(src.name, "")
            write_file(dest, rewrite_shebang(src.read_bytes(), python, flags), EXEC_MODE)
            installed.append(str(dest))
    names = [str(Path(p).relative_to(layout.root)) for p in installed]
    report.add("executables", ", ".join(names) if names else "none found in the source")
    link_package(layout)
    return [*installed, str(layout.addon_package)]


def link_package(layout: Layout) -> None:
    """R/addon/billmgr_amocrm -> the live release's package (see the package docstring)."""
    target = Path("..") / layout.venv.relative_to(layout.root) / "pkg"
    if layout.addon_package.is_symlink() and Path(os.readlink(layout.addon_package)) == target:
        return
    if layout.addon_package.exists() and not layout.addon_package.is_symlink():
        raise InstallError(f"{layout.addon_package} exists and is not the module's symlink: "
                           "move it away and run the installer again")
    tmp = layout.addon / f".{PACKAGE}.{os.getpid()}"
    remove_path(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, layout.addon_package)


def install_descriptor(layout: Layout, source: Source, report: Report) -> List[str]:
    if not source.descriptor.is_file():
        report.warn(f"{source.descriptor} is missing: the panel descriptor was not installed")
        return []
    dest = layout.xml / DESCRIPTOR
    write_file(dest, source.descriptor.read_bytes(), PUBLIC_FILE)
    report.add("descriptor", str(dest))
    return [str(dest)]


def remove_stale(previous: Dict[str, object], now: List[str]) -> None:
    """Executables a previous version installed and this one no longer ships."""
    old = previous.get("files")
    for path in old if isinstance(old, list) else []:
        if isinstance(path, str) and path not in now:
            remove_path(Path(path))
