"""Figure 6: the reconciler's daily full re-check of every linked entity (issue 14, point 4).

One site at the issue's scale (1,000 clients, 20,000 services), exported with limits off;
then the re-check runs in a child process twice: with nothing changed, and after lost
edits of 10 clients and 10 services. It asks nothing of amoCRM; the figure is its cost in
database work and CPU, and that it queues exactly the lost edits.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, Dict

from .report import Figure, Results
from .sitesetup import REPO, Site, child_env
from .throughput import MAX_RATE, cpu_seconds, export_in_child, server_pid

LOST_EDITS = 10


def recheck_in_child(site: Site, *flags: str) -> Dict[str, Any]:
    pid = server_pid()
    server_before = cpu_seconds(pid)
    proc = subprocess.run([sys.executable, "-m", "tests.bench.recheck_child", *flags], cwd=str(REPO),
                          env=child_env(site.root), capture_output=True, timeout=900, check=False)
    server_after = cpu_seconds(pid)
    lines = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"re-check child failed ({proc.returncode}): {proc.stderr.decode()[-300:]!r}")
    out: Dict[str, Any] = json.loads(lines[-1])
    if server_before is not None and server_after is not None:
        out["server_cpu"] = server_after - server_before
    return out


def describe(run: Dict[str, Any]) -> str:
    db = run["db"]
    server = f", MariaDB {run['server_cpu']:.1f} CPU-s" if "server_cpu" in run else ""
    return (f"{run['checked']:,} linked checked in {run['seconds']:.1f} s: {db['Questions']:,} statements "
            f"({db['Com_select']:,} SELECT), {db['Rows_sent']:,} rows sent, {db['Rows_read']:,} rows read "
            f"by the server, {db['Bytes_sent'] / 1e6:.1f} MB; {run['cpu']:.1f} CPU-s in the process{server}")


def describe_hourly(run: Dict[str, Any]) -> str:
    return (f"queued {sum(run['queued'].values()):,}; the pass: {run['done']:,} sent, {run['unchanged']:,} "
            f"re-checked unchanged; {run['seconds']:.1f} s, {run['cpu']:.1f} CPU-s in the process")


def run(results: Results, clients: int, services: int) -> None:
    with Site.create(rate_limit=float(MAX_RATE)) as site:
        site.sandbox(clients=clients, services=services)
        site.start_emulator(limit=False)
        site.authorize()
        export = export_in_child(site, "--unthrottled")
        requests_before = len(site.emulator.control.requests())
        quiet = recheck_in_child(site)
        hourly = recheck_in_child(site, "--hourly")
        edited = recheck_in_child(site, "--edit", str(LOST_EDITS))
        asked = len(site.emulator.control.requests()) - requests_before
    queued = sum(quiet["queued"].values())
    found = edited["queued"]
    exact = (queued == 0 and asked == 0
             and found.get("contact") == LOST_EDITS and found.get("lead") == LOST_EDITS)
    name = (f"6. full re-check of linked entities ({clients:,} clients, {services:,} services; "
            "reconciler, daily)")
    results.add(Figure(name, describe(quiet), "0 amoCRM calls; queues only lost edits", exact))
    results.add(Figure(f"6b. the reconciler's hourly run after the export, {hourly['candidates']:,} live "
                       "services among its candidates (no change times in BILLmanager), then the "
                       "worker's pass",
                       describe_hourly(hourly), "queues nothing unchanged",
                       sum(hourly["queued"].values()) == 0 and hourly["done"] == 0))
    results.note(f"re-check: after the export ({export.entities:,} entities) nothing changed: queued "
                 f"{queued}; after {LOST_EDITS} lost client and {LOST_EDITS} lost service edits: queued "
                 f"{found}, {describe(edited)}; amoCRM requests during both: {asked}.")
