"""Figures 2-4: the initial export, each run in its own child process (``export_child``).

2. At amoCRM's real limit: the rows at several answer delays are ``grid.py``; here the
   same export with one entity per request (what common clients do), on a small sandbox.
3. The pipeline with limits off (emulator limit disabled, client limiter at 1,000/s):
   database read, mapping, HTTP to the emulator subprocess, link writes.
4. Peak RSS of the export process at two sizes, from the child's ``ru_maxrss``/VmHWM.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .report import Figure, Results
from .sitesetup import REPO, Site, child_env

MAX_RATE = 7            # amoCRM: requests per second per integration
EXPORT_BATCH = 250      # amoCRM's maximum per write; the export's batch (bootstrap.EXPORT_CHUNK)
LIMITED_TARGET = 0.90
PIPELINE_TARGET = 5000.0
RSS_TARGET_MIB = 150.0
RSS_GROWTH_TARGET = 0.20
LEGAL_SHARE = 0.37      # sandbox: legal-entity payers per client (they become companies)


@dataclass(frozen=True)
class ExportRun:
    entities: int
    seconds: float
    rss_mib: float
    hwm_mib: float
    raw: Dict[str, Any]
    # CPU seconds by process during the run (export process, MariaDB, emulator), where readable
    cpu: Dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.entities / self.seconds if self.seconds else 0.0

    def problems(self) -> str:
        bits = [f"{k} {self.raw[k]}" for k in ("failed", "retried") if self.raw.get(k)]
        if self.raw.get("stopped"):
            bits.append(f"stopped: {self.raw['stopped']} ({self.raw.get('stop_reason', '')[:120]})")
        if self.entities < int(self.raw.get("queued", 0)):
            bits.append(f"only {self.entities} of {self.raw['queued']} queued entities handled")
        return "; ".join(bits)


def sandbox_for(entities: int, services_per_client: float) -> tuple[int, int]:
    """Clients and services whose export is about ``entities`` (contacts + companies + leads)."""
    clients = max(20, int(entities / (1 + LEGAL_SHARE + services_per_client)))
    return clients, max(20, entities - int(clients * (1 + LEGAL_SHARE)))


def export_in_child(site: Site, *flags: str) -> ExportRun:
    cmd = [sys.executable, "-m", "tests.bench.export_child", *flags]
    proc = subprocess.run(cmd, cwd=str(REPO), env=child_env(site.root), capture_output=True, timeout=900,
                          check=False)
    lines = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"export child failed ({proc.returncode}): {proc.stderr.decode()[-1500:]}")
    raw = json.loads(lines[-1])
    hwm = raw.get("vmhwm_kib") or raw["maxrss_kib"]
    return ExportRun(entities=int(raw["done"]) + int(raw["skipped"]), seconds=float(raw["seconds"]),
                     rss_mib=raw["maxrss_kib"] / 1024, hwm_mib=hwm / 1024, raw=raw)


def request_stats(site: Site, since: int) -> Dict[str, Any]:
    """Requests the emulator saw after ``since`` (count, 429s, busiest 1 s window)."""
    log = site.emulator.control.requests(since)
    statuses: Dict[str, int] = {}
    paths: Dict[str, int] = {}
    for entry in log:
        statuses[str(entry["status"])] = statuses.get(str(entry["status"]), 0) + 1
        call = f"{entry['method']} {entry['path'].replace('/api/v4/', '')}"
        paths[call] = paths.get(call, 0) + 1
    stats = site.emulator.control.rate_stats(1.0)
    return {"count": len(log), "statuses": statuses, "paths": paths, "max_per_second": stats.get("max_all"),
            "span": (log[-1]["wall_time"] - log[0]["wall_time"]) if len(log) > 1 else 0.0}


def last_seq(site: Site) -> int:
    log = site.emulator.control.requests(0)
    return int(log[-1]["seq"]) if log else 0


def single(results: Results, single_entities: int, batched_rate: float) -> None:
    """Figure 2's comparison: the same export at the limit, one entity per request (no answer delay)."""
    with Site.create(rate_limit=float(MAX_RATE)) as site:
        clients, services = sandbox_for(single_entities, 1.0)
        site.sandbox(clients=clients, services=services)
        site.start_emulator(limit=True)
        site.authorize()
        since = last_seq(site)
        single_run = export_in_child(site, "--request-size", "1")
        sent_single = request_stats(site, since)
    faster = f"; batched export (answers 0 s) is {batched_rate / single_run.rate:,.0f}x faster" \
        if single_run.rate and batched_rate else ""
    value = f"{single_run.rate:.1f} entities/s{faster}" if single_run.rate else "no entities handled"
    results.add(Figure(f"2c. export, one entity per request ({single_run.entities} entities, answers 0 s)",
                       value))
    results.note(f"one entity per request: {single_run.entities} entities, {sent_single['count']} requests "
                 f"in {single_run.seconds:.1f} s, statuses {sent_single['statuses']}"
                 + (f"; {single_run.problems()}" if single_run.problems() else "") + ".")


def pipeline(results: Results, services: int, profile: Optional[str]) -> None:
    """Figure 3: the whole pipeline with every rate limit out of the way."""
    run = _unlimited_export(services, services // 4)
    results.add(Figure(f"3. pipeline, limits off, {run.entities:,} entities ({services:,} services)",
                       f"{run.rate:,.0f} entities/s ({run.seconds:.1f} s)", f">= {PIPELINE_TARGET:,.0f}/s",
                       run.rate >= PIPELINE_TARGET))
    if run.problems():
        results.note(f"pipeline run: {run.problems()}.")
    if cpu_note(run):
        results.note(f"pipeline: {cpu_note(run)}; the export process's time includes its start-up "
                     "(imports, configuration).")
    if profile:
        from .profiling import summary

        profiled = _unlimited_export(services, services // 4, "--profile", profile)
        results.note(f"pipeline profile (a separate run, {profiled.rate:,.0f} entities/s under the profiler; "
                     f"{cpu_note(profiled)}): {summary(profile, str(profiled.raw.get('profiler')))}.")


def _unlimited_export(services: int, clients: int, *flags: str) -> ExportRun:
    with Site.create(rate_limit=float(MAX_RATE)) as site:
        site.sandbox(clients=max(20, clients), services=services)
        site.start_emulator(limit=False)
        site.authorize()
        processes = {"MariaDB": server_pid(), "emulator": getattr(site.emulator.process, "pid", None)}
        before = {name: cpu_seconds(pid) for name, pid in processes.items()}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        run = export_in_child(site, "--unthrottled", *flags)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        run.cpu["export process"] = ((after.ru_utime - children.ru_utime)
                                     + (after.ru_stime - children.ru_stime))
        for name, pid in processes.items():
            spent, was = cpu_seconds(pid), before[name]
            if spent is not None and was is not None:
                run.cpu[name] = spent - was
        return run


def server_pid() -> Optional[int]:
    """The local MariaDB (or MySQL) server process, found by name in /proc; None if not visible."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("mariadbd", "mysqld"):
                    return int(entry.name)
            except OSError:
                continue
    return None


def cpu_seconds(pid: Optional[int]) -> Optional[float]:
    """User + system CPU seconds a process has used so far (/proc/PID/stat), None if unreadable."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_note(run: ExportRun) -> str:
    """Where the CPU went: the figure is CPU-bound on a 2-core machine, so this says by whom."""
    if not run.cpu:
        return ""
    parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in run.cpu.items())
    return f"CPU time during the run: {parts} (wall {run.seconds:.1f} s, {os.cpu_count()} cores)"


def memory(results: Results, sizes: Sequence[int]) -> None:
    """Figure 4: peak RSS of the export process at a small and a large sandbox."""
    runs: List[ExportRun] = []
    for services in sizes:
        runs.append(_unlimited_export(services, services // 10))
    small, large = runs[0], runs[-1]
    growth = (large.hwm_mib - small.hwm_mib) / small.hwm_mib
    results.add(Figure(f"4. export peak RSS at {sizes[-1]:,} services",
                       f"{large.hwm_mib:.0f} MiB", f"<= {RSS_TARGET_MIB:.0f} MiB",
                       large.hwm_mib <= RSS_TARGET_MIB))
    results.add(Figure(f"4b. peak RSS growth {sizes[0]:,} -> {sizes[-1]:,} services",
                       f"{growth:+.0%} ({small.hwm_mib:.0f} -> {large.hwm_mib:.0f} MiB)",
                       f"<= {RSS_GROWTH_TARGET:.0%}", growth <= RSS_GROWTH_TARGET))
    results.note("memory runs (limits off): " + "; ".join(
        f"{r.raw['queued']:,} entities in {r.seconds:.1f} s = {r.rate:,.0f}/s, VmHWM {r.hwm_mib:.0f} MiB "
        f"(ru_maxrss {r.rss_mib:.0f} MiB)" + (f" ({r.problems()})" if r.problems() else "") for r in runs)
        + ". VmHWM is the figure: ru_maxrss survives exec, so it also counts the pre-exec image of the "
        "forked bench process.")
