"""Custom fields deleted in amoCRM while the module writes them.

An amoCRM admin tidying the account's settings may delete a field the module writes: its
"BILLmanager ID" marker field, its link field back to BILLmanager, or a field a custom field
rule maps. amoCRM then refuses every write of that kind that names the field
(``NotSupportedChoice`` at ``custom_fields_values.N.field_id``), so before this every client,
payer or service edited afterwards failed until an admin edited amocrm.conf by hand and
retried the failed records. Now a pass that meets such a refusal (``BatchOutcome
.unknown_fields``) holds the record back instead of failing it (it waits, no attempt spent),
stops claiming, lets the batches in flight land, and then, on the pass's own thread:

1. reads the catalog of the kinds concerned once, to tell a deleted field from a refusal that
   only looked like one (a field amoCRM still has: the records are sent again and, refused
   again, fail with amoCRM's words);
2. makes a deleted marker or link field anew and records its id in amocrm.conf, as the set-up
   does (``App.fields_gone``); the settings changed, so the re-check that follows a save
   writes the new marker onto every entity sent before;
3. notes a deleted rule field (the ``fields:gone`` cursor), whose value is no longer sent
   (``MappingContext.gone_field_ids``): the rest of the entity is, and ``amocrm check`` and the
   status name the rule to fix (the catalog cache is read again);

and goes on with the pass, which sends the held records again with the fields as they are now.
"""

from __future__ import annotations

from typing import Collection, Iterable

from ..ports import Store

CURSOR = "fields:gone"
CURSOR_CHARS = 255


def gone_fields(store: Store) -> frozenset[int]:
    """The rule fields noted deleted in amoCRM."""
    value = store.get_cursor(CURSOR) or ""
    return frozenset(int(part) for part in value.split(",") if part.strip().isdigit())


def note_gone_fields(store: Store, ids: Iterable[int], named: Collection[int]) -> frozenset[int]:
    """Add deleted fields to the note, keeping only those a rule names now (``named``): a field
    no rule names is never sent, and the note must fit its cursor. Returns the note."""
    noted = sorted(i for i in gone_fields(store) | frozenset(ids) if i in named)
    text = ""
    for field_id in noted:     # a cursor holds 255 characters: some 25 field ids
        longer = f"{text},{field_id}" if text else str(field_id)
        if len(longer) > CURSOR_CHARS:
            break
        text = longer
    store.set_cursor(CURSOR, text)
    return gone_fields(store)
