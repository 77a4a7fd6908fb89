"""The panel's only door to the rest of the module: the services, the settings and the rules API.

The service package and the errors are imported here directly (both cost a panel click next
to nothing); the settings and rules modules, which bring pydantic, are imported when a
handler needs them. Every failure of the layers below becomes a :class:`PanelError` in the
admin's language: a ``ServiceError`` carries its own ru/en text, a config error names the
file and the path inside it, a missing component says to reinstall.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterator, Tuple

from .. import service as _service
from ..rules.errors import ConfigError, UnknownRuleError
from ..service import ServiceError
from .i18n import service_hint, t
from .responses import PanelError

if TYPE_CHECKING:
    from ..bootstrap import App
    from ..paths import HostPaths

# the hidden form field that carries amocrm.conf's version from a form's opening to its save
CONF_VERSION = "conf_version"
# a service error that is about another field than the one the form names for its action
FIELD_OF_ERROR = {"another_account": "url"}


def _module(name: str, lang: str) -> ModuleType:
    try:
        return importlib.import_module(f"billmgr_amocrm.{name}")
    except ImportError as exc:
        raise PanelError(
            t("component_missing", lang, module=f"billmgr_amocrm.{name}", detail=str(exc)), kind="plugin",
            detail=str(exc),
        ) from None


def service(lang: str) -> ModuleType:
    """The service package (``lang`` kept for the callers: every door takes the page's language)."""
    return _service


def rules_config(lang: str) -> ModuleType:
    """``rules.config``: amocrm.conf's schema and ``rebuild``."""
    return _module("rules.config", lang)


def service_message(exc: BaseException, lang: str) -> str:
    """The text of a failure in ``lang`` plus its hint (what to do next).

    Any exception is first worded by the facade (``service.translate``: a ``ServiceError``
    stays as it is). The facade's ``hint`` is written in Russian; an English page gets the hint
    that ``i18n.service_hint`` maps from the error's ``code``, so both languages name a next
    step and neither gets a mixed-language message.
    """
    exc = _service.translate(exc)
    text = exc.message(lang)
    hint = service_hint(str(exc.code), lang, exc.hint or "") if exc.code else ""
    if hint and hint not in text:
        text = text.rstrip()
        text = f"{text} {hint}" if text.endswith((".", "!", "?", ":")) else f"{text}. {hint}"
    return text


@contextmanager
def app(lang: str) -> Iterator[App]:
    """One composed application (DB connection, store, billing, rules) for this request."""
    try:
        from ..bootstrap import build

        built = build()
    except Exception as exc:  # noqa: BLE001 - db.conf missing, MySQL down...: the facade words it
        raise PanelError(service_message(exc, lang), kind="plugin", detail=_service.translate(exc).message_en
                         ) from None
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
    except ServiceError as exc:
        raise PanelError(service_message(exc, lang), obj=FIELD_OF_ERROR.get(exc.code, obj),
                         detail=exc.message_en) from None
    except ConfigError as exc:
        raise PanelError(t("config_error", lang, detail=str(exc), place=_service.config_place(exc)), obj=obj,
                         detail=str(exc)) from None
    except UnknownRuleError as exc:
        raise PanelError(t("rule_not_found", lang, id=exc.rule_id), kind="missed") from None


def load_rules(lang: str) -> Tuple[Any, Any]:
    """``(ModuleConfig, Presets)`` from amocrm.conf and the presets files."""
    config, presets, _ = load_for_edit(lang)
    return config, presets


def load_for_edit(lang: str) -> Tuple[Any, Any, str]:
    """``(ModuleConfig, Presets, version)``: what an editing form shows and saves from. The
    version (a hash of amocrm.conf as read) rides in the form's hidden ``conf_version`` field,
    so a save can tell whether someone else saved since the form was opened."""
    settings = _module("settings", lang)
    with translated(lang):
        loaded = settings.load(_paths())
    return loaded.config, loaded.presets, loaded.version


def opened_version(request: Any, read: str) -> str:
    """The version a form was opened from: the one it carries (a save, a refresh of the form),
    else the one read for this request (the form is opening now)."""
    return str(request.param(CONF_VERSION)).strip() or read


def rules_catalog_check(lang: str) -> ModuleType:
    return _module("rules.catalog_check", lang)


def editing(lang: str) -> ModuleType:
    """``rules.editing``: add/update/delete rules by id, ``describe_rule``."""
    return _module("rules.editing", lang)


def save_rules(lang: str, config: Any, presets: Any, read_version: str) -> None:
    """Save amocrm.conf made from ``read_version``; refused (the admin reloads) when someone saved
    another version since (:class:`settings.SettingsChanged`)."""
    settings = _module("settings", lang)
    with translated(lang):
        try:
            settings.save_config(config, _paths(), presets, read_version)
        except settings.SettingsChanged:
            raise PanelError(t("settings_changed", lang)) from None


def _paths() -> HostPaths:
    from ..paths import host_paths

    return host_paths()
