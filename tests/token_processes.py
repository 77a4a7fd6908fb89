"""The token exchange processes (``amocrm/detached.py``) of one host root, found in /proc.

By root, not by name alone: tests on other xdist workers run their own, and a test that
signals "every exchange process" must not reach theirs (one still starting up, before it
ignores SIGTERM, would die of it)."""

from __future__ import annotations

from pathlib import Path
from typing import List

MODULE = b"billmgr_amocrm.amocrm.detached"


def token_processes(root: Path) -> List[int]:
    """Pids of the detached token processes started for the host at ``root`` (its MGR5_ROOT)."""
    mark = b"MGR5_ROOT=" + str(root).encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (entry.name.isdigit() and MODULE in (entry / "cmdline").read_bytes()
                    and mark in (entry / "environ").read_bytes() + b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found
