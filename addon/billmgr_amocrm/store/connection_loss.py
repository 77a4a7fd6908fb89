"""Telling a lost MySQL session from a real failure, for the loops that outlive both.

MariaDB restarts, an admin's ``KILL``, ``wait_timeout`` and the network end a session now and
then. The work in hand is lost (its transaction rolled back with the session) and the loop
starts again on a new connection: that is one warning line for the log, not an error with a
traceback, which would send an admin looking for a bug that is not there (``failures.py``
says it).
"""

from __future__ import annotations

import pymysql.err
from pymysql.constants import CR, ER

# Client-side: the server could not be reached, went away or dropped the answer.
# Server-side: the server is shutting down, the session was killed (MariaDB's 1927), or it
# idled out (MySQL 8's 4031).
LOST_SESSION_CODES = frozenset({
    CR.CR_CONN_HOST_ERROR, CR.CR_SERVER_GONE_ERROR, CR.CR_SERVER_LOST, CR.CR_SERVER_LOST_EXTENDED,
    ER.SERVER_SHUTDOWN, 1927, 4031,
})


def connection_lost(exc: BaseException) -> bool:
    """The MySQL session is gone (the statement itself was not at fault)."""
    if isinstance(exc, pymysql.err.InterfaceError):
        return True     # PyMySQL's answer to any use of a connection it already closed
    return (isinstance(exc, pymysql.err.OperationalError) and bool(exc.args)
            and exc.args[0] in LOST_SESSION_CODES)
