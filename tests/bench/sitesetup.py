"""One benchmark site: a temporary mgr5 root, a fresh sandbox database, an emulator subprocess.

Every scenario builds its own site and tears it down (database dropped, emulator
stopped, temp tree removed), so scenarios never see each other's state.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Optional

REPO = Path(__file__).resolve().parents[2]
ADDON = REPO / "addon"
DB_PREFIX = "amocrm_bench_"
LOOPBACK_ENV = "BILLMGR_AMOCRM_ALLOW_LOOPBACK"


def server_settings() -> Any:
    from billmgr_amocrm.dbconf import DbSettings

    return DbSettings(host=os.environ.get("TEST_DB_HOST", "127.0.0.1"),
                      port=int(os.environ.get("TEST_DB_PORT", "3306")),
                      user=os.environ.get("TEST_DB_USER", "root"),
                      password=os.environ.get("TEST_DB_PASSWORD", ""), database="")


def child_env(root: Path) -> Dict[str, str]:
    """Environment for a product process of this site (worker, export child, hook)."""
    env = dict(os.environ)
    env["MGR5_ROOT"] = str(root)
    env[LOOPBACK_ENV] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), str(ADDON), env.get("PYTHONPATH")]))
    return env


@dataclass
class Site:
    """A temp MGR5_ROOT (+ sandbox db and emulator when asked); ``close()`` removes all of it."""

    tmp: Path
    root: Path
    db: Any = None                       # DbSettings of the sandbox, if any
    summary: Any = None                  # SandboxSummary
    emulator: Any = None                 # tests.amocrm_emulator.EmulatorHandle
    sync: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, *, rate_limit: Optional[float] = None, batch_size: Optional[int] = None,
               sync: Optional[Dict[str, Any]] = None) -> Site:
        from tests.fixtures.mgr5 import make_root

        tmp = Path(tempfile.mkdtemp(prefix="amocrm-bench-"))
        root = make_root(tmp)
        site = cls(tmp=tmp, root=root)
        site.write_config(rate_limit=rate_limit, batch_size=batch_size, sync=sync)
        return site

    def write_config(self, *, rate_limit: Optional[float] = None, batch_size: Optional[int] = None,
                     sync: Optional[Dict[str, Any]] = None) -> None:
        """amocrm.conf = the shipped default with the sync settings under test (``sync``: any others)."""
        conf = json.loads((REPO / "etc" / "amocrm" / "amocrm.conf.default").read_text(encoding="utf-8"))
        conf["sync"].update(sync or {})
        if rate_limit is not None:
            conf["sync"]["rate_limit"] = rate_limit
        if batch_size is not None:
            conf["sync"]["batch_size"] = batch_size
        self.sync = dict(conf["sync"])
        path = self.root / "etc" / "amocrm" / "amocrm.conf"
        path.write_text(json.dumps(conf, indent=2), encoding="utf-8")
        path.chmod(0o600)

    def activate(self) -> None:
        """Point this process's host paths at the site (the product reads MGR5_ROOT per call)."""
        os.environ["MGR5_ROOT"] = str(self.root)
        os.environ[LOOPBACK_ENV] = "1"

    def sandbox(self, *, clients: int, services: int, seed: int = 3, requisite_columns: bool = True) -> Any:
        """A sandbox database for this site; ``requisite_columns=False`` also installs the fake
        mgrctl (``tests.sandbox.fake_mgrctl``) that gives the payers' requisites."""
        from billmgr_amocrm.foundation.files import write_atomic
        from tests.sandbox import create_sandbox
        from tests.sandbox.dbconf import render_db_conf
        from tests.sandbox.fake_mgrctl import install_fake_mgrctl

        self.db = replace(server_settings(), database=DB_PREFIX + secrets.token_hex(5))
        self.summary = create_sandbox(self.db, clients=clients, services=services, seed=seed,
                                      requisite_columns=requisite_columns)
        write_atomic(self.root / "etc" / "billmgr.conf.d" / "db.conf", render_db_conf(self.db))
        if not requisite_columns:
            install_fake_mgrctl(self.root, self.db)
        return self.summary

    def start_emulator(self, *, limit: bool) -> Any:
        from tests.amocrm_emulator import start_emulator

        options: Dict[str, Any] = {"rate_limit": 7} if limit else {"rate_limit_enabled": False}
        self.emulator = start_emulator(subprocess_mode=True, **options)
        return self.emulator

    def authorize(self) -> Any:
        """What the settings form does: exchange the code, store tokens, create the marker fields."""
        from billmgr_amocrm import service

        self.activate()
        integ = self.emulator.integration
        return service.authorize(self.emulator.url, integ["client_id"], integ["client_secret"],
                                 integ["redirect_uri"], integ["auth_code"])

    def close(self) -> None:
        if self.emulator is not None:
            try:
                self.emulator.stop()
            finally:
                self.emulator = None
        if self.db is not None:
            from tests.sandbox import drop_database

            try:
                drop_database(self.db)
            finally:
                self.db = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Site:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
