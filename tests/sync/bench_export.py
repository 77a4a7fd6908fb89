"""Export throughput and memory, by hand (not collected by pytest).

    .venv/bin/python -m tests.sync.bench_export --clients 2000 --services 6000 [--limit] [--profile]

Builds a sandbox database and a temporary mgr5 root, starts the emulator (as a
subprocess, so its CPU does not share our GIL), authorizes, and runs
``service.run_export``. Prints entities/s, requests sent and peak RSS. ``--limit``
keeps the emulator's 7 req/s limit on (issue 8's throughput figure);
``--profile`` writes a cProfile dump and prints the top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "addon"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--services", type=int, default=6000)
    parser.add_argument("--limit", action="store_true", help="emulator enforces 7 req/s")
    parser.add_argument("--rate", type=float, default=None, help="client rate limit (amocrm.conf)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    from billmgr_amocrm import service
    from billmgr_amocrm.atomicfile import write_atomic
    from billmgr_amocrm.dbconf import DbSettings, render_db_conf
    from tests.amocrm_emulator import start_emulator
    from tests.fixtures.mgr5 import make_root
    from tests.sandbox import create_sandbox, drop_database

    tmp = Path(tempfile.mkdtemp(prefix="amocrm-bench-"))
    root = make_root(tmp)
    os.environ["MGR5_ROOT"] = str(root)
    os.environ["BILLMGR_AMOCRM_ALLOW_LOOPBACK"] = "1"
    conf = (REPO / "etc" / "amocrm" / "amocrm.conf.default").read_text(encoding="utf-8")
    if args.rate is not None:
        conf = conf.replace('"rate_limit": 5.0', f'"rate_limit": {args.rate}')
    (root / "etc" / "amocrm" / "amocrm.conf").write_text(conf, encoding="utf-8")
    settings = DbSettings(host=os.environ.get("TEST_DB_HOST", "127.0.0.1"),
                          port=int(os.environ.get("TEST_DB_PORT", "3306")),
                          user=os.environ.get("TEST_DB_USER", "root"),
                          password=os.environ.get("TEST_DB_PASSWORD", ""), database="amocrm_bench")
    settings = replace(settings)
    started = time.monotonic()
    summary = create_sandbox(settings, clients=args.clients, services=args.services, seed=3, drop=True)
    write_atomic(root / "etc" / "billmgr.conf.d" / "db.conf", render_db_conf(settings))
    print(f"sandbox: {summary.clients} clients, {summary.payers} payers, {summary.services} services "
          f"in {time.monotonic() - started:.1f} s", flush=True)
    options = {"rate_limit": 7} if args.limit else {"rate_limit_enabled": False}
    emulator = start_emulator(subprocess_mode=True, **options)
    try:
        integ = emulator.integration
        service.authorize(emulator.url, integ["client_id"], integ["client_secret"], integ["redirect_uri"],
                          integ["auth_code"])
        log = emulator.control.requests()
        before = int(log[-1]["seq"]) if log else 0
        del log
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        phases: dict = {}

        def progress(p: Any) -> None:
            phases.setdefault(p.phase, p.elapsed)

        result = service.run_export(progress=progress)
        if profiler:
            profiler.disable()
        # peak RSS of the export itself: read before the request log (bodies and all) is fetched
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sent = sum(1 for r in emulator.control.requests(since=before) if r["path"].startswith("/api/v4/"))
        handled = result.done + result.skipped
        print(f"export: {result.done} sent, {result.skipped} skipped, {result.failed} failed, "
              f"{result.retried} retried, stopped={result.stopped} in {result.seconds:.1f} s = "
              f"{handled / result.seconds:.0f} entities/s; {sent} requests "
              f"({sent / result.seconds:.2f}/s); peak RSS {rss:.0f} MiB; "
              f"first sync batch done at {phases.get('sync', 0):.1f} s")
        if profiler:
            dump = tmp / "export.prof"
            profiler.dump_stats(str(dump))
            stats = pstats.Stats(str(dump))
            stats.sort_stats("cumulative").print_stats(35)
            stats.sort_stats("tottime").print_stats(25)
    finally:
        emulator.stop()
        if not args.keep_db:
            drop_database(settings)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
