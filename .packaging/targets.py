"""The platforms the packages carry wheels for, and fetching those wheels with pip.

BILLmanager 6 runs on x86_64 AlmaLinux 8 (python3.9 from AppStream; glibc 2.28),
AlmaLinux 9 (3.9), Debian 11 (3.9) and 12 (3.11), Ubuntu 22.04 (3.10) and 24.04 (3.12),
and Ubuntu 20.04 with the distribution's python3.9 (its python3 is 3.8). So: CPython
3.9 to 3.12, manylinux wheels for glibc up to 2.28, and pure-Python wheels.

Used by ``.packaging/make-lock`` (which downloads and hashes them) and ``.packaging/build``
(which downloads what its cache lacks, hash-checked, before shipping them). Standard
library only; pip is run as ``python -m pip`` of the interpreter running the script.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterable, Tuple

TARGETS: Tuple[Tuple[int, int], ...] = ((3, 9), (3, 10), (3, 11), (3, 12))
ARCH = "x86_64"
OLDEST_GLIBC_MINOR = 28  # AlmaLinux 8
PLATFORMS = tuple([f"manylinux_2_{minor}_{ARCH}" for minor in range(OLDEST_GLIBC_MINOR, 16, -1)]
                  + [f"manylinux2014_{ARCH}", f"manylinux2010_{ARCH}", f"manylinux1_{ARCH}"])
CACHE = Path(__file__).resolve().parent / "wheelhouse"  # gitignored; the packages ship a copy


def download(python: Tuple[int, int], requirements: Iterable[str], dest: Path, *,
             require_hashes: bool = False) -> None:
    """Wheels of ``requirements`` (exact pins) for CPython ``python`` on the target platforms, into dest.

    ``requirements`` are requirement-file lines; with ``require_hashes`` each carries its
    ``--hash`` options and pip checks every download against them.
    """
    tag = f"cp{python[0]}{python[1]}"
    listing = dest / f".requirements-{tag}.txt"
    listing.write_text("\n".join(requirements) + "\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
           "--no-deps", "--only-binary=:all:", "--implementation", "cp",
           "--python-version", f"{python[0]}.{python[1]}", "--abi", tag, "--abi", "abi3", "--abi", "none",
           *(arg for platform in PLATFORMS for arg in ("--platform", platform)), "-d", str(dest),
           *(["--require-hashes"] if require_hashes else []), "-r", str(listing)]
    env = {k: v for k, v in os.environ.items() if k != "PIP_REQUIRE_VIRTUALENV"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=1800)
    finally:
        listing.unlink()
    if proc.returncode != 0:
        raise RuntimeError(f"pip download for Python {python[0]}.{python[1]} failed:\n"
                           + "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-20:]))
