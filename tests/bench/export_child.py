"""The export process the throughput and memory figures measure (run by ``throughput``).

    python -m tests.bench.export_child [--unthrottled] [--request-size N] [--profile FILE] [--until-empty S]

Runs ``service.run_export`` (queue everything, then sync it) against the site that
``MGR5_ROOT`` points at and prints one JSON line: the export's counts and seconds,
and this process's peak RSS (``ru_maxrss`` and ``VmHWM``). ``--unthrottled`` swaps the
client's shared limiter for the same limiter class at 1,000 requests/s (the product
refuses a configured rate above 7; the limiter's file locking still runs, so its
cost is measured). ``--request-size 1`` makes the client send one entity per request.
``--profile`` profiles every thread of this process (``profiling.py``). ``--until-empty S``:
after the export, run the worker's passes (``worker.sync_once``) until the queue is empty
or S seconds have passed: rows whose answer was lost wait ``settle_after`` before their
lookup, after the export's own pass has ended.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any, Dict, Optional, Sequence

UNTHROTTLED_RATE = 1000.0


def vm_hwm_kib() -> Optional[int]:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def amo_factory(app: Any, unthrottled: bool, request_size: Optional[int]) -> Any:
    """The product's client (``App._amo_client``: the configured rate and ``sync.network_margin``),
    with the limiter swapped (``unthrottled``) or the request size forced when asked.

    Built here with the product's own settings, not from ``build_amo_client``'s defaults: a
    client built without ``network_margin`` counts a request as arrived 25 ms after it was sent,
    and the grid's network takes up to 50 ms one way (the export rows' 429s, issue 16)."""
    from billmgr_amocrm.amocrm.ratelimit import RateLimiter

    def make(size: int) -> Any:
        client = app._amo_client(request_size or size)
        if unthrottled:
            client.transport.limiter = RateLimiter(app.paths.rate_state, UNTHROTTLED_RATE,
                                                   margin=client.transport.limiter.margin)
        return client

    return make


def drain_rest(app: Any, seconds: float) -> int:
    """Worker passes until the queue is empty or ``seconds`` are up; how many passes ran."""
    from billmgr_amocrm.worker import sync_once

    deadline = time.monotonic() + seconds
    passes = 0
    while seconds > 0 and app.store.queue_stats().depth and time.monotonic() < deadline:
        sync_once(app)
        passes += 1
        time.sleep(0.5)   # rows waiting for settle_after are not due yet: poll as the daemon does
    return passes


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--unthrottled", action="store_true")
    parser.add_argument("--request-size", type=int, default=None)
    parser.add_argument("--profile", default=None)
    parser.add_argument("--until-empty", type=float, default=0.0)
    args = parser.parse_args(argv)

    from billmgr_amocrm import service
    from billmgr_amocrm.bootstrap import build
    from billmgr_amocrm.paths import host_paths

    paths = host_paths()
    app = build(paths)
    rate = float(app.config.sync.rate_limit)
    app.amo_factory = amo_factory(app, args.unthrottled, args.request_size)
    stop_profile = None
    if args.profile:
        from .profiling import start

        stop_profile = start()
    started, started_wall = time.monotonic(), time.time()
    profiler = ""
    passes = 0
    try:
        result = service.run_export(app=app)
        passes = drain_rest(app, args.until_empty)
    finally:
        if stop_profile is not None:
            profiler = stop_profile(args.profile)
        depth = app.store.queue_stats().depth
        app.close()
    wall, ended_wall = time.monotonic() - started, time.time()
    out: Dict[str, Any] = {
        "done": result.done, "skipped": result.skipped, "failed": result.failed, "retried": result.retried,
        "queued": sum(result.queued.values()), "queued_by_kind": result.queued,
        "seconds": result.seconds, "wall": wall, "stopped": result.stopped, "stop_reason": result.stop_reason,
        "rate": rate, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "vmhwm_kib": vm_hwm_kib(), "started_wall": started_wall, "ended_wall": ended_wall,
        "profiler": profiler, "passes_after": passes, "left_queued": depth,
    }
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
