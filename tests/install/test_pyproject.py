"""Building and installing the project prints no deprecation warning (the license is an SPDX string)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.install.conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the suite runs on 3.11
    tomllib = pytest.importorskip("tomli")

WARNINGS = ("deprecat", "buildbackendwarning", "setuptoolswarning", "setuptoolsdeprecationwarning")


def test_the_license_is_an_spdx_string_which_setuptools_77_reads() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["license"] == "MIT"
    assert "setuptools>=77" in meta["build-system"]["requires"]


@pytest.mark.parametrize("how", ["wheel", "editable"])
def test_building_the_project_prints_no_deprecation_warning(tmp_path: Path, how: str) -> None:
    """pip -v shows the build backend's output: a wheel build, and the metadata of ``pip install -e .``."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, project / name)
    shutil.copytree(REPO / "addon", project / "addon",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-v"]
    cmd = ([*pip, "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(project)] if how == "wheel"
           else [*pip, "install", "--no-deps", "--dry-run", "-e", str(project)])
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = [line.strip() for line in (proc.stdout + proc.stderr).splitlines()
            if any(word in line.lower() for word in WARNINGS)]
    assert said == []
    if how == "wheel":
        (wheel,) = (tmp_path / "dist").iterdir()
        assert wheel.name.startswith("billmgr_amocrm-") and wheel.name.endswith("-py3-none-any.whl")
