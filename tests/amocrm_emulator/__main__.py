"""``python -m tests.amocrm_emulator [--port N] [--rate-limit 7] [--subdomain demo] [--state-file F]
[--network-delay MIN MAX] [--answer-delay MIN MAX] [--read-delay MIN MAX] [--write-delay MIN MAX]
[--delay-seed N]``."""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
from typing import Any, List, Optional

from .server import Emulator, EmulatorOptions


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.amocrm_emulator", description="amoCRM API v4 emulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--rate-limit", type=int, default=7, help="requests per second per integration")
    parser.add_argument("--no-rate-limit", action="store_true", help="disable the 429/403 gateway")
    parser.add_argument("--block-after", type=int, default=10, help="429s within 60 s that block the account")
    parser.add_argument("--subdomain", default="demo")
    parser.add_argument(
        "--state-file", default=None, help="load the account from / save it to this JSON file"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault-injection RNG")
    for flag, default, text in (
        ("--network-delay", (0.0, 0.0), "one-way network delay in s, drawn apart for the way in and out"),
        ("--answer-delay", (0.0, 0.0), "amoCRM's answer time in s (reads and writes)"),
        ("--read-delay", None, "answer time of GETs in s (overrides --answer-delay)"),
        ("--write-delay", None, "answer time of writes in s (overrides --answer-delay)"),
    ):
        parser.add_argument(flag, type=float, nargs=2, metavar=("MIN", "MAX"), default=default, help=text)
    parser.add_argument("--delay-seed", type=int, default=1, help="seed of the delay RNG")
    args = parser.parse_args(argv)
    emulator = Emulator(
        EmulatorOptions(
            host=args.host,
            port=args.port,
            subdomain=args.subdomain,
            rate_limit=args.rate_limit,
            rate_limit_enabled=not args.no_rate_limit,
            block_after=args.block_after,
            state_file=args.state_file,
            seed=args.seed,
            network_delay=tuple(args.network_delay),
            answer_delay=tuple(args.answer_delay),
            read_delay=None if args.read_delay is None else tuple(args.read_delay),
            write_delay=None if args.write_delay is None else tuple(args.write_delay),
            delay_seed=args.delay_seed,
        )
    )

    def _stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    # The emulator keeps every entity and every logged request body: with CPython's default
    # collector thresholds it stops for collections over that growing heap while a request
    # waits (a 250-contact POST: mean 23 ms against a median of 16 ms). Those pauses would
    # count as amoCRM's answer time in the benchmarks. Collect far less often; nothing the
    # emulator keeps forms reference cycles worth reclaiming early.
    gc.set_threshold(50_000, 50, 1_000)
    # A request is counted when its request line is read (transport.py); the thread reading
    # it must get the CPU within a fraction of the network margin, even while other threads
    # validate 250-entity writes. CPython hands the GIL over every 5 ms by default, and each
    # waiting thread takes its turn: tens of ms of lag, arrivals stamped late, and windows no
    # client made. A real gateway stamps in the kernel; 0.5 ms keeps the lag well under 1 ms.
    sys.setswitchinterval(0.0005)
    print(f"amoCRM emulator listening on {emulator.url}", flush=True)
    integration = {
        k: emulator.integration[k] for k in ("client_id", "client_secret", "redirect_uri", "auth_code")
    }
    print(json.dumps(integration), flush=True)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
