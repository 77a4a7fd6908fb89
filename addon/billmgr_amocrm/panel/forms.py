"""Forms: integration settings, the read-only status view, the bindings filter.

The settings form never sends the secret key back to the browser: the password field is
always empty and its placeholder says whether a key is saved; an empty field on save keeps
the stored key. Saving exchanges the one-time code through ``service.authorize``, or, when a
long-lived token is given instead, stores that token through ``service.authorize_long_lived``
(the integration keys are then optional: kept in amocrm.conf if given, unused).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Dict, Mapping, Tuple
from urllib.parse import urlsplit

from . import backend, backlink, filters
from .i18n import t
from .protocol import PanelRequest
from .responses import PanelError, Reply, form, ok

SETTINGS_FIELDS = ("url", "client_id", "client_secret", "redirect_uri", "code", "long_lived_token",
                   "billmgr_url")
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9.-]+$")


# --------------------------------------------------------------------------- settings
def _stored_auth(lang: str) -> Dict[str, str]:
    config, _ = backend.load_rules(lang)
    return {
        "url": config.auth.url,
        "client_id": config.auth.client_id,
        "redirect_uri": config.auth.redirect_uri,
    }


def _secret_saved(lang: str) -> bool:
    return bool(backend.service(lang).secret_saved())


def check_url(request: PanelRequest, url: str) -> str:
    if not url:
        raise PanelError(t("required", request.lang, field=request.label("url")), obj="url", kind="missed")
    service = backend.service(request.lang)
    try:
        return str(service.account_url(url))
    except Exception:  # noqa: BLE001 - the client's ConfigError; its text is English only
        raise PanelError(t("url_invalid", request.lang), obj="url", value=url[:255]) from None


def check_redirect(request: PanelRequest, redirect: str) -> str:
    """BILLmanager's public URL: ``https://{host}/billmgr`` (the spec's format, nothing else)."""
    if not redirect:
        raise PanelError(
            t("required", request.lang, field=request.label("redirect_uri")),
            obj="redirect_uri",
            kind="missed",
        )
    parts = urlsplit(redirect)
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise PanelError(t("redirect_invalid", request.lang), obj="redirect_uri") from None
    host = parts.hostname or ""
    if (
        parts.scheme != "https"
        or not host
        or not _HOST_RE.match(host)
        or "." not in host
        or parts.username
        or parts.password
        or parts.query
        or parts.fragment
        or parts.path.rstrip("/") != "/billmgr"
    ):
        raise PanelError(t("redirect_invalid", request.lang), obj="redirect_uri", value=redirect[:255])
    return redirect.rstrip("/")


def settings(request: PanelRequest) -> Reply:
    lang = request.lang
    stored = _stored_auth(lang)
    config, _, read_version = backend.load_for_edit(lang)
    stored_link = str(config.sync.billmgr_url)
    placeholder = {
        "placeholder_client_secret": t("secret_saved" if _secret_saved(lang) else "secret_missing", lang)
    }
    if not request.is_save:
        values = dict(stored, client_secret="", code="", long_lived_token="")
        if not values["redirect_uri"] and request.host:
            values["redirect_uri"] = (
                f"https://{request.host}/billmgr"  # the spec's format; the admin confirms it
            )
        values[backlink.FIELD] = stored_link or backlink.suggested(lang, values["redirect_uri"])
        values[backend.CONF_VERSION] = read_version
        return Reply(form(request, values, messages=placeholder), result="opened")
    url = check_url(request, request.param("url").strip())
    token = "".join(request.param("long_lived_token").split())
    if token:
        return _save_long_lived(request, url, token, stored, stored_link)
    client_id = request.param("client_id").strip()
    if not client_id:
        raise PanelError(
            t("required", lang, field=request.label("client_id")), obj="client_id", kind="missed"
        )
    if not _CLIENT_ID_RE.match(client_id):
        raise PanelError(t("client_id_invalid", lang), obj="client_id")
    redirect = check_redirect(request, request.param("redirect_uri").strip())
    secret = request.param("client_secret").strip()
    code = "".join(request.param("code").split())
    changed = _auth_changed(stored, url, client_id, redirect)
    changed += (("client_secret",) if secret else ()) + (("code",) if code else ())
    link = backlink.parse(request)
    link_changed = link != stored_link
    if not code:
        # the address alone needs no new authorization; saved again unchanged, it makes the worker
        # look its url fields up again (one deleted in amoCRM is made anew)
        if not changed and (link_changed or link):
            backlink.save(request, link, backend.opened_version(request, read_version))
            return Reply(ok(request), changed=(backlink.FIELD,) if link_changed else ())
        if not changed and _authorized(lang):
            return Reply(ok(request), result=t("settings_unchanged", "en"))
        raise PanelError(t("code_required", lang), obj="code", kind="missed")
    if not secret:
        if not _secret_saved(lang):
            raise PanelError(t("secret_required", lang), obj="client_secret", kind="missed")
        secret = _read_secret(lang)
    service = backend.service(lang)
    with backend.translated(lang, obj="code"):
        service.authorize(url, client_id, secret, redirect, code)
    return _saved(request, changed, link, stored_link)


def _save_long_lived(request: PanelRequest, url: str, token: str, stored: Dict[str, str],
                     stored_link: str) -> Reply:
    """Authorize with a long-lived token: no code, no secret key; an integration ID and redirect URL
    given are checked and kept (for a later switch back to the code), none needed."""
    lang = request.lang
    if "".join(request.param("code").split()):
        raise PanelError(t("code_and_token", lang), obj="code")
    client_id = request.param("client_id").strip()
    if client_id and not _CLIENT_ID_RE.match(client_id):
        raise PanelError(t("client_id_invalid", lang), obj="client_id")
    redirect = request.param("redirect_uri").strip()
    redirect = check_redirect(request, redirect) if redirect else ""
    link = backlink.parse(request)
    service = backend.service(lang)
    with backend.translated(lang, obj="long_lived_token"):
        service.authorize_long_lived(url, token, client_id=client_id, redirect_uri=redirect)
    return _saved(request, _auth_changed(stored, url, client_id, redirect) + ("long_lived_token",), link,
                  stored_link)


def _auth_changed(stored: Dict[str, str], url: str, client_id: str, redirect: str) -> Tuple[str, ...]:
    """The account fields saved with a value other than the recorded one (an empty one, which a
    long-lived token allows, keeps the recorded value)."""
    return tuple(name for name, new in (("url", url), ("client_id", client_id), ("redirect_uri", redirect))
                 if new and stored.get(name, "").rstrip("/") != new)


def _saved(request: PanelRequest, changed: Tuple[str, ...], link: str, stored_link: str) -> Reply:
    """An authorization's answer; the BILLmanager address saved after it (the authorization wrote
    amocrm.conf itself, so the address goes on top of that)."""
    if link != stored_link:
        backlink.save(request, link, None)
        changed += (backlink.FIELD,)
    return Reply(ok(request), changed=changed)


def _read_secret(lang: str) -> str:
    service = backend.service(lang)
    try:
        return str(service.stored_secret())
    except Exception:  # noqa: BLE001 - missing, empty or insecure file: ask for the key again
        raise PanelError(t("secret_required", lang), obj="client_secret", kind="missed") from None


def _authorized(lang: str) -> bool:
    """Tokens exist and nothing asks for re-authorization (no network call)."""
    try:
        return bool(backend.service(lang).authorized())
    except Exception:  # noqa: BLE001 - unknown means "not known to be authorized"
        return False


# --------------------------------------------------------------------------- status
def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    return obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)


def _when(value: Any, lang: str) -> str:
    if value in (None, "", 0):
        return t("never", lang)
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(float(value), tz=timezone.utc)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _age(seconds: Any, lang: str) -> str:
    if seconds in (None, ""):
        return t("none", lang)
    return t("seconds_ago", lang, value=int(float(seconds)))


# amocrm.token_status() states -> i18n keys. "expiring"/"expired" refresh by themselves.
TOKEN_STATES = {
    "ok": "auth_ok",
    "expiring": "auth_ok",
    "ending": "auth_ending",
    "expired": "auth_ok",
    "not_authorized": "auth_none",
    "needs_reauth": "auth_reauthorize",
    "blocked": "auth_blocked",
    "unpaid": "auth_unpaid",
}


def auth_text(state: str, reason: str, lang: str) -> str:
    key = TOKEN_STATES.get(state)
    text = t(key, lang) if key else state
    # The client's reasons are English; show them to an English page, or when nothing else explains.
    if reason and state not in ("ok", "not_authorized") and (lang == "en" or key is None):
        text = f"{text} ({reason})"
    return text


def export_text(report: Any, lang: str) -> str:
    """``service.Status.export``: one ``ExportKindProgress(kind, queued, finished)`` per started kind;
    before them, the adoption a pass runs first (after the module was installed again), and a
    requested export the worker has not begun yet (``amocrm status`` says both too)."""
    from ..domain import Kind

    parts = []
    kind_of_entity = {kind.amo_entity: kind.value for kind in Kind}   # Status.adopting names entities
    adopting = [t(f"kind_{kind_of_entity.get(name, 'any')}", lang)
                for name in _get(report, "adopting", ()) or ()]
    if adopting:
        parts.append(t("export_adopting", lang, kinds=", ".join(adopting)))
    if _get(report, "matching", False):
        parts.append(t("export_matching", lang))
    queueing = False
    for item in _get(report, "export", ()) or ():
        kind = t(f"kind_{_get(item, 'kind')}", lang)
        if _get(item, "finished"):
            parts.append(f"{kind}: {t('export_done', lang)} ({_get(item, 'queued', 0)})")
        else:
            queueing = True
            parts.append(t("export_progress", lang, kind=kind, done=_get(item, "queued", 0), total="…"))
    # the request stands until everything is queued: it waits for the worker only when nothing is
    if _get(report, "export_requested", False) and not queueing:
        parts.append(t("export_requested", lang))
    if not parts:
        return t("export_not_started", lang)
    return "; ".join(parts)


def catalog_text(health: Any, lang: str) -> str:
    """``service.CatalogHealth``: all there, or one line per problem (the rule, what to fix)."""
    if health is None:
        return t("catalog_unknown", lang)
    when = _when(_get(health, "checked_at"), lang)
    problems = _get(health, "problems", ()) or ()
    if not problems:
        return t("catalog_ok", lang, when=when)
    lines = [t("catalog_problems", lang, count=len(problems), when=when)]
    lines += [f"• {_get(p, 'ru' if lang == 'ru' else 'en', '')}" for p in problems]
    return "\n".join(lines)


def status_values(report: Any, lang: str) -> Dict[str, str]:
    """``service.Status`` as the form's read-only fields."""
    return {
        "auth_state": auth_text(
            str(_get(report, "token_state", "")), str(_get(report, "token_reason", "")), lang
        ),
        "account": str(_get(report, "subdomain", "") or ""),
        "token_expires": _when(_get(report, "access_expires_at"), lang),
        "queue_depth": str(_get(report, "queue_depth", 0)),
        "oldest_age": _age(_get(report, "oldest_pending_age"), lang),
        "failed_count": str(_get(report, "failed", 0)),
        "last_sync": _when(_get(report, "last_sync_at"), lang),
        "export_progress": export_text(report, lang),
        "catalog": catalog_text(_get(report, "catalog"), lang),
        "daily": daily_text(_get(report, "daily", ()), lang),
        "activities": activities_text(report, lang),
    }


def daily_text(days: Any, lang: str) -> str:
    """The last days' counts, newest first, one line per day with work (``service.DayCounts``)."""
    lines = [t("daily_line", lang, day=format_day(d.day, lang), **dict(d.counts))
             for d in reversed(tuple(days)) if any(d.counts.values())]
    return "\n".join(lines) if lines else t("daily_none", lang, days=len(tuple(days)))


def format_day(day: Any, lang: str) -> str:
    """A date as the page's language writes it (31.12.2026 / 2026-12-31)."""
    return f"{day:%d.%m.%Y}" if lang == "ru" else f"{day:%Y-%m-%d}"


def activities_text(report: Any, lang: str) -> str:
    """Payment notes and renewal tasks in one line (issue 17)."""
    notes = _get(report, "payment_notes", None) or {}
    tasks = _get(report, "renewal_tasks", None) or {}
    return t("activities_text", lang, notes_done=notes.get("done", 0), notes_pending=notes.get("pending", 0),
             notes_unlinked=notes.get("unlinked", 0),
             notes_failed=notes.get("failed", 0), tasks_open=tasks.get("open", 0),
             tasks_completed=tasks.get("completed", 0), tasks_failed=tasks.get("failed", 0))


def status(request: PanelRequest) -> Reply:
    service = backend.service(request.lang)
    with backend.translated(request.lang):
        report = service.status()
    return Reply(form(request, status_values(report, request.lang)), result="opened")


# --------------------------------------------------------------------------- bindings filter
def _filter_options(lang: str) -> Dict[str, Tuple[Tuple[str, str], ...]]:
    return {
        "kind": (("", t("kind_any", lang)),) + tuple((k, t(f"kind_{k}", lang)) for k in filters.KINDS),
        "state": (("", t("state_any", lang)),)
        + tuple((s, t(f"state_{s}", lang, reason="…")) for s in filters.STATES),
    }


def bindings_filter(request: PanelRequest) -> Reply:
    if request.is_save:
        chosen = filters.BindingFilter.clean(
            request.param("kind"), request.param("state"), request.param("search")
        )
        filters.store(request.auth_user, chosen)
        return Reply(
            ok(request, redirect_type="list", target="func=amocrm.bindings"),
            changed=tuple(k for k, v in vars(chosen).items() if v),
        )
    chosen = filters.stored(request.auth_user)
    values = {"kind": chosen.kind, "state": chosen.state, "search": chosen.search}
    return Reply(form(request, values, _filter_options(request.lang)), result="opened")
