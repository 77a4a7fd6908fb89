"""The settings files -> a checked, compiled rule set: the adapter in front of the pure ``rules``.

Three steps, one way: ``files`` reads presets.default, presets.custom and amocrm.conf;
``rules`` checks them (the presets, then amocrm.conf against them); ``rules.mapping``
compiles the result. ``load`` does all three for a host root; bootstrap, the panel and
(through the services) the CLI use it::

    loaded = settings.load(paths)                     # Settings(config, presets, rules)
    settings.save_config(config, paths, presets)      # checked first; atomic, 0600
"""

from __future__ import annotations

from .files import SettingsFiles, read_files
from .loading import Settings, compile_settings, load, save_config

__all__ = ["Settings", "SettingsFiles", "compile_settings", "load", "read_files", "save_config"]
