"""A separate process that uses the client, for cross-process tests.

    python -m tests.client.racer START_AT N_CALLS RATE

Waits until the wall clock reaches START_AT (so all racers start together), then
calls ``account()`` N_CALLS times; prints one JSON line with what happened.
MGR5_ROOT and BILLMGR_AMOCRM_ALLOW_LOOPBACK come from the environment.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "addon"))

from billmgr_amocrm.bootstrap import build_amo_client  # noqa: E402
from billmgr_amocrm.errors import AmoError  # noqa: E402
from billmgr_amocrm.paths import host_paths  # noqa: E402


def main() -> int:
    start_at, calls, rate = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    client = build_amo_client(host_paths(), rate=rate, timeout=(2.0, 5.0))
    time.sleep(max(0.0, start_at - time.time()))
    ok, errors = 0, []
    for _ in range(calls):
        try:
            client.account()
            ok += 1
        except AmoError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps({"ok": ok, "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
