"""Settling a lost create costs one search, whatever the backlog (issue 14 point 7, issue 16 point 5)."""

from __future__ import annotations

from billmgr_amocrm import service
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.sync.export import enqueue_all


def test_a_lost_create_is_settled_by_one_search_for_its_token(rig):
    control = rig.emulator.control
    control.set_search_lag(0)
    enqueue_all(rig.app.store, rig.app.billing, kinds=(Kind.CONTACT,))
    # the first contact POST is applied, then its answer is lost
    control.add_fault(action="after_commit", path="^/api/v4/contacts$", method="POST", status=504, count=1)
    seq = rig.request_seq()
    while True:
        report = rig.sync()
        assert report.stopped is None
        if not service.status(app=rig.app).queue_depth:
            break
        rig.make_due()
    lost = [r for r in rig.requests_since(seq, "POST", "/api/v4/contacts") if r["status"] == 504]
    reads = rig.requests_since(seq, "GET", "/api/v4/contacts")
    # besides the first pass's one read of the list (clients bound to the contacts people made,
    # ``sync/match.py``: the account had none), one search for the lost create's token
    lookups = [r for r in reads if "filter[created_at][from]" not in r["query"]]
    assert len(reads) - len(lookups) == 1
    assert len(lost) == 1 and len(lookups) == 1 and "query" in lookups[0]["query"], \
        [(r["query"], r["status"]) for r in reads]
    assert service.status(app=rig.app).queue_depth == 0
    counts = rig.marker_counts("contacts")
    assert len(counts) == len(rig.all_links(Kind.CONTACT)) and max(counts.values()) == 1


def test_without_the_search_the_scan_is_bounded_per_round_and_resumes(rig, monkeypatch):
    from billmgr_amocrm.sync import settle

    control = rig.emulator.control
    control.set_search_lag(100000)                 # the search index never catches up
    monkeypatch.setattr(settle, "MAX_SCAN_PAGES", 1)
    enqueue_all(rig.app.store, rig.app.billing, kinds=(Kind.CONTACT,))
    control.add_fault(action="after_commit", path="^/api/v4/contacts$", method="POST", status=504, count=1)
    rig.sync()
    rounds = 0
    while rig.all_links(Kind.CONTACT) == {} or service.status(app=rig.app).queue_depth:
        seq = rig.request_seq()
        rig.make_due()
        rig.sync()
        gets = rig.requests_since(seq, "GET", "/api/v4/contacts")
        assert len(gets) <= 2                      # the token search and one page of scan per round
        rounds += 1
        assert rounds < 50
    counts = rig.marker_counts("contacts")
    assert len(counts) == len(rig.all_links(Kind.CONTACT)) and max(counts.values()) == 1
