"""The module's use cases: what the admin CLI (``sbin/amocrm``) and the panel both call.

Every function builds the adapters from the host (``bootstrap``) or takes an ``app`` from
a caller that already has one, returns a small record with no secrets, and turns failures
into :class:`ServiceError` with Russian and English text and a hint::

    from billmgr_amocrm import service
    service.status().queue_depth

    errors          ServiceError and its kinds; translate() for the layers' exceptions
    results         the records the use cases return
    app             the caller's app or one built for the call
    account         authorize, check the connection, token state, the secret key (files only)
    overview        status screen, bindings table
    queueing        sync now, reconcile, resync, adopt, failed records, retry, unlink
    activities      payment notes and renewal tasks: counts, failures, retry, note a payment
    export          ask the worker for an export, or run one here with progress
    catalog_cache   amoCRM's fields, pipelines and users for the forms, cached
    catalog_health  the rules against amoCRM's catalog: what they name that amoCRM lacks

Importing this package is cheap (no database driver, no HTTP library): each use case
imports what it needs when it runs, so a panel click pays only for what it uses.
"""

from __future__ import annotations

from .account import (
    account_url,
    authorize,
    authorize_long_lived,
    authorized,
    check_connection,
    secret_saved,
    stored_secret,
    token_status,
)
from .activities import (
    ActivityStatus,
    FailedActivity,
    activity_status,
    failed_activities,
    note_payments,
    retry_failed_activities,
    run_renewals_now,
)
from .catalog_cache import CATALOG_TTL_SECONDS, cached_catalog, catalog
from .catalog_health import cached_catalog_health, catalog_health, log_catalog_health
from .errors import (
    AmoUnavailable,
    BadInput,
    DatabaseError,
    NotAuthorized,
    ServiceError,
    config_place,
    translate,
)
from .export import resync_all, run_export, start_export
from .overview import bindings, daily, status, suggested_billmgr_url
from .queueing import adopt, failed, reconcile, resync, retry_failed, sync_now, unlink
from .results import (
    AuthResult,
    Catalog,
    CatalogHealth,
    CatalogProblem,
    ConnectionResult,
    EngineWait,
    ExportKindProgress,
    ExportResult,
    FailedRow,
    Progress,
    Status,
)

__all__ = [
    "CATALOG_TTL_SECONDS", "AmoUnavailable", "AuthResult", "BadInput", "Catalog", "CatalogHealth",
    "CatalogProblem", "ConnectionResult", "DatabaseError", "EngineWait", "ExportKindProgress", "ExportResult",
    "FailedRow", "NotAuthorized", "Progress", "ServiceError", "Status", "account_url", "authorize",
    "authorize_long_lived", "authorized", "bindings", "cached_catalog", "cached_catalog_health", "catalog",
    "catalog_health", "adopt",
    "check_connection", "config_place", "log_catalog_health", "failed", "reconcile", "resync", "resync_all",
    "daily", "retry_failed", "run_export", "secret_saved", "start_export", "status", "stored_secret",
    "suggested_billmgr_url", "sync_now", "token_status", "translate", "unlink",
    "ActivityStatus", "FailedActivity", "activity_status", "failed_activities", "note_payments",
    "retry_failed_activities", "run_renewals_now",
]
