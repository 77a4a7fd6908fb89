"""A tag rule deleted or renamed takes its tag off what it was given to, and leaves tags people
added by hand; a month after it left the rules the name is the managers' again. Against
MariaDB and the emulator, the rules saved as the panel saves them. Before, the module took off
only the tags of the rules as they are now, so a deleted rule's tag stayed on every entity."""

from __future__ import annotations

from billmgr_amocrm import service
from billmgr_amocrm.bootstrap import build
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.sync.given_tags import KEEP_RETIRED


def by_hand(rig, amocrm_id: int, tag: str) -> None:
    """A manager adds a tag in amoCRM."""
    outcome = rig.app.amo().update("contacts", [{"id": amocrm_id, "tags_to_add": [{"name": tag}],
                                                "request_id": "by-hand"}])
    assert outcome.ids == {"by-hand": amocrm_id}, outcome


def after_a_save(rig) -> None:
    """What the worker does after the panel's save: the re-check it starts, then a pass."""
    service.reconcile(app=rig.app)
    assert rig.sync().failed == 0


def test_a_deleted_or_renamed_tag_rule_takes_its_tag_off_and_leaves_hand_made_tags(rig):
    old_rule = rig.add_rule("tags", {"entity": "contact", "tag": "old-name"})
    assert rig.sync().failed == 0
    contacts = set(rig.all_links(Kind.CONTACT).values())
    assert all(tags == {"old-name"} for tags in rig.tag_names("contacts", contacts).values())
    handled = sorted(contacts)[0]
    by_hand(rig, handled, "vip-by-hand")

    # renamed in the panel: the rule deleted, a new one with the new name
    rig.delete_rule("tags", old_rule)
    rig.add_rule("tags", {"entity": "contact", "tag": "new-name"})
    after_a_save(rig)

    held = rig.tag_names("contacts", contacts)
    assert held.pop(handled) == {"new-name", "vip-by-hand"}
    assert all(tags == {"new-name"} for tags in held.values())


def test_a_month_after_it_left_the_rules_the_name_is_the_managers_again(rig):
    rule = rig.add_rule("tags", {"entity": "contact", "tag": "retired"})
    assert rig.sync().failed == 0
    rig.delete_rule("tags", rule)
    after_a_save(rig)
    contacts = set(rig.all_links(Kind.CONTACT).values())
    assert not any("retired" in tags for tags in rig.tag_names("contacts", contacts).values())

    rig.sandbox.query("UPDATE amocrm_given_tag SET retired_at = retired_at - INTERVAL %s DAY",
                      (KEEP_RETIRED.days + 1,))
    handled = sorted(contacts)[0]
    by_hand(rig, handled, "retired")            # a manager uses the name now
    account = next(b for b, a in rig.all_links(Kind.CONTACT).items() if a == handled)
    rig.sandbox.edit_client(account, realname="Edited after a month")
    service.resync(Kind.CONTACT, [account], app=rig.app)
    worker = build()                            # a worker of that day (cron's next run)
    try:
        assert service.sync_now(app=worker).failed == 0
    finally:
        worker.close()
    assert rig.entity("contacts", handled)["name"] == "Edited after a month"
    assert "retired" in rig.tag_names("contacts", [handled])[handled]


def test_a_tag_given_again_is_the_rules_and_only_the_rules_tags_are_noted(rig):
    rule = rig.add_rule("tags", {"entity": "contact", "tag": "back-again"})
    assert rig.sync().failed == 0
    rig.delete_rule("tags", rule)
    after_a_save(rig)
    rig.add_rule("tags", {"entity": "contact", "tag": "back-again"})
    after_a_save(rig)
    contacts = set(rig.all_links(Kind.CONTACT).values())
    assert all("back-again" in tags for tags in rig.tag_names("contacts", contacts).values())
    rows = rig.sandbox.query("SELECT kind, name, retired_at FROM amocrm_given_tag")
    assert rows == [("contact", "back-again", None)]
