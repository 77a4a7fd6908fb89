"""Load (read, check, compile) and save the module's settings for one host root."""

from __future__ import annotations

from dataclasses import dataclass

from ..foundation.files import write_atomic
from ..paths import HostPaths
from ..rules.config import ModuleConfig
from ..rules.config_check import config_from, config_text
from ..rules.mapping import RuleSet
from ..rules.presets import Presets, presets_from
from .files import SettingsFiles, read_files


@dataclass(frozen=True)
class Settings:
    """amocrm.conf and the presets, checked, and the rule set compiled from them."""

    config: ModuleConfig
    presets: Presets
    rules: RuleSet


def compile_settings(files: SettingsFiles) -> Settings:
    """The files as read -> checked config and presets -> the compiled rule set (pure)."""
    presets = presets_from(files.presets_default, files.presets_custom)
    config = config_from(files.config, presets)
    return Settings(config=config, presets=presets, rules=RuleSet(config, presets))


def load(paths: HostPaths) -> Settings:
    """Everything the rules need for this host root; ``ConfigError`` names the file, path and problem."""
    return compile_settings(read_files(paths))


def save_config(config: ModuleConfig, paths: HostPaths, presets: Presets) -> None:
    """Check, then replace amocrm.conf atomically with mode 0600; a refused config writes nothing."""
    write_atomic(paths.amocrm_conf, config_text(config, presets, str(paths.amocrm_conf)))
