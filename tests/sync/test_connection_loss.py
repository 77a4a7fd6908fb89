"""A MySQL session lost under the worker's loops (MariaDB restarted, an admin's KILL,
wait_timeout) is one warning line and the loop goes on; any other failure keeps its error and
traceback. CI caught a KILL landing in the middle of the periodic reconciler, which logged
the lost session as an error with a traceback."""

from __future__ import annotations

import logging
import threading

import pymysql.err
import pytest

from billmgr_amocrm.schedule import DATABASE, Duty, run_due
from billmgr_amocrm.store.connection_loss import connection_lost
from billmgr_amocrm.worker import Daemon


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


def test_the_daemon_rides_out_an_unreachable_server_with_a_warning_and_keeps_a_bug_traceback(caplog):
    caplog.set_level(logging.DEBUG, logger="billmgr_amocrm")
    failures = [pymysql.err.OperationalError(2003, "Can't connect to MySQL server on '127.0.0.1' "
                                                   "([Errno 111] Connection refused)"),
                RuntimeError("a bug in the worker")]
    stop = threading.Event()

    def build():
        failure = failures.pop(0)
        if not failures:
            stop.set()
        raise failure

    daemon = Daemon(build)
    daemon.stop = stop
    daemon.stop.wait = lambda timeout=None: stop.is_set()    # no pause between the two tries
    assert daemon.run() == 0

    records = [(r.levelname, r.getMessage(), bool(r.exc_info)) for r in caplog.records
               if r.name == "billmgr_amocrm.worker"]
    assert records == [
        ("WARNING", "worker error, retrying in 5 s: the MySQL connection was lost "
                    "(2003: Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused))",
         False),
        ("ERROR", "worker error, retrying in 5 s: a bug in the worker", True),
    ]
