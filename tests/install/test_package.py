"""`make package`: the .deb and the .rpm, built, then installed, upgraded, removed and purged for real.

Both are installed into temporary roots by the real package managers, with their maintainer
scripts running on this host: ``dpkg --root`` with chrootless scripts (the scripts honour
``DPKG_ROOT``) and ``rpm --prefix`` (the package is relocatable: the prefix is the BILLmanager
root; the scriptlets read ``RPM_INSTALL_PREFIX``), each with a database of its own. Every
package-manager command runs with no network (offline.py), and the test first shows that a
download attempt fails there: the packages carry their dependencies.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from billmgr_amocrm.dbconf import DbSettings
from billmgr_amocrm.installer.lock import read_wheels, sha256_of
from billmgr_amocrm.store.migrations import MODULE_TABLES
from tests.fixtures.database import temporary_database
from tests.harness import run_addon
from tests.install.conftest import REPO, Host, make_host
from tests.install.offline import Offline, offline_for, prove_downloads_fail

# Tests sharing one install must run on one xdist worker (make test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("install-package")

BUILD = REPO / ".packaging" / "build"
PREFIX = "/usr/local/mgr5/src/amocrm"
NAME = "billmanager-plugin-amocrm"
UPGRADE = "0.1.0.post1"  # the version the upgrade test builds: sorts after pyproject's for dpkg and rpm
# Optional: where it exists, the .rpm test builds the module's venv on Python 3.9 (AMOCRM_PYTHON).
PY39 = Path("/root/.pyenv/versions/3.9.18/bin/python3.9")
# Every module of the package, imported by the installed venv's interpreter (3.9 for the .rpm where
# pyenv has it): what only fails at run time on an old Python (a pydantic model's annotations) fails here.
IMPORT_ALL = ("import importlib, pkgutil, billmgr_amocrm as p\n"
              "names = [m.name for m in pkgutil.walk_packages(p.__path__, 'billmgr_amocrm.')]\n"
              "for name in names:\n    importlib.import_module(name)\n"
              "import sys; print(len(names), '%d.%d' % sys.version_info[:2])\n")
SAVED = ('<?xml version="1.0" encoding="UTF-8"?>\n<doc lang="ru" func="service.postopen">'
         "<elid>77</elid><ok/><name>VDS «Тест» &amp; Co</name></doc>\n").encode()


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


@dataclass(frozen=True)
class Built:
    deb: Dict[str, Path]   # version -> file
    rpm: Dict[str, Path]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Both packages at pyproject's version and at UPGRADE, built once for the module."""
    tools_or_skip()
    dist = tmp_path_factory.mktemp("dist")
    for ver in (version(), UPGRADE):
        proc = subprocess.run([str(BUILD), "--dist", str(dist), "--version", ver], capture_output=True,
                              text=True, timeout=1200, check=False)
        assert proc.returncode == 0, proc.stderr
    deb = {ver: dist / f"{NAME}_{ver}_all.deb" for ver in (version(), UPGRADE)}
    rpm = {ver: dist / f"{NAME}-{ver}-1.noarch.rpm" for ver in (version(), UPGRADE)}
    assert all(p.is_file() for p in [*deb.values(), *rpm.values()]), sorted(p.name for p in dist.iterdir())
    return Built(deb, rpm)


def test_build_makes_deb_and_rpm_with_the_same_tree_and_every_locked_wheel(built: Built) -> None:
    ver = version()
    deb, rpm = built.deb[ver], built.rpm[ver]
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
    # Every wheel of the lock, and nothing else, for every target Python: lxml for cp39..cp312.
    wheels = read_wheels(REPO / ".packaging" / "requirements.lock")
    shipped = {p.rsplit("/", 1)[1] for p in deb_files if p.startswith(f"{PREFIX}/.packaging/wheelhouse/")}
    assert shipped == set(wheels)
    assert {f"cp3{minor}" for minor in (9, 10, 11, 12)} <= {
        name.split("-")[2] for name in shipped if name.startswith("lxml-")}
    assert {f"{PREFIX}/.packaging/wheelhouse/{name}" for name in wheels} <= rpm_files

    assert out(["dpkg-deb", "-f", str(deb), "Package"]).strip() == NAME
    assert out(["dpkg-deb", "-f", str(deb), "Version"]).strip() == ver
    assert out(["dpkg-deb", "-f", str(deb), "Depends"]).strip() == "python3 (>= 3.9) | python3.9"
    assert out(["rpm", "-qp", "--qf", "%{NAME} %{VERSION} %{ARCH} %{PREFIXES}", str(rpm)]) == \
        f"{NAME} {ver} noarch /usr/local/mgr5"

    control = built.deb[ver].parent / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
    postinst = (control / "postinst").read_text()
    assert '"$T/sbin/amocrm-install" --root "$R" --wheelhouse "$T/.packaging/wheelhouse"' in postinst
    prerm = (control / "prerm").read_text()
    assert "--uninstall" in prerm and "--drop-data" not in prerm
    assert '"$PURGE" --yes' in (control / "postrm").read_text()
    scripts = out(["rpm", "-qp", "--scripts", str(rpm)])
    post, _, preun = scripts.partition("preuninstall scriptlet")
    assert '--root "$R" --wheelhouse "$T/.packaging/wheelhouse"' in post
    assert "--uninstall" in preun and "--drop-data" not in preun


def test_a_cached_wheel_that_does_not_match_the_lock_is_never_shipped(tmp_path: Path) -> None:
    """A tampered cache file is fetched again, hash-checked (the installer would refuse it too)."""
    tools_or_skip()
    proc = subprocess.run([str(BUILD), "--wheels"], capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stderr
    cache = Path(proc.stdout.strip())
    name = sorted(read_wheels(REPO / ".packaging" / "requirements.lock"))[0]
    wheel = cache / name
    saved = tmp_path / name
    shutil.copy2(wheel, saved)
    try:
        with wheel.open("ab") as file:
            file.write(b"tampered")
        # With the file present but wrong, the build downloads the right one back (hash-checked) ...
        again = subprocess.run([str(BUILD), "--wheels"], capture_output=True, text=True, timeout=1200,
                               check=False)
        assert again.returncode == 0, again.stderr
        assert sha256_of(wheel) == sha256_of(saved)
    finally:
        shutil.copy2(saved, wheel)


class Manager:
    """dpkg or rpm on a temporary root, every command without network."""

    kind = ""

    def __init__(self, base: Path, db: DbSettings, offline: Offline) -> None:
        self.base = base
        self.offline = offline
        self.host = self.make_host(db)
        self.root = self.host.root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))
                    and k != "MGR5_ROOT"}
        self.env.update(offline.env)

    def make_host(self, db: DbSettings) -> Host:
        raise NotImplementedError

    def run(self, cmd: List[str], **extra: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.offline.command(cmd), capture_output=True, text=True,
                              env={**self.env, **extra}, timeout=900, check=False)
        said = f"{proc.stdout}\n{proc.stderr}"
        assert proc.returncode == 0, f"{cmd[0]} {cmd[-1]} exited {proc.returncode}:\n{said}"
        return proc

    def install(self, package: Path) -> subprocess.CompletedProcess:
        raise NotImplementedError

    def upgrade(self, package: Path) -> subprocess.CompletedProcess:
        return self.install(package)

    def remove(self) -> subprocess.CompletedProcess:
        raise NotImplementedError

    def purge(self) -> subprocess.CompletedProcess:
        raise NotImplementedError

    def known(self) -> bool:
        """Whether the package manager still lists the package."""
        raise NotImplementedError


class Dpkg(Manager):
    kind = "deb"

    def make_host(self, db: DbSettings) -> Host:
        admin = self.base / "root" / "var" / "lib" / "dpkg"
        for sub in ("info", "updates"):
            (admin / sub).mkdir(parents=True)
        for name in ("status", "available"):
            (admin / name).touch()
        return make_host(self.base / "root" / "usr" / "local", db)   # R = <root>/usr/local/mgr5

    def dpkg(self, *args: str) -> subprocess.CompletedProcess:
        return self.run(["dpkg", f"--root={self.base / 'root'}", f"--log={self.base / 'dpkg.log'}",
                         "--force-script-chrootless", "--force-depends", *args])

    def install(self, package: Path) -> subprocess.CompletedProcess:
        return self.dpkg("-i", str(package))

    def remove(self) -> subprocess.CompletedProcess:
        return self.dpkg("-r", NAME)

    def purge(self) -> subprocess.CompletedProcess:
        return self.dpkg("--purge", NAME)

    def known(self) -> bool:
        status = (self.base / "root" / "var" / "lib" / "dpkg" / "status").read_text()
        return f"Package: {NAME}\n" in status


class Rpm(Manager):
    """RPM has no purge: removal keeps the data, and the command it leaves behind removes it."""

    kind = "rpm"

    def make_host(self, db: DbSettings) -> Host:
        (self.base / "rpmdb").mkdir()
        subprocess.run(["rpm", "--dbpath", str(self.base / "rpmdb"), "--initdb"], check=True)
        return make_host(self.base / "rpm", db)   # R = the prefix

    def rpm(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        return self.run(["rpm", "--dbpath", str(self.base / "rpmdb"), "--nodeps", *args], **extra)

    def venv_python(self) -> Dict[str, str]:
        return {"AMOCRM_PYTHON": str(PY39)} if PY39.is_file() else {}

    def install(self, package: Path) -> subprocess.CompletedProcess:
        return self.rpm("-i", "--prefix", str(self.root), str(package), **self.venv_python())

    def upgrade(self, package: Path) -> subprocess.CompletedProcess:
        return self.rpm("-U", "--prefix", str(self.root), str(package), **self.venv_python())

    def remove(self) -> subprocess.CompletedProcess:
        return self.rpm("-e", NAME)

    def purge(self) -> subprocess.CompletedProcess:
        return self.run([str(self.root / "lib" / "amocrm" / "amocrm-purge"), "--yes"])

    def known(self) -> bool:
        return subprocess.run(["rpm", "--dbpath", str(self.base / "rpmdb"), "-q", NAME],
                              capture_output=True, check=False).returncode == 0


@pytest.fixture(params=[Dpkg, Rpm], ids=["deb", "rpm"])
def manager(request: pytest.FixtureRequest, db_server: DbSettings, tmp_path: Path) -> Iterator[Manager]:
    with temporary_database(db_server) as db:
        offline, reachable = offline_for(db)
        yield request.param(tmp_path, reachable, offline)


def module_tables(host: Host) -> List[str]:
    return sorted(t for t in host.tables() if t in MODULE_TABLES)


def manifest(root: Path) -> dict:
    return json.loads((root / "lib" / "amocrm" / "install.json").read_text())


def fire_a_save(manager: Manager) -> dict:
    spool = manager.root / "var" / "amocrm" / "spool"
    before = set(spool.glob("*.json")) if spool.is_dir() else set()
    run = run_addon(manager.root / "addon" / "amocrm_event", {"func": "service.postopen", "elid": "77",
                                                             "sok": "ok"}, SAVED, extra=manager.host.env())
    assert (run.returncode, run.stdout, run.stderr) == (0, SAVED, b"")
    (new,) = set(spool.glob("*.json")) - before
    return json.loads(new.read_text())


def test_install_upgrade_remove_and_purge_with_no_network(built: Built, manager: Manager, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    root, host, ver = manager.root, manager.host, version()
    refused = prove_downloads_fail(manager.offline, tmp_path / "download")

    # 1. Install: the module's venv is built from the package's wheels, hash-checked, offline.
    started = time.monotonic()
    proc = manager.install(getattr(built, manager.kind)[ver])
    took = time.monotonic() - started
    assert f"billmgr-amocrm {ver} installed into {root}" in proc.stdout
    assert module_tables(host) == sorted(MODULE_TABLES)
    assert manifest(root)["version"] == ver
    assert "-m billmgr exit" in host.mgrctl_calls()
    hook = (root / "addon" / "amocrm_event").read_text()
    assert hook.startswith(f"#!{manifest(root)['host_python']} -IS\n")
    assert fire_a_save(manager)["elid"] == "77"
    venv = root / "lib" / "amocrm" / "venv" / "bin" / "python3"
    imported = subprocess.run([str(venv), "-I", "-c", IMPORT_ALL], capture_output=True, text=True,
                              env={**manager.env, **host.env()}, timeout=300, check=False)
    assert imported.returncode == 0, imported.stderr[-3000:]
    count, python = imported.stdout.split()
    assert int(count) > 50 and manifest(root)["python"].startswith(python + ".")
    if manager.kind == "rpm" and PY39.is_file():
        assert python == "3.9"
    with capsys.disabled():
        print(f"\n  {manager.kind}: installed in {took:.1f} s with no network ({manager.offline.how}; "
              f"a download there failed: ...{refused[-140:]})")

    # What an upgrade and a plain removal must keep.
    (host.etc / "refresh_token").write_text("def50200-kept\n")
    host.sql("INSERT INTO amocrm_item2lead (billmgr_id, amocrm_id) VALUES (77, 7700)")
    release, core = manifest(root)["release"], os.readlink(root / "lib" / "amocrm" / "core" / "current")

    # 2. Upgrade.
    proc = manager.upgrade(getattr(built, manager.kind)[UPGRADE])
    assert f"billmgr-amocrm {UPGRADE} upgraded into {root} (was {ver})" in proc.stdout
    assert manifest(root)["version"] == UPGRADE and manifest(root)["release"] != release
    assert os.readlink(root / "lib" / "amocrm" / "core" / "current") != core
    assert (host.etc / "refresh_token").read_text() == "def50200-kept\n"
    assert host.sql("SELECT amocrm_id FROM amocrm_item2lead WHERE billmgr_id = 77") == [(7700,)]
    assert fire_a_save(manager)["elid"] == "77"

    # 3. Remove: the module leaves the panel, the data and the purge command stay.
    proc = manager.remove()
    purge = root / "lib" / "amocrm" / "amocrm-purge"
    assert "kept" in proc.stdout and f"{purge} --yes" in proc.stdout
    for gone in ("addon/amocrm_event", "addon/amocrm_ui", "sbin/amocrm", "src/amocrm",
                 "etc/xml/billmgr_mod_amocrm.xml", "lib/amocrm/venv", "lib/amocrm/releases"):
        assert not os.path.lexists(root / gone), gone
    assert (host.etc / "refresh_token").read_text() == "def50200-kept\n"
    assert module_tables(host) == sorted(MODULE_TABLES)
    assert os.access(purge, os.X_OK)
    assert manager.known() == (manager.kind == "deb")   # dpkg keeps a removed package's record until purge

    # 4. Purge (RPM: the command removal left behind): says what goes, then drops it; the venv is long gone.
    proc = manager.purge()
    said = proc.stdout
    assert said.index(f"tables:      {', '.join(MODULE_TABLES)}") < said.index("dropped: ")
    assert said.index(f"config:      {host.etc}") < said.index("dropped: ")
    assert sorted(said.split("dropped: ")[1].split("\n")[0].split()) == sorted(MODULE_TABLES)
    assert module_tables(host) == []
    for gone in ("etc/amocrm", "var/amocrm", "lib/amocrm"):
        assert not os.path.lexists(root / gone), gone
    assert (root / "etc" / "billmgr.conf.d" / "db.conf").is_file() and (root / "sbin" / "mgrctl").is_file()
    assert not manager.known()
