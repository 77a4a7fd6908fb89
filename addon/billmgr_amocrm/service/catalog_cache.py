"""amoCRM's custom fields, pipelines and users for the settings forms, cached briefly.

:func:`catalog` asks amoCRM (or takes the cache when it is younger than
``CATALOG_TTL_SECONDS``) and writes the cache; :func:`cached_catalog` reads the last one
whatever its age, with no database and no network, so a list can show names at once.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Mapping, Optional

from ..domain import KIND_ORDER
from .app import paths_of, using
from .results import Catalog

if TYPE_CHECKING:
    from ..bootstrap import App

CATALOG_TTL_SECONDS = 300
CACHE_NAME = "catalog.json"    # under state_dir


def catalog(*, refresh: bool = False, app: Optional[App] = None) -> Catalog:
    """amoCRM custom fields, pipelines and users for the settings forms; cached briefly in state_dir."""
    from ..foundation.files import write_atomic

    with using(app) as live:
        cache = live.paths.state_dir / CACHE_NAME
        if not refresh and cache.exists() and time.time() - cache.stat().st_mtime < CATALOG_TTL_SECONDS:
            data = json.loads(cache.read_text(encoding="utf-8"))
            return Catalog(data["fields"], data["pipelines"], data["users"], data["fetched_at"])
        amo = live.amo()
        result = Catalog(fields={k.amo_entity: amo.custom_fields(k.amo_entity) for k in KIND_ORDER},
                         pipelines=amo.pipelines(), users=amo.users(), fetched_at=time.time())
        write_atomic(cache, json.dumps({"fields": result.fields, "pipelines": result.pipelines,
                                        "users": result.users, "fetched_at": result.fetched_at},
                                       ensure_ascii=False))
        return result


def cached_catalog(*, app: Optional[App] = None) -> Optional[Mapping[str, Any]]:
    """The last catalog fetched, as stored (whatever its age); None when there is none or it is unreadable."""
    try:
        data = json.loads((paths_of(app).state_dir / CACHE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, Mapping) else None
