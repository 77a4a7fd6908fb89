"""The Integration settings form's "BILLmanager address" (issue 17.4): the base of the links that
contacts and leads carry back to the client and the service in BILLmanager's admin panel.

Unlike the authorization fields it needs no new code from amoCRM: a change of the address
alone is saved to amocrm.conf (``sync.billmgr_url``) as the other settings forms save theirs,
refused when someone saved the file since the form was opened. A non-empty address also
forgets the url fields' ids, so the worker looks them up again by their code (a field someone
deleted in amoCRM is made anew); an empty one keeps them, to clear the links. Opened empty, the form offers
what BILLmanager says its public address is (``service.suggested_billmgr_url``, the first
project's billurl; unverified), else the redirect URL's host, and the admin confirms it.
"""

from __future__ import annotations

from typing import Any, Optional

from . import backend
from .i18n import t
from .protocol import PanelRequest
from .responses import PanelError

FIELD = "billmgr_url"


def suggested(lang: str, redirect_uri: str) -> str:
    """What an empty field is opened with: BILLmanager's own address when it can be read."""
    try:
        found = str(backend.service(lang).suggested_billmgr_url())
    except Exception:  # noqa: BLE001 - no database at hand: the redirect URL still says it
        found = ""
    if found or not redirect_uri:
        return found
    try:
        return str(backend.rules_config(lang).billmgr_base_url(redirect_uri))
    except ValueError:
        return ""


def parse(request: PanelRequest) -> str:
    """The posted address, normalized (no trailing / or /billmgr); '' for none."""
    raw = request.param(FIELD).strip()
    try:
        return str(backend.rules_config(request.lang).billmgr_base_url(raw))
    except ValueError:
        raise PanelError(t("billmgr_url_invalid", request.lang), obj=FIELD, value=raw[:255]) from None


def save(request: PanelRequest, url: str, version: Optional[str]) -> None:
    """amocrm.conf with the new address; ``version``: the one the form was opened from (None: the
    file as it is now, after an authorization this request has just written)."""
    lang = request.lang
    config, presets, read = backend.load_for_edit(lang)
    sync: dict[str, Any] = {**config.sync.model_dump(mode="json"), FIELD: url}
    if url:   # the worker finds its url fields again by their code (or makes them: one deleted in amoCRM)
        sync["url_field_ids"] = {"contact": None, "lead": None}
    with backend.translated(lang):
        new = backend.rules_config(lang).rebuild(config, {"sync": sync})
    backend.save_rules(lang, new, presets, read if version is None else version)
