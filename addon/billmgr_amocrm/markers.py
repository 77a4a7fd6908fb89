"""The marker: the "BILLmanager ID" value every entity the module creates carries in amoCRM.

It ties an amoCRM entity to its billing entity without the link tables, so a create whose
answer was lost is found again (``sync/settle.py``) and the audit can count duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, NamedTuple, Optional, Sequence

from .domain import Kind


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


class MarkedEntity(NamedTuple):
    """An amoCRM entity carrying a marker, as a list of them reads it (``AmoApi.marked_since``),
    with what tells whether it is still its billing entity's (``sync/adopt.py``)."""

    marker: str
    amocrm_id: int
    name: str = ""
    emails: tuple[str, ...] = ()        # a contact's EMAIL values
    phones: tuple[str, ...] = ()        # a contact's PHONE values
    contact_ids: tuple[int, ...] = ()   # a company's or lead's linked contacts


class MarkedPage(NamedTuple):
    """One page of such a list: its marked entities, and the newest creation time (unix) on it,
    marked or not, from where a scan stopped after it goes on."""

    marked: Sequence[MarkedEntity]
    last_created: int
    # contacts only: those without a marker (people made them), with their e-mails and phones,
    # for binding clients to what the managers already hold (``sync/match.py``)
    unmarked: Sequence[MarkedEntity] = ()


def billmgr_id_of(kind: Kind, marker: str) -> Optional[int]:
    """The BILLmanager id a marker of ``kind`` names; None for another kind's or no marker."""
    prefix = marker_value(kind, 0)[:-1]
    tail = marker[len(prefix):] if marker.startswith(prefix) else ""
    return int(tail) if tail.isascii() and tail.isdigit() and not tail.startswith("0") else None
