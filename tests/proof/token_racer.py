"""One of the processes of scenario 5: ``python -m tests.proof.token_racer START_AT ROUNDS PERIOD``.

Every token this process sees counts as about to expire (a refresh margin of years), so at
each round all racers want a refresh at the same instant; the host-wide lock must turn
that into one refresh per round. Prints one JSON line: rounds done, errors.
MGR5_ROOT and BILLMGR_AMOCRM_ALLOW_LOOPBACK come from the environment.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "addon"))

from billmgr_amocrm.amocrm import AmoClient, AmoError  # noqa: E402

ALWAYS_EXPIRING = 10 * 365 * 86400.0


def main() -> int:
    start_at, rounds, period = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    client = AmoClient.from_host(rate=7.0, timeout=(2.0, 5.0), refresh_margin=ALWAYS_EXPIRING)
    done, errors = 0, []
    for n in range(rounds):
        time.sleep(max(0.0, start_at + n * period - time.time()))
        try:
            client.credentials.access_token()
            done += 1
        except AmoError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps({"done": done, "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
