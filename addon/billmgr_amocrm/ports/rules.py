"""``RuleSet``: amocrm.conf + presets compiled into conditions and payloads (``rules/`` implements it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, FrozenSet, Mapping, Optional, Protocol, Tuple

from ..domain import Kind, ServiceEvent
from .amocrm import JsonDict


@dataclass(frozen=True)
class AmoPayload:
    """What one BILLmanager entity should look like in amoCRM.

    ``body``: every field the module owns, as the rules compute it now, absences
    included (name, first/last name, price, responsible_user_id, custom_fields_values):
    an empty value is there as its clearing (``"values": None`` for a custom field,
    ``None`` for a price, ``""`` for a first or last name), so an update clears what
    BILLmanager no longer holds; a create leaves the clearings out. ``tags``: tags the
    rules put on it now. ``managed_tags``: every tag any rule could put on this kind, and
    those rules gave before (``MappingContext.retired_tags``), so the worker can remove the
    ones that no longer apply and leave tags people added by hand. ``placement``: the
    (pipeline_id, status_id) the pipeline rules give a lead now (None: no rule matches). It
    is not a state kept in step like the body: it is sent when the lead is created and with
    a service event, never otherwise, so a manager's move stands until the next event.
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
    # the module's url fields linking back to BILLmanager (contacts, leads), once created
    url_field_ids: Mapping[Kind, int] = field(default_factory=dict)
    # tags the rules gave before and give no more, still the module's to take off (sync/given_tags.py)
    retired_tags: Mapping[Kind, tuple[str, ...]] = field(default_factory=dict)
    # custom fields rules name that amoCRM no longer has (deleted there; sync/gone_fields.py):
    # their values are not sent, so the rest of the entity still is
    gone_field_ids: FrozenSet[int] = frozenset()
    # (pipeline, status) pairs pipeline rules name that amoCRM no longer has (a stage or a
    # pipeline deleted there): those rules are passed over, the next one or amoCRM's default places
    gone_placements: FrozenSet[Tuple[int, int]] = frozenset()


class RuleSet(Protocol):
    def wants(self, kind: Kind, entity: Any, event: Optional[ServiceEvent] = None) -> bool:
        """The sync conditions for this kind hold for the entity."""

    def payload(self, kind: Kind, entity: Any, ctx: MappingContext) -> AmoPayload: ...

    @property
    def param_names(self) -> Optional[FrozenSet[str]]:
        """The itemparams wants() and payload() can read (None: they may read any)."""


