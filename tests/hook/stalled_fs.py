"""A directory whose disk never answers: a FUSE mount whose server stops itself after mounting.

    with stalled_directory(path):   # path: an empty directory
        ...                          # any stat/open/write under path blocks in the kernel

This is what a hung disk (or NFS server) looks like to a process: the system call sleeps
inside the kernel until the file system answers, and no timer, ``SIGALRM`` or ``SIGTERM``
gets it out (FUSE waits killably: only ``SIGKILL`` ends the caller). The server is this
file run as a script: it mounts ``path`` through ``/dev/fuse`` (root only), answers the
kernel's INIT, prints ``ready`` and sends itself ``SIGSTOP``, so every later request waits
forever. Leaving the block unmounts lazily and kills the server, which aborts the
connection: every caller still waiting gets ``ENOTCONN`` and goes on.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

MS_NOSUID, MS_NODEV, MNT_DETACH = 2, 4, 2
FUSE_INIT = 26
IN_HEADER = struct.Struct("<IIQQIIIHH")     # len, opcode, unique, nodeid, uid, gid, pid, extlen, pad
OUT_HEADER = struct.Struct("<IiQ")          # len, error, unique
INIT_OUT = struct.Struct("<IIIIHHIIHHI")    # major, minor, readahead, flags, bg, congestion, max_write, ...
INIT_OUT_SIZE = 64


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def serve(target: str) -> int:
    """Mount ``target``, answer INIT, say ready, stop."""
    fd = os.open("/dev/fuse", os.O_RDWR)
    options = f"fd={fd},rootmode=40000,user_id=0,group_id=0".encode()
    if _libc().mount(b"amocrm-stalled", target.encode(), b"fuse", MS_NOSUID | MS_NODEV, options) != 0:
        sys.stdout.write(f"mount failed: {os.strerror(ctypes.get_errno())}\n")
        return 1
    request = os.read(fd, 1 << 20)
    _length, opcode, unique = struct.unpack_from("<IIQ", request)
    if opcode != FUSE_INIT:
        sys.stdout.write(f"expected INIT, got opcode {opcode}\n")
        return 1
    major, minor = struct.unpack_from("<II", request, IN_HEADER.size)
    body = INIT_OUT.pack(major, minor, 0, 0, 0, 0, 4096, 0, 0, 0, 0).ljust(INIT_OUT_SIZE, b"\0")
    os.write(fd, OUT_HEADER.pack(OUT_HEADER.size + len(body), 0, unique) + body)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGSTOP)  # from here on nothing is ever answered
    return 0


@contextlib.contextmanager
def stalled_directory(path: Path) -> Iterator[Path]:
    """``path`` (an empty directory) stalls every access until the block ends; skips without FUSE."""
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        pytest.skip("a stalled disk is simulated with FUSE: needs root and /dev/fuse")
    server = subprocess.Popen([sys.executable, __file__, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        said = server.stdout.readline().strip() if server.stdout else ""
        if said != "ready":
            server.wait(timeout=10)
            pytest.skip(f"cannot mount a FUSE file system here: {said or 'no answer'}")
        yield path
    finally:
        _libc().umount2(str(path).encode(), MNT_DETACH)
        server.kill()  # SIGKILL reaches a stopped process: the connection aborts, waiters get ENOTCONN
        server.wait(timeout=10)
        if server.stdout:
            server.stdout.close()


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1]))
