"""The "Sync settings" form: responsible user, request rate, batch size, recreate deleted entities.

The values live in amocrm.conf's ``sync`` section; saving replaces only the four fields (the
marker field ids and the rest of the file stay) through ``rules.config.rebuild`` and the atomic
``save_config``. The responsible user is offered from amoCRM's ACTIVE users and checked with
``rules.catalog_check`` on save. When amoCRM's catalog cannot be loaded the form still opens (the
rate limit is exactly what an admin tunes while amoCRM complains): the stored user is shown by id,
and only a change of user is refused until the user list can be checked.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Tuple

from . import backend
from . import catalog as amo_catalog
from .i18n import t
from .protocol import PanelRequest
from .responses import Options, PanelError, Reply, form, ok
from .ruleinputs import unknown_choice

FIELDS = ("responsible_user_id", "rate_limit", "batch_size", "recreate_deleted", "match_existing")
MAX_RATE = 7.0  # amoCRM: 7 requests per second per integration
BATCH_RANGE = (1, 250)  # amoCRM: at most 250 entities per request
# [U] BILLmanager posts a checkbox as "on"/"off"; the other spellings are accepted defensively.
CHECKED = frozenset({"on", "yes", "true", "1"})
USER_PATH = "sync.responsible_user_id"


def checkbox(value: bool) -> str:
    return "on" if value else "off"


def rate_text(value: float) -> str:
    """5.0 -> "5", 2.5 -> "2.5": what the admin would type."""
    return f"{value:g}"


def parse_rate(request: PanelRequest) -> float:
    raw = request.param("rate_limit")
    text = raw.strip().replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= MAX_RATE:
        raise PanelError(t("rate_limit_invalid", request.lang, field=request.label("rate_limit")),
                         obj="rate_limit", value=raw.strip()[:20])
    return value


def parse_batch(request: PanelRequest) -> int:
    text = request.param("batch_size").strip()
    if not text.isdigit() or not BATCH_RANGE[0] <= int(text) <= BATCH_RANGE[1]:
        raise PanelError(t("batch_size_invalid", request.lang, field=request.label("batch_size")),
                         obj="batch_size", value=text[:20])
    return int(text)


def parse_user(request: PanelRequest) -> int | None:
    text = request.param("responsible_user_id").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 18 or int(text) == 0:
        raise unknown_choice(request, "responsible_user_id", text[:20])
    return int(text)


def user_options(cat: amo_catalog.Catalog | None, current: int | None, lang: str) -> Options:
    """The "not set" choice and amoCRM's active users; a stored user that is not among them stays visible
    with the reason, so opening and saving the form never silently changes who gets the leads."""
    options: List[Tuple[str, str]] = [("", t("user_not_set", lang))]
    if cat is not None:
        options += [(str(uid), name or f"#{uid}") for uid, name in cat.active_users()]
    if current is None or any(key == str(current) for key, _ in options):
        return options
    if cat is None:
        label = t("user_unknown", lang, id=current)
    else:
        user = cat.user(current)
        label = (
            t("user_missing", lang, id=current)
            if user is None
            else t("user_inactive", lang, id=current, name=user[1] or f"#{current}")
        )
    return options + [(str(current), label)]


def _catalog(lang: str) -> Tuple[amo_catalog.Catalog | None, str]:
    """The amoCRM catalog, or ``None`` and why it could not be loaded."""
    try:
        return amo_catalog.load(lang), ""
    except PanelError as exc:
        return None, exc.message


def check_user(cat: amo_catalog.Catalog, config: Any, request: PanelRequest) -> None:
    """``rules.catalog_check`` on the new config: the user must exist in amoCRM and be active.
    Only the user's issues count here; the rule lists report their own."""
    lang = request.lang
    module = backend.rules_catalog_check(lang)
    raw = cat.raw
    users = raw.get("users") if isinstance(raw, Mapping) else getattr(raw, "users", None)
    for issue in module.check_against_catalog(config, {}, [], users or []):
        if issue.path == USER_PATH:
            field = request.label("responsible_user_id")
            raise PanelError(t("catalog_issue", lang, field=field, detail=issue.message(lang)),
                             obj="responsible_user_id")


def stored_values(sync: Any) -> Dict[str, str]:
    return {
        "responsible_user_id": str(sync.responsible_user_id or ""),
        "rate_limit": rate_text(float(sync.rate_limit)),
        "batch_size": str(sync.batch_size),
        "recreate_deleted": checkbox(bool(sync.recreate_deleted)),
        "match_existing": checkbox(bool(sync.match_existing)),
    }


def syncsettings(request: PanelRequest) -> Reply:
    lang = request.lang
    config, presets, read = backend.load_for_edit(lang)
    version = backend.opened_version(request, read)
    sync = config.sync
    if not request.is_save:
        cat, _ = _catalog(lang)
        values = {**stored_values(sync), backend.CONF_VERSION: version}
        slists = {"responsible_user_id": user_options(cat, sync.responsible_user_id, lang)}
        return Reply(form(request, values, slists), result="opened" if cat else "opened without catalog")
    user = parse_user(request)
    rate = parse_rate(request)
    batch = parse_batch(request)
    recreate = request.param("recreate_deleted").strip().lower() in CHECKED
    match_existing = request.param("match_existing").strip().lower() in CHECKED
    # amoCRM is asked only when there is a user to check (the input above is refused without it)
    cat, why = _catalog(lang) if user is not None else (None, "")
    if user is not None and cat is None and user != sync.responsible_user_id:
        text = t("user_needs_catalog", lang, field=request.label("responsible_user_id"), detail=why[:300])
        raise PanelError(text, obj="responsible_user_id", value=str(user))
    new_sync = {
        **sync.model_dump(mode="json"),
        "responsible_user_id": user,
        "rate_limit": rate,
        "batch_size": batch,
        "recreate_deleted": recreate,
        "match_existing": match_existing,
    }
    with backend.translated(lang):
        new = backend.rules_config(lang).rebuild(config, {"sync": new_sync})
    if user is not None and cat is not None:
        check_user(cat, new, request)
    before, after = stored_values(sync), stored_values(new.sync)
    changed = tuple(name for name in FIELDS if before[name] != after[name])
    if not changed:
        return Reply(ok(request), result="unchanged")
    backend.save_rules(lang, new, presets, version)
    return Reply(ok(request), changed=changed)
