"""Where the export process's CPU goes, over ALL its threads (``--profile``).

The engine writes batches on lane threads and queues the export on a thread of its own,
so cProfile (which sees only the thread that enabled it) shows the main thread waiting
for them. yappi profiles every thread with a CPU clock; its stats are saved in pstats
format (``save(type="pstat")`` merges the threads), read back here. Without yappi (it is a
dev dependency) the child falls back to cProfile of the main thread and says so.
"""

from __future__ import annotations

import json
import os
import pstats
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

# the module's own loops and entry points: their inclusive time is "everything"
WRAPPERS = frozenset({"run_export", "run_pass", "_drain", "_in_lane", "write_batch", "main", "<module>",
                      "_export_here", "_run", "run", "sync_once", "apply_batch", "_engaged"})


def start() -> Callable[[str], str]:
    """Start profiling; returns ``stop(path)``, which writes the stats and returns the profiler's name."""
    try:
        import yappi  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()

        def stop_cprofile(path: str) -> str:
            profiler.disable()
            profiler.dump_stats(path)
            return "cProfile, main thread only (install yappi: pip install -e '.[dev]')"

        return stop_cprofile

    import threading

    yappi.set_clock_type("cpu")
    # the thread's own name (lanes are "amocrm-lane_N"), not its class name
    yappi.set_context_name_callback(lambda: threading.current_thread().name)
    yappi.start(builtins=True, profile_threads=True)

    def stop_yappi(path: str) -> str:
        yappi.stop()
        yappi.get_func_stats().save(path, type="pstat")
        threads: Dict[str, float] = {}
        for thread in yappi.get_thread_stats():
            name = _thread_group(str(thread.name))
            threads[name] = threads.get(name, 0.0) + float(thread.ttot)
        Path(path + ".threads.json").write_text(json.dumps(threads), encoding="utf-8")
        return "yappi, CPU clock, all threads"

    return stop_yappi


def _thread_group(name: str) -> str:
    """Lane threads are many: counted together."""
    if name.startswith("amocrm-lane") or name.startswith("ThreadPoolExecutor"):
        return "lanes"
    return {"_MainThread": "main", "MainThread": "main"}.get(name, name)


def _stats(profile: str) -> Dict[Tuple[str, int, str], Any]:
    return pstats.Stats(profile).stats  # type: ignore[attr-defined, no-any-return]


def threads(profile: str) -> str:
    """CPU seconds by thread group, when the profiler recorded them."""
    path = Path(profile + ".threads.json")
    if not path.exists():
        return "threads not recorded"
    shares = json.loads(path.read_text(encoding="utf-8"))
    total = sum(shares.values()) or 1.0
    return "CPU by thread: " + ", ".join(f"{name} {sec:.1f} s ({sec / total:.0%})" for name, sec in
                                         sorted(shares.items(), key=lambda kv: -kv[1]))


def total_cpu(profile: str) -> float:
    return sum(v[2] for v in _stats(profile).values()) or 1.0


def own_time(profile: str, top: int = 12) -> List[str]:
    """Functions by their own time (what they do themselves), share of the profiled total."""
    stats = _stats(profile)
    total = total_cpu(profile)
    rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)
    return [f"{_where(path, line)} {name} {v[2] / total:.1%}" for (path, line, name), v in rows[:top]]


def product_inclusive(profile: str, top: int = 12) -> List[str]:
    """The module's own functions by inclusive time (its loops left out), with call counts."""
    stats = _stats(profile)
    total = total_cpu(profile)
    rows = [((path, line, name), v) for (path, line, name), v in stats.items()
            if "/billmgr_amocrm/" in path and name not in WRAPPERS]
    rows.sort(key=lambda kv: kv[1][3], reverse=True)
    out = []
    for (path, _line, name), (_, ncalls, _, cumtime, _) in rows[:top]:
        module = path.split("/billmgr_amocrm/", 1)[1]
        out.append(f"{module} {name} {cumtime / total:.1%} ({ncalls} calls)")
    return out


def _where(path: str, line: int) -> str:
    if "/billmgr_amocrm/" in path:
        return f"{path.split('/billmgr_amocrm/', 1)[1]}:{line}"
    if path in ("~", "") or path.startswith("<"):
        return "builtin"
    return f"{os.path.basename(path)}:{line}"


def summary(profile: str, how: str) -> str:
    return (f"{how}: {total_cpu(profile):.1f} CPU-s profiled; {threads(profile)}; by own time: "
            + "; ".join(own_time(profile)) + "; module functions by inclusive time: "
            + "; ".join(product_inclusive(profile)))
