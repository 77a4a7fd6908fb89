"""What the use cases return: small frozen records with no secrets, for the panel and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Mapping, Optional


@dataclass(frozen=True)
class AuthResult:
    subdomain: str
    base_url: str
    access_expires_at: Optional[float]
    marker_field_ids: dict[str, int]
    export_requested: bool


@dataclass(frozen=True)
class CatalogProblem:
    """Something the rules name that amoCRM no longer has (or refuses), and what to fix."""

    path: str                  # where in amocrm.conf, e.g. "pipelines.0.status_id"
    code: str                  # rules.catalog_check's code, e.g. "user_inactive"
    rule_id: Optional[str]
    en: str                    # where, what is wrong, what to fix (the rule named)
    ru: str

    def text(self, lang: str = "en") -> str:
        return self.ru if lang == "ru" else self.en


@dataclass(frozen=True)
class CatalogHealth:
    """amocrm.conf checked against amoCRM's catalog as it was fetched at ``checked_at`` (unix time)."""

    checked_at: float
    problems: tuple[CatalogProblem, ...] = ()


@dataclass(frozen=True)
class ConnectionResult:
    account_name: str
    subdomain: str
    token_state: str
    token_expires_at: Optional[float]
    latency_ms: float
    rate_limit: float
    # what is wrong with the marker fields (one sentence each; empty: they are fine)
    marker_problems: tuple[str, ...] = ()
    catalog: Optional[CatalogHealth] = None
    token_kind: str = "oauth"  # noqa: S105 - a kind (oauth | long_lived), not a secret


@dataclass(frozen=True)
class ExportKindProgress:
    kind: str
    queued: int
    finished: bool


@dataclass(frozen=True)
class Status:
    token_state: str
    token_reason: str
    subdomain: str
    access_expires_at: Optional[float]
    refresh_expires_at: Optional[float]
    queue_depth: int
    queue_by_kind: dict[str, int]
    oldest_pending_age: Optional[float]
    failed: int
    failed_by_kind: dict[str, int]
    last_sync_at: Optional[datetime]
    linked: dict[str, int]
    export: list[ExportKindProgress]
    export_requested: bool
    # the config against the last catalog fetched (None: never fetched)
    catalog: Optional[CatalogHealth] = None
    # payment notes (pending | done | failed) and renewal tasks (pending | open | completed | failed)
    payment_notes: dict[str, int] = field(default_factory=dict)
    renewal_tasks: dict[str, int] = field(default_factory=dict)
    # the last days' counts, oldest first (``overview.daily``)
    daily: tuple[DayCounts, ...] = ()
    # oauth (a refreshed pair) | long_lived (a private integration's token: no refresh token)
    token_kind: str = "oauth"  # noqa: S105 - a kind, not a secret
    # amoCRM entity types still to adopt before the sync sends them (``sync/adopt.py``)
    adopting: tuple[str, ...] = ()
    # clients are bound to the contacts people made in amoCRM before the first export (``sync/match.py``)
    matching: bool = False


# What the daily counts hold, in the order the report and the status show them.
DAILY_METRICS = ("contact", "company", "lead", "note", "task", "failed")


@dataclass(frozen=True)
class DayCounts:
    """What the module did on one local day: metric (``DAILY_METRICS``) -> count, zeros included."""

    day: date
    counts: Mapping[str, int]

    @property
    def entities(self) -> int:
        return sum(self.counts.get(kind, 0) for kind in ("contact", "company", "lead"))


@dataclass(frozen=True)
class ExportResult:
    queued: dict[str, int]
    done: int
    skipped: int
    failed: int
    retried: int
    seconds: float
    stopped: Optional[str] = None
    stop_reason: str = ""
    # when another engine did the work while this command waited: who it was
    by_other: str = ""


@dataclass(frozen=True)
class EngineWait:
    """Passed to a waiting command's callback while another engine runs the sync."""

    holder: str         # who runs it ("amocrm_task --daemon (pid 12, host billing1, since ...)")
    due: int            # queue rows due now
    pending: int        # queue rows pending, due or not
    export_requested: bool
    elapsed: float


@dataclass(frozen=True)
class Progress:
    """Passed to ``run_export``'s callback after each batch."""

    phase: str          # sync (queue: reserved; run_export queues while it sends)
    total: int
    handled: int
    failed: int
    elapsed: float


@dataclass(frozen=True)
class FailedRow:
    queue_id: int
    kind: str
    billmgr_id: int
    attempts: int
    reason: str


@dataclass(frozen=True)
class Catalog:
    fields: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    users: list[dict[str, Any]] = field(default_factory=list)
    fetched_at: float = 0.0
