"""The module's shared mechanisms: one lock helper, one atomic write, one clock."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from billmgr_amocrm.foundation.clock import as_utc, from_db, seconds_between, to_db, utcnow
from billmgr_amocrm.foundation.files import write_atomic
from billmgr_amocrm.foundation.locks import FileLock, LockTimeout


def test_a_held_lock_is_not_taken_twice_and_a_timeout_names_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "state" / "x.lock"
    first = FileLock(path, note_holder=True)
    assert first.acquire(timeout=0)
    try:
        assert not FileLock(path).acquire(timeout=0)
        with pytest.raises(LockTimeout, match=rf"process {os.getpid()} \(for .* holds .*x.lock"), \
                FileLock(path).held(timeout=0.05):
            pass
    finally:
        first.release()
    with FileLock(path).held(timeout=0) as again:
        assert again.locked
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"


def test_a_lock_dies_with_its_process(tmp_path: Path) -> None:
    path = tmp_path / "y.lock"
    code = ("import sys, os; sys.path.insert(0, sys.argv[2]);"
            "from billmgr_amocrm.foundation.locks import FileLock;"
            "FileLock(sys.argv[1]).acquire(); os._exit(0)")
    addon = str(Path(__file__).resolve().parents[2] / "addon")
    subprocess.run([sys.executable, "-c", code, str(path), addon], check=True)
    assert FileLock(path).acquire(timeout=0)


def test_atomic_write_leaves_no_temp_file_and_keeps_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "new" / "conf"
    write_atomic(str(target), "a", mode=0o640)
    write_atomic(target, b"b", mode=0o640)
    assert target.read_bytes() == b"b"
    assert sorted(p.name for p in target.parent.iterdir()) == ["conf"]
    assert target.stat().st_mode & 0o777 == 0o640


def test_one_clock_aware_utc_inside_naive_utc_in_the_database() -> None:
    now = utcnow()
    assert now.tzinfo is timezone.utc
    moscow = timezone(timedelta(hours=3))
    local = datetime(2024, 5, 1, 18, 0, tzinfo=moscow)
    assert to_db(local) == datetime(2024, 5, 1, 15, 0)
    assert from_db(datetime(2024, 5, 1, 15, 0)) == local
    assert from_db(None) is None
    assert as_utc(datetime(2024, 5, 1, 15, 0)) == local
    assert seconds_between(local, datetime(2024, 5, 1, 15, 0, 30)) == 30
