"""Figure 7: what lost answers cost, in lookups (issue #16, point 5).

An export runs while about 10 % of its writes lose their answer after amoCRM applied them
(the emulator's ``drop`` fault: the write happens, the connection closes unanswered).
A create whose answer was lost must be settled before it is sent again: after
``settle_after`` its marker is looked up (a GET of the entity list), and what is found is
adopted. Everything is counted from the emulator's request log; the figure is the lookups
per write request (entity writes and /link calls), target below 0.1. The run ends when the
queue is empty (worker passes after the export), and the emulator's entities are checked
for duplicates (one marker, two entities).

``sync.settle_after`` is 5 s here instead of the shipped 60 s (the client's read timeout plus
a margin): with answers of at most 0.36 s no write can still be in flight after 5 s, and the
run does not idle for a minute. The lookups made do not depend on it.
"""

from __future__ import annotations

from typing import Dict

from .arrivals import ENTITY_PATH, analyse
from .grid import latency
from .report import Figure, Results
from .sitesetup import Site
from .throughput import MAX_RATE, export_in_child, last_seq, sandbox_for

LOSS = 0.10
TARGET = 0.1
DELAY = 0.3
SETTLE_AFTER = 5.0
FAULT_SEED = 16
WRITES_PATH = r"^/api/v4/(contacts|companies|leads)(/link)?$"
DRAIN_SECONDS = 300.0


def duplicates(site: Site) -> Dict[str, int]:
    """Per entity type: records beyond the first with the same marker value (should be 0)."""
    from billmgr_amocrm.markers import marker_identity

    out: Dict[str, int] = {}
    state = site.emulator.control.state()["entities"]
    for entity in ("contacts", "companies", "leads"):
        seen: Dict[str, int] = {}
        for record in state[entity]:
            if record.get("is_deleted"):
                continue
            for cf in record.get("custom_fields_values") or []:
                value = marker_identity(str((cf.get("values") or [{}])[0].get("value", "")))
                if value.startswith("billmgr:"):
                    seen[value] = seen.get(value, 0) + 1
        out[entity] = sum(n - 1 for n in seen.values() if n > 1)
    return out


def run(results: Results, entities: int) -> None:
    with Site.create(rate_limit=float(MAX_RATE), sync={"network_margin": 0.05,
                                                       "settle_after": SETTLE_AFTER}) as site:
        clients, services = sandbox_for(entities, 4.0)
        site.sandbox(clients=clients, services=services)
        site.start_emulator(limit=True)
        site.authorize()
        control = site.emulator.control
        control.set_latency(**latency(DELAY))
        control.seed_faults(FAULT_SEED)
        for method in ("POST", "PATCH"):
            control.add_fault(action="drop", method=method, path=WRITES_PATH, probability=LOSS)
        since = last_seq(site)
        run_ = export_in_child(site, "--until-empty", str(DRAIN_SECONDS))
        log = control.requests(since)
        twice = duplicates(site)
    arr = analyse(log)
    lost_creates = sum(1 for e in log if e.get("status") in ("drop", "reset") and e["method"] == "POST"
                       and ENTITY_PATH.match(e["path"]))
    per_write = arr.lookups / arr.writes if arr.writes else 0.0
    left = int(run_.raw.get("left_queued", 0))
    ok = per_write < TARGET and not any(twice.values()) and left == 0
    results.add(Figure(
        f"7. settling lost answers: export of {int(run_.raw.get('queued', run_.entities)):,} entities, "
        f"{LOSS:.0%} of write answers lost",
        f"{per_write:.3f} lookups per write ({arr.lookups} lookups / {arr.writes} writes); "
        f"duplicates {sum(twice.values())}",
        f"< {TARGET:g}, no duplicate", ok))
    results.note(f"settling: answers {DELAY:g} s +-20 %, network 0-50 ms, drop fault on POST/PATCH of "
                 f"contacts/companies/leads(/link) with p={LOSS:g} (seed {FAULT_SEED}); settle_after "
                 f"{SETTLE_AFTER:g} s; {arr.dropped} answers lost ({lost_creates} of entity creates), "
                 f"{arr.lookups} lookups, {arr.entity_writes} entity writes + {arr.links} /link calls; "
                 f"lookups per lost create {arr.lookups / lost_creates if lost_creates else 0:.2f}; "
                 f"{run_.raw.get('passes_after', 0)} worker passes after the export; left queued {left}; "
                 f"duplicates {twice}; 429s {arr.refused_429}; calls {arr.calls}"
                 + (f"; {run_.problems()}" if run_.problems() else "") + ".")
