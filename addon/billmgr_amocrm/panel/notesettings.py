"""The "Payment notes" form: which payment states become notes in amoCRM, and whether on leads too.

The values live in amocrm.conf's ``notes`` section (``rules.config.NotesConfig``); saving
replaces only that section through ``rules.config.rebuild`` and the atomic ``save_config``,
refused when someone saved amocrm.conf since the form was opened (``conf_version``). All
states off turns payment notes off; notes already made stay in amoCRM.
"""

from __future__ import annotations

from typing import Any, Dict

from . import backend
from .protocol import PanelRequest
from .responses import Reply, form, ok
from .syncsettings import CHECKED, checkbox

STATES = ("paid", "canceled", "refunded", "fraud")
FIELDS = (*(f"state_{s}" for s in STATES), "on_leads")


def stored_values(notes: Any) -> Dict[str, str]:
    values = {f"state_{s}": checkbox(s in notes.payment_states) for s in STATES}
    values["on_leads"] = checkbox(bool(notes.on_leads))
    return values


def notesettings(request: PanelRequest) -> Reply:
    lang = request.lang
    config, presets, read = backend.load_for_edit(lang)
    version = backend.opened_version(request, read)
    if not request.is_save:
        return Reply(form(request, {**stored_values(config.notes), backend.CONF_VERSION: version}),
                     result="opened")
    chosen = [s for s in STATES if request.param(f"state_{s}").strip().lower() in CHECKED]
    on_leads = request.param("on_leads").strip().lower() in CHECKED
    with backend.translated(lang):
        new = backend.rules_config(lang).rebuild(config, {"notes": {"payment_states": chosen,
                                                                    "on_leads": on_leads}})
    before, after = stored_values(config.notes), stored_values(new.notes)
    changed = tuple(name for name in FIELDS if before[name] != after[name])
    if not changed:
        return Reply(ok(request), result="unchanged")
    backend.save_rules(lang, new, presets, version)
    return Reply(ok(request), changed=changed)
