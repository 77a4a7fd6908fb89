"""A release: one complete virtualenv under R/lib/amocrm/releases/, built, switched to, pruned.

A release is built beside the running one and becomes live only through the
``venv`` symlink's single rename, so a failed build or migration changes nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from ..foundation.files import fsync_dir
from .layout import PACKAGE, Layout
from .lock import verified_pip_wheel
from .source import Source
from .system import InstallError, remove_path, run, step
from .wheel import build_wheel

MIN_PYTHON = (3, 9)
KEEP_RELEASES = 2  # the current one and the previous one, for a manual rollback


def check_python(python: str) -> str:
    proc = run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
               f"running {python}")
    version = proc.stdout.strip()
    if tuple(int(part) for part in version.split(".")[:2]) < MIN_PYTHON:
        raise InstallError(
            f"{python} is Python {version}; the module needs Python >= 3.9 "
            "(install python39/python3.9 and pass --python /usr/bin/python3.9)"
        )
    return str(version)


def pip_with_python_option(python: str) -> List[str]:
    """``[python, -m, pip]`` when that pip can target another environment, else []."""
    try:
        proc = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True,
                              timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    match = re.match(r"pip (\d+)\.(\d+)", proc.stdout)
    if proc.returncode != 0 or not match or (int(match.group(1)), int(match.group(2))) < (22, 3):
        return []
    return [python, "-m", "pip"]


def pip_env(offline: bool) -> Dict[str, str]:
    """pip's environment: an offline install reads no pip configuration of the host (no index, no mirror)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    if offline:
        env = {k: v for k, v in env.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
    return env


def build_release(layout: Layout, source: Source, version: str, python: str,
                  wheelhouse: Optional[Path]) -> Path:
    """A complete new virtualenv under releases/, not yet in use.

    Every dependency is installed with ``--require-hashes`` against requirements.lock. With
    a wheelhouse (the packages') nothing is downloaded: pip itself runs from its wheel there,
    checked against the lock first, so the host's pip (if any) plays no part.
    """
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    release = layout.releases / f"{version}-{stamp}-{os.getpid()}"
    building = release.with_name(release.name + ".partial")
    layout.releases.mkdir(parents=True, exist_ok=True)
    os.chown(layout.lib, 0, 0)
    layout.lib.chmod(0o755)
    try:
        step(f"creating the virtualenv ({python})")
        venv_python = str(building / "bin" / "python3")
        if wheelhouse:
            pip = [venv_python, str(verified_pip_wheel(source.lock, wheelhouse) / "pip")]
            venv_cmd = [python, "-m", "venv", "--without-pip", str(building)]
        else:
            # The interpreter's own pip can install into the venv (pip >= 22.3, --python), which
            # spares bootstrapping a second pip into every release; otherwise the venv's pip does it.
            outer_pip = pip_with_python_option(python)
            pip = [*outer_pip, "--python", venv_python] if outer_pip else [venv_python, "-m", "pip"]
            venv_cmd = [python, "-m", "venv", *(["--without-pip"] if outer_pip else []), str(building)]
        run(venv_cmd, "creating the virtualenv"
            + ("" if wheelhouse else " (on Debian/Ubuntu install the python3-venv package)"))
        pip += ["install", "--quiet", "--disable-pip-version-check", "--no-input"]
        env = pip_env(offline=wheelhouse is not None)
        where = ["--no-index", "--find-links", str(wheelhouse)] if wheelhouse else []
        step("installing the pinned dependencies" + (f" from {wheelhouse}" if wheelhouse else ""))
        run([*pip, *where, "--require-hashes", "-r", str(source.lock)],
            "installing the dependencies from requirements.lock"
            + (" (the wheelhouse holds CPython 3.9-3.12 x86_64 wheels)" if wheelhouse else ""), env=env)
        with tempfile.TemporaryDirectory(prefix="amocrm-wheel-") as tmp:
            wheel = build_wheel(source, version, Path(tmp))
            step(f"installing {wheel.name}")
            run([*pip, "--no-deps", "--no-index", str(wheel)], "installing the module package", env=env)
        installed = sorted(building.glob(f"lib/python3*/site-packages/{PACKAGE}"))
        if len(installed) != 1:
            raise InstallError(f"the package did not land in {building}/lib/python3*/site-packages")
        os.symlink(installed[0].relative_to(building), building / "pkg")
        # The venv works from any path (bin/python is a symlink, pyvenv.cfg sits beside bin/),
        # so renaming it into place is safe; pip's own scripts are never used.
        building.rename(release)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return release


def release_env(layout: Layout) -> Dict[str, str]:
    """The environment of a release's python: this root, nothing of the caller's Python."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["MGR5_ROOT"] = str(layout.root)
    return env


def switch_release(layout: Layout, release: Path) -> None:
    """Point R/lib/amocrm/venv at the new release in one rename."""
    tmp = layout.lib / f".venv.{os.getpid()}"
    remove_path(tmp)
    os.symlink(Path("releases") / release.name, tmp)
    if layout.venv.is_dir() and not layout.venv.is_symlink():
        shutil.rmtree(layout.venv)  # not ours in this layout; never expected
    os.replace(tmp, layout.venv)
    fsync_dir(layout.lib)
    layout.switched = True


def prune_releases(layout: Layout, current: Path) -> None:
    releases = sorted((p for p in layout.releases.iterdir() if p.is_dir()),
                      key=lambda p: p.stat().st_mtime, reverse=True)
    keep = {current.name}
    for path in releases:
        if path.name.endswith(".partial"):
            continue
        if len(keep) < KEEP_RELEASES:
            keep.add(path.name)
    for path in releases:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
