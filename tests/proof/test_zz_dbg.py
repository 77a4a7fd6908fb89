import random, json
from billmgr_amocrm.domain import Kind
from tests.proof.support import TRANSIENT_FAULTS, per_rule_probability

def test_dbg(proof_rig, scale):
    rig = proof_rig
    p = per_rule_probability(0.2, len(TRANSIENT_FAULTS))
    for spec in TRANSIENT_FAULTS:
        rig.control.add_fault(path="^/api/v4/", probability=p, **spec)
    rng = random.Random(1)
    engine = rig.engine()
    for serial in range(150):
        rig.random_event(rng, serial)
        if serial % 50 == 49:
            engine.run_pass(); rig.make_due()
    rig.drain(max_passes=400)
    audit = rig.audit()
    dups = audit.duplicates.get("contacts", {})
    with open("/tmp/dbg.txt", "w") as out:
        out.write(audit.summary() + "\n")
        for r in rig.api_requests():
            body = json.dumps(r.get("body"), ensure_ascii=False)
            if r["path"] == "/api/v4/contacts" or "contacts" in r["path"]:
                out.write(f'{r["seq"]} {r["wall_time"]:.2f} {r["method"]} {r["path"]} {r["query"]} {r["status"]} {r["fault"]} {body[:300]}\n')
