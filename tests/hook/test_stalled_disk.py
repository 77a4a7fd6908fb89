"""A stalled disk must not hang a save in the panel: the hook gives up on its own write after ~2 s.

The spool directory is a FUSE mount whose server has stopped (``stalled_fs``): the hook's
write sleeps in the kernel as on a hung disk. The panel's wait is the hook process's wall
time, measured as the panel sees it (spawn, feed the document, read the answer to the end).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from billmgr_amocrm.hook import WRITE_DEADLINE_SECONDS
from tests.harness import run_addon
from tests.hook.stalled_fs import stalled_directory

DOC = ('<?xml version="1.0" encoding="UTF-8"?>\n<doc lang="ru" func="account.edit"><ok/>'
       "<name>Тест</name></doc>\n").encode() + b"<!-- padding -->" * 20_000  # ~320 KB, more than a pipe holds
BOUND_SECONDS = 5.0


def wait_for_line(log: Path, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text(encoding="utf-8") if log.exists() else ""
        if text in content:
            return content
        time.sleep(0.05)
    return log.read_text(encoding="utf-8") if log.exists() else "(no log)"


def test_a_stalled_spool_costs_the_save_about_two_seconds_and_the_echo_is_whole(mgr5_root: Path) -> None:
    spool = mgr5_root / "var" / "amocrm" / "spool"
    spool.mkdir(parents=True)
    log = mgr5_root / "var" / "amocrm_task.log"
    with stalled_directory(spool):
        with pytest.raises(subprocess.TimeoutExpired):   # the stall is real: a plain stat never returns
            subprocess.run(["stat", str(spool)], capture_output=True, timeout=1)

        run = run_addon("amocrm_event", {"func": "account.edit", "elid": "5", "sok": "ok"}, DOC, timeout=60)

        assert (run.returncode, run.stderr) == (0, b"")
        assert run.stdout == DOC
        assert WRITE_DEADLINE_SECONDS - 0.1 <= run.elapsed < BOUND_SECONDS, run.elapsed
        said = wait_for_line(log, "did not finish within")
        assert f"amocrm_event ERROR hook: event account.edit elid='5': the spool write did not finish " \
               f"within {WRITE_DEADLINE_SECONDS:g} s" in said
    # The disk "answers" (the connection aborts): the writer left behind finishes and says so.
    said = wait_for_line(log, "not recorded")
    assert "hook: event account.edit elid='5' not recorded: " in said


def test_a_form_open_never_touches_the_stalled_disk(mgr5_root: Path) -> None:
    spool = mgr5_root / "var" / "amocrm" / "spool"
    spool.mkdir(parents=True)
    with stalled_directory(spool):
        run = run_addon("amocrm_event", {"func": "account.edit", "elid": "5"}, DOC, timeout=60)
        assert (run.returncode, run.stdout) == (0, DOC)
        assert run.elapsed < WRITE_DEADLINE_SECONDS
