"""Atomic, root-only file writes for secrets and config.

A reader never sees a half-written file: write a temp file in the same directory
with mode 0600, fsync it, rename it over the target, fsync the directory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Union

SECRET_MODE = 0o600


def write_atomic(path: Path, data: Union[bytes, str], mode: int = SECRET_MODE) -> None:
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(payload)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class InsecureFileError(Exception):
    """A secret file is readable or writable by group or others."""


def check_private(path: Path) -> None:
    """Refuse a secret file that group or others can read or write."""
    st = path.stat()
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InsecureFileError(
            f"{path} has mode {stat.S_IMODE(st.st_mode):04o}; run: chmod 600 {path}"
        )
