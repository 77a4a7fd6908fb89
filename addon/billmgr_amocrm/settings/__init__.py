"""The settings files -> a checked, compiled rule set: the adapter in front of the pure ``rules``.

Three steps, one way: ``files`` reads presets.default, presets.custom and amocrm.conf;
``rules`` checks them (the presets, then amocrm.conf against them); ``rules.mapping``
compiles the result. ``load`` does all three for a host root; bootstrap, the panel and
(through the services) the CLI use it::

    loaded = settings.load(paths)                     # Settings(config, presets, rules, version)
    settings.save_config(config, paths, presets, loaded.version)   # checked, locked; atomic, 0600;
                                                      # SettingsChanged if saved meanwhile
    settings.update_config(paths, change)             # read-change-write under the lock
"""

from __future__ import annotations

from .files import SettingsFiles, files_stamp, read_files
from .loading import Settings, SettingsChanged, compile_settings, load, save_config, update_config

__all__ = ["Settings", "SettingsChanged", "SettingsFiles", "compile_settings", "files_stamp", "load",
           "read_files", "save_config", "update_config"]
