"""Atomic, root-only file writes for secrets, config and the hook's spool.

A reader never sees a half-written file: the data goes to a temp file in the same
directory (mode 0600 unless told otherwise), is fsynced, renamed over the target, and
the directory is fsynced. Imports only ``os`` and ``stat``: the panel hook writes its
spool files with it on every save, and ``pathlib`` alone would cost it milliseconds.
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

    PathLike = Union[str, "os.PathLike[str]"]

SECRET_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def write_atomic(path: PathLike, data: bytes | str, mode: int = SECRET_MODE, *,
                 temp_name: str = "", make_dirs: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically and durably.

    ``temp_name``: the temp file's name in the same directory (default
    ``.<name>.<pid>.tmp``; readers of a directory skip names starting with a dot).
    """
    target = os.fspath(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    directory = os.path.dirname(target) or "."
    if make_dirs:
        os.makedirs(directory, mode=PRIVATE_DIR_MODE, exist_ok=True)
    tmp = os.path.join(directory, temp_name or f".{os.path.basename(target)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        try:  # noqa: SIM105 - contextlib is not worth importing on the hook's path
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)


def fsync_dir(directory: PathLike) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(os.fspath(directory), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class InsecureFileError(Exception):
    """A secret file is readable or writable by group or others (``path``, ``mode`` as "0644")."""

    def __init__(self, path: str, mode: str) -> None:
        self.path = path
        self.mode = mode
        super().__init__(f"{path} has mode {mode}; run: chmod 600 {path}")


def check_private(path: PathLike) -> None:
    """Refuse a secret file that group or others can read or write."""
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InsecureFileError(os.fspath(path), f"{stat.S_IMODE(mode):04o}")
