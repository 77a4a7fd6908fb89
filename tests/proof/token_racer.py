"""One of the processes of scenario 5: ``python -m tests.proof.token_racer START_AT ROUNDS PERIOD``.

Round n (from 0) starts at START_AT + n * PERIOD, and in it the client's clock runs n + 1
days ahead of the wall clock: the token the previous round left (valid one day from its
issue) has just expired for every racer at once, exactly as when a real expiry passes.
The host-wide lock must turn that into one refresh per round: the racer that gets the lock
refreshes, the others re-read the files under the lock and find a valid token. A racer
that lags behind sees a token issued "in its future" and does not refresh, so whatever the
scheduling, there is exactly one refresh per round.
Prints one JSON line: rounds done, errors.
MGR5_ROOT and BILLMGR_AMOCRM_ALLOW_LOOPBACK come from the environment.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "addon"))

from billmgr_amocrm.bootstrap import build_amo_client  # noqa: E402
from billmgr_amocrm.errors import AmoError  # noqa: E402
from billmgr_amocrm.paths import host_paths  # noqa: E402

DAY = 86400.0


def main() -> int:
    start_at, rounds, period = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])

    days_ahead = [0]

    def clock() -> float:
        return time.time() + days_ahead[0] * DAY

    client = build_amo_client(host_paths(), rate=7.0, timeout=(2.0, 5.0), clock=clock)
    store = client.credentials.store
    plain_lock = store.lock
    lock_wait = [0.0]

    @contextmanager
    def timed_lock(*args: Any, **kw: Any) -> Iterator[int]:
        asked = time.monotonic()
        with plain_lock(*args, **kw) as lock_fd:
            lock_wait[0] += time.monotonic() - asked
            yield lock_fd

    store.lock = timed_lock  # type: ignore[method-assign]
    done, errors, slow = 0, [], []
    for n in range(rounds):
        time.sleep(max(0.0, start_at + n * period - time.time()))
        days_ahead[0] = n + 1
        lock_wait[0] = 0.0
        began = time.monotonic()
        try:
            client.credentials.access_token()
            done += 1
        except AmoError as exc:
            errors.append(f"round {n}: {type(exc).__name__}: {exc}")
        took = time.monotonic() - began
        slow.append((round(took, 3), round(lock_wait[0], 3), n))
    slow.sort(reverse=True)
    # the slowest calls (seconds in all, of which waiting for the lock, round): what to look
    # at when a round overruns
    print(json.dumps({"done": done, "errors": errors, "slowest": slow[:5]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
