"""One ``flock`` helper for every cross-process lock of the module.

    with FileLock(path):                          # wait as long as it takes
        ...
    lock = FileLock(path, note_holder=True)
    if lock.acquire(timeout=0):                   # try once (the worker's per-host lock)
        ...
    with FileLock(path, turnstile=queue_path).held(timeout=60):   # fair turns, a deadline
        ...                                       # LockTimeout names the holder

Why a turnstile: ``flock`` polling is unfair. A process that releases a lock and asks
for it again at once wins every time against peers asleep between polls, and can
starve them (seen in proof scenario 5 under load). Waiters that first line up at the
turnstile cannot be overtaken: the releaser has to queue like the rest.

The lock is released when the file descriptor is closed, which the kernel does when
the process dies, however it dies. Standard library only (the installer uses it).
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Iterator, Optional, Union

    PathLike = Union[str, "os.PathLike[str]"]

POLL_SECONDS = 0.02


class LockTimeout(Exception):
    """The lock was not ours within the deadline; ``holder`` says who has it."""

    def __init__(self, path: str, holder: str, timeout: float) -> None:
        self.path = path
        self.holder = holder
        self.timeout = timeout
        super().__init__(f"{holder} holds {path}: not ours after {timeout:g} s")


class FileLock:
    """An exclusive ``flock`` on ``path`` (created 0600, its directory 0700)."""

    def __init__(self, path: PathLike, *, turnstile: Optional[PathLike] = None,
                 note_holder: bool = False, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = os.fspath(path)
        self.turnstile = os.fspath(turnstile) if turnstile is not None else None
        self.note_holder = note_holder
        self.clock = clock
        self.sleep = sleep
        self.fd = -1

    @property
    def locked(self) -> bool:
        return self.fd >= 0

    def acquire(self, timeout: Optional[float] = None) -> bool:
        """Take the lock: ``None`` waits as long as it takes, ``0`` tries once; False if not taken."""
        if self.fd >= 0:
            raise RuntimeError(f"{self.path} is already held by this FileLock")
        deadline = None if timeout is None else self.clock() + timeout
        fd = _open(self.path)
        queue_fd = _open(self.turnstile) if self.turnstile else -1
        try:
            for waiting_on in ((queue_fd, fd) if queue_fd >= 0 else (fd,)):
                if not self._wait(waiting_on, deadline):
                    os.close(fd)
                    return False
        finally:
            if queue_fd >= 0:
                os.close(queue_fd)  # the next in line may now wait on the lock itself
        self.fd = fd
        if self.note_holder:
            # who holds it and since when: what an admin or a timed-out peer needs; not a secret
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {time.time():.3f}\n".encode(), 0)
        return True

    def _wait(self, fd: int, deadline: Optional[float]) -> bool:
        if deadline is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return True
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if self.clock() >= deadline:
                    return False
            self.sleep(POLL_SECONDS)

    def release(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)  # closing releases the flock

    def holder(self) -> str:
        """"process N (for S s)" from the lock file's note, or "another process"."""
        try:
            with open(self.path, encoding="ascii") as handle:
                pid, since = handle.read(64).split()
            return f"process {int(pid)} (for {max(0.0, time.time() - float(since)):.1f} s)"
        except (OSError, ValueError):
            return "another process"

    @contextmanager
    def held(self, timeout: Optional[float] = None) -> Iterator[FileLock]:
        """Hold the lock for a block; ``LockTimeout`` when it is not ours within ``timeout``."""
        if not self.acquire(timeout):
            raise LockTimeout(self.path, self.holder(), timeout or 0.0)
        try:
            yield self
        finally:
            self.release()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _open(path: str) -> int:
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
