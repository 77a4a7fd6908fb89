"""Every path the installer writes under the BILLmanager root, the manifest, and the install lock."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator

from ..foundation.locks import FileLock
from .system import PUBLIC_FILE, InstallError, write_file

DEFAULT_ROOT = "/usr/local/mgr5"
PACKAGE = "billmgr_amocrm"
DESCRIPTOR = "billmgr_mod_amocrm.xml"


class Layout:
    """Every path the installer writes, from the BILLmanager root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lib = root / "lib" / "amocrm"
        self.releases = self.lib / "releases"
        self.venv = self.lib / "venv"
        self.venv_python = self.venv / "bin" / "python3"
        self.core = self.lib / "core"  # see core.py: what runs on the host's Python, outside the venv
        self.core_current = self.core / "current"
        self.purge_command = self.lib / "amocrm-purge"
        self.addon_package = root / "addon" / PACKAGE
        self.manifest = self.lib / "install.json"
        self.lock = self.lib / ".install.lock"
        self.addon = root / "addon"
        self.sbin = root / "sbin"
        self.xml = root / "etc" / "xml"
        self.amocrm_etc = root / "etc" / "amocrm"
        self.db_conf = root / "etc" / "billmgr.conf.d" / "db.conf"
        self.state = root / "var" / "amocrm"
        self.mgrctl = root / "sbin" / "mgrctl"
        self.switched = False  # set once the new release is live: from then on there is no rollback

    @property
    def is_real_host(self) -> bool:
        return self.root.resolve() == Path(DEFAULT_ROOT)


@contextmanager
def install_lock(layout: Layout) -> Iterator[None]:
    """One installer at a time per root (a package manager and an admin may overlap)."""
    layout.lib.mkdir(parents=True, exist_ok=True)  # 0755: the releases below it are not secret
    lock = FileLock(layout.lock, note_holder=True)
    if not lock.acquire(timeout=0):
        raise InstallError(f"another amocrm-install is running on {layout.root}: {lock.holder()} "
                           f"holds {layout.lock}; try again")
    try:
        yield
    finally:
        lock.release()


def load_manifest(layout: Layout) -> Dict[str, object]:
    try:
        data = json.loads(layout.manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_manifest(layout: Layout, manifest: Dict[str, object]) -> None:
    write_file(layout.manifest, (json.dumps(manifest, indent=2) + "\n").encode(), PUBLIC_FILE)
