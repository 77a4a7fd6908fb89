"""`make package`: a .deb and an .rpm named billmanager-plugin-amocrm carrying the source tree."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import List

import pytest

from tests.install.conftest import REPO

# Tests sharing one install must run on one xdist worker (make test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("install-package")

BUILD = REPO / ".packaging" / "build"
PREFIX = "/usr/local/mgr5/src/amocrm"


def version() -> str:
    match = re.search(r'^version\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert match
    return match.group(1)


def tools_or_skip() -> None:
    if not shutil.which("dpkg-deb"):
        pytest.skip("dpkg-deb is not installed (package dpkg)")
    can_install_rpm = os.geteuid() == 0 and shutil.which("apt-get")
    if not shutil.which("rpmbuild") and not can_install_rpm:
        pytest.skip("rpmbuild is missing and cannot be installed here (needs root + apt-get: package rpm)")


def out(cmd: List[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout


def test_build_makes_deb_and_rpm_with_the_same_tree(tmp_path: Path) -> None:
    tools_or_skip()
    proc = subprocess.run([str(BUILD), "--dist", str(tmp_path)], capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    ver = version()
    deb = tmp_path / f"billmanager-plugin-amocrm_{ver}_all.deb"
    rpm = tmp_path / f"billmanager-plugin-amocrm-{ver}-1.noarch.rpm"
    assert deb.is_file() and rpm.is_file(), sorted(p.name for p in tmp_path.iterdir())

    deb_files = {line.split()[-1].lstrip(".").rstrip("/")
                 for line in out(["dpkg-deb", "-c", str(deb)]).splitlines()
                 if line.startswith("-")}
    rpm_files = set(out(["rpm", "-qlp", str(rpm)]).splitlines())  # files and directories
    must = [f"{PREFIX}/sbin/amocrm-install", f"{PREFIX}/addon/billmgr_amocrm/__init__.py",
            f"{PREFIX}/addon/billmgr_amocrm/installer/cli.py",
            f"{PREFIX}/addon/amocrm_event", f"{PREFIX}/.packaging/requirements.lock",
            f"{PREFIX}/.packaging/find-python", f"{PREFIX}/pyproject.toml"]
    for path in must:
        assert path in deb_files, path
        assert path in rpm_files, path
    assert deb_files <= rpm_files
    assert not [p for p in deb_files if "__pycache__" in p or p.endswith(".pyc") or ".egg-info" in p]
    assert not [p for p in deb_files if not p.startswith(PREFIX + "/")]

    assert out(["dpkg-deb", "-f", str(deb), "Package"]).strip() == "billmanager-plugin-amocrm"
    assert out(["dpkg-deb", "-f", str(deb), "Version"]).strip() == ver
    assert out(["rpm", "-qp", "--qf", "%{NAME} %{VERSION} %{ARCH}", str(rpm)]) == \
        f"billmanager-plugin-amocrm {ver} noarch"

    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
    assert f"{PREFIX}/sbin/amocrm-install --root /usr/local/mgr5" in (control / "postinst").read_text()
    prerm = (control / "prerm").read_text()
    assert "--uninstall" in prerm and "--drop-data" not in prerm
    scripts = out(["rpm", "-qp", "--scripts", str(rpm)])
    post, _, preun = scripts.partition("preuninstall scriptlet")
    assert f"{PREFIX}/sbin/amocrm-install --root /usr/local/mgr5" in post
    assert "--uninstall" in preun and "--drop-data" not in preun
