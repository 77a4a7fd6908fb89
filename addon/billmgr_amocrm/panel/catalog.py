"""amoCRM catalogs (fields, pipelines, users) as the rule forms need them.

``service.catalog()`` returns amoCRM's own shapes (dicts from the API, or objects); this
module reduces them to small frozen views so the forms never depend on more than ids, names,
types and options. Unknown extra keys are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from .. import service
from . import backend
from .i18n import t
from .protocol import PanelRequest
from .responses import PanelError


@dataclass(frozen=True)
class AmoField:
    id: int
    name: str
    type: str
    options: Tuple[Tuple[int, str], ...] = ()  # (enum id, option text) for select fields


@dataclass(frozen=True)
class AmoPipeline:
    id: int
    name: str
    statuses: Tuple[Tuple[int, str, int], ...] = ()  # (id, name, type: 1 = unsorted)

    def status_name(self, status_id: int) -> str | None:
        return next((name for sid, name, _ in self.statuses if sid == status_id), None)


@dataclass(frozen=True)
class Catalog:
    fields: Mapping[str, Tuple[AmoField, ...]]  # "contact"|"company"|"lead" -> fields
    pipelines: Tuple[AmoPipeline, ...]
    users: Tuple[Tuple[int, str, bool], ...]  # (id, name, active)
    raw: Any = None  # what the facade returned, for rules.check_against_catalog

    def field(self, kind: str, field_id: int) -> AmoField | None:
        return next((f for f in self.fields.get(kind, ()) if f.id == field_id), None)

    def pipeline(self, pipeline_id: int) -> AmoPipeline | None:
        return next((p for p in self.pipelines if p.id == pipeline_id), None)

    def user(self, user_id: int) -> Tuple[int, str, bool] | None:
        return next((u for u in self.users if u[0] == user_id), None)

    def active_users(self) -> Tuple[Tuple[int, str], ...]:
        """``(id, name)`` of the users a lead may be assigned to, by name."""
        return tuple(sorted(((uid, name) for uid, name, active in self.users if active), key=lambda u: u[1]))


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _field(raw: Any) -> AmoField:
    enums = _get(raw, "enums") or _get(raw, "options") or ()
    options = tuple((_int(_get(e, "id")), str(_get(e, "value", "") or "")) for e in enums)
    return AmoField(
        id=_int(_get(raw, "id")),
        name=str(_get(raw, "name", "") or ""),
        type=str(_get(raw, "type", "") or ""),
        options=options,
    )


def _pipeline(raw: Any) -> AmoPipeline:
    statuses: Sequence[Any] = _get(raw, "statuses") or (_get(raw, "_embedded") or {}).get("statuses") or ()
    return AmoPipeline(
        id=_int(_get(raw, "id")),
        name=str(_get(raw, "name", "") or ""),
        statuses=tuple(
            (_int(_get(s, "id")), str(_get(s, "name", "") or ""), _int(_get(s, "type", 0))) for s in statuses
        ),
    )


_ENTITY_KEYS = {
    "contact": ("contact", "contacts"),
    "company": ("company", "companies"),
    "lead": ("lead", "leads"),
}


def from_raw(raw: Any) -> Catalog:
    """Reduce whatever ``service.catalog()`` returned to a :class:`Catalog`."""
    raw_fields = _get(raw, "fields") or _get(raw, "custom_fields") or {}
    fields: Dict[str, Tuple[AmoField, ...]] = {}
    for kind, keys in _ENTITY_KEYS.items():
        items: List[Any] = []
        for key in keys:
            found = _get(raw_fields, key)
            if found:
                items = list(found)
                break
        fields[kind] = tuple(_field(f) for f in items)
    pipelines = tuple(_pipeline(p) for p in (_get(raw, "pipelines") or ()))
    users = tuple(
        (
            _int(_get(u, "id")),
            str(_get(u, "name", "") or ""),
            bool(
                _get(u, "active", True)
                if _get(u, "rights") is None
                else _get(_get(u, "rights"), "is_active", True)
            ),
        )
        for u in (_get(raw, "users") or ())
    )
    return Catalog(fields=fields, pipelines=pipelines, users=users, raw=raw)


# A rule's config key (``fields.0.<key>...``) -> the form field that sets it.
FORM_FIELD_OF = {"field_type": "field_id"}


def issues_for(cat: Catalog, config: Any, rule_id: str, request: PanelRequest) -> None:
    """``rules.check_against_catalog`` for one rule: its first issue becomes a form error naming the
    form field by its label."""
    lang = request.lang
    module = backend.rules_catalog_check(lang)
    raw = cat.raw
    found = module.check_against_catalog(
        config, _get(raw, "fields") or {}, _get(raw, "pipelines") or [], _get(raw, "users") or []
    )
    for issue in found:
        if issue.rule_id == rule_id:
            parts = issue.path.split(".")
            key = parts[2] if len(parts) > 2 else parts[-1]
            field = FORM_FIELD_OF.get(key, key)
            text = t("catalog_issue", lang, field=request.label(field), detail=issue.message(lang))
            raise PanelError(text, obj=field)


def cached() -> Catalog | None:
    """The last catalog the facade fetched (``service.cached_catalog``): no database, no network.

    Lists use it to show names; ``None`` when no catalog was ever fetched or the file is unreadable
    (a list then shows ids rather than fail or wait for amoCRM).
    """
    data = service.cached_catalog()
    if data is None or not isinstance(data.get("pipelines"), list):
        return None
    try:
        return from_raw(data)
    except (AttributeError, TypeError):  # a hand-edited cache of another shape: show ids instead
        return None


def load(lang: str) -> Catalog:
    """The catalog through the facade; a failure is a form error saying what to check."""
    try:
        raw = service.catalog()
    except Exception as exc:  # noqa: BLE001 - any failure means the same to the admin
        detail = backend.service_message(exc, lang)
        raise PanelError(t("catalog_unavailable", lang, detail=detail[:300]), kind="plugin") from None
    return from_raw(raw)
