"""Custom fields, pipeline stages and users amoCRM took away while the module writes them.

An amoCRM admin tidying the account's settings may delete a field the module writes: its
"BILLmanager ID" marker field, its link field back to BILLmanager, or a field a custom field
rule maps; a sales lead reshaping a pipeline may delete the stage (or the pipeline) a
pipeline rule places deals in; a salesperson leaves and is deactivated without their
entities given to anyone. amoCRM then refuses every write naming it (a field:
``NotSupportedChoice`` at ``custom_fields_values.N.field_id``; a stage: a refusal of the
deal's ``pipeline_id``/``status_id``; a user: ``NotSupportedChoice`` at
``responsible_user_id``, for a create naming them and for any PATCH of what they own), so
before this every client, payer or service edited afterwards failed until an admin edited
amocrm.conf by hand. Now a pass that meets such a refusal (``BatchOutcome.unknown_fields`` and
``owner_refused``, or a refused deal that carried a placement) holds the record back instead
of failing it (it waits, no attempt spent), stops claiming, lets the batches in flight land,
and then, on the pass's own thread (``Engine.look_at_refusals``):

1. reads the catalog concerned once (the kind's custom fields, the pipelines, the users), to
   tell what amoCRM took away from a refusal that only looked like it (what amoCRM still has:
   the records are sent again and, refused again, fail with amoCRM's words);
2. makes a deleted marker or link field anew and records its id in amocrm.conf, as the set-up
   does (``App.catalog_gone``); the settings changed, so the re-check that follows a save
   writes the new marker onto every entity sent before;
3. notes a deleted rule field (its value is no longer sent: ``MappingContext.gone_field_ids``;
   the rest of the entity is) and a deleted stage (its rule is passed over:
   ``MappingContext.gone_placements``; the next rule that holds, or amoCRM's default, places
   the deal), and reads the catalog cache again, so ``amocrm check`` and the status name the
   rules to fix;
4. notes which of the settings' responsible users amoCRM deactivated: while Sync settings'
   one is, the integration's own user (whom amoCRM gives API-made entities anyway) stands in
   for new entities, and an entity whose PATCH was refused for its deactivated owner is sent
   once more with the module's responsible user as its owner (``PassState.reassign``); what
   billing does not change stays as the amoCRM admin left it; the worker's periodic catalog
   check (and ``amocrm check``) reads the users again, and a user activated again is the
   settings' choice again;

and goes on with the pass, which sends the held records again as things are now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection, Iterable, Mapping, Optional

from ..domain import Kind
from ..ports import Store

FIELDS_CURSOR = "fields:gone"
PLACEMENTS_CURSOR = "pipelines:gone"
# the responsible users the settings name that amoCRM deactivated, and whom their work goes to
INACTIVE_CURSOR = "users:inactive"
STAND_IN_CURSOR = "users:stand_in"
CURSOR_CHARS = 255

Placement = tuple[int, int]


@dataclass(frozen=True)
class Gone:
    """What amoCRM no longer has, as a pass found it: custom field ids per kind, and
    (pipeline, status) pairs."""

    fields: Mapping[Kind, frozenset[int]] = field(default_factory=dict)
    placements: frozenset[Placement] = frozenset()
    # the account's deactivated users, when a refusal had them read (None: not read)
    inactive_users: Optional[frozenset[int]] = None

    def __bool__(self) -> bool:
        return bool(self.fields or self.placements or self.inactive_users is not None)


def gone_fields(store: Store) -> frozenset[int]:
    """The rule fields noted deleted in amoCRM."""
    return frozenset(int(part) for part in _parts(store, FIELDS_CURSOR) if part.isdigit())


def gone_placements(store: Store) -> frozenset[Placement]:
    """The pipeline rules' stages noted deleted in amoCRM."""
    found = set()
    for part in _parts(store, PLACEMENTS_CURSOR):
        pipeline, _, status = part.partition(":")
        if pipeline.isdigit() and status.isdigit():
            found.add((int(pipeline), int(status)))
    return frozenset(found)


def note_gone_fields(store: Store, ids: Iterable[int], named: Collection[int]) -> None:
    """Add deleted fields to the note, keeping only those a rule names now (``named``): a field
    no rule names is never sent, and the note must fit its cursor."""
    _note(store, FIELDS_CURSOR, [str(i) for i in sorted((gone_fields(store) | set(ids)) & set(named))])


def note_gone_placements(store: Store, pairs: Iterable[Placement],
                         named: Collection[Placement]) -> None:
    """:func:`note_gone_fields` for pipeline rules' stages."""
    kept = sorted((gone_placements(store) | set(pairs)) & set(named))
    _note(store, PLACEMENTS_CURSOR, [f"{p}:{s}" for p, s in kept])


def deactivated(users: Iterable[Mapping[str, Any]]) -> frozenset[int]:
    """The ids of the users amoCRM lists as deactivated (``GET /api/v4/users``)."""
    return frozenset(u["id"] for u in users if isinstance(u.get("id"), int)
                     and not (u.get("rights") or {}).get("is_active", True))


def renote_inactive_users(store: Store, users: Iterable[Mapping[str, Any]]) -> None:
    """A fresh read of the users (the worker's periodic catalog check): a noted user amoCRM
    activated again leaves the note, so the settings' choice is theirs again."""
    noted = inactive_users(store)
    if noted:
        note_inactive_users(store, deactivated(users), noted, stand_in(store))


def inactive_users(store: Store) -> frozenset[int]:
    """The responsible users the settings name that amoCRM deactivated, as last read."""
    return frozenset(int(part) for part in _parts(store, INACTIVE_CURSOR) if part.isdigit())


def stand_in(store: Store) -> Optional[int]:
    """The user who takes a deactivated responsible user's part: the integration's own."""
    value = store.get_cursor(STAND_IN_CURSOR) or ""
    return int(value) if value.isdigit() else None


def note_inactive_users(store: Store, inactive: Iterable[int], named: Collection[int],
                        stand_in_id: Optional[int]) -> None:
    """Replace the note by the deactivated users among ``named`` (a user activated again
    leaves it) and who stands in for them."""
    _note(store, INACTIVE_CURSOR, [str(i) for i in sorted(set(inactive) & set(named))])
    store.set_cursor(STAND_IN_CURSOR, str(stand_in_id) if stand_in_id else "")


def _parts(store: Store, cursor: str) -> list[str]:
    return [part.strip() for part in (store.get_cursor(cursor) or "").split(",") if part.strip()]


def _note(store: Store, cursor: str, parts: list[str]) -> None:
    text = ""
    for part in parts:     # a cursor holds 255 characters: some 25 field ids, 14 stages
        longer = f"{text},{part}" if text else part
        if len(longer) > CURSOR_CHARS:
            break
        text = longer
    store.set_cursor(cursor, text)
