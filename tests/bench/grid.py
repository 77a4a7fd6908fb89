"""Figure 2 with a latency axis: the rate at amoCRM's limit as its answers slow down.

Real amoCRM answers a write in 0.3-2 s over a network; the engine keeps several batches
in flight (lanes) so that the 7 requests/s are still used. Each row runs against the
emulator enforcing 7 requests/s by arrival, its answers delayed by ``delay`` +-20 % and
the network by 0-50 ms each way (seeded, so a row draws the same waits each run):

* (a) the initial export (``service.run_export``, batches of 250);
* (b) a backlog: the panel's events (``account.edit`` per client, ``profile.edit`` per
  legal payer, ``service.postopen`` per service), spooled as the hook spools them, moved
  into the queue as the worker does, then one engine pass at the shipped
  ``sync.batch_size`` (50).

Target: >= 90 % of 7 x batch at every delay. The client's ``sync.network_margin`` is set
to the emulated network's worst one-way delay (50 ms), as the setting asks: it must cover
the route (``--network-margin`` sets another). Every row says where its rate went
(``arrivals.explain``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

from .arrivals import Arrivals, analyse, bound, explain
from .report import Figure, Results
from .sitesetup import REPO, Site, child_env
from .throughput import EXPORT_BATCH, LIMITED_TARGET, MAX_RATE, export_in_child, last_seq, sandbox_for

JITTER = 0.2            # answers take delay x (1 +- JITTER)
NETWORK = (0.0, 0.05)   # one way, each way
DELAY_SEED = 16
LIVE_BATCH = 50         # the shipped sync.batch_size
ADMIN_LEVEL = "29"


@dataclass
class Row:
    what: str                 # "export" or "backlog"
    delay: float
    batch: int
    entities: int
    seconds: float
    started: float            # wall clock
    ended: float
    arrivals: Arrivals
    problems: str = ""
    margin: float = NETWORK[1]
    complete: bool = True     # the pass was not stopped and left nothing queued

    @property
    def rate(self) -> float:
        return self.entities / self.seconds if self.seconds else 0.0

    def bound(self, without_links: bool = False) -> float:
        """The share of the ceiling these requests could reach at best (``arrivals.bound``)."""
        return bound(self.arrivals, self.entities, self.batch, self.delay, MAX_RATE, self.margin,
                     without_links)

    @property
    def ceiling(self) -> int:
        return MAX_RATE * self.batch

    @property
    def ok(self) -> bool:
        return (self.complete and self.rate >= LIMITED_TARGET * self.ceiling
                and self.arrivals.refused_429 == 0)


def latency(delay: float) -> Dict[str, Any]:
    return {"answer_delay": [delay * (1 - JITTER), delay * (1 + JITTER)], "network_delay": list(NETWORK),
            "seed": DELAY_SEED}


def site_for(entities: int, margin: float = NETWORK[1]) -> Site:
    site = Site.create(rate_limit=float(MAX_RATE), sync={"network_margin": margin})
    try:
        clients, services = sandbox_for(entities, 4.0)
        site.sandbox(clients=clients, services=services)
        site.start_emulator(limit=True)
        site.authorize()
    except BaseException:
        site.close()
        raise
    return site


def export_row(entities: int, delay: float, margin: float) -> Row:
    with site_for(entities, margin) as site:
        site.emulator.control.set_latency(**latency(delay))
        since = last_seq(site)
        run = export_in_child(site)
        log = site.emulator.control.requests(since)
    return Row("export", delay, EXPORT_BATCH, run.entities, run.seconds, run.raw["started_wall"],
               run.raw["ended_wall"], analyse(log), run.problems(), margin,
               complete=not run.raw.get("stopped") and run.entities >= int(run.raw.get("queued", 0)))


def spool_backlog(site: Site) -> int:
    """The panel's saves, each recorded exactly as the hook records it; returns how many."""
    from billmgr_amocrm.hook import build_event
    from billmgr_amocrm.paths import spool_dir_str
    from billmgr_amocrm.store import spool
    from tests.sandbox import Sandbox

    site.activate()
    box = Sandbox(site.db)
    try:
        saves = [("account.edit", int(a)) for (a,) in box.query("SELECT id FROM account ORDER BY id")]
        saves += [("profile.edit", int(p)) for (p,) in
                  box.query("SELECT id FROM profile WHERE profiletype = 2 ORDER BY id")]
        saves += [("service.postopen", int(i)) for (i,) in box.query("SELECT id FROM item ORDER BY id")]
    finally:
        box.close()
    doc = b'<?xml version="1.0" encoding="UTF-8"?>\n<doc><ok/></doc>\n'
    where = spool_dir_str()
    for func, elid in saves:
        environ = {"PARAM_func": func, "PARAM_elid": str(elid), "PARAM_sok": "ok", "AUTH_USER": "admin",
                   "AUTH_LEVEL": ADMIN_LEVEL}
        event = build_event(environ, doc, time.time())
        assert event is not None
        spool.record_event(where, event)
    return len(saves)


def backlog_row(entities: int, delay: float, margin: float) -> Row:
    with site_for(entities, margin) as site:
        spool_backlog(site)
        site.emulator.control.set_latency(**latency(delay))
        since = last_seq(site)
        proc = subprocess.run([sys.executable, "-m", "tests.bench.drain_child"], cwd=str(REPO),
                              env=child_env(site.root), capture_output=True, timeout=900, check=False)
        lines = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"drain child failed ({proc.returncode}): {proc.stderr.decode()[-1500:]}")
        raw = json.loads(lines[-1])
        log = site.emulator.control.requests(since)
    problems = [f"{k} {raw[k]}" for k in ("failed", "retried", "left_queued") if raw.get(k)]
    if raw.get("stopped"):
        problems.append(f"stopped: {raw['stopped']} ({str(raw.get('stop_reason'))[:120]})")
    return Row("backlog", delay, int(raw["batch"]), int(raw["done"]) + int(raw["skipped"]),
               float(raw["seconds"]), float(raw["started_wall"]), float(raw["ended_wall"]), analyse(log),
               "; ".join(problems) + (f" (events {raw['events']} moved to {raw['queued']} queue rows in "
                                      f"{raw['spool_seconds']:.1f} s before the pass)"), margin,
               complete=not raw.get("stopped") and not raw.get("left_queued"))


def add(results: Results, row: Row) -> None:
    label = ("2a. export (batch 250)" if row.what == "export"
             else f"2b. backlog of queued events (batch {row.batch})")
    arr = row.arrivals
    requests = arr.count / row.seconds if row.seconds else 0.0
    results.add(Figure(
        f"{label}, answers {row.delay:g} s, {row.entities:,} entities",
        f"{row.rate:,.0f} entities/s = {row.rate / row.ceiling:.0%} of {row.ceiling:,}; busiest 1 s "
        f"{arr.busiest_second}; 429s {arr.refused_429}; requests {requests:.2f}/s = "
        f"{requests / MAX_RATE:.0%} of {MAX_RATE} ({arr.no_entity_share:.1%} of them carry no entity); "
        f"bound for these {arr.count} requests {row.bound():.0%}",
        f">= {LIMITED_TARGET:.0%} ({LIMITED_TARGET * row.ceiling:,.0f}/s), no 429", row.ok))
    results.note(f"{row.what} at answers {row.delay:g} s: "
                 + ("ok" if row.ok else "MISS, because") + ": "
                 + explain(arr, row.started, row.ended, row.batch, MAX_RATE, row.margin)
                 + f"; the bound (no client keeping the window on this network does better with "
                   f"these requests: the first {MAX_RATE} at once, then {MAX_RATE} per "
                   f"{1 + row.margin:g} s, then the last answer) is {row.bound():.1%}, "
                   f"{row.bound(without_links=True):.1%} without the {arr.links} /link calls"
                 + (f"; {row.problems}" if row.problems else "") + f"; calls {arr.calls}.")


def grid(results: Results, export_entities: int, backlog_entities: int,
         delays: Sequence[float], margin: float = NETWORK[1]) -> List[Row]:
    """Figure 2 rows (a) and (b) at every delay; a row that fails to run is a MISS row of its own."""
    rows: List[Row] = []
    for what, entities, run in (("export", export_entities, export_row),
                                ("backlog", backlog_entities, backlog_row)):
        for delay in delays:
            print(f"    {what}, answers {delay:g} s", file=sys.stderr, flush=True)
            try:
                row = run(entities, delay, margin)
            except Exception as exc:  # noqa: BLE001 - one broken row, the rest still run
                results.add(Figure(f"2. {what}, answers {delay:g} s: did not run",
                                   f"{type(exc).__name__}: {str(exc)[:160]}", "", False))
                continue
            rows.append(row)
            add(results, row)
    results.note(f"figure 2 grid: emulator limit {MAX_RATE} req/s by arrival, answers delay x (1 +- "
                 f"{JITTER:.0%}), network {NETWORK[0]:g}-{NETWORK[1] * 1000:.0f} ms each way "
                 f"(seed {DELAY_SEED}); "
                 f"client rate_limit {MAX_RATE}, network_margin {margin:g} s, concurrency 16 (shipped).")
    return rows
