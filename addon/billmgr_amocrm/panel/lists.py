"""The module's lists: the bindings table and the four rule sections.

Bindings are paged, sorted and filtered in the database (there may be 100,000 of them); the
rule lists are small and come straight from amocrm.conf.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from . import backend, filters
from . import catalog as amo_catalog
from .i18n import t
from .protocol import PanelRequest
from .responses import Reply, list_, page_of

KINDS = ("contact", "company", "lead")
AMO_PATHS = {"contact": "contacts", "company": "companies", "lead": "leads"}
# list column -> the store's order key
BINDING_SORTS = {
    "kind": "kind",
    "billmgr_id": "billmgr_id",
    "entity": "billmgr_id",
    "amocrm_id": "amocrm_id",
    "state": "state",
    "last_sync": "last_sync_at",
}


def format_time(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone()
    return value.strftime("%Y-%m-%d %H:%M:%S")


def amocrm_url(base_url: str, kind: str, amocrm_id: int | None) -> str:
    """``https://{subdomain}.amocrm.ru/{contacts|companies|leads}/detail/{id}``."""
    if not base_url or not amocrm_id:
        return ""
    return f"{base_url.rstrip('/')}/{AMO_PATHS[kind]}/detail/{amocrm_id}"


def state_text(state: str, last_error: str, lang: str) -> str:
    if state == "failed":
        return t("state_failed", lang, reason=(last_error or "?")[:500])
    return t(f"state_{state}", lang) if state in ("synced", "queued") else state


def _get(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)


def binding_row(row: Any, names: Mapping[str, Mapping[int, str]], base_url: str, lang: str) -> Dict[str, Any]:
    kind = str(getattr(_get(row, "kind"), "value", _get(row, "kind")))
    billmgr_id = int(_get(row, "billmgr_id"))
    amocrm_id = _get(row, "amocrm_id")
    name = _get(row, "name") or names.get(kind, {}).get(billmgr_id) or ""
    return {
        "id": f"{kind}:{billmgr_id}",
        "kind": t(f"kind_{kind}", lang),
        "billmgr_id": billmgr_id,
        "entity": f"#{billmgr_id} {name}".strip(),
        "amocrm_id": amocrm_id or "",
        "amocrm_url": amocrm_url(base_url, kind, amocrm_id),
        "state": state_text(str(_get(row, "state", "")), str(_get(row, "last_error", "") or ""), lang),
        "last_sync": format_time(_get(row, "last_sync_at")),
        "notes": int(_get(row, "notes", 0) or 0),
        "tasks": int(_get(row, "tasks", 0) or 0),
    }


def bindings(request: PanelRequest) -> Reply:
    lang = request.lang
    page = page_of(request, BINDING_SORTS, "last_sync", default_cnt=50)
    if not request.param("p_sort"):
        page = type(page)(num=page.num, cnt=page.cnt, sort="last_sync", order="desc")
    chosen = filters.current(request)
    service = backend.service(lang)
    with backend.app(lang) as app, backend.translated(lang):
        result = service.bindings(
            kind=chosen.kind or None,
            state=chosen.state or None,
            search=chosen.search or None,
            order=BINDING_SORTS[page.sort],
            descending=page.descending,
            limit=page.cnt,
            offset=page.offset,
            app=app,
        )
        rows: Sequence[Any] = _get(result, "rows", ())
        names = _get(result, "names", None) or _names(app, rows)
        base_url = str(app.config.auth.url or "") or _token_base_url(service)
    data = [binding_row(row, names, base_url, lang) for row in rows]
    total = int(_get(result, "total", len(data)))
    return Reply(list_(request, data, total=total, page=page), result="listed")


def _names(app: Any, rows: Sequence[Any]) -> Dict[str, Dict[int, str]]:
    """Readable names of one page of rows, one query per kind (``BillingDb.names``)."""
    wanted: Dict[str, List[int]] = {}
    for row in rows:
        kind = _get(row, "kind")
        wanted.setdefault(str(getattr(kind, "value", kind)), []).append(int(_get(row, "billmgr_id")))
    from ..domain import Kind

    return {kind: dict(app.billing.names(Kind(kind), ids)) for kind, ids in wanted.items()}


def _token_base_url(service: Any) -> str:
    """The account URL recorded with the tokens (a file read, no network)."""
    try:
        return str(service.token_status().base_url or "")
    except Exception:  # noqa: BLE001 - a missing link is better than a broken list
        return ""


# --------------------------------------------------------------------------- rule lists
def _rules(request: PanelRequest, section: str) -> Tuple[Any, Any, Any]:
    """``(rules of the section, presets, rules.editing)``."""
    config, presets = backend.load_rules(request.lang)
    editing = backend.editing(request.lang)
    with backend.translated(request.lang):
        return editing.list_rules(config, section), presets, editing


def _rule_list(request: PanelRequest, rows: List[Dict[str, Any]]) -> Reply:
    return Reply(list_(request, rows, total=len(rows)), result="listed")


def conditions(request: PanelRequest) -> Reply:
    rows = []
    for kind in KINDS:
        found, presets, editing = _rules(request, f"conditions.{kind}")
        rows += [
            {
                "id": f"{kind}:{rule.id}",
                "kind": t(f"kind_{kind}", request.lang),
                "rule": editing.describe_rule(rule, presets, request.lang),
            }
            for rule in found
        ]
    return _rule_list(request, rows)


def tags(request: PanelRequest) -> Reply:
    found, presets, editing = _rules(request, "tags")
    rows = [
        {
            "id": rule.id,
            "kind": t(f"kind_{rule.entity}", request.lang),
            "tag": rule.tag,
            "rule": editing.describe_rule(rule, presets, request.lang),
        }
        for rule in found
    ]
    return _rule_list(request, rows)


def fields(request: PanelRequest) -> Reply:
    found, presets, editing = _rules(request, "fields")
    rows = []
    for rule in found:
        value = presets.values.get(rule.value)
        rows.append(
            {
                "id": rule.id,
                "kind": t(f"kind_{rule.entity}", request.lang),
                "field": f"{rule.field_id} ({rule.field_type})",
                "value": value.label.text(request.lang) if value else rule.value,
                "rule": editing.describe_rule(rule, presets, request.lang),
            }
        )
    return _rule_list(request, rows)


def pipeline_names(
    cat: amo_catalog.Catalog | None, pipeline_id: int, status_id: int, lang: str
) -> Tuple[str, str]:
    """Pipeline and status names from the cached catalog; an id amoCRM no longer has is flagged.

    Without any cached catalog the ids are shown as they are: nothing is known to be missing.
    """
    if cat is None:
        return f"#{pipeline_id}", f"#{status_id}"
    pipeline = cat.pipeline(pipeline_id)
    if pipeline is None:
        missing = t("not_in_amocrm", lang, id=f"#{pipeline_id}")
        return missing, f"#{status_id}"
    status = pipeline.status_name(status_id)
    return pipeline.name or f"#{pipeline_id}", status or t("not_in_amocrm", lang, id=f"#{status_id}")


def pipelines(request: PanelRequest) -> Reply:
    """First match wins, so the rows keep the file's order and show it as ``position``."""
    found, presets, editing = _rules(request, "pipelines")
    cat = amo_catalog.cached()
    rows = []
    for index, rule in enumerate(found, start=1):
        pipeline, status = pipeline_names(cat, rule.pipeline_id, rule.status_id, request.lang)
        conditions = t("and_join", request.lang).join(
            editing.describe_condition(c, presets, request.lang) for c in rule.conditions
        )
        rows.append(
            {
                "id": rule.id,
                "position": index,
                "pipeline": pipeline,
                "status": status,
                "conditions": conditions or t("no_conditions", request.lang),
            }
        )
    return _rule_list(request, rows)
