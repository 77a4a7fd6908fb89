"""What every installer step uses: run a command, write or remove a file, report to the admin."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

from ..foundation.files import write_atomic

EXEC_MODE = 0o750
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
PUBLIC_FILE = 0o644


class InstallError(Exception):
    """A step failed; the message says what and how to fix it (never a secret)."""


class Report:
    """The short summary printed at the end, plus warnings that did not stop the run."""

    def __init__(self) -> None:
        self.lines: List[str] = []
        self.warnings: List[str] = []

    def add(self, label: str, text: str) -> None:
        self.lines.append(f"  {label + ':':<13}{text}")

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def show(self, title: str) -> None:
        out = [title, *self.lines, *(f"  WARNING: {text}" for text in self.warnings)]
        sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()


def step(text: str) -> None:
    sys.stdout.write(f"amocrm-install: {text}\n")
    sys.stdout.flush()


def run(cmd: List[str], what: str, env: Optional[Dict[str, str]] = None,
        timeout: float = 900) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{what} failed: {exc}") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise InstallError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc


def write_file(dest: Path, data: bytes, mode: int) -> None:
    """Root-owned file with the given mode, replaced atomically (the panel may run it right now)."""
    dest.parent.mkdir(parents=True, exist_ok=True)  # a missing parent is created 0755, not private
    write_atomic(dest, data, mode, temp_name=f".{dest.name}.amocrm-install.{os.getpid()}",
                 make_dirs=False)
    os.chown(dest, 0, 0)


def private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, 0, 0)
    path.chmod(PRIVATE_DIR)


def remove_path(path: Path) -> bool:
    if path.is_symlink() or path.is_file():
        path.unlink()
        return True
    if path.is_dir():
        shutil.rmtree(path)
        return True
    return False
