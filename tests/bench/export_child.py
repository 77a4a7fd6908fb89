"""The export process the throughput and memory figures measure (run by ``throughput``).

    python -m tests.bench.export_child [--unthrottled] [--request-size N] [--profile FILE]

Runs ``service.run_export`` (queue everything, then sync it) against the site that
``MGR5_ROOT`` points at and prints one JSON line: the export's counts and seconds,
and this process's peak RSS (``ru_maxrss`` and ``VmHWM``). ``--unthrottled`` swaps the
client's shared limiter for the same limiter class at 1,000 requests/s (the product
refuses a configured rate above 7; the limiter's file locking still runs, so its
cost is measured). ``--request-size 1`` makes the client send one entity per request.
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


def amo_factory(paths: Any, rate: float, unthrottled: bool, request_size: Optional[int]) -> Any:
    from billmgr_amocrm.amocrm.ratelimit import RateLimiter
    from billmgr_amocrm.bootstrap import build_amo_client

    def make(size: int) -> Any:
        client = build_amo_client(paths, rate=rate, chunk_size=request_size or size)
        if unthrottled:
            client.transport.limiter = RateLimiter(paths.rate_state, UNTHROTTLED_RATE)
        return client

    return make


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--unthrottled", action="store_true")
    parser.add_argument("--request-size", type=int, default=None)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args(argv)

    from billmgr_amocrm import service
    from billmgr_amocrm.bootstrap import build
    from billmgr_amocrm.paths import host_paths

    paths = host_paths()
    app = build(paths)
    rate = float(app.config.sync.rate_limit)
    app.amo_factory = amo_factory(paths, rate, args.unthrottled, args.request_size)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.monotonic()
    try:
        result = service.run_export(app=app)
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        app.close()
    wall = time.monotonic() - started
    out: Dict[str, Any] = {
        "done": result.done, "skipped": result.skipped, "failed": result.failed, "retried": result.retried,
        "queued": sum(result.queued.values()), "queued_by_kind": result.queued,
        "seconds": result.seconds, "wall": wall, "stopped": result.stopped, "stop_reason": result.stop_reason,
        "rate": rate, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "vmhwm_kib": vm_hwm_kib(),
    }
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
