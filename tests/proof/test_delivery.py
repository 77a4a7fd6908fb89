"""Scenarios 1, 2 and 8: transient faults, lost create answers, one invalid record in a batch."""

from __future__ import annotations

import json
import random
from typing import Any

from billmgr_amocrm.domain import Kind

from .support import TRANSIENT_FAULTS, ProofRig, per_rule_probability

FAULT_SHARE = 0.20
def test_transient_faults_lose_nothing_duplicate_nothing_fail_nothing(proof_rig: ProofRig,
                                                                      scale: Any) -> None:
    """Scenario 1: every event reaches amoCRM once, in its latest state, through 20 % faults."""
    rig = proof_rig
    events = scale(500, 10_000)
    p = per_rule_probability(FAULT_SHARE, len(TRANSIENT_FAULTS))
    for spec in TRANSIENT_FAULTS:
        rig.control.add_fault(path="^/api/v4/", probability=p, **spec)
    rng = random.Random(1)
    engine = rig.engine()
    for serial in range(events):
        rig.random_event(rng, serial)
        if serial % 50 == 49:
            engine.run_pass()
            rig.make_due()
    rig.drain(max_passes=400)

    requests = rig.api_requests()
    faulted = [r for r in requests if r["fault"]]
    assert len(faulted) >= 0.1 * len(requests), "the faults did not fire as planned"
    audit = rig.audit()
    assert audit.ok, audit.summary()
    assert len(rig.touched) > 0.5 * len(rig.ids(Kind.LEAD))


def test_lost_create_answers_under_search_lag_make_no_duplicates(proof_rig_factory: Any, scale: Any) -> None:
    """Scenario 2: creates applied by amoCRM whose answers never arrive; the search index lags."""
    creates = scale(100, 1000)
    rig: ProofRig = proof_rig_factory(clients=5, services=5, search_lag=3600)
    for n in range(creates):
        account = rig.sandbox.add_client(name=f"Потерянный {n}", email=f"lost{n}@example.com").account_id
        rig.enqueue(Kind.CONTACT, account, "edit")
    # half of the creates are applied and their answer lost (dropped connection or 504 after commit)
    rig.control.add_fault("drop", path="^/api/v4/contacts$", method="POST", probability=0.3)
    rig.control.add_fault("after_commit", path="^/api/v4/contacts$", method="POST", status=504,
                          probability=0.3)
    # a lost answer ends a pass early (the engine counts it as an outage strike): more passes at scale
    rig.drain(max_passes=scale(200, 2000), batch_size=10)

    lost = [r for r in rig.api_requests() if r["fault"] and r["method"] == "POST"]
    assert lost, "no create answer was lost: the scenario proved nothing"
    audit = rig.audit()
    assert audit.ok, audit.summary()
    assert len(rig.live_entities(Kind.CONTACT)) == len(rig.links(Kind.CONTACT))


def test_one_invalid_record_fails_alone_after_one_attempt_with_amocrms_reason(proof_rig: ProofRig) -> None:
    """Scenario 8: 49 of 50 go through; the one goes to the failed state at once, with the reason."""
    rig = proof_rig
    select = next(f for f in rig.control.state()["custom_fields"]["contacts"]
                  if f["type"] == "select")
    conf_path = rig.paths.amocrm_conf
    conf = json.loads(conf_path.read_text(encoding="utf-8"))
    # an amoCRM option that does not exist (deleted in amoCRM after the rule was made)
    conf["fields"] = [{"id": "source", "entity": "contact", "field_id": select["id"], "field_type": "select",
                       "value": "client.name", "enum_map": {"Сломанный клиент": 987654321}}]
    conf_path.write_text(json.dumps(conf, ensure_ascii=False), encoding="utf-8")
    rig.app.reload_rules()
    accounts = rig.ids(Kind.CONTACT)[:50]
    bad = accounts[17]
    rig.sandbox.edit_client(bad, name="Сломанный клиент")
    for account in accounts:
        rig.enqueue(Kind.CONTACT, account, "export")
    report = rig.engine(batch_size=50).run_pass()

    assert report.done == 49 and report.failed == 1, report
    assert set(rig.links(Kind.CONTACT)) == set(accounts) - {bad}
    rows = rig.sql("SELECT state, attempts, last_error FROM amocrm_queue WHERE kind = 'contact'")
    assert len(rows) == 1
    state, attempts, error = rows[0]
    assert state == "failed" and attempts == 1
    assert "NotSupportedChoice" in error or "enum" in error, error
    audit = rig.audit(keys=[(Kind.CONTACT, a) for a in accounts if a != bad])
    assert not audit.duplicates and not audit.missing and not audit.stale, audit.summary()


def test_a_transient_link_failure_never_dead_letters_a_good_record(proof_rig: ProofRig) -> None:
    """The deterministic core of scenario 1's failures: a company after seven outage retries."""
    rig = proof_rig
    payer, account = rig.sql("SELECT id, account FROM profile WHERE profiletype = 2 ORDER BY id LIMIT 1")[0]
    rig.enqueue(Kind.CONTACT, int(account), "edit")
    rig.drain()
    rig.enqueue(Kind.COMPANY, int(payer), "edit")
    # seven passes of an outage already hit this row (each counts an attempt)
    rig.sql("UPDATE amocrm_queue SET attempts = 7 WHERE kind = 'company'")
    rig.control.add_fault("status", path="^/api/v4/companies/link$", method="POST", status=504, count=1)
    rig.engine().run_pass()
    assert not rig.audit().failed
    rig.make_due()
    rig.drain()
    audit = rig.audit()
    assert audit.ok, audit.summary()
