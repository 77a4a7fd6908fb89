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

    def find_by_marker(self, entity: str, marker_field_id: int, markers: Sequence[str], *,
                       token: str = "", created_since: Optional[int] = None,
                       max_pages: int = 4) -> MarkerSearch:
        """Entities whose marker field holds one of ``markers`` (with or without a token).

        With ``token``: one search for it first (its create's entities carry it); ``found``
        then holds every marker that carries the token, wanted or not. What that does not
        find (the search index lags) is looked for among the entities created since
        ``created_since`` (unix time), ordered by id, at most ``max_pages`` pages a call."""

    def custom_fields(self, entity: str) -> list[JsonDict]:
        """The whole custom-field catalog of an entity type (every page of 50)."""

    def create_custom_fields(self, entity: str, fields: Sequence[JsonDict]) -> list[JsonDict]: ...

    def update_custom_fields(self, entity: str, fields: Sequence[JsonDict]) -> list[JsonDict]:
        """PATCH /api/v4/{entity}/custom_fields: items {id, and what changes (name, sort, is_api_only)}."""

    def pipelines(self) -> list[JsonDict]:
        """Lead pipelines with ``_embedded.statuses``."""

    def link(self, entity: str, links: Sequence[JsonDict]) -> Mapping[int, str]:
        """POST /api/v4/{entity}/link with items {entity_id, to_entity_id, to_entity_type[, metadata]}.

        Returns index in ``links`` -> amoCRM's reason for each link it refused (400); the
        others are made. Raises ``FixData`` when amoCRM refuses the call as a whole (no
        item named), ``AmbiguousWriteError`` when the answer was lost (linking twice is
        harmless)."""

    def unlink(self, entity: str, links: Sequence[JsonDict]) -> Mapping[int, str]:
        """POST /api/v4/{entity}/unlink, items and answer as :meth:`link`; a pair that is not
        linked is no error (the call is idempotent)."""

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

    def account_by_login(self, login: str) -> Optional[int]:
        """The client whose user has this login, when exactly one client has; else None."""

    def account_by_login_or_email(self, value: str) -> Optional[int]: ...

    def newest_payer_of(self, account_id: int) -> Optional[int]: ...

    def legal_payers_by_account(self, account_ids: Sequence[int]) -> dict[int, list[int]]:
        """account id -> its legal-entity payer ids, ascending; accounts without one are absent."""

    def services_by_account(self, account_ids: Sequence[int]) -> dict[int, list[int]]:
        """account id -> its service ids, ascending; accounts without a service are absent."""

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


@dataclass(frozen=True)
class ExportProgress:
    """How far the queueing of one kind's initial export got (it resumes after ``last_id``)."""

    kind: Kind
    started_at: datetime
    last_id: int
    enqueued: int
    finished_at: Optional[datetime]


@dataclass(frozen=True)
class EngineHolder:
    """Who runs the engine, as it registered itself."""

    host: str
    pid: int
    command: str
    since: datetime
    heartbeat_at: datetime

    def describe(self) -> str:
        return (f"{self.command} (pid {self.pid} on {self.host}, since "
                f"{self.since:%Y-%m-%d %H:%M:%S} UTC)")


class Lease(Protocol):
    """One engine at a time for the database (``store/lease.py``)."""

    def engaged(self) -> ContextManager[object]:
        """Hold the lease for a block (or run under the one already held); ``EngineBusy`` if taken."""

    def verify(self, store: Store) -> None:
        """``LeaseLost`` unless the lease is still ours, checked on ``store``'s connection."""


class Store(Protocol):
    """The module's tables as the sync core uses them: queue, links, create intents, sync state.

    Every method is its own unit of work unless called inside ``transaction()``. Times
    given may be naive (taken as UTC) or aware; times returned are aware UTC. The status
    screen's and the panel's read model, the export progress and cursors are the
    adapter's own (``store/``), not part of this port.
    """

    def transaction(self) -> ContextManager[None]:
        """Commit on success, roll back on error; nested use joins the outer one."""

    # Queue: one row per (kind, billmgr_id).
    def enqueue(self, kind: Kind, billmgr_id: int, reason: str) -> None:
        """Coalesce: one row per (kind, billmgr_id); a new event bumps its version, keeps its
        age and attempts and makes it due now. A failed row is revived as pending with
        attempts 0 and a fresh age. Reason precedence: open > prolong > the rest (newest)."""

    def enqueue_many(self, kind: Kind, billmgr_ids: Sequence[int], reason: str) -> None:
        """``enqueue`` for many ids of one kind."""

    def recheck(self, kind: Kind, billmgr_ids: Sequence[int]) -> None:
        """Queue a recheck (reason ``reconcile``: sent only if it changed) of the entities that have
        no row; a row already queued, pending or failed, stays exactly as it is."""

    def claim_after(self, kind: Kind, limit: int, now: datetime,
                    after: Optional[QueueItem]) -> list[QueueItem]:
        """Pending rows of a kind due at ``now``, in (first_queued_at, id) order, after
        ``after`` in that order (None: from the first)."""

    def complete_many(self, items: Sequence[QueueItem]) -> None:
        """Delete each row whose version is the claimed one; a row that got a newer event stays
        pending with attempts 0 and no error."""

    def retry(self, item: QueueItem, error: str, delay_seconds: float) -> None:
        """Count the attempt, keep the error, make a pending row due ``delay_seconds`` from now."""

    def postpone(self, item: QueueItem, why: str, delay_seconds: float) -> None:
        """Make a pending row due ``delay_seconds`` from now without counting an attempt."""

    def fail(self, item: QueueItem, reason: str) -> None:
        """Dead-letter: state failed with the reason; stays visible until retried. If a newer
        event came since the claim the row stays pending, the error noted."""

    def failed_ids(self, kind: Kind) -> set[int]:
        """BILLmanager ids of the dead-lettered rows of a kind (the reconciler leaves them alone)."""

    # Links: billmgr_id -> amoCRM id, one per entity.
    def links(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, int]: ...

    def put_links(self, kind: Kind, pairs: Sequence[tuple[int, int]],
                  clear_intents: bool = True) -> dict[int, int]:
        """Insert or replace (billmgr_id, amocrm_id) links; ``clear_intents``: end their create intents.

        One amoCRM entity is linked to one BILLmanager entity: a pair whose amoCRM id another
        BILLmanager id holds (or claims earlier in ``pairs``) is not written, and is returned
        as billmgr_id -> that holder, for the caller to fail that record."""

    def linked_to(self, kind: Kind, amocrm_ids: Sequence[int]) -> dict[int, int]:
        """amocrm_id -> the BILLmanager id linked to it, for the amoCRM ids that are linked."""

    def drop_link(self, kind: Kind, billmgr_id: int) -> None: ...

    # Exactly-once create protocol: an intent row is written (and committed) before the
    # POST; a link clears it. An intent without a link after a crash or an ambiguous
    # answer means "may exist in amoCRM": settle it by the marker before creating again.
    def begin_create(self, kind: Kind, billmgr_ids: Sequence[int], now: datetime, token: str = "") -> None:
        """Record the intents, with the create request's ``token``; an open intent keeps its
        earlier time and token."""

    def intent_tokens(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, str]:
        """billmgr_id -> the token of its open create intent (those that have one)."""

    def open_creates(self, kind: Kind, billmgr_ids: Optional[Sequence[int]] = None) -> dict[int, datetime]:
        """billmgr_id -> when its create was attempted, for intents with no link yet."""

    def clear_create(self, kind: Kind, billmgr_id: int) -> None: ...

    # Sync state.
    def record_synced_many(self, kind: Kind, rows: Sequence[tuple[int, str]], now: datetime,
                           created: bool = False) -> None:
        """Last successful sync time and a fingerprint of what was sent, per (billmgr_id,
        fingerprint); ``created`` also clears the create intents."""

    def link_created(self, kind: Kind, rows: Sequence[tuple[int, int, str]], now: datetime) -> dict[int, int]:
        """Entities just created, (billmgr_id, amocrm_id, fingerprint): links and sync state
        written and their create intents ended, in one unit of work. The conflicts of
        :meth:`put_links` are returned, with no link and no sync state written for them."""

    def fingerprints(self, kind: Kind, billmgr_ids: Sequence[int]) -> dict[int, str]:
        """What was last sent, for entities synced at least once."""

    def lock_holder(self, name: str) -> Optional[int]:
        """The connection id holding a MySQL named lock (None: free); the engine lease's fence."""

    # Service event history: the last event of each item.
    def record_service_events(self, events: Sequence[tuple[int, ServiceEvent]], now: datetime) -> None:
        """(item id, event): the item's last service event is this one, synced at ``now``."""

    def service_events(self, billmgr_ids: Sequence[int]) -> dict[int, ServiceEvent]:
        """item id -> its last service event, for the items that had one."""

    # Export progress and named cursors.
    def export_begin(self, kind: Kind) -> ExportProgress:
        """Start (or resume, if unfinished) the initial export of a kind."""

    def export_advance(self, kind: Kind, last_id: int, enqueued: int) -> None:
        """Everything up to ``last_id`` is queued; ``enqueued`` more rows were added."""

    def export_finish(self, kind: Kind) -> None: ...

    def get_cursor(self, name: str) -> Optional[str]: ...

    def set_cursor(self, name: str, value: str) -> None: ...


# --------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class AmoPayload:
    """What one BILLmanager entity should look like in amoCRM.

    ``body``: every field the module owns, as the rules compute it now, absences
    included (name, first/last name, price, responsible_user_id, custom_fields_values):
    an empty value is there as its clearing (``"values": None`` for a custom field,
    ``None`` for a price, ``""`` for a first or last name), so an update clears what
    BILLmanager no longer holds; a create leaves the clearings out. ``tags``: tags the
    rules put on it now. ``managed_tags``: every tag any rule could put on this kind, so
    the worker can remove the ones that no longer apply and leave tags people added by
    hand. ``placement``: the (pipeline_id, status_id) the pipeline rules give a lead now
    (None: no rule matches). It is not a state kept in step like the body: it is sent
    when the lead is created and with a service event, never otherwise, so a manager's
    move stands until the next event.
    """

    body: JsonDict
    tags: tuple[str, ...] = ()
    managed_tags: tuple[str, ...] = ()
    placement: Optional[tuple[int, int]] = None


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


SYNC_TAG_PREFIX = "bmsync-"


def marker_with_token(marker: str, token: str) -> str:
    """What a create writes into the marker field: the marker and its request's token
    (``billmgr:lead:7 bmsync-1f2e3d4c5b6a``), so the entities of one lost create are found by
    one search for the token. The next update writes the plain marker back."""
    return f"{marker} {SYNC_TAG_PREFIX}{token}" if token else marker


def marker_identity(value: str) -> str:
    """The marker in a marker field's value, with or without a create token."""
    return value.split(" ", 1)[0]


@dataclass(frozen=True)
class MarkerSearch:
    """What a marker lookup found: marker -> amoCRM id. ``complete``: every entity the lookup
    had to see was seen, so a marker not found is not there; else the lookup stopped at its
    page budget and goes on from ``resume_from`` (unix time of creation) next time."""

    found: Mapping[str, int]
    complete: bool
    resume_from: Optional[int] = None
