"""Composition root: builds the real adapters from the host's paths and db.conf.

Nothing happens at import time; :func:`build` opens the MySQL connection, brings
the schema up to date and loads the rules. The amoCRM client is built lazily (a
module that is not authorized yet can still show its status).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from .domain import Kind
from .paths import HostPaths, host_paths
from .ports import MappingContext

if TYPE_CHECKING:
    from .rules.config import ModuleConfig
    from .rules.mapping import RuleSet
    from .rules.presets import Presets
    from .settings import Settings

log = logging.getLogger(__name__)

EXPORT_CHUNK = 250   # amoCRM's maximum per write: the export runs at the rate limit


@dataclass
class App:
    """Every adapter the services and the worker use, for one host root."""

    paths: HostPaths
    conn: Any
    store: Any          # store.store.MySqlStore
    billing: Any        # billing.BillingDb
    settings: Settings
    amo_factory: Optional[Callable[[int], Any]] = None
    _clients: dict[int, Any] = field(default_factory=dict)
    _reader: Any = None
    _writer: Any = None

    @property
    def config(self) -> ModuleConfig:
        return self.settings.config

    @property
    def presets(self) -> Presets:
        return self.settings.presets

    @property
    def rules(self) -> RuleSet:
        return self.settings.rules

    def amo(self, chunk_size: Optional[int] = None) -> Any:
        """The amoCRM client (raises ``Reauthorize`` when the module is not authorized)."""
        size = chunk_size or int(self.config.sync.batch_size)
        if size not in self._clients:
            if self.amo_factory is not None:
                self._clients[size] = self.amo_factory(size)
            else:
                from .amocrm import AmoClient

                self._clients[size] = AmoClient.from_host(self.paths, rate=float(self.config.sync.rate_limit),
                                                          chunk_size=size)
        return self._clients[size]

    def marker_fields(self) -> dict[Kind, int]:
        return dict(self.config.sync.marker_field_ids.as_map())

    def ensure_marker_fields(self) -> dict[Kind, int]:
        """Make sure the marker fields exist in amoCRM and their ids are in amocrm.conf."""
        known = self.marker_fields()
        if len(known) == len(Kind):
            return known
        from .rules.config import rebuild
        from .settings import save_config
        from .sync.fields import ensure_marker_fields

        ids = ensure_marker_fields(self.amo())
        sync = self.config.sync.model_dump(mode="json")
        sync["marker_field_ids"] = {kind.value: ids[kind] for kind in Kind}
        config = rebuild(self.config, {"sync": sync})
        save_config(config, self.paths, self.presets)
        self.reload_rules(config)
        return ids

    def reload_rules(self, config: Optional[ModuleConfig] = None) -> None:
        """After a save: ``config`` compiled with the presets in use, or all the settings read again."""
        from . import settings
        from .rules.mapping import RuleSet

        if config is None:
            self.settings = settings.load(self.paths)
        else:
            self.settings = settings.Settings(config, self.presets, RuleSet(config, self.presets))

    def context(self) -> MappingContext:
        return MappingContext(marker_field_ids=self.ensure_marker_fields(),
                              default_responsible_user_id=self.config.sync.responsible_user_id)

    def reader(self) -> Any:
        """Read-side adapters on a second, autocommit connection (the engine's read-ahead)."""
        if self._reader is None:
            from .billing import BillingDb
            from .db import connect
            from .store.store import MySqlStore
            from .sync.engine import Reader

            conn = connect(autocommit=True)
            self._reader = Reader(billing=BillingDb(conn, lang=self.billing.lang), store=MySqlStore(conn),
                                  close=conn.close)
        return self._reader

    def writer(self) -> Any:
        """A store on a third connection: the engine commits created batches on it (write-behind)."""
        if self._writer is None:
            from .db import connect
            from .store.store import MySqlStore
            from .sync.engine import Writer

            conn = connect()
            self._writer = Writer(store=MySqlStore(conn), close=conn.close)
        return self._writer

    def export_adapters(self) -> Any:
        """BILLmanager reader + store on a connection of their own for the export's queueing
        thread (``sync.export.Enqueuer``); the caller closes it (``.close()``)."""
        from .billing import BillingDb
        from .db import connect
        from .store.store import MySqlStore
        from .sync.engine import Reader

        conn = connect(autocommit=True)
        return Reader(billing=BillingDb(conn, lang=self.billing.lang), store=MySqlStore(conn),
                      close=conn.close)

    def engine(self, chunk_size: Optional[int] = None) -> Any:
        from .sync.engine import Engine

        size = chunk_size or int(self.config.sync.batch_size)
        return Engine(self.amo(size), self.billing, self.store, self.rules, self.context(), batch_size=size,
                      recreate_deleted=bool(self.config.sync.recreate_deleted), reader=self.reader(),
                      settle_after=float(self.config.sync.settle_after), writer=self.writer())

    def close(self) -> None:
        for client in self._clients.values():
            close = getattr(client, "close", None)
            if close:
                close()
        self._clients.clear()
        for side in (self._reader, self._writer):
            if side is None:
                continue
            try:
                side.close()
            except Exception:  # noqa: BLE001 - closing a dead connection must not mask the real error
                log.debug("closing the read-ahead / write-behind connection failed", exc_info=True)
        self._reader = self._writer = None
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - closing a dead connection must not mask the real error
            log.debug("closing the MySQL connection failed", exc_info=True)


def build(paths: Optional[HostPaths] = None, *, amo_factory: Optional[Callable[[int], Any]] = None) -> App:
    """Connect to MySQL (db.conf), migrate the module's tables, load amocrm.conf and presets."""
    from . import settings
    from .billing import BillingDb
    from .db import connect
    from .store.migrations import migrate
    from .store.store import MySqlStore

    paths = paths or host_paths()
    conn = connect()
    try:
        migrate(conn)
        loaded = settings.load(paths)
    except BaseException:
        conn.close()
        raise
    return App(paths=paths, conn=conn, store=MySqlStore(conn), billing=BillingDb(conn), settings=loaded,
               amo_factory=amo_factory)
