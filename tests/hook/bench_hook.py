"""Wall time of the event hook against a bare interpreter start (not a test: speed lives here).

    .venv/bin/python -m tests.hook.bench_hook [PYTHON ...] [--runs 50]

For each interpreter prints the median of N runs of ``python -c pass``, of the hook
on a form open (no ``sok``: nothing recorded) and on a save (one spool file written),
plain and with ``-I -S`` (the flags the installer should put in the hook's shebang).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOOK = Path(__file__).resolve().parents[2] / "addon" / "amocrm_event"
DOC = b'<?xml version="1.0" encoding="UTF-8"?>\n<doc><ok/></doc>\n'


def median_ms(cmd: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, input=DOC, env=env, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pythons", nargs="*", default=[sys.executable])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "var").mkdir()
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MGR5_ROOT": root,
                "AUTH_USER": "admin", "AUTH_LEVEL": "29", "PARAM_func": "account.edit", "PARAM_elid": "5"}
        for python in args.pythons:
            for flags in ([], ["-I", "-S"]):
                bare = median_ms([python, *flags, "-c", "pass"], base, args.runs)
                form = median_ms([python, *flags, str(HOOK)], base, args.runs)
                save = median_ms([python, *flags, str(HOOK)], {**base, "PARAM_sok": "ok"}, args.runs)
                print(f"{python} {' '.join(flags) or '(no flags)'}: python -c pass {bare:.1f} ms, "
                      f"hook form-open {form:.1f} ms, hook save {save:.1f} ms (medians of {args.runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
