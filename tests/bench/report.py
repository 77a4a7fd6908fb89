"""The results table: one row per figure, printed and written as markdown with the machine."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional, Sequence

RESULTS = Path(__file__).resolve().parent / "last-results.md"
# a run of some scenarios only (or --quick): kept apart, so the whole run's record stands
PARTIAL_RESULTS = RESULTS.with_name("last-partial-results.md")


@dataclass(frozen=True)
class Figure:
    """One measured figure; ``ok`` is None for a figure reported without a target."""

    name: str
    value: str
    target: str = ""
    ok: Optional[bool] = None

    @property
    def verdict(self) -> str:
        if self.ok is None:
            return "info"
        return "ok" if self.ok else "MISS"


@dataclass
class Results:
    figures: List[Figure] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)

    def note(self, text: str) -> None:
        self.notes.append(text)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_lines(command: str, seconds: float) -> List[str]:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [f"- date: {now}", f"- command: `{command}` ({seconds:.0f} s)",
            f"- nproc: {os.cpu_count()}, CPU: {cpu_model()}, load average at the end "
            f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1/5/15 min; the machine is shared)",
            f"- Python: {platform.python_version()} ({sys.executable})",
            f"- kernel: {platform.system()} {platform.release()}"]


def _rows(figures: Sequence[Figure]) -> List[List[str]]:
    return [[f.name, f.value, f.target or "-", f.verdict] for f in figures]


def text_table(figures: Sequence[Figure]) -> str:
    header = ["figure", "value", "target", "ok/MISS"]
    rows = _rows(figures)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(out)


def markdown(results: Results, command: str, seconds: float) -> str:
    rows = _rows(results.figures)
    out = ["# Benchmark results (`make bench`)", "", *machine_lines(command, seconds), "",
           "| figure | value | target | ok/MISS |", "|---|---|---|---|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    if results.notes:
        out += ["", "## Notes", ""]
        out += [f"- {n}" for n in results.notes]
    return "\n".join(out) + "\n"


def write_markdown(results: Results, command: str, seconds: float, path: Path = RESULTS) -> Path:
    path.write_text(markdown(results, command, seconds), encoding="utf-8")
    return path
