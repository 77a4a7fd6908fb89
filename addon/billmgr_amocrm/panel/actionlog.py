"""``var/amocrm_action.log``: who did what in the module's panel functions, and how it ended.

One line per request in the ISPsystem format (``logsetup``), e.g.::

    Nov 25 16:02:11 [812] amocrm_action INFO user=root func=amocrm.tags.edit elid=3 changed=tag,kind result=ok

Values of secret parameters (client secret, authorization code) are registered with
``logsetup.register_secret`` before anything is logged and only field NAMES are ever written,
so neither can reach the file even through an exception text.
"""

from __future__ import annotations

import logging
import traceback
from typing import Iterable

from .. import logsetup
from .protocol import PanelRequest
from .responses import SECRET_FIELDS

SECRET_PARAMS = tuple(sorted(SECRET_FIELDS))
log = logging.getLogger("billmgr_amocrm.panel")


def open_log() -> None:
    logsetup.setup_logging("amocrm_action")


def protect(request: PanelRequest) -> None:
    """Register every secret-looking parameter value before the first log line."""
    for name, value in request.params.items():
        if name in SECRET_PARAMS or name.endswith(("_secret", "_token", "passwd")):
            logsetup.register_secret(value)


def _field(value: str, limit: int = 200) -> str:
    value = " ".join(value.split())[:limit]
    return value or "-"


def record(request: PanelRequest, result: str, changed: Iterable[str] = ()) -> None:
    names = ",".join(sorted(set(changed))) or "-"
    level = logging.WARNING if result.startswith(("denied", "error", "bad")) else logging.INFO
    log.log(
        level,
        "user=%s level=%d func=%s elid=%s changed=%s result=%s",
        _field(request.auth_user),
        request.auth_level,
        _field(request.func),
        _field(request.elid),
        names,
        _field(result, 500),
    )


def record_crash(request: PanelRequest) -> None:
    """Called inside ``main``'s ``except``: the traceback goes to the log (redacted), not the panel."""
    log.error(
        "user=%s func=%s elid=%s result=crash\n%s",
        _field(request.auth_user),
        _field(request.func),
        _field(request.elid),
        traceback.format_exc(),
    )
