"""``AmoApi``: what the sync core asks of the amoCRM client (``amocrm/`` implements it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional, Protocol, Sequence

from ..markers import MarkedPage, MarkerSearch

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class BatchOutcome:
    """Result of one logical batch write (the client may have split it into requests).

    ``ids``: request_id -> amoCRM id for every item amoCRM accepted.
    ``rejected``: request_id -> human-readable reason (entity, field path, amoCRM's
    detail) for items amoCRM refused with a 400; they were not written and must not
    be resent unchanged. ``missing``: request_ids of updates whose entity no longer
    exists in amoCRM (deleted in the UI). ``unknown_fields``: request_id -> the custom field ids
    among a rejected item's reasons that amoCRM said are none of the account's (deleted).
    ``owner_refused``: request_ids of rejected items whose responsible user amoCRM does not
    take (deactivated: the one a create named, or the one a PATCHed entity has).
    """

    ids: Mapping[str, int] = field(default_factory=dict)
    rejected: Mapping[str, str] = field(default_factory=dict)
    missing: Sequence[str] = ()
    unknown_fields: Mapping[str, frozenset[int]] = field(default_factory=dict)
    owner_refused: frozenset[str] = frozenset()


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

    def markers_of(self, entity: str, marker_field_id: int, ids: Sequence[int]) -> Mapping[int, str]:
        """amoCRM id -> the marker (``markers.marker_identity``) its marker field holds now, ""
        for none; ids amoCRM no longer holds are absent."""

    def marked_since(self, entity: str, marker_field_id: int, created_since: int = 0) -> Iterator[MarkedPage]:
        """Every entity created since ``created_since`` (unix time) that carries a marker, a
        page at a time in id order: read from the list, not the lagging search index."""

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


