"""A database that went back in time: a restored backup, a fail-over to a replica behind.

BILLmanager's database holds the module's bindings, create intents and what each entity was
last sent as; amoCRM holds what the module made. Restore the database from a backup
(mysqldump, BILLmanager's own backup, a replica promoted without its last writes) and every
binding committed after the backup is gone while amoCRM keeps those entities, each with the
module's marker: the next pass would make them a second time. And an entity updated after the
backup shows data billing no longer holds (billing went back too).

A database cannot tell it went back; something that did not go back with it can: this host's
state directory (``var/amocrm``: not BILLmanager's data, and ``amocrm-purge`` removes it with
the tables). Every engine pass ends by stamping the database (the ``db:timeline`` cursor: the
database's own id and a stamp that only grows), then writes the same into this host's
``var/amocrm/timeline.json``. A backup taken before a pass ended holds an older stamp than the
file, whatever that pass made; one taken after holds all of it.

Before the next pass sends anything, :func:`judge` compares the two. A database older than
what this host last wrote into it went back (to its stamp's time; to before the stamps when it
holds none). The pass notes it (the ``db:restored`` cursor, pending) with a new id for the
database and sends nothing: a dump is restored a table at a time while cron goes on running
the module, and the tables after ``amocrm_cursor`` (the leads' and companies' bindings, the
queue, billing's ``item``, ``payment``, ``profile``) may still be the newer ones. Nothing is
sent (passes, payment notes, renewal tasks) until no table of the database was created or
altered for :data:`QUIET` seconds (the server's ``information_schema``; a restore creates
every table anew), and :data:`QUIET` have passed since the notice. Then one unit asks

* for the adoption of each kind's entities made since then, less :data:`CLOCK_SLACK` for the
  two clocks (:mod:`.adopt`: an amoCRM entity carrying a marker is bound again when it is
  provably its billing record's, so a client id BILLmanager hands out again after the restore
  is not bound to the old client's contact);
* for an export: everything is queued, so every entity is sent once more and amoCRM shows
  what billing holds now (an update carries only the module's fields: the sales team's work
  stays);
* and the restore is no longer pending: for :data:`VERIFY_FOR` after the notice, a payment
  note or renewal task about to be made is first looked for on its entity (its key, made since
  the database's stamp), since the row that said it was made went back with the database
  (:func:`made_since`).

The new id keeps one restore from being taken for two: another host's file names the old id,
which is another database to it. This host's file remembers the ids it left
(:data:`LEFT_KEPT` of them), so the same backup restored a second time is caught too. A file
naming another database (db.conf now points elsewhere) is not compared, and a host that has
not run a pass lately holds an older stamp, never taken for a restore.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Optional

from ..domain import KIND_ORDER
from ..exportrequest import request_export, run_requested_export
from ..foundation.files import write_atomic
from ..ports import BillingReader, Store
from .adopt import request_adoption

log = logging.getLogger(__name__)

CURSOR = "db:timeline"
# "<since> <noticed>[ pending]" (unix seconds) of the last restore noticed
RESTORED = "db:restored"
PENDING = "pending"
# a restore is over once no table was created or altered for this long (and as long has passed
# since it was noticed); tests set the environment variable
QUIET = 120.0
QUIET_ENV = "BILLMGR_AMOCRM_RESTORE_QUIET"
# a worker with nothing to send looks for a restore this often (cron's runs: every one)
IDLE_EVERY = 10.0
# how long after a restore a note or task is looked for before it is made: the renewal duty and
# the payment reconciler (hourly) plan again what the restore took from their tables within it
VERIFY_FOR = 3 * 86400
# amoCRM stamps created_at by its clock, the stamp is this host's: an hour covers any sane skew
CLOCK_SLACK = 3600
MICROSECONDS = 1_000_000
# the database ids this host moved away from, newest kept
LEFT_KEPT = 8
# the file's mode: no secret in it, but nobody else's business either
FILE_MODE = 0o600


@dataclass(frozen=True)
class Stamp:
    """A database's id and when a pass last ended on it (unix microseconds: a whole number, so
    the database's copy and the file's compare exactly)."""

    database: str
    at: int

    def text(self) -> str:
        return f"{self.database} {self.at}"

    @classmethod
    def parse(cls, text: Optional[str]) -> Optional[Stamp]:
        database, _, at = (text or "").partition(" ")
        return cls(database, int(at)) if database and at.isdigit() else None


@dataclass(frozen=True)
class Seen:
    """What this host last wrote into a database (its file), and the ids it moved away from."""

    stamp: Stamp
    left: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class WentBack:
    """The database went back to ``since`` (unix microseconds; 0: to before the stamps) from
    ``last_seen``."""

    since: int
    last_seen: int

    def adopt_since(self) -> int:
        """Unix seconds: what amoCRM made since then may be the lost bindings'."""
        return max(0, self.since // MICROSECONDS - CLOCK_SLACK) if self.since else 0


def judge(db: Optional[Stamp], seen: Optional[Seen]) -> Optional[WentBack]:
    """Pure: whether the database went back since this host last wrote into it."""
    if seen is None:
        return None
    if db is None:
        return WentBack(0, seen.stamp.at)
    if db.database == seen.stamp.database and db.at < seen.stamp.at:
        return WentBack(db.at, seen.stamp.at)
    if db.database in seen.left:
        return WentBack(db.at, seen.left[db.database])
    return None


def after(db: Optional[Stamp], seen: Optional[Seen], now: int) -> Stamp:
    """Pure: the stamp a pass ends with, never below one before it (a database without one gets
    its id now)."""
    if db is None:
        return Stamp(new_id(), now)
    floor = db.at
    if seen is not None and seen.stamp.database == db.database:
        floor = max(floor, seen.stamp.at)
    return Stamp(db.database, max(now, floor + 1))


def new_id() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Restore:
    """The last restore noticed: made since ``since`` (unix seconds, for the adoption), noticed at
    ``noticed``; ``pending`` until the restore is over and the adoption and export are asked."""

    since: int
    noticed: int
    pending: bool = False

    def text(self) -> str:
        return f"{self.since} {self.noticed}" + (f" {PENDING}" if self.pending else "")

    @classmethod
    def parse(cls, text: Optional[str]) -> Optional[Restore]:
        parts = (text or "").split()
        if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
            return None
        return cls(int(parts[0]), int(parts[1]), parts[2:] == [PENDING])


def restore_over(restore: Restore, now: float, unchanged_for: Optional[float], quiet: float) -> bool:
    """Pure: whether a restore noticed is over (see the module docstring). A server that cannot
    say when its tables changed is taken at the notice's age alone."""
    settled = unchanged_for is None or unchanged_for >= quiet
    return settled and now - restore.noticed >= quiet


def made_since(store: Store, now: datetime) -> Optional[int]:
    """While a restore is recent (:data:`VERIFY_FOR`): the unix time from which a payment note
    or renewal task about to be made may already be in amoCRM; otherwise None."""
    restore = Restore.parse(store.get_cursor(RESTORED))
    if restore is None:
        return None
    return restore.since if now.timestamp() - restore.noticed < VERIFY_FOR else None


def quiet_seconds(environ: Mapping[str, str]) -> float:
    try:
        return max(0.0, float(environ.get(QUIET_ENV, QUIET)))
    except ValueError:
        return QUIET


def now_us() -> int:
    return time.time_ns() // 1000


def _iso(seconds: float) -> str:
    return (datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            if seconds else "the start")


class Timeline:
    """Stamps the database at the end of every pass and notices when it went back (see above).

    One per process (``App.timeline``), used under the engine lease: the engine's pass, the
    payment notes and the renewal tasks each begin with :meth:`begin` (nothing to do once a
    restore was dealt with: the database then carries a new id) and end with :meth:`end` when
    they sent something."""

    def __init__(self, store: Store, billing: BillingReader, path: Path, *,
                 unchanged_for: Callable[[], Optional[float]] = lambda: None, quiet: float = QUIET,
                 clock: Callable[[], int] = now_us) -> None:
        self.store = store
        self.billing = billing
        self.path = path
        # seconds since a table of the database was created or altered (the store asks the server)
        self.unchanged_for = unchanged_for
        self.quiet = quiet
        self.clock = clock
        # the database's stamp when this began or last stamped: only that database is stamped
        self._began: Optional[Stamp] = None
        self._idle_checked = -IDLE_EVERY

    def begin(self) -> Optional[str]:
        """Before anything is sent: None to go on, or why nothing may be sent now (a restore
        noticed and not over yet). A restore over asks for the adoption and the export, and
        queues everything (see the module docstring)."""
        seen = self._read_seen()
        with self.store.transaction():
            db = Stamp.parse(self.store.get_cursor(CURSOR))
            went_back = judge(db, seen)
            restore = Restore.parse(self.store.get_cursor(RESTORED))
            if went_back is not None:
                restore = Restore(went_back.adopt_since(), self.clock() // MICROSECONDS, pending=True)
                self.store.set_cursor(RESTORED, restore.text())
                db = Stamp(new_id(), max(self.clock(), went_back.last_seen + 1))
                self.store.set_cursor(CURSOR, db.text())
        self._began = db
        if went_back is not None and db is not None:
            self._left(db, seen)
            log.warning(
                "the database went back in time: it was last stamped at %s, but this host ended a "
                "pass on it at %s (restored from a backup, or a replica without the last writes?). "
                "amoCRM keeps what the module made since: once no table has changed for %.0f s, the "
                "entities made since %s that carry the module's marker are adopted and everything "
                "is sent once more so amoCRM shows what billing holds now; nothing is sent until then",
                _iso(went_back.since / MICROSECONDS), _iso(went_back.last_seen / MICROSECONDS),
                self.quiet, _iso(went_back.adopt_since()))
        if restore is None or not restore.pending:
            return None
        if not restore_over(restore, self.clock() / MICROSECONDS, self.unchanged_for(), self.quiet):
            return (f"the database went back in time ({_iso(restore.noticed)}): nothing is sent until "
                    f"its tables have stayed as they are for {self.quiet:.0f} s")
        self._deal_with(restore)
        return None

    def idle_check_due(self) -> bool:
        """Whether a worker with nothing to send should :meth:`begin` now: at most every
        :data:`IDLE_EVERY` seconds."""
        now = time.monotonic()
        if now - self._idle_checked < IDLE_EVERY:
            return False
        self._idle_checked = now
        return True

    def _deal_with(self, restore: Restore) -> None:
        with self.store.transaction():
            if Restore.parse(self.store.get_cursor(RESTORED)) != restore:
                return      # dealt with meanwhile (another process), or another restore noticed
            request_adoption(self.store, KIND_ORDER, restore.since)
            request_export(self.store)
            self.store.set_cursor(RESTORED, Restore(restore.since, restore.noticed).text())
        log.warning("the database's tables have stayed as they are for %.0f s: adopting what amoCRM "
                    "made since %s and sending everything once more", self.quiet, _iso(restore.since))
        counts = run_requested_export(self.store, self.billing)
        if counts is not None:
            log.info("after the database went back: %d entities queued", counts.total)

    def end(self) -> None:
        """After the pass (or payment notes, renewal tasks made): stamp the database, then this
        host's file. A database that is not the one this began on or last stamped (restored under
        the pass) is left for the next :meth:`begin` to judge."""
        seen = self._read_seen()
        with self.store.transaction():
            db = Stamp.parse(self.store.get_cursor(CURSOR))
            if db != self._began:
                return
            stamp = after(db, seen, self.clock())
            self.store.set_cursor(CURSOR, stamp.text())
        self._began = stamp
        self._write(stamp, dict(seen.left) if seen is not None else {})

    def _left(self, db: Stamp, seen: Optional[Seen]) -> None:
        """This host's file names the database's new id and remembers the one it left."""
        left: dict[str, int] = dict(seen.left) if seen is not None else {}
        if seen is not None:
            left[seen.stamp.database] = seen.stamp.at
        self._write(db, left)

    def _read_seen(self) -> Optional[Seen]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            stamp = Stamp(str(data["database"]), int(data["at"]))
            left = {str(k): int(v) for k, v in dict(data.get("left") or {}).items()}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # a damaged file is no evidence of anything: the pass stamps it anew
            log.warning("%s cannot be read (%s): written anew after this pass", self.path, exc)
            return None
        return Seen(stamp, left) if stamp.database else None

    def _write(self, stamp: Stamp, left: Mapping[str, int]) -> None:
        newest = dict(sorted(left.items(), key=lambda item: item[1])[-LEFT_KEPT:])
        newest.pop(stamp.database, None)
        body = {"database": stamp.database, "at": stamp.at, "left": newest}
        write_atomic(self.path, json.dumps(body, sort_keys=True) + "\n", FILE_MODE)
