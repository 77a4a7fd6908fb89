"""The seams between the sync core and its adapters.

The worker and the services code against these Protocols only; each adapter
implements one of them (and may add methods), and ``tests`` provides fakes. The
docstrings are the contract: an implementation that deviates is a bug in it.

    AmoApi         amocrm/        the amoCRM REST client (HTTP, OAuth, rate limit)
    BillingReader  billing/       reads BILLmanager's tables (the only SQL on them)
    Store          store/         the module's own tables: queue, links, sync state
    RuleSet        rules/         amocrm.conf + presets -> conditions and payloads
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Collection, ContextManager, FrozenSet, Iterator, Mapping, Optional, Protocol, Sequence

from .domain import Client, Kind, Payer, Service, ServiceEvent

JsonDict = dict[str, Any]


# --------------------------------------------------------------------------- amoCRM
@dataclass(frozen=True)
class BatchOutcome:
    """Result of one logical batch write (the client may have split it into requests).

    ``ids``: request_id -> amoCRM id for every item amoCRM accepted.
    ``rejected``: request_id -> human-readable reason (entity, field path, amoCRM's
    detail) for items amoCRM refused with a 400; they were not written and must not
    be resent unchanged. ``missing``: request_ids of updates whose entity no longer
    exists in amoCRM (deleted in the UI).
    """

    ids: Mapping[str, int] = field(default_factory=dict)
    rejected: Mapping[str, str] = field(default_factory=dict)
    missing: Sequence[str] = ()


class AmoApi(Protocol):
    def create(self, entity: str, items: Sequence[JsonDict]) -> BatchOutcome:
        """POST items (each carries a unique ``request_id``) to /api/v4/{entity}.

        Chunks to the configured batch size, halving after a 504 or timeout. A 400
        with validation errors drops the offending items into ``rejected`` and
        resends the rest (a 400 writes nothing). Raises ``AmbiguousWriteError``
        (its ``request_ids`` are those of the chunk in doubt) when a write may have
        been applied but its answer was lost; earlier chunks' ids are on the
        exception's ``outcome``.
        """

    def update(self, entity: str, items: Sequence[JsonDict]) -> BatchOutcome:
        """PATCH items (each has ``id`` and a ``request_id`` the client strips or keeps)."""

    def get(self, entity: str, ids: Sequence[int], with_: Sequence[str] = ()) -> dict[int, JsonDict]:
        """Entities by id; ids amoCRM does not return (204, deleted) are absent."""

    def find_by_marker(self, entity: str, marker_field_id: int, markers: Sequence[str],
                       created_since: Optional[int] = None) -> dict[str, int]:
        """marker value -> amoCRM id for entities whose marker field equals a value exactly.

        Does not trust the search index alone (it lags): with ``created_since``
        (unix time) it pages the entities created since then, ordered by id.
        """

    def custom_fields(self, entity: str) -> list[JsonDict]:
        """The whole custom-field catalog of an entity type (every page of 50)."""

    def create_custom_fields(self, entity: str, fields: Sequence[JsonDict]) -> list[JsonDict]: ...

    def pipelines(self) -> list[JsonDict]:
        """Lead pipelines with ``_embedded.statuses``."""

    def link(self, entity: str, links: Sequence[JsonDict]) -> None:
        """POST /api/v4/{entity}/link with items {entity_id, to_entity_id, to_entity_type[, metadata]}."""

    def account(self) -> JsonDict: ...

    def users(self) -> list[JsonDict]: ...

    def keep_alive(self, max_age_days: float = ...) -> bool:
        """Rotate the token pair when the refresh token is older than ``max_age_days`` (the worker's
        weekly keep-alive, so an idle integration's 3-month refresh token never lapses)."""

    def close(self) -> None:
        """Release the HTTP session."""


# --------------------------------------------------------------------------- BILLmanager
class BillingReader(Protocol):
    def clients(self, ids: Sequence[int]) -> dict[int, Client]: ...

    def payers(self, ids: Sequence[int]) -> dict[int, Payer]: ...

    def services(self, ids: Sequence[int], params: Optional[Collection[str]] = None) -> dict[int, Service]:
        """Services by id; ``params``: only these itemparams (None: all)."""

    def iter_ids(self, kind: Kind, after_id: int = 0, batch: int = 1000) -> Iterator[list[int]]:
        """All ids of a kind in ascending order, streamed in batches (payers: profiletype 2 only)."""

    def account_of_user(self, user_id: int) -> Optional[int]: ...

    def account_by_login_or_email(self, value: str) -> Optional[int]: ...

    def newest_payer_of(self, account_id: int) -> Optional[int]: ...

    def legal_payers_by_account(self, account_ids: Sequence[int]) -> dict[int, list[int]]:
        """account id -> its legal-entity payer ids, ascending; accounts without one are absent."""

    def services_changed_since(self, since: datetime) -> Iterator[list[int]]:
        """Items opened or prolonged (opendate/expiredate moved) since a time, for the reconciler."""

    def names(self, kind: Kind, ids: Sequence[int]) -> dict[int, str]:
        """Readable names for the bindings table (client name, payer name, service name)."""


# --------------------------------------------------------------------------- module tables
@dataclass(frozen=True)
class QueueItem:
    id: int
    kind: Kind
    billmgr_id: int
    reason: str           # open | prolong | edit | export | reconcile | resync
    version: int          # bumped by every coalesced enqueue
    attempts: int
    first_queued_at: datetime


class Store(Protocol):
    def transaction(self) -> ContextManager[None]:
        """Commit on success, roll back on error; nested use joins the outer one."""

    def enqueue(self, kind: Kind, billmgr_id: int, reason: str) -> None:
        """Coalesce: one pending row per (kind, billmgr_id); a new event bumps its version,
        keeps its age and makes it due now. A failed row is revived as pending."""

    def claim(self, kind: Kind, limit: int, now: datetime) -> list[QueueItem]:
        """Pending rows of a kind that are due, oldest first."""

    def complete(self, item: QueueItem) -> None:
        """Delete the row if its version is unchanged; otherwise leave it pending (a newer event came)."""

    def retry(self, item: QueueItem, error: str, delay_seconds: float) -> None: ...

    def fail(self, item: QueueItem, reason: str) -> None:
        """Dead-letter: state failed with the reason; stays visible until retried."""

    def links(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, int]: ...

    def put_link(self, kind: Kind, billmgr_id: int, amocrm_id: int) -> None:
        """Insert or replace the link row (billmgr_id is unique)."""

    def drop_link(self, kind: Kind, billmgr_id: int) -> None: ...

    # Exactly-once create protocol: an intent row is written (and committed) before the
    # POST; put_link clears it. An intent without a link after a crash or an ambiguous
    # answer means "may exist in amoCRM": settle it by the marker before creating again.
    def begin_create(self, kind: Kind, billmgr_ids: Sequence[int], now: datetime) -> None: ...

    def open_creates(self, kind: Kind, billmgr_ids: Optional[Sequence[int]] = None) -> dict[int, datetime]:
        """billmgr_id -> when its create was attempted, for intents with no link yet."""

    def clear_create(self, kind: Kind, billmgr_id: int) -> None: ...

    def record_synced(self, kind: Kind, billmgr_id: int, now: datetime, fingerprint: str = "") -> None:
        """Last successful sync time (and a fingerprint of what was sent) for the bindings view."""


# --------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class AmoPayload:
    """What one BILLmanager entity should look like in amoCRM.

    ``body``: fields the module owns (name, price, custom_fields_values, pipeline_id,
    status_id, responsible_user_id). ``tags``: tags the rules put on it now.
    ``managed_tags``: every tag any rule could put on this kind, so the worker can
    remove the ones that no longer apply and leave tags people added by hand.
    """

    body: JsonDict
    tags: tuple[str, ...] = ()
    managed_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class MappingContext:
    marker_field_ids: Mapping[Kind, int]
    event: Optional[ServiceEvent] = None
    default_responsible_user_id: Optional[int] = None


class RuleSet(Protocol):
    def wants(self, kind: Kind, entity: Any, event: Optional[ServiceEvent] = None) -> bool:
        """The sync conditions for this kind hold for the entity."""

    def payload(self, kind: Kind, entity: Any, ctx: MappingContext) -> AmoPayload: ...

    @property
    def param_names(self) -> Optional[FrozenSet[str]]:
        """The itemparams wants() and payload() can read (None: they may read any)."""


def marker_value(kind: Kind, billmgr_id: int) -> str:
    """The value of the "BILLmanager ID" field on every entity the module creates."""
    return f"billmgr:{kind.value}:{billmgr_id}"
