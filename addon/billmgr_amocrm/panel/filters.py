"""The bindings filter, remembered per administrator like the panel's own list filters.

Stored as a small JSON file per login under ``var/amocrm/panel/`` (written atomically, 0600).
Request parameters ``filter_kind``, ``filter_state``, ``filter_search`` override it for one call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..foundation.files import write_atomic
from ..paths import host_paths
from .protocol import PanelRequest

KINDS = ("contact", "company", "lead")
STATES = ("synced", "queued", "failed")
MAX_SEARCH = 200


@dataclass(frozen=True)
class BindingFilter:
    kind: str = ""
    state: str = ""
    search: str = ""

    @classmethod
    def clean(cls, kind: str, state: str, search: str) -> BindingFilter:
        return cls(
            kind=kind if kind in KINDS else "",
            state=state if state in STATES else "",
            search=" ".join(search.split())[:MAX_SEARCH],
        )


def _path(user: str) -> Path:
    # A hash keeps any login safe as a file name.
    digest = hashlib.sha256(user.encode("utf-8")).hexdigest()[:16]
    return host_paths().state_dir / "panel" / f"filter-{digest}.json"


def stored(user: str) -> BindingFilter:
    try:
        data = json.loads(_path(user).read_text(encoding="utf-8"))
        return BindingFilter.clean(
            str(data.get("kind", "")), str(data.get("state", "")), str(data.get("search", ""))
        )
    except (OSError, ValueError, AttributeError):
        return BindingFilter()


def store(user: str, chosen: BindingFilter) -> None:
    write_atomic(_path(user), json.dumps(asdict(chosen), ensure_ascii=False))


def current(request: PanelRequest) -> BindingFilter:
    saved = stored(request.auth_user)
    return BindingFilter.clean(
        request.params.get("filter_kind", saved.kind),
        request.params.get("filter_state", saved.state),
        request.params.get("filter_search", saved.search),
    )
