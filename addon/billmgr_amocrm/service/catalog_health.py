"""Does amoCRM still have what the rules name? amocrm.conf against amoCRM's catalog.

amoCRM's catalog changes under the config: a responsible user is deactivated, a pipeline,
a status or a custom field is deleted; from then on every record the rule touches fails,
one by one. ``amocrm check`` and the panel's Check connection read the catalog afresh,
the status screen judges by the last catalog fetched (no network: it opens while amoCRM is
down), and the worker re-reads it with the reconciler and logs what it finds, so the
problem is reported, the rule named and the fix said, before records fail.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Mapping, Optional

from .app import using
from .catalog_cache import cached_catalog, catalog
from .results import CatalogHealth, CatalogProblem

if TYPE_CHECKING:
    from ..bootstrap import App

log = logging.getLogger("billmgr_amocrm.service")


def _judged(config: Any, fields: Mapping[str, Any], pipelines: Any, users: Any,
            checked_at: float) -> CatalogHealth:
    from ..rules.catalog_check import check_against_catalog

    issues = check_against_catalog(config, fields, pipelines, users)
    return CatalogHealth(checked_at=float(checked_at), problems=tuple(
        CatalogProblem(i.path, i.code, i.rule_id, i.advice("en"), i.advice("ru")) for i in issues))


def catalog_health(*, app: Optional[App] = None) -> CatalogHealth:
    """The config against the catalog read from amoCRM now (the cache is refreshed)."""
    from ..sync.gone_fields import renote_inactive_users

    with using(app) as live:
        fresh = catalog(refresh=True, app=live)
        renote_inactive_users(live.store, fresh.users)
        return _judged(live.config, fresh.fields, fresh.pipelines, fresh.users, fresh.fetched_at)


def cached_catalog_health(*, app: Optional[App] = None) -> Optional[CatalogHealth]:
    """The config against the last catalog fetched, whatever its age (no network); None: none yet."""
    with using(app) as live:
        data = cached_catalog(app=live)
        if not data:
            return None
        try:
            return _judged(live.config, data.get("fields") or {}, data.get("pipelines") or [],
                           data.get("users") or [], float(data.get("fetched_at") or 0.0))
        except (TypeError, ValueError, AttributeError):
            return None   # a cache of an unexpected shape: as if there were none


def log_catalog_health(app: App) -> Optional[CatalogHealth]:
    """The worker's periodic check: refresh, log each problem as a warning; never raises."""
    try:
        health = catalog_health(app=app)
    except Exception as exc:  # noqa: BLE001 - a check that cannot run now is tried again later
        log.warning("amoCRM catalog check skipped: %s", exc)
        return None
    for problem in health.problems:
        log.warning("amoCRM no longer matches amocrm.conf: %s", problem.en)
    return health
