"""The reconciler's full re-check, measured in a process of its own (run by ``recheck``).

    python -m tests.bench.recheck_child [--edit N] [--hourly]

Against the site ``MGR5_ROOT`` points at (everything exported): with ``--edit N``, first
changes N clients' names and N services' prices in BILLmanager without any event (lost
edits); then runs ``sync.recheck.recheck_linked`` once and prints one JSON line: entities
checked and queued, wall and CPU seconds of this process, and what the MariaDB session
counted for it (statements, rows sent to the client, rows the server read).

With ``--hourly``, the reconciler's hourly run instead (the daily re-check not due: it ran
an hour ago with these settings), then the worker's pass over what it queued: whether every
live service goes through the engine each hour (``done``/``unchanged``: what the pass did).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any, Dict, Optional, Sequence

STATUS = ("Questions", "Com_select", "Rows_sent", "Rows_read", "Bytes_sent")


def session_status(conn: Any) -> Dict[str, int]:
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS WHERE Variable_name IN %s", (STATUS,))
        return {str(name): int(value) for name, value in cur.fetchall()}


def lose_edits(app: Any, count: int) -> None:
    """Change ``count`` clients and ``count`` services the way an admin would, with no event."""
    with app.conn.cursor() as cur:
        # linked ones with users; a contact's name is one of its users' real names
        cur.execute("SELECT DISTINCT u.account FROM user u JOIN amocrm_account2contact l "
                    "ON l.billmgr_id = u.account ORDER BY u.account LIMIT %s", (count,))
        for (account,) in cur.fetchall():
            cur.execute("UPDATE user SET realname = CONCAT('Edited ', id) WHERE account = %s", (account,))
        cur.execute("SELECT billmgr_id FROM amocrm_item2lead ORDER BY billmgr_id LIMIT %s", (count,))
        for (item_id,) in cur.fetchall():   # the sandbox has negative and NULL costs
            cur.execute("UPDATE item SET cost = COALESCE(ABS(cost), 0) + 100 WHERE id = %s", (item_id,))
    app.conn.commit()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edit", type=int, default=0)
    parser.add_argument("--hourly", action="store_true")
    args = parser.parse_args(argv)
    if args.hourly:
        return hourly()

    from billmgr_amocrm.bootstrap import build
    from billmgr_amocrm.paths import host_paths
    from billmgr_amocrm.sync.recheck import recheck_linked

    app = build(host_paths())
    try:
        if args.edit:
            lose_edits(app, args.edit)
        ctx = app.stored_context()
        assert ctx is not None, "the site is not authorized"
        before = session_status(app.conn)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        result = recheck_linked(app.store, app.billing, app.rules, ctx)
        wall = time.monotonic() - started
        used = resource.getrusage(resource.RUSAGE_SELF)
        after = session_status(app.conn)
    finally:
        app.close()
    out = {"checked": sum(result.checked.values()), "queued": {k.value: n for k, n in result.queued.items()},
           "seconds": wall, "cpu": (used.ru_utime - usage.ru_utime) + (used.ru_stime - usage.ru_stime),
           "db": {name: after.get(name, 0) - before.get(name, 0) for name in STATUS},
           "checked_by_kind": {k.value: n for k, n in result.checked.items()}}
    print(json.dumps(out))
    return 0


def hourly() -> int:
    from datetime import timedelta

    from billmgr_amocrm.bootstrap import build
    from billmgr_amocrm.domain import Kind
    from billmgr_amocrm.foundation.clock import utcnow
    from billmgr_amocrm.paths import host_paths
    from billmgr_amocrm.sync import reconcile as reconciler
    from billmgr_amocrm.worker import sync_once

    app = build(host_paths())
    try:
        ctx = app.stored_context()
        assert ctx is not None, "the site is not authorized"
        now = utcnow()
        for cursor, value in ((reconciler.RECHECK_CURSOR, now - timedelta(hours=1)),
                              (reconciler.CURSOR, now - timedelta(hours=1))):
            app.store.set_cursor(cursor, value.isoformat())
        app.store.set_cursor(reconciler.SETTINGS_CURSOR, app.settings.source_version)
        since = now - timedelta(hours=1) - reconciler.OVERLAP
        candidates = sum(len(app.store.links(Kind.LEAD, ids))
                         for ids in app.billing.services_changed_since(since))
        usage = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        queued = reconciler.reconcile(app.store, app.billing, app.rules, now, ctx,
                                      settings_version=app.settings.source_version)
        report = sync_once(app)
        wall = time.monotonic() - started
        used = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        app.close()
    print(json.dumps({"candidates": candidates, "queued": {k.value: n for k, n in queued.items()},
                      "seconds": wall,
                      "cpu": (used.ru_utime - usage.ru_utime) + (used.ru_stime - usage.ru_stime),
                      "done": report.done, "unchanged": getattr(report, "unchanged", 0)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
