"""The spool: durable, ordered, crash-safe hand-over from the hook to the worker."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billmgr_amocrm.store import spool


def event(func: str = "account.edit", **extra: object) -> dict:
    return {"v": 1, "func": func, "ts": 1.5, **extra}


def test_events_drain_in_the_order_they_were_recorded(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    for elid in range(5):
        spool.record_event(spool_dir, event(elid=str(elid)))
    seen: list[str] = []
    assert spool.drain(spool_dir, lambda e: seen.append(e["elid"]), limit=3) == 3
    assert spool.drain(spool_dir, lambda e: seen.append(e["elid"])) == 2
    assert seen == ["0", "1", "2", "3", "4"]
    assert spool.pending_files(spool_dir) == []


def test_files_are_private_and_hold_only_whitelisted_keys(tmp_path: Path) -> None:
    name = spool.record_event(tmp_path, event(passwd="hunter22", email="a@b.c", profiletype="2",
                                                   elid=7, sok="ok"))
    path = tmp_path / name
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert stored == {"v": 1, "func": "account.edit", "ts": 1.5, "email": "a@b.c", "profiletype": "2",
                      "elid": 7}
    assert "hunter22" not in path.read_text()


def test_a_stray_temp_file_is_ignored_and_old_ones_are_cleared(tmp_path: Path) -> None:
    (tmp_path / ".00000000000000000001-1-aa.json.tmp").write_text('{"v": 1, "func": "register"')
    old = tmp_path / ".00000000000000000000-1-bb.json.tmp"
    old.write_text("{")
    os.utime(old, (1, 1))
    spool.record_event(tmp_path, event())
    seen: list[dict] = []
    assert spool.drain(tmp_path, seen.append) == 1 and len(seen) == 1
    assert (tmp_path / ".00000000000000000001-1-aa.json.tmp").exists() and not old.exists()


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"v": 99, "func": "register"}',
                                     b'{"v": 1}', b"\xff\xfe", b"{" + b" " * 70000 + b"}"],
                         ids=["broken", "list", "version", "no-func", "binary", "huge"])
def test_a_corrupt_file_goes_to_bad_and_does_not_stop_the_drain(
        tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture) -> None:
    spool.record_event(tmp_path, event(elid="1"))
    (tmp_path / "00000000000000000005-1-cc.json").write_bytes(content)   # sorts first
    spool.record_event(tmp_path, event(elid="2"))
    seen: list[str] = []
    assert spool.drain(tmp_path, lambda e: seen.append(e["elid"])) == 2
    assert seen == ["1", "2"]
    assert sorted(os.listdir(tmp_path / "bad")) == ["00000000000000000005-1-cc.json"]
    assert (tmp_path / "bad" / "00000000000000000005-1-cc.json").read_bytes() == content
    assert "moved unreadable event 00000000000000000005-1-cc.json" in caplog.text


def test_a_drain_that_fails_midway_loses_nothing(tmp_path: Path) -> None:
    for elid in range(4):
        spool.record_event(tmp_path, event(elid=str(elid)))
    done: list[str] = []

    def flaky(e: dict) -> None:
        if e["elid"] == "2":
            raise ConnectionError("MySQL went away")
        done.append(e["elid"])

    with pytest.raises(ConnectionError):
        spool.drain(tmp_path, flaky)
    assert done == ["0", "1"] and len(spool.pending_files(tmp_path)) == 2
    assert spool.drain(tmp_path, lambda e: done.append(e["elid"])) == 2
    assert done == ["0", "1", "2", "3"]


def test_a_missing_spool_dir_is_an_empty_spool(tmp_path: Path) -> None:
    assert spool.drain(tmp_path / "nope", lambda e: None) == 0
    assert not (tmp_path / "nope").exists()


def test_non_utf8_request_bytes_become_replacement_text(tmp_path: Path) -> None:
    smuggled = b"caf\xe9".decode("utf-8", "surrogateescape")   # how os.environ carries bad bytes
    name = spool.record_event(tmp_path, event(email=smuggled))
    stored = json.loads((tmp_path / name).read_text())
    assert stored["email"].startswith("caf") and stored["email"].encode("utf-8")


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(spool.EVENT_KEYS - {"v"})),
                       st.one_of(st.text(max_size=40), st.integers(-2**40, 2**40),
                                 st.floats(allow_nan=False, allow_infinity=False))))
def test_hand_written_json_reads_back_exactly(values: dict) -> None:
    cleaned = spool._clean(values)
    assert json.loads(spool._dumps(cleaned)) == cleaned
