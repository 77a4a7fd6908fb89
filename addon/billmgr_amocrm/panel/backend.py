"""The panel's only door to the rest of the module: the service facade and the rules API.

Everything here is imported lazily (a list click must not pay for requests or PyMySQL it does
not use) and every failure of the layers below becomes a :class:`PanelError` in the admin's
language: ``ServiceError`` carries its own ru/en text, a config error names the file and the
path inside it, a missing component says to reinstall.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Iterator, Tuple

from .i18n import service_hint, t
from .responses import PanelError


def _module(name: str, lang: str) -> ModuleType:
    try:
        return importlib.import_module(f"billmgr_amocrm.{name}")
    except ImportError as exc:
        raise PanelError(
            t("component_missing", lang, detail=f"billmgr_amocrm.{name}: {exc}"), kind="plugin"
        ) from None


def service(lang: str) -> ModuleType:
    return _module("service", lang)


def rules_config(lang: str) -> ModuleType:
    """``rules.config``: amocrm.conf's schema and ``rebuild``."""
    return _module("rules.config", lang)


def service_message(exc: BaseException, lang: str) -> str:
    """The text of a ``ServiceError`` in ``lang`` plus its hint (what to do next).

    The facade's ``hint`` is written in Russian; an English page gets the hint that
    ``i18n.service_hint`` maps from the error's ``code`` (or a ``hint_en``, should the facade
    grow one), so both languages name a next step and neither gets a mixed-language message.
    Exceptions that are not the facade's carry no code and get no hint.
    """
    text = getattr(exc, f"message_{lang}", None) or getattr(exc, "message_en", None) or str(exc)
    code = getattr(exc, "code", "") if hasattr(exc, "message_en") else ""
    hint = getattr(exc, f"hint_{lang}", None) or (
        service_hint(str(code), lang, str(getattr(exc, "hint", "") or "")) if code else ""
    )
    if hint and hint not in text:
        text = text.rstrip()
        text = f"{text} {hint}" if text.endswith((".", "!", "?", ":")) else f"{text}. {hint}"
    return str(text)


@contextmanager
def app(lang: str) -> Iterator[Any]:
    """One composed application (DB connection, store, billing, rules) for this request."""
    module = service(lang)
    try:
        from ..bootstrap import build

        built = build()
    except Exception as exc:  # noqa: BLE001 - db.conf missing, MySQL down...: the facade words it
        translate = getattr(module, "_translate", None)
        error = translate(exc) if translate is not None else exc
        raise PanelError(service_message(error, lang), kind="plugin") from None
    try:
        yield built
    finally:
        built.close()


@contextmanager
def translated(lang: str, obj: str = "") -> Iterator[None]:
    """Turn the facade's and the rules layer's exceptions into a localized :class:`PanelError`."""
    try:
        yield
    except PanelError:
        raise
    except Exception as exc:
        names = {cls.__name__ for cls in type(exc).__mro__}
        if "ServiceError" in names:
            field = getattr(exc, "field", "") or obj
            raise PanelError(service_message(exc, lang), obj=field) from None
        if "ConfigError" in names and hasattr(exc, "problems"):
            raise PanelError(t("config_error", lang, detail=str(exc)), obj=obj) from None
        if "UnknownRuleError" in names:
            raise PanelError(
                t("rule_not_found", lang, id=getattr(exc, "rule_id", "?")), kind="missed"
            ) from None
        raise


def load_rules(lang: str) -> Tuple[Any, Any]:
    """``(ModuleConfig, Presets)`` from amocrm.conf and the presets files."""
    settings = _module("settings", lang)
    with translated(lang):
        loaded = settings.load(_paths())
    return loaded.config, loaded.presets


def rules_catalog_check(lang: str) -> ModuleType:
    return _module("rules.catalog_check", lang)


def editing(lang: str) -> ModuleType:
    """``rules.editing``: add/update/delete rules by id, ``describe_rule``."""
    return _module("rules.editing", lang)


def save_rules(lang: str, config: Any, presets: Any) -> None:
    settings = _module("settings", lang)
    with translated(lang):
        settings.save_config(config, _paths(), presets)


def _paths() -> Any:
    from ..paths import host_paths

    return host_paths()
