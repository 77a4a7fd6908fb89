"""The worker draining a backlog, as figure 2's backlog rows measure it (run by ``grid``).

    python -m tests.bench.drain_child [--batch N]

The site's spool already holds the panel's events (the hook wrote them). This process
moves them into the queue as the worker does (``worker.drain_spool``), then runs one
engine pass at the configured ``sync.batch_size`` (or ``--batch``) and prints one JSON
line: the counts, the pass's seconds and its wall-clock start and end.

Not ``worker.sync_once``: it picks amoCRM's maximum batch (250) for any backlog deeper
than one batch, and this figure is the rate at the batch live events are sent in.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Dict, Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=None)
    args = parser.parse_args(argv)

    from billmgr_amocrm.bootstrap import build
    from billmgr_amocrm.paths import host_paths
    from billmgr_amocrm.worker import drain_spool

    app = build(host_paths())
    try:
        began = time.monotonic()
        events = drain_spool(app)
        spool_seconds = time.monotonic() - began
        queued = app.store.queue_stats().depth
        batch = args.batch or int(app.config.sync.batch_size)
        engine = app.engine(batch)
        started, started_wall = time.monotonic(), time.time()
        report = engine.run_pass()
        seconds, ended_wall = time.monotonic() - started, time.time()
        left = app.store.queue_stats().depth
    finally:
        app.close()
    out: Dict[str, Any] = {
        "events": events, "spool_seconds": spool_seconds, "queued": queued, "batch": batch,
        "concurrency": engine.concurrency, "done": report.done, "skipped": report.skipped,
        "failed": report.failed, "retried": report.retried, "stopped": report.stopped,
        "stop_reason": report.stop_reason, "seconds": seconds, "started_wall": started_wall,
        "ended_wall": ended_wall, "left_queued": left,
    }
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
