"""Every fault kind the emulator injects, and what the client makes of it."""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List

import pytest

from billmgr_amocrm.bootstrap import token_status
from billmgr_amocrm.errors import AmbiguousWriteError, RetryLater, Stop

from .conftest import Setup

ADMIN = 504141


def contact(n: int) -> Dict[str, Any]:
    return {"name": f"Client {n}", "request_id": f"contact-{n}"}


def api_calls(setup: Setup, method: str, path: str) -> List[Dict[str, Any]]:
    return [r for r in setup.api_requests() if r["method"] == method and r["path"] == path]


def test_reads_retry_server_errors_and_resets(setup: Setup) -> None:
    client = setup.client()
    setup.emu.control.add_fault("status", path="^/api/v4/account$", method="GET", status=502, count=1)
    setup.emu.control.add_fault("reset", path="^/api/v4/account$", method="GET", count=1)
    assert client.account()["id"]
    assert [r["status"] for r in api_calls(setup, "GET", "/api/v4/account")][-1] == 200
    setup.emu.control.add_fault("status", path="^/api/v4/users$", method="GET", status=500)
    with pytest.raises(RetryLater, match="GET /api/v4/users -> 500") as exc:
        client.users()
    assert exc.value.request_id                      # X-Request-Id is carried
    assert len(api_calls(setup, "GET", "/api/v4/users")) == 3


def test_slow_read_times_out_then_retry_later(setup: Setup) -> None:
    setup.emu.control.add_fault("delay", path="^/api/v4/leads/pipelines$", delay=1.0, count=2)
    client = setup.client(timeout=(1.0, 0.3), max_attempts=2)
    with pytest.raises(RetryLater, match="ReadTimeout"):
        client.pipelines()
    assert len(client.pipelines()) == 2             # the fault is spent; the next read works


@pytest.mark.parametrize(("action", "status", "written"), [
    ("status", 500, 0),          # failed before the write: the client cannot know, so it must not resend
    ("after_commit", 504, 1),    # written, answer lost
    ("drop", 0, 1),              # written, connection closed without an answer
    ("reset", 0, 0),             # reset: maybe sent
    ("delay", 0, 1),             # slow answer -> read timeout after the write
], ids=["5xx-before-write", "504-after-commit", "lost-response", "reset", "timeout"])
def test_writes_are_never_resent_when_the_answer_is_lost(setup: Setup, action: str, status: int,
                                                         written: int) -> None:
    client = setup.client(timeout=(1.0, 0.4), chunk_size=4)
    setup.emu.control.add_fault(action, path="^/api/v4/contacts$", method="POST", status=status,
                                delay=1.0 if action == "delay" else 0.0, count=1)
    with pytest.raises(AmbiguousWriteError) as exc:
        client.create("contacts", [contact(n) for n in range(6)])
    assert exc.value.request_ids == [f"contact-{n}" for n in range(4)]
    assert exc.value.outcome is not None and dict(exc.value.outcome.ids) == {}
    if action == "delay":
        time.sleep(0.8)                              # the emulator finishes the slow write
    assert len(api_calls(setup, "POST", "/api/v4/contacts")) == 1
    assert len(setup.emu.control.entities("contacts")) == written * 4
    halves = action in ("after_commit", "delay")
    assert client.chunk_size == (2 if halves else 4) == exc.value.next_chunk_size


def test_lost_create_is_settled_by_marker_and_resent_in_smaller_chunks(setup: Setup) -> None:
    client = setup.client(chunk_size=4)
    field = client.create_custom_fields("contacts", [{"name": "BILLmanager ID", "type": "text"}])[0]

    def item(n: int) -> Dict[str, Any]:
        return dict(contact(n), custom_fields_values=[
            {"field_id": field["id"], "values": [{"value": f"billmgr:contact:{n}"}]}])

    since = int(setup.emu.control.now()) - 1
    setup.emu.control.add_fault("after_commit", path="^/api/v4/contacts$", method="POST", status=504, count=1)
    with pytest.raises(AmbiguousWriteError) as exc:
        client.create("contacts", [item(n) for n in range(4)])
    markers = [f"billmgr:contact:{n}" for n in range(4)]
    found = client.find_by_marker("contacts", field["id"], markers, created_since=since)
    assert sorted(found.found) == sorted(markers) and found.complete   # the core settles: all four exist
    assert exc.value.next_chunk_size == 2
    outcome = client.create("contacts", [item(n) for n in range(4, 8)])
    assert len(outcome.ids) == 4
    assert [len(r["body"]) for r in api_calls(setup, "POST", "/api/v4/contacts")] == [4, 2, 2]


def test_429_html_backs_off_and_retries(setup: Setup) -> None:
    client = setup.client()
    setup.emu.control.add_fault("status", path="^/api/v4/account$", status=429, count=2)
    assert client.account()["id"]
    setup.emu.control.add_fault("status", path="^/api/v4/contacts$", method="POST", status=429, count=1)
    assert len(client.create("contacts", [contact(1)]).ids) == 1   # a 429 wrote nothing
    assert [r["status"] for r in api_calls(setup, "GET", "/api/v4/account")] == [429, 429, 200]
    assert len(setup.emu.control.entities("contacts")) == 1


def test_403_block_stops_all_processes_and_is_probed_every_15_minutes(setup: Setup) -> None:
    client = setup.client()
    setup.emu.control.block()
    with pytest.raises(Stop, match="403") as exc:
        client.account()
    assert exc.value.reason == "blocked"
    sent = len(setup.api_requests())
    other = setup.client()                          # another process on the host
    for c in (client, other):
        with pytest.raises(Stop, match="next probe"):
            c.users()
    assert len(setup.api_requests()) == sent        # nothing reached amoCRM
    assert token_status(setup.paths, clock=setup.clock).state == "blocked"
    setup.clock.advance(14 * 60)
    with pytest.raises(Stop, match="next probe"):
        client.account()
    setup.clock.advance(60)
    with pytest.raises(Stop, match="403"):
        other.account()                             # the probe: still blocked
    assert len(setup.api_requests()) == sent + 1
    with pytest.raises(Stop, match="next probe"):
        client.account()                            # only one probe per interval
    setup.emu.control.unblock()
    setup.clock.advance(15 * 60)
    assert client.account()["id"]                   # probe succeeds: traffic resumes
    assert "stop" not in json.loads(setup.paths.client_state.read_text())
    assert other.users()


def test_402_unpaid_stops_until_paid(setup: Setup) -> None:
    client = setup.client()
    setup.emu.control.set_paid(False)
    with pytest.raises(Stop, match="not paid") as exc:
        client.create("contacts", [contact(1)])
    assert exc.value.reason == "unpaid"
    with pytest.raises(Stop):
        client.account()
    setup.emu.control.set_paid(True)
    setup.clock.advance(15 * 60)
    assert client.account()["id"]
    assert token_status(setup.paths, clock=setup.clock).state == "ok"


@pytest.mark.parametrize("mode", ["validation", "errors"])
def test_updates_of_deleted_entities_are_missing(setup: Setup, mode: str) -> None:
    client = setup.client()
    setup.emu.control.set_deleted_patch_mode(mode)
    ids = client.create("contacts", [contact(n) for n in range(3)]).ids
    setup.emu.control.delete_entity("contacts", ids["contact-1"])
    outcome = client.update("contacts", [{"id": ids[f"contact-{n}"], "request_id": f"contact-{n}",
                                          "name": f"Renamed {n}"} for n in range(3)])
    assert list(outcome.missing) == ["contact-1"]
    assert sorted(outcome.ids) == ["contact-0", "contact-2"] and not outcome.rejected
    assert ids["contact-1"] not in client.get("contacts", list(ids.values()))


def test_validation_errors_reject_only_the_bad_items_with_their_field(setup: Setup) -> None:
    client = setup.client()
    items = [contact(0), dict(contact(1), custom_fields_values=[{"field_id": 1, "values": [{"value": "x"}]}]),
             contact(2)]
    outcome = client.create("contacts", items)
    assert sorted(outcome.ids) == ["contact-0", "contact-2"]
    assert list(outcome.rejected) == ["contact-1"]
    assert "custom_fields_values.0.field_id" in outcome.rejected["contact-1"]
    assert len(setup.emu.control.entities("contacts")) == 2


def test_deactivated_responsible_user_rejects_the_update_at_that_field(setup: Setup) -> None:
    client = setup.client()
    lead_id = client.create("leads", [{"name": "VPS", "responsible_user_id": 504144,
                                       "request_id": "lead-1"}]).ids["lead-1"]
    setup.emu.control.deactivate_user(504144)
    outcome = client.update("leads", [{"id": lead_id, "request_id": "lead-1", "price": 100}])
    assert list(outcome.rejected) == ["lead-1"]
    assert "responsible_user_id" in outcome.rejected["lead-1"]
    users = {u["id"]: u for u in client.users()}
    assert users[504144]["rights"]["is_active"] is False and users[ADMIN]["rights"]["is_active"]
