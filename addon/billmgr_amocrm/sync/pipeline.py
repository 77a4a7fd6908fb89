"""The read/write pipeline around the batch being sent: read-ahead and write-behind.

With a :class:`Reader` the next batch of the same kind is claimed, read and planned on a
connection of its own while the current one is written; with a :class:`Writer` the
commit of a created batch (links + sync state + queue rows) runs on a third connection
while the next batch is sent. One write is in flight at most, in batch order; every
drain waits for the last write-behind before it ends, so the next kind reads committed
parent links.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterator, Optional, Sequence

from ..domain import Kind
from ..ports import BillingReader, QueueItem, Store
from .outcomes import link_taken
from .planner import Plan, Work

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reader:
    """Read-side adapters on a connection of their own (autocommit, so every read sees the
    latest commit): the engine reads and plans the next batch with them while the current
    one is being written. Only reads go through them, and only rows of other entities than
    the batch in flight, so the overlap changes no outcome."""

    billing: BillingReader
    store: Store
    close: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Writer:
    """A store on a connection of its own for write-behind: the commit of a created batch
    (links + sync state + queue rows) runs on it while the next batch is being sent. Until
    it commits, the batch's create intents stay open, so a crash in between is settled by
    the marker like any lost answer."""

    store: Store
    close: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Prepared:
    """A batch read and planned, not yet written."""

    kind: Kind
    works: list[Work]
    plan: Plan
    # billmgr_id -> fingerprint of what the plan sends (computed off the writing thread)
    fingerprints: dict[int, str] = field(default_factory=dict)


def settle_quietly(ahead: Optional[Future[Optional[Prepared]]]) -> None:
    """Wait for a read-ahead that will not be used (its connection must be idle again)."""
    if ahead is not None:
        try:
            ahead.result()
        except Exception:  # noqa: BLE001 - the batch is re-read when it is claimed again
            log.debug("discarded read-ahead failed", exc_info=True)


class WriteBehind:
    """Commits of created batches on the :class:`Writer`'s connection, one at a time."""

    def __init__(self, writer: Optional[Writer]) -> None:
        self.writer = writer
        self._pool: Optional[ThreadPoolExecutor] = None
        self._pending: Optional[Future[None]] = None

    @property
    def active(self) -> bool:
        return self._pool is not None

    @contextmanager
    def running(self) -> Iterator[None]:
        """Accept write-behinds inside the block; every one is committed when it ends."""
        if self.writer is None or self._pool is not None:
            yield
            return
        with ThreadPoolExecutor(max_workers=1) as pool:
            self._pool = pool
            try:
                yield
            except BaseException:
                self.flush(quiet=True)
                raise
            else:
                self.flush()
            finally:
                self._pool = None

    def submit(self, kind: Kind, rows: Sequence[tuple[int, int, str]], now: datetime,
               items: Sequence[QueueItem]) -> None:
        """Commit created entities' links, sync state and queue rows behind the next request."""
        assert self.writer is not None and self._pool is not None
        self.flush()
        store = self.writer.store

        def write() -> None:
            with store.transaction():
                taken = store.link_created(kind, rows, now)
                store.complete_many([i for i in items if i.billmgr_id not in taken])
                for item in items:
                    if item.billmgr_id in taken:
                        amocrm_id = next(a for b, a, _ in rows if b == item.billmgr_id)
                        reason = link_taken(kind, amocrm_id, taken[item.billmgr_id])
                        log.error("%s %s failed: %s", kind.value, item.billmgr_id, reason)
                        store.fail(item, reason)

        self._pending = self._pool.submit(write)

    def flush(self, quiet: bool = False) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            pending.result()
        except Exception:
            if not quiet:
                raise
            log.warning("a write-behind failed too; its intents stay open and are settled later",
                        exc_info=True)
