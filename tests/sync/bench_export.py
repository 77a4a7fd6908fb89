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
import re
import resource
import shutil
import subprocess
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
    parser.add_argument("--no-client-limit", action="store_true",
                        help="also lift the client's own limiter (issue 8's 'limits off' figure)")
    parser.add_argument("--trace", action="store_true", help="tracemalloc: what is still held after")
    args = parser.parse_args()

    from billmgr_amocrm import service
    from billmgr_amocrm.dbconf import DbSettings
    from billmgr_amocrm.foundation.files import write_atomic
    from tests.amocrm_emulator import start_emulator
    from tests.fixtures.mgr5 import make_root
    from tests.sandbox import drop_database
    from tests.sandbox.dbconf import render_db_conf

    tmp = Path(tempfile.mkdtemp(prefix="amocrm-bench-"))
    root = make_root(tmp)
    os.environ["MGR5_ROOT"] = str(root)
    os.environ["BILLMGR_AMOCRM_ALLOW_LOOPBACK"] = "1"
    conf = (REPO / "etc" / "amocrm" / "amocrm.conf.default").read_text(encoding="utf-8")
    if args.rate is not None:
        conf = re.sub(r'"rate_limit": [0-9.]+', f'"rate_limit": {args.rate}', conf)
    (root / "etc" / "amocrm" / "amocrm.conf").write_text(conf, encoding="utf-8")
    settings = DbSettings(host=os.environ.get("TEST_DB_HOST", "127.0.0.1"),
                          port=int(os.environ.get("TEST_DB_PORT", "3306")),
                          user=os.environ.get("TEST_DB_USER", "root"),
                          password=os.environ.get("TEST_DB_PASSWORD", ""), database="amocrm_bench")
    settings = replace(settings)
    started = time.monotonic()
    # generated in another process: the generator's memory must not count as the export's
    subprocess.run([sys.executable, "-m", "tests.sandbox", "--clients", str(args.clients), "--services",
                    str(args.services), "--db", settings.database, "--seed", "3", "--drop"],
                   cwd=str(REPO), check=True, stdout=subprocess.DEVNULL)
    write_atomic(root / "etc" / "billmgr.conf.d" / "db.conf", render_db_conf(settings))
    print(f"sandbox: {args.clients} clients, {args.services} services in {time.monotonic() - started:.1f} s",
          flush=True)
    options = {"rate_limit": 7} if args.limit else {"rate_limit_enabled": False}
    emulator = start_emulator(subprocess_mode=True, **options)
    try:
        integ = emulator.integration
        service.authorize(emulator.url, integ["client_id"], integ["client_secret"], integ["redirect_uri"],
                          integ["auth_code"])
        log = emulator.control.requests()
        before = int(log[-1]["seq"]) if log else 0
        del log
        if args.trace:
            import tracemalloc

            tracemalloc.start(10)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        phases: dict = {}

        def progress(p: Any) -> None:
            if p.phase not in phases:
                phases[p.phase] = p.elapsed
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"  {p.phase} starts at {p.elapsed:.1f} s; peak RSS so far {peak:.0f} MiB", flush=True)

        from billmgr_amocrm.bootstrap import EXPORT_CHUNK, build

        app = build()
        if args.no_client_limit:
            app.amo(EXPORT_CHUNK).transport.limiter = _NoLimit()
        try:
            result = service.run_export(progress=progress, app=app)
        finally:
            app.close()
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
        if args.trace:
            snapshot = tracemalloc.take_snapshot()
            for stat in snapshot.statistics("traceback")[:6]:
                print(stat)
                for line in stat.traceback.format()[-12:]:
                    print("   ", line)
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


class _NoLimit:
    """Stands in for the client's shared limiter when measuring without any limit."""

    def acquire(self) -> float:
        return 0.0

    def release(self, ticket: float) -> None:
        return None

    def pause(self, seconds: float) -> None:
        return None


if __name__ == "__main__":
    sys.exit(main())
