"""Actions: check connection, resync, resync all, unlink, retry failed, delete rules.

Group actions receive the selected rows as ``elid`` ("contact:12, lead:7"); each id is
parsed strictly, and nothing is done unless every id is valid.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Set, Tuple

from . import backend
from .i18n import t
from .protocol import PanelRequest
from .responses import PanelError, Reply, form, ok

KINDS = ("contact", "company", "lead")


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    return obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)


def selected(request: PanelRequest) -> Dict[str, List[int]]:
    """``kind -> [billmgr ids]`` from ``elid``; a malformed id refuses the whole request."""
    if not request.elids:
        raise PanelError(t("no_selection", request.lang), obj="elid", kind="missed")
    chosen: Dict[str, List[int]] = {}
    for item in request.elids:
        kind, _, raw = item.partition(":")
        if kind not in KINDS or not raw.isdigit() or len(raw) > 18:
            raise PanelError(t("bad_elid", request.lang, value=item[:64]), obj="elid", value=item[:64])
        ids = chosen.setdefault(kind, [])
        if int(raw) not in ids:
            ids.append(int(raw))
    return chosen


def _kind(kind: str) -> Any:
    from ..domain import Kind

    return Kind(kind)


def _count(result: Any) -> int:
    if isinstance(result, bool):
        return int(result)
    if isinstance(result, int):
        return result
    return int(_get(result, "count", _get(result, "queued", 0)) or 0)


# --------------------------------------------------------------------------- diagnostics
def check_text(report: Any, lang: str) -> str:
    """``service.ConnectionResult``: one sentence, then the rules against amoCRM's catalog."""
    from .forms import _when, catalog_text

    latency = _get(report, "latency_ms")
    text = t(
        "check_ok",
        lang,
        account=_get(report, "account_name", "?"),
        subdomain=_get(report, "subdomain", "?"),
        latency=round(float(latency)) if latency is not None else "?",
        expires=_when(_get(report, "token_expires_at"), lang),
    )
    health = _get(report, "catalog")
    return f"{text}\n{catalog_text(health, lang)}" if health is not None else text


def check(request: PanelRequest) -> Reply:
    service = backend.service(request.lang)
    with backend.translated(request.lang):
        report = service.check_connection()
    return Reply(form(request, {"result": check_text(report, request.lang)}), result="connected")


# --------------------------------------------------------------------------- sync actions
def resync(request: PanelRequest) -> Reply:
    chosen = selected(request)
    service = backend.service(request.lang)
    total = 0
    with backend.translated(request.lang):
        for kind, ids in chosen.items():
            total += _count(service.resync(_kind(kind), ids)) or len(ids)
    return Reply(ok(request), result=f"queued {total}")


def unlink(request: PanelRequest) -> Reply:
    chosen = selected(request)
    service = backend.service(request.lang)
    total = 0
    with backend.translated(request.lang):
        for kind, ids in chosen.items():
            total += _count(service.unlink(_kind(kind), ids))
    return Reply(ok(request), result=f"unlinked {total}")


def _summary_form(request: PanelRequest, text: str) -> Reply:
    return Reply(form(request, {"summary": text}), result="opened")


def resync_all(request: PanelRequest) -> Reply:
    """A confirmation form on open; OK queues every entity (the facade resumes a running export)."""
    lang = request.lang
    if not request.is_save:
        return _summary_form(request, _hint(request, "hint_summary"))
    service = backend.service(lang)
    with backend.translated(lang):
        service.resync_all()
    return Reply(ok(request), result="full export requested")


def retry_failed(request: PanelRequest) -> Reply:
    lang = request.lang
    service = backend.service(lang)
    if not request.is_save:
        with backend.translated(lang):
            report = service.status()
        from .forms import status_values

        count = status_values(report, lang)["failed_count"]
        return _summary_form(request, f"{_hint(request, 'hint_summary')}: {count}")
    with backend.translated(lang):
        result = service.retry_failed()
    return Reply(ok(request), result=f"revived {_count(result)}")


def _hint(request: PanelRequest, name: str) -> str:
    if request.doc is not None:
        msg = request.doc.find(f"messages[@name='{request.func}']/msg[@name='{name}']")
        if msg is not None and msg.text:
            return msg.text
    return ""


# --------------------------------------------------------------------------- rule deletion
def _delete(request: PanelRequest, section: str) -> Reply:
    """Delete every selected rule or none: an unknown id refuses the whole request."""
    if not request.elids:
        raise PanelError(t("no_selection", request.lang), obj="elid", kind="missed")
    config, presets, read = backend.load_for_edit(request.lang)
    editing = backend.editing(request.lang)
    wanted = list(dict.fromkeys(request.elids))
    with backend.translated(request.lang):
        for elid in wanted:
            if section == "conditions":
                kind, _, rule_id = elid.partition(":")
                if kind not in KINDS:
                    raise PanelError(t("rule_not_found", request.lang, id=elid[:64]), kind="missed")
                config = editing.delete_rule(config, f"conditions.{kind}", rule_id, presets)
            else:
                config = editing.delete_rule(config, section, elid, presets)
    backend.save_rules(request.lang, config, presets, read)
    return Reply(ok(request), result=f"deleted {len(wanted)}", changed=_deleted(sorted(wanted)))


def _deleted(ids: Sequence[str]) -> Tuple[str, ...]:
    return tuple(f"deleted:{i}" for i in ids)


def conditions_delete(request: PanelRequest) -> Reply:
    return _delete(request, "conditions")


def tags_delete(request: PanelRequest) -> Reply:
    return _delete(request, "tags")


def fields_delete(request: PanelRequest) -> Reply:
    return _delete(request, "fields")


def pipelines_delete(request: PanelRequest) -> Reply:
    return _delete(request, "pipelines")


def renewals_delete(request: PanelRequest) -> Reply:
    return _delete(request, "renewals")


# --------------------------------------------------------------------------- rule order
def _move(request: PanelRequest, step: int, section: str = "pipelines") -> Reply:
    """Move every selected pipeline (or renewal) rule one place up (``step`` -1) or down (+1).

    Pipeline and renewal rules are first-match-wins, so order is meaning. A block of selected rules moves
    together; a rule already at the edge (or behind a selected rule that could not move) stays.
    An unknown id refuses the whole request, and amocrm.conf is written once, atomically.
    """
    lang = request.lang
    if not request.elids:
        raise PanelError(t("no_selection", lang), obj="elid", kind="missed")
    config, presets, read = backend.load_for_edit(lang)
    editing = backend.editing(lang)
    wanted = list(dict.fromkeys(request.elids))
    with backend.translated(lang):
        for rule_id in wanted:
            editing.get_rule(config, section, rule_id)
        order = [rule.id for rule in editing.list_rules(config, section)]
        stuck: Set[str] = set()
        moved: List[str] = []
        for rule_id in sorted(wanted, key=order.index, reverse=step > 0):
            target = order.index(rule_id) + step
            if not 0 <= target < len(order) or order[target] in stuck:
                stuck.add(rule_id)
                continue
            config = editing.move_rule(config, section, rule_id, target, presets)
            order = [rule.id for rule in editing.list_rules(config, section)]
            moved.append(rule_id)
    if not moved:
        return Reply(ok(request), result="unchanged: already at the edge")
    backend.save_rules(lang, config, presets, read)
    direction = "up" if step < 0 else "down"
    return Reply(
        ok(request),
        result=f"moved {len(moved)} {direction}",
        changed=tuple(f"moved:{rule_id}" for rule_id in sorted(moved)),
    )


def pipelines_up(request: PanelRequest) -> Reply:
    return _move(request, -1)


def pipelines_down(request: PanelRequest) -> Reply:
    return _move(request, +1)


def renewals_up(request: PanelRequest) -> Reply:
    return _move(request, -1, "renewals")


def renewals_down(request: PanelRequest) -> Reply:
    return _move(request, +1, "renewals")
