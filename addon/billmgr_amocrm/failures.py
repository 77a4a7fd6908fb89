"""What the loops that outlive failures (the daemon, cron's run, the periodic duties) say about them.

Three kinds, told apart so that the log sends an admin to the right place:

* a lost or unreachable MySQL session (a MariaDB restart, an admin's ``KILL``, ``wait_timeout``):
  the work in hand is lost with its transaction and tried again on a new connection; one
  WARNING line;
* a set-up problem the admin must fix, the same at every try: the database settings unreadable,
  the database refusing the module's credentials or unknown, ``mgrctl`` failing, a settings
  file that does not check; one ERROR line in the admin's words, without a traceback (it
  would only show where the module noticed, every minute from cron);
* anything else: an ERROR with its traceback, a bug to report.

:func:`describe` gives the line, so a loop that meets the same failure again and again (the
daemon, every 5 s) can say it once (:class:`RepeatedFailures`).
"""

from __future__ import annotations

import logging
from typing import NamedTuple, Optional

import pymysql.err
from pymysql.constants import CR, ER

from .store.connection_loss import connection_lost

# the server was never reached: nothing was lost, but it is the same passing condition
UNREACHABLE_CODES = frozenset({CR.CR_CONNECTION_ERROR, CR.CR_CONN_HOST_ERROR, CR.CR_UNKNOWN_HOST})
# the server answered and refused the module's settings: no retry fixes these
REFUSED_CODES = frozenset({ER.DBACCESS_DENIED_ERROR, ER.ACCESS_DENIED_ERROR, ER.BAD_DB_ERROR,
                           1698})   # 1698: access denied to a socket-authenticated user


class Said(NamedTuple):
    """How a failure is logged: level, line, and whether its traceback goes with it."""

    level: int
    text: str
    traceback: bool


def describe(what: str, exc: BaseException) -> Said:
    """``what`` failed with ``exc``: the line an admin reads (see the module docstring)."""
    code = _code(exc)
    if code in UNREACHABLE_CODES and isinstance(exc, pymysql.err.OperationalError):
        return Said(logging.WARNING, f"{what}: MySQL cannot be reached ({_why(exc)})", False)
    if connection_lost(exc):
        return Said(logging.WARNING, f"{what}: the MySQL connection was lost ({_why(exc)})", False)
    problem = setup_problem(exc)
    if problem is not None:
        return Said(logging.ERROR, f"{what}: {problem}", False)
    return Said(logging.ERROR, f"{what}: {exc}", True)


def log_failure(logger: logging.Logger, what: str, exc: BaseException) -> str:
    """Logs ``describe(what, exc)``; returns the line."""
    return _say(logger, describe(what, exc), exc)


def _say(logger: logging.Logger, said: Said, exc: BaseException) -> str:
    logger.log(said.level, "%s", said.text, exc_info=exc if said.traceback else None)
    return said.text


def setup_problem(exc: BaseException) -> Optional[str]:
    """The admin's words for a failure no retry fixes (a setting to correct), else None."""
    from .dbconf import DbConfigError
    from .mgrctl import MgrctlError
    from .rules.errors import ConfigError

    if isinstance(exc, pymysql.err.OperationalError) and _code(exc) in REFUSED_CODES:
        return (f"the BILLmanager database refused the module ({_why(exc)}); check the database "
                "settings (BILLmanager's db.conf or mgrctl paramlist)")
    if isinstance(exc, DbConfigError):
        return f"cannot read the database settings: {exc}"
    if isinstance(exc, MgrctlError):
        return f"BILLmanager's mgrctl failed: {exc}"
    if isinstance(exc, ConfigError):
        return f"bad settings: {exc}"
    return None


class RepeatedFailures:
    """Says a failure once while it repeats, and once that it is over (a loop retrying every few
    seconds would otherwise write the same line thousands of times a day)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.last: Optional[str] = None

    def failed(self, what: str, exc: BaseException) -> None:
        said = describe(what, exc)
        if said.text == self.last:
            self.logger.debug("%s (again)", said.text)
            return
        self.last = _say(self.logger, said, exc)

    def recovered(self, what: str) -> None:
        if self.last is not None:
            self.logger.info("%s (after: %s)", what, self.last)
            self.last = None


def _code(exc: BaseException) -> Optional[int]:
    first = exc.args[0] if getattr(exc, "args", None) else None
    return first if isinstance(first, int) else None


def _why(exc: BaseException) -> str:
    """``2013: Lost connection to MySQL server during query``; the class name when PyMySQL
    gives no code (an ``InterfaceError(0, "")`` says only that the connection was closed)."""
    code, text = (list(exc.args) + [None, None])[:2]
    if isinstance(code, int) and code and text:
        return f"{code}: {text}"
    return type(exc).__name__
