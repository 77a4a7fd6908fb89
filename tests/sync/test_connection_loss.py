"""A MySQL session lost under the worker's loops (MariaDB restarted, an admin's KILL,
wait_timeout) is one warning line and the loop goes on; any other failure keeps its error and
traceback. CI caught a KILL landing in the middle of the periodic reconciler, which logged
the lost session as an error with a traceback."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pymysql.err
import pytest

from billmgr_amocrm.schedule import DATABASE, Duty, run_due
from billmgr_amocrm.store.connection_loss import connection_lost
from billmgr_amocrm.worker import Daemon

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("exc, lost", [
    (pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"), True),
    (pymysql.err.OperationalError(2006, "MySQL server has gone away"), True),
    (pymysql.err.OperationalError(2003, "Can't connect to MySQL server on '127.0.0.1'"), True),
    (pymysql.err.OperationalError(1927, "Connection was killed"), True),
    (pymysql.err.OperationalError(1053, "Server shutdown in progress"), True),
    (pymysql.err.InterfaceError(0, ""), True),
    (pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), False),
    (pymysql.err.OperationalError(1213, "Deadlock found"), False),
    (pymysql.err.OperationalError(), False),
    (pymysql.err.ProgrammingError(1146, "Table doesn't exist"), False),
    (RuntimeError("2013"), False),
])
def test_a_lost_session_is_told_from_a_failure_of_the_statement(exc, lost):
    assert connection_lost(exc) is lost


def traceback_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info or r.exc_text]


def test_a_session_killed_during_a_periodic_duty_is_a_warning_and_the_next_duty_runs(rig, caplog):
    app = rig.app
    caplog.set_level(logging.DEBUG, logger="billmgr_amocrm")

    def killed_midway(app_) -> None:
        with app_.store.transaction():
            app_.store.get_cursor("schedule:anything")      # the session is alive and used
            rig.sandbox.query("KILL %s", (app_.conn.thread_id(),))
            app_.store.get_cursor("schedule:anything")      # MariaDB has dropped it mid-unit

    def broken(app_) -> None:
        raise ValueError("a bug in a duty")

    ran = []
    plan = (Duty("killed", 0.0, DATABASE, killed_midway), Duty("buggy", 0.0, DATABASE, broken),
            Duty("next", 0.0, DATABASE, lambda app_: ran.append(app_.store.get_cursor("schedule:killed"))))
    assert run_due(app, plan, holds_lease=True) == ["next"]
    assert ran == [None]         # the next duty reconnected; the killed one's stamp was never written

    killed = [r for r in caplog.records if "periodic killed" in r.getMessage()]
    assert [r.levelno for r in killed] == [logging.WARNING]
    assert killed[0].getMessage().startswith("periodic killed failed, tried again at the next run: "
                                             "the MySQL connection was lost (")
    # the bug keeps its error and traceback; the lost session has neither
    assert [r.getMessage() for r in traceback_records(caplog)] == [
        "periodic buggy failed, tried again at the next run: a bug in a duty"]
    assert [r.levelno for r in traceback_records(caplog)] == [logging.ERROR]


class IdleDaemon(Daemon):
    """The real loop around a tick that does nothing but let the next try build again: what it
    logs is the loop's own."""

    def tick(self, app) -> None:
        self.app = None


class Built:
    def close(self) -> None:
        return None


def run_daemon_through(outcomes: list) -> None:
    """The daemon builds its app once per outcome (an exception raised, or a working app),
    then stops; no pause between tries."""
    stop = threading.Event()

    def build():
        outcome = outcomes.pop(0)
        if not outcomes:
            stop.set()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    daemon = IdleDaemon(build)
    daemon.stop = stop
    daemon.stop.wait = lambda timeout=None: stop.is_set()
    assert daemon.run() == 0


def test_the_daemon_says_a_repeating_failure_once_and_that_it_is_over(caplog):
    caplog.set_level(logging.DEBUG, logger="billmgr_amocrm")
    unreachable = pymysql.err.OperationalError(2003, "Can't connect to MySQL server on '127.0.0.1' "
                                                     "([Errno 111] Connection refused)")
    unknown = pymysql.err.OperationalError(1049, "Unknown database 'billmgr_typo'")
    run_daemon_through([unreachable] * 3 + [Built()] + [unknown] * 3 + [RuntimeError("a bug in the worker")]
                       + [Built()])

    records = [(r.levelname, r.getMessage(), bool(r.exc_info)) for r in caplog.records
               if r.name == "billmgr_amocrm.worker" and r.levelno >= logging.INFO]
    assert records == [
        ("WARNING", "worker error, retrying every 5 s: MySQL cannot be reached "
                    "(2003: Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused))",
         False),
        ("INFO", "the worker works again (after: worker error, retrying every 5 s: MySQL cannot be "
                 "reached (2003: Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection "
                 "refused)))", False),
        # a setting to fix: the admin's words, no traceback, once while it lasts
        ("ERROR", "worker error, retrying every 5 s: the BILLmanager database refused the module "
                  "(1049: Unknown database 'billmgr_typo'); check the database settings "
                  "(BILLmanager's db.conf or mgrctl paramlist)", False),
        # a bug keeps its traceback
        ("ERROR", "worker error, retrying every 5 s: a bug in the worker", True),
        ("INFO", "the worker works again (after: worker error, retrying every 5 s: a bug in the worker)",
         False),
    ]


def test_cron_says_a_setup_problem_in_one_line_without_a_traceback(rig, tmp_path):
    """cron runs ``amocrm_task --once`` every minute: a settings file that does not check or a
    database name that is wrong was a full traceback in the log each time."""
    root = rig.root
    conf = root / "etc" / "amocrm" / "amocrm.conf"
    db_conf = root / "etc" / "billmgr.conf.d" / "db.conf"
    good_conf, good_db = conf.read_text(), db_conf.read_text()
    log_file = root / "var" / "amocrm_task.log"

    def once() -> tuple[int, list[str]]:
        start = log_file.stat().st_size if log_file.exists() else 0
        proc = subprocess.run([sys.executable, str(REPO / "sbin" / "amocrm_task"), "--once"],
                              env=dict(os.environ, MGR5_ROOT=str(root)), capture_output=True, timeout=60,
                              check=False)
        assert not proc.stderr.strip(), proc.stderr   # nothing for cron to mail
        with log_file.open("rb") as fh:
            fh.seek(start)
            return proc.returncode, fh.read().decode().splitlines()

    conf.write_text(good_conf.rstrip()[:-1])          # a hand edit that lost its closing brace
    code, lines = once()
    assert code == 1 and not any("Traceback" in line for line in lines), lines
    (line,) = [line for line in lines if " ERROR " in line]
    assert f"amocrm_task --once failed: bad settings: {conf}: not valid JSON" in line
    conf.write_text(good_conf)
    db_conf.write_text(good_db.replace("DBName ", "DBName typo_"))
    code, lines = once()
    assert code == 1 and not any("Traceback" in line for line in lines), lines
    (line,) = [line for line in lines if " ERROR " in line]
    assert ("amocrm_task --once failed: the BILLmanager database refused the module (1049: Unknown "
            "database") in line
    db_conf.write_text(good_db)
    assert once()[0] == 0
