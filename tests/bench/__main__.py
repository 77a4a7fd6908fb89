"""``python -m tests.bench [--quick] [--only NAME,...] [--profile]``; names: hook, limited, settle,
pipeline, mgrctl, memory, latency, recheck, match.

Prints one table (figure, value, target, ok/MISS) and writes it with the machine to
``tests/bench/last-results.md`` (the committed record of a whole run); a partial run
(``--only`` a part, or ``--quick``) goes to ``tests/bench/last-partial-results.md`` instead,
so it never replaces the whole run's figures. Always exits 0: a missed target is
reported, not raised; a scenario that crashes is reported as a row too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "addon") not in sys.path:
    sys.path.insert(0, str(REPO / "addon"))

SCENARIOS = ("hook", "limited", "settle", "pipeline", "mgrctl", "memory", "latency", "recheck", "match")


class Sizes:
    def __init__(self, quick: bool, margin: Optional[float] = None) -> None:
        self.margin = margin   # sync.network_margin of figure 2's grid; None: the emulated network's worst
        self.hook_runs = 30 if quick else 40
        self.limited_entities = 10_000 if quick else 50_000
        self.backlog_entities = 2_000 if quick else 10_000
        self.delays = (0.0, 1.0) if quick else (0.0, 0.3, 1.0, 2.0)
        self.settle_entities = 3_000 if quick else 10_000
        self.single_entities = 50 if quick else 100
        self.pipeline_services = 5_000 if quick else 20_000
        self.mgrctl_clients = 200 if quick else 600
        self.memory_services = (2_000, 20_000) if quick else (10_000, 100_000)
        self.latency_events = 20 if quick else 40
        self.recheck = (250, 5_000) if quick else (1_000, 20_000)   # clients, services
        self.match = (250, 2_500) if quick else (2_000, 20_000)     # clients, contacts people made


def scenarios(sizes: Sizes, profile_dir: Optional[Path]) -> Dict[str, Callable[..., None]]:
    from . import hook_cost, latency, matching, payers_mgrctl, recheck, settling, throughput

    def profile(name: str) -> Optional[str]:
        return str(profile_dir / f"{name}.prof") if profile_dir is not None else None

    return {
        "hook": lambda r: hook_cost.run(r, sizes.hook_runs),
        "limited": lambda r: limited(r, sizes),
        "settle": lambda r: settling.run(r, sizes.settle_entities),
        "pipeline": lambda r: throughput.pipeline(r, sizes.pipeline_services, profile("pipeline")),
        "mgrctl": lambda r: payers_mgrctl.run(r, sizes.mgrctl_clients),
        "memory": lambda r: throughput.memory(r, sizes.memory_services),
        "latency": lambda r: latency.run(r, sizes.latency_events),
        "recheck": lambda r: recheck.run(r, *sizes.recheck),
        "match": lambda r: matching.run(r, *sizes.match),
    }


def limited(results: Any, sizes: Sizes) -> None:
    """Figure 2: the latency grid, then one entity per request against its answers-0 s export."""
    from . import grid, throughput

    rows = grid.grid(results, sizes.limited_entities, sizes.backlog_entities, sizes.delays,
                     grid.NETWORK[1] if sizes.margin is None else sizes.margin)
    export0 = [r for r in rows if r.what == "export" and r.delay == 0]
    throughput.single(results, sizes.single_entities, export0[0].rate if export0 else 0.0)


REFERENCE_LOOP = 2_000_000


def machine_speed_ms() -> float:
    """Milliseconds for a fixed pure-Python loop, best of 3, in this interpreter.

    Not a target: the one absolute figure (3, entities/s) moves with the shared machine's
    speed on the day, and this says how fast the machine was during the run, so runs on
    different days can be compared.
    """
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        total = 0
        for i in range(REFERENCE_LOOP):
            total += i
        best = min(best, time.perf_counter() - began)
    return best * 1000


def results_file(chosen: Sequence[str], *, quick: bool) -> Path:
    """Where a run's table goes: the committed record only for a whole, full-size run."""
    from .report import PARTIAL_RESULTS, RESULTS

    return RESULTS if set(chosen) == set(SCENARIOS) and not quick else PARTIAL_RESULTS


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about a minute and a half)")
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help="comma-separated: " + ", ".join(SCENARIOS))
    parser.add_argument("--profile", action="store_true",
                        help="also profile the pipeline (figure 3, a separate run) over all the export "
                             "process's threads (yappi, CPU clock): the top items")
    parser.add_argument("--network-margin", type=float, default=None,
                        help="sync.network_margin for figure 2's grid (default: the emulated network's "
                             "worst one-way delay, 0.05 s)")
    parser.add_argument("--no-write", action="store_true", help="do not write the results file")
    args = parser.parse_args(argv)
    chosen: List[str] = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")

    from .report import Figure, Results, text_table, write_markdown

    sizes = Sizes(args.quick, args.network_margin)
    results = Results()
    started = time.monotonic()
    speed_before = machine_speed_ms()
    with tempfile.TemporaryDirectory(prefix="amocrm-bench-prof-") as prof_dir:
        table = scenarios(sizes, Path(prof_dir) if args.profile else None)
        for name in chosen:
            began = time.monotonic()
            print(f"==> {name}", file=sys.stderr, flush=True)
            try:
                table[name](results)
            except Exception as exc:  # noqa: BLE001 - a broken scenario is a row, the others still run
                traceback.print_exc()
                why = f"{type(exc).__name__}: {str(exc)[:160]}"
                results.add(Figure(f"{name}: did not run", why, "", False))
            print(f"    {name}: {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    speed_after = machine_speed_ms()
    results.add(Figure(f"0. machine speed: {REFERENCE_LOOP:,}-step pure-Python loop, best of 3",
                       f"{speed_before:.0f} ms before, {speed_after:.0f} ms after (lower is faster)"))
    seconds = time.monotonic() - started
    command = "python -m tests.bench" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    print(text_table(results.figures))
    for note in results.notes:
        print(f"  * {note}")
    if not args.no_write:
        path = write_markdown(results, command.strip(), seconds, results_file(chosen, quick=args.quick))
        print(f"written to {path} ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
