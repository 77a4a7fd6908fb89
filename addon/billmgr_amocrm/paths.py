"""Every host path the module touches, derived from one root.

The root is ``/usr/local/mgr5`` on a real BILLmanager host and ``$MGR5_ROOT``
when that variable is set (tests and the demo always set it).  Paths are computed
on each call so a test can switch roots without reloading modules.

Imports only ``os`` at module level: the event hook uses this module on every save
and ``pathlib`` alone costs it milliseconds, so the hook takes the ``*_str`` helpers
and everyone else the :class:`HostPaths` object.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

DEFAULT_ROOT = "/usr/local/mgr5"
ROOT_ENV = "MGR5_ROOT"


class HostPaths:
    """Named locations under one BILLmanager root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # configuration -------------------------------------------------------
    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def amocrm_etc(self) -> Path:
        return self.etc / "amocrm"

    @property
    def amocrm_conf(self) -> Path:
        return self.amocrm_etc / "amocrm.conf"

    @property
    def presets_default(self) -> Path:
        return self.amocrm_etc / "presets.default"

    @property
    def presets_custom(self) -> Path:
        return self.amocrm_etc / "presets.custom"

    @property
    def client_secret(self) -> Path:
        """The integration's secret key, kept out of amocrm.conf so the config can be shown and diffed."""
        return self.amocrm_etc / "client_secret"

    @property
    def access_token(self) -> Path:
        return self.amocrm_etc / "access_token"

    @property
    def refresh_token(self) -> Path:
        return self.amocrm_etc / "refresh_token"

    @property
    def token_meta(self) -> Path:
        """Expiry, base domain and api domain that belong with the token pair."""
        return self.amocrm_etc / "token.json"

    @property
    def token_lock(self) -> Path:
        return self.amocrm_etc / "token.lock"

    @property
    def db_conf(self) -> Path:
        return self.etc / "billmgr.conf.d" / "db.conf"

    @property
    def debug_conf(self) -> Path:
        return self.etc / "debug.conf"

    # runtime ---------------------------------------------------------------
    @property
    def var(self) -> Path:
        return self.root / "var"

    @property
    def task_log(self) -> Path:
        return self.var / "amocrm_task.log"

    @property
    def action_log(self) -> Path:
        return self.var / "amocrm_action.log"

    @property
    def state_dir(self) -> Path:
        """Module runtime state: spool, locks, rate-limiter state."""
        return self.var / "amocrm"

    @property
    def spool_dir(self) -> Path:
        """Events the panel hook recorded and the worker has not yet moved into MySQL."""
        return self.state_dir / "spool"

    @property
    def worker_lock(self) -> Path:
        return self.state_dir / "amocrm_task.lock"

    @property
    def schedule_file(self) -> Path:
        """When this host's periodic duties (the token keep-alive) last ran."""
        return self.state_dir / "schedule.json"

    @property
    def config_lock(self) -> Path:
        """Held around every save of amocrm.conf (the panel and the worker both save it)."""
        return self.state_dir / "amocrm_conf.lock"

    @property
    def rate_state(self) -> Path:
        return self.state_dir / "ratelimit.state"

    @property
    def timeline_file(self) -> Path:
        """What this host last stamped the database with (sync/timeline.py): never in its backup."""
        return self.state_dir / "timeline.json"

    @property
    def client_state(self) -> Path:
        """Shared amoCRM client state: re-authorize, 403 block / 402 stop and the next probe."""
        return self.state_dir / "client_state.json"

    # code -----------------------------------------------------------------
    @property
    def sbin_dir(self) -> Path:
        return self.root / "sbin"

    @property
    def mgrctl(self) -> Path:
        return self.sbin_dir / "mgrctl"


def mgr5_root_str() -> str:
    return os.environ.get(ROOT_ENV) or DEFAULT_ROOT


def mgr5_root() -> Path:
    """The BILLmanager root: ``$MGR5_ROOT`` or ``/usr/local/mgr5``."""
    from pathlib import Path

    return Path(mgr5_root_str())


def spool_dir_str() -> str:
    """``HostPaths.spool_dir`` without pathlib, for the panel hook."""
    return os.path.join(mgr5_root_str(), "var", "amocrm", "spool")


def task_log_str() -> str:
    """``HostPaths.task_log`` without pathlib, for the panel hook."""
    return os.path.join(mgr5_root_str(), "var", "amocrm_task.log")


def host_paths() -> HostPaths:
    return HostPaths(mgr5_root())
