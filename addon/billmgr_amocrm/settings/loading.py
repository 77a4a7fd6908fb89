"""Load (read, check, compile) and save the module's settings for one host root.

The panel and the worker both save amocrm.conf. Saves are serialized by a lock
(``HostPaths.config_lock``), and each load notes the file's version (a hash of its
content): a save made from an older version than the file now holds is refused with
:class:`SettingsChanged` instead of silently undoing the other save. A change that is not
an admin's edit (the worker recording the marker field ids, an authorization recording the
account) goes through :func:`update_config`: read, change and write under the lock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, ContextManager, Optional

from ..foundation.files import write_atomic
from ..foundation.locks import FileLock
from ..paths import HostPaths
from ..rules.config import ModuleConfig
from ..rules.config_check import config_from, config_text
from ..rules.mapping import RuleSet
from ..rules.presets import Presets, presets_from
from .files import SettingsFiles, read_files, read_if_present

# a save waits this long for another one to finish
SAVE_LOCK_SECONDS = 30.0


class SettingsChanged(Exception):
    """amocrm.conf was saved by someone else after it was read: this save would undo theirs."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"{path} changed since it was read (another save came first): nothing was "
                         "written; read the settings again and repeat the change")


@dataclass(frozen=True)
class Settings:
    """amocrm.conf and the presets, checked, and the rule set compiled from them."""

    config: ModuleConfig
    presets: Presets
    rules: RuleSet
    # amocrm.conf as it was read (see version_of)
    version: str = ""
    # presets.default and presets.custom as they were read (see version_of)
    presets_version: str = ""

    @property
    def source_version(self) -> str:
        """All three files as they were read: what a running worker compares to notice a save."""
        return f"{self.version}+{self.presets_version}"


# the version of an amocrm.conf that does not exist yet (the defaults apply)
NO_FILE = "none"


def version_of(text: Optional[str]) -> str:
    """The version of amocrm.conf's content, to tell whether it changed since it was read."""
    return NO_FILE if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def compile_settings(files: SettingsFiles) -> Settings:
    """The files as read -> checked config and presets -> the compiled rule set (pure)."""
    presets = presets_from(files.presets_default, files.presets_custom)
    config = config_from(files.config, presets)
    custom = files.presets_custom.text if files.presets_custom is not None else ""
    return Settings(config=config, presets=presets, rules=RuleSet(config, presets),
                    version=version_of(files.config.text if files.config is not None else None),
                    presets_version=version_of(f"{len(files.presets_default.text)}:{files.presets_default.text}"
                                               f"{custom}"))


def load(paths: HostPaths) -> Settings:
    """Everything the rules need for this host root; ``ConfigError`` names the file, path and problem."""
    return compile_settings(read_files(paths))


def save_config(config: ModuleConfig, paths: HostPaths, presets: Presets,
                read_version: Optional[str] = None) -> str:
    """Check, then replace amocrm.conf atomically with mode 0600; a refused config writes nothing.

    ``read_version``: the version the change was made from (``Settings.version``); when the
    file holds another one now, :class:`SettingsChanged` and nothing is written. Returns
    the version written."""
    with _locked(paths):
        return _write(config, paths, presets, read_version)


def update_config(paths: HostPaths, change: Callable[[Settings], ModuleConfig]) -> Settings:
    """Read the latest settings, change them and save, all under the lock: nobody's save is lost."""
    with _locked(paths):
        current = load(paths)
        config = change(current)
        version = _write(config, paths, current.presets, current.version)
        return Settings(config, current.presets, RuleSet(config, current.presets), version,
                        current.presets_version)


def _locked(paths: HostPaths) -> ContextManager[FileLock]:
    """One save at a time; ``LockTimeout`` names the holder of a save that takes too long."""
    return FileLock(paths.config_lock, note_holder=True).held(timeout=SAVE_LOCK_SECONDS)


def _write(config: ModuleConfig, paths: HostPaths, presets: Presets, read_version: Optional[str]) -> str:
    text = config_text(config, presets, str(paths.amocrm_conf))
    if read_version is not None:
        now = read_if_present(paths.amocrm_conf)
        if version_of(now.text if now is not None else None) != read_version:
            raise SettingsChanged(str(paths.amocrm_conf))
    write_atomic(paths.amocrm_conf, text)
    return version_of(text)
