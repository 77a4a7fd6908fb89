"""Entry point of ``addon/amocrm_ui``: one handler for every panel function of the module.

``main()`` owns all error handling and always prints a valid document: a non-admin gets
``<error type="access">``, a hostile or broken document a ``bad_input`` error, a failure the
admin can act on a localized ``<error>`` and anything unexpected a generic error with the
traceback in ``var/amocrm_action.log``. Function modules are imported only when called, so a
panel click pays only for what it uses.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from typing import Callable, Mapping, Tuple

from .. import unverified
from . import actionlog, responses
from .i18n import t
from .protocol import MAX_DOC_BYTES, BadRequest, PanelRequest, lang_of, request_from_env, with_doc
from .responses import PanelError, Reply

# func -> (module in this package, function in it). The descriptor names exactly these.
FUNCTIONS: Mapping[str, Tuple[str, str]] = {
    "amocrm.bindings": ("lists", "bindings"),
    "amocrm.bindings.filter": ("forms", "bindings_filter"),
    "amocrm.settings": ("forms", "settings"),
    "amocrm.status": ("forms", "status"),
    "amocrm.report": ("report", "report"),
    "amocrm.check": ("actions", "check"),
    "amocrm.resync": ("actions", "resync"),
    "amocrm.resync_all": ("actions", "resync_all"),
    "amocrm.unlink": ("actions", "unlink"),
    "amocrm.retry_failed": ("actions", "retry_failed"),
    "amocrm.conditions": ("lists", "conditions"),
    "amocrm.conditions.edit": ("ruleforms", "conditions_edit"),
    "amocrm.conditions.delete": ("actions", "conditions_delete"),
    "amocrm.tags": ("lists", "tags"),
    "amocrm.tags.edit": ("ruleforms", "tags_edit"),
    "amocrm.tags.delete": ("actions", "tags_delete"),
    "amocrm.fields": ("lists", "fields"),
    "amocrm.fields.edit": ("catalogforms", "fields_edit"),
    "amocrm.fields.delete": ("actions", "fields_delete"),
    "amocrm.pipelines": ("lists", "pipelines"),
    "amocrm.pipelines.edit": ("catalogforms", "pipelines_edit"),
    "amocrm.pipelines.delete": ("actions", "pipelines_delete"),
    "amocrm.pipelines.up": ("actions", "pipelines_up"),
    "amocrm.pipelines.down": ("actions", "pipelines_down"),
    "amocrm.syncsettings": ("syncsettings", "syncsettings"),
    "amocrm.notesettings": ("notesettings", "notesettings"),
    "amocrm.renewals": ("renewalforms", "renewals"),
    "amocrm.renewals.edit": ("renewalforms", "renewals_edit"),
    "amocrm.renewals.delete": ("actions", "renewals_delete"),
    "amocrm.renewals.up": ("actions", "renewals_up"),
    "amocrm.renewals.down": ("actions", "renewals_down"),
}


def resolve(func: str) -> Callable[[PanelRequest], Reply] | None:
    entry = FUNCTIONS.get(func)
    if entry is None:
        return None
    module = importlib.import_module(f"{__package__}.{entry[0]}")
    handler: Callable[[PanelRequest], Reply] = getattr(module, entry[1])
    return handler


def handle(environ: Mapping[str, str], stdin: bytes) -> bytes:
    """The whole request: environment and stdin bytes in, the document to print out."""
    try:
        request = request_from_env(environ)
    except BadRequest as exc:
        fallback = PanelRequest(
            func="",
            params={},
            auth_user=environ.get("AUTH_USER", ""),
            auth_level=0,
            lang=lang_of(environ, {}),
        )
        return _refuse(fallback, exc)
    actionlog.protect(request)
    with contextlib.suppress(OSError):  # an unwritable log must not take the panel page down with it
        actionlog.open_log()
    if request.auth_level < unverified.ADMIN_MIN_LEVEL:
        actionlog.record(request, "denied: access level below administrator")
        return responses.error(request, t("access_denied", request.lang), kind="access")
    try:
        request = with_doc(request, stdin)
    except BadRequest as exc:
        return _refuse(request, exc)
    handler = resolve(request.func)
    if handler is None:
        actionlog.record(request, "error: unknown function")
        return responses.error(request, t("unknown_func", request.lang, func=request.func[:100]))
    try:
        reply = handler(request)
    except PanelError as exc:
        detail = f" [{exc.detail}]" if exc.detail and exc.detail != exc.message else ""
        actionlog.record(request, f"error: {exc.message}{detail}")
        return responses.error(request, exc.message, kind=exc.kind, obj=exc.obj, value=exc.value)
    except Exception:  # noqa: BLE001 - the panel must get a valid document whatever happened
        actionlog.record_crash(request)
        return responses.error(request, t("internal_error", request.lang), kind="plugin")
    actionlog.record(request, reply.result, reply.changed)
    return reply.body


def _refuse(request: PanelRequest, exc: BadRequest) -> bytes:
    with contextlib.suppress(OSError):
        actionlog.open_log()
        actionlog.record(request, f"bad request: {exc.detail or exc.code}")
    # the detail is the parser's English: the Russian page names the problem, the log has the detail
    return responses.error(request, t(exc.code, request.lang, detail=exc.detail[:200]))


def main() -> int:
    stdin = sys.stdin.buffer.read(MAX_DOC_BYTES + 1)  # one byte over the cap is enough to refuse
    sys.stdout.buffer.write(handle(os.environ, stdin))
    sys.stdout.buffer.flush()
    return 0
