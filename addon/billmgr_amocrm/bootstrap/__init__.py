"""Composition root: every adapter is built here, for one host root, typed against the ports.

Nothing happens at import time (each function imports what it builds, so a panel click
pays only for what it uses). :func:`build` reads the database credentials under ``paths``
(``dbconf``: mgrctl's paramlist, else db.conf), opens the MySQL connection, brings the
schema up to date and loads the settings; the amoCRM client is built on first use (a
module that is not authorized yet can still show its status). The amoCRM parts that need
no database are built in ``bootstrap/amocrm.py``: :func:`build_amo_client`,
:func:`authorize`, :func:`token_status`, :func:`client_secret` (importable from here).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Optional, Sequence

from ..domain import URL_KINDS, Kind
from ..paths import HostPaths, host_paths
from ..ports import MappingContext
from .amocrm import authorize, authorize_long_lived, build_amo_client, client_secret, token_status

if TYPE_CHECKING:
    from pymysql.connections import Connection

    from ..billing import BillingDb
    from ..dbconf import DbSettings
    from ..ports import AmoApi
    from ..ports.activities import ActivityApi
    from ..rules.config import ModuleConfig
    from ..rules.mapping import RuleSet
    from ..rules.presets import Presets
    from ..settings import Settings
    from ..store.lease import EngineLease
    from ..store.store import MySqlStore
    from ..sync.engine import Engine
    from ..sync.gone_fields import Gone
    from ..sync.lanes import Lane, Lanes
    from ..sync.timeline import Timeline

__all__ = ["App", "EXPORT_CHUNK", "SideConnection", "authorize", "authorize_long_lived", "build",
           "build_amo_client",
           "client_secret", "token_status"]

log = logging.getLogger(__name__)

EXPORT_CHUNK = 250   # amoCRM's maximum per write: the export runs at the rate limit


@dataclass(frozen=True)
class SideConnection:
    """BILLmanager reader and store on a MySQL connection of their own (autocommit)."""

    billing: BillingDb
    store: MySqlStore
    conn: Connection

    def close(self) -> None:
        self.conn.close()


@dataclass
class App:
    """Every adapter the services and the worker use, for one host root."""

    paths: HostPaths
    db: DbSettings
    conn: Connection
    store: MySqlStore
    billing: BillingDb
    settings: Settings
    amo_factory: Optional[Callable[[int], AmoApi]] = None
    # what runs the engine, for "the engine is busy: <command> (pid ..., host ...)" messages
    command: str = field(default_factory=lambda: " ".join(
        [os.path.basename(sys.argv[0] or "python")] + sys.argv[1:2]))
    # the settings files' stamps when ``settings`` was read (refresh_settings)
    settings_stamp: tuple[Any, ...] = ()
    _refused_stamp: tuple[Any, ...] = ()
    # (settings version, day, retired tags) as _retired_tags last noted them
    _tags_noted: tuple[Any, ...] = (None, None, {})
    _clients: dict[int, AmoApi] = field(default_factory=dict)
    _lease: Optional[EngineLease] = None
    _lanes: Optional[Lanes] = None
    _timeline: Optional[Timeline] = None
    # shared by every store of this App: one unit of work at a time holds row locks
    # (store/unit_of_work.py says why); their reads and amoCRM requests still overlap
    units: ContextManager[Any] = field(default_factory=threading.RLock)

    @property
    def config(self) -> ModuleConfig:
        return self.settings.config

    @property
    def presets(self) -> Presets:
        return self.settings.presets

    @property
    def rules(self) -> RuleSet:
        return self.settings.rules

    def amo(self, chunk_size: Optional[int] = None) -> AmoApi:
        """The amoCRM client (raises ``Reauthorize`` when the module is not authorized, or when
        this host's tokens are for another account than the one the bindings belong to)."""
        size = chunk_size or int(self.config.sync.batch_size)
        if size not in self._clients:
            self._check_account()
            make = self.amo_factory or self._amo_client
            self._clients[size] = make(size)
        return self._clients[size]

    def bound_account(self) -> Optional[str]:
        """The amoCRM account the database's bindings belong to (``boundaccount``); when none is
        recorded yet (an install from before), this host's tokens' account, recorded now; None
        before the first authorization."""
        from ..amocrm.tokens import TokenStore
        from ..boundaccount import bind_account, bound_account, key_of_url

        bound = bound_account(self.store)
        if bound is None:
            meta = TokenStore(self.paths).read_meta()
            if meta is not None:
                bound = key_of_url(meta.base_url)
                bind_account(self.store, bound)
        return bound

    def _check_account(self) -> None:
        """This host's tokens are for the account the database's bindings belong to."""
        from ..amocrm.tokens import TokenStore
        from ..boundaccount import key_of_url
        from ..errors import Reauthorize

        meta = TokenStore(self.paths).read_meta()
        if meta is None:
            return          # not authorized: the client says so
        ours, bound = key_of_url(meta.base_url), self.bound_account()
        if bound != ours:
            raise Reauthorize(code="tokens_not_bound_account", params={"stored": ours, "bound": bound})

    def _amo_client(self, chunk_size: int) -> AmoApi:
        sync = self.config.sync
        return build_amo_client(self.paths, rate=float(sync.rate_limit), chunk_size=chunk_size,
                                network_margin=float(sync.network_margin))

    def activities(self) -> ActivityApi:
        """Notes and tasks over the amoCRM client (``Reauthorize`` when not authorized)."""
        from ..amocrm.activities import AmoActivities
        from ..amocrm.api import AmoClient

        client = self.amo()
        if not isinstance(client, AmoClient):
            raise TypeError("notes and tasks need the amoCRM client, not a stand-in")
        return AmoActivities(client)

    def marker_fields(self) -> dict[Kind, int]:
        return dict(self.config.sync.marker_field_ids.as_map())

    def ensure_marker_fields(self) -> dict[Kind, int]:
        """Make sure the marker fields exist in amoCRM and their ids are in amocrm.conf."""
        known = self.marker_fields()
        if len(known) == len(Kind):
            return known
        from ..rules.config import rebuild
        from ..settings import update_config
        from ..sync.adopt import note_fields_made
        from ..sync.fields import set_up_marker_fields

        ids, made = set_up_marker_fields(self.amo())
        note_fields_made(self.store, {kind: ids[kind] for kind in made})

        def record(current: Settings) -> ModuleConfig:
            # the latest amocrm.conf, not the one this process read: an admin may have saved since
            sync = current.config.sync.model_dump(mode="json")
            sync["marker_field_ids"] = {kind.value: ids[kind] for kind in Kind}
            return rebuild(current.config, {"sync": sync})

        self.settings = update_config(self.paths, record)
        return ids

    def ensure_url_fields(self) -> dict[Kind, int]:
        """The url fields linking back to BILLmanager, once a base URL is set: created in amoCRM
        when missing and recorded in amocrm.conf. Without a base URL none is created (a
        module that never had one sends no url field at all); ids known from before stay, so
        a cleared base URL clears the links."""
        sync = self.config.sync
        known = dict(sync.url_field_ids.as_map())
        if not sync.billmgr_url or len(known) == len(URL_KINDS):
            return known
        from ..rules.config import rebuild
        from ..settings import update_config
        from ..sync.fields import ensure_url_fields

        ids = ensure_url_fields(self.amo())

        def record(current: Settings) -> ModuleConfig:
            latest = current.config.sync.model_dump(mode="json")
            latest["url_field_ids"] = {kind.value: ids[kind] for kind in URL_KINDS}
            return rebuild(current.config, {"sync": latest})

        self.settings = update_config(self.paths, record)
        return ids

    def refresh_settings(self) -> bool:
        """Read the settings again if amocrm.conf or a presets file changed since they were read;
        True when what they hold changed. A daemon runs for weeks while the panel saves: it works
        by each save from its next tick on (between passes, never inside one). A file that no
        longer checks (an editor's half-made change) leaves the settings in use as they are,
        said once per version of the files; the panel and ``amocrm check`` say what is wrong."""
        from .. import settings
        from ..rules.errors import ConfigError

        stamp = settings.files_stamp(self.paths)
        if stamp == self.settings_stamp:
            return False
        try:
            loaded = settings.load(self.paths)
        except ConfigError as exc:
            if stamp != self._refused_stamp:
                self._refused_stamp = stamp
                log.error("the settings were changed and do not check: %s; the worker goes on by the "
                          "settings it read before until the file is fixed", exc)
            return False
        self.settings_stamp = stamp
        if loaded.source_version == self.settings.source_version:
            return False        # touched, saved unchanged, or this process's own write
        self.settings = loaded
        for client in self._clients.values():    # built with the old rate, margin and batch size
            client.close()
        self._clients.clear()
        log.info("the settings changed (amocrm.conf or presets): the worker works by them from now on")
        return True

    def reload_rules(self, config: Optional[ModuleConfig] = None) -> None:
        """After a save: ``config`` compiled with the presets in use, or all the settings read again."""
        from .. import settings
        from ..rules.mapping import RuleSet

        if config is None:
            self.settings = settings.load(self.paths)
        else:
            self.settings = settings.Settings(config, self.presets, RuleSet(config, self.presets),
                                              presets_version=self.settings.presets_version)

    def context(self) -> MappingContext:
        """What the engine maps with: the marker and url fields (made in amoCRM when missing), the
        tags the rules gave before, still the module's to take off (noted once per settings read),
        and the rules' fields and stages amoCRM no longer has (``sync/gone_fields.py``)."""
        from ..sync.gone_fields import gone_fields, gone_placements

        markers = self.ensure_marker_fields()
        return MappingContext(marker_field_ids=markers, url_field_ids=self.ensure_url_fields(),
                              default_responsible_user_id=self._responsible_user(),
                              retired_tags=self._retired_tags(), gone_field_ids=gone_fields(self.store),
                              gone_placements=gone_placements(self.store))

    def _responsible_user(self) -> Optional[int]:
        """The responsible user of what the module makes: Sync settings' one; while amoCRM has
        it deactivated, or none is chosen, the integration's own user, once a refused owner had
        it read (``sync/gone_fields.py``; amoCRM gives it what the module makes anyway)."""
        from ..sync.gone_fields import inactive_users, stand_in

        chosen = self.config.sync.responsible_user_id
        if chosen and chosen not in inactive_users(self.store):
            return chosen
        return stand_in(self.store)

    def catalog_gone(self, gone: Gone) -> MappingContext:
        """What amoCRM deleted while the engine wrote it (the engine read the catalog): the
        module's marker and link fields are made anew and their ids recorded in amocrm.conf,
        the rules' fields and stages noted as gone; the context to map with from now on
        (``sync/gone_fields.py``)."""
        from ..sync.gone_fields import note_gone_fields, note_gone_placements

        sync = self.config.sync
        markers, urls = sync.marker_field_ids.as_map(), sync.url_field_ids.as_map()
        lost_markers = [k for k in Kind if markers.get(k) in gone.fields.get(k, ())]
        lost_urls = [k for k in Kind if urls.get(k) in gone.fields.get(k, ())]
        for kind in lost_markers:
            log.warning('amoCRM no longer has the module\'s "BILLmanager ID" field %d of %s (deleted there): '
                        "made anew; the entities sent before get their marker back at the re-check that "
                        "follows", markers[kind], kind.amo_entity)
        for kind in lost_urls:
            log.warning('amoCRM no longer has the module\'s "BILLmanager" link field %d of %s '
                        "(deleted there): made anew", urls[kind], kind.amo_entity)
        ours = set(markers.values()) | set(urls.values())
        theirs = sorted({i for ids in gone.fields.values() for i in ids} - ours)
        if theirs:
            rules = [r.id for r in self.config.fields if r.field_id in theirs]
            note_gone_fields(self.store, theirs, {r.field_id for r in self.config.fields})
            log.warning("amoCRM no longer has custom field %s (deleted there), which custom field rule %s "
                        "maps: its values are not sent until the rule names another field (Custom fields; "
                        "amocrm check names it); the rest of each entity is",
                        ", ".join(map(str, theirs)), ", ".join(rules) or "(none now)")
        if gone.placements:
            rules = [r.id for r in self.config.pipelines if (r.pipeline_id, r.status_id) in gone.placements]
            note_gone_placements(self.store, gone.placements,
                                 {(r.pipeline_id, r.status_id) for r in self.config.pipelines})
            log.warning("amoCRM no longer has stage %s (deleted there), where pipeline rule %s places "
                        "deals: the rule is passed over until it names another stage (Pipelines; amocrm "
                        "check names it), and the next rule that holds, or amoCRM's default, places them",
                        ", ".join(f"{s} of pipeline {p}" for p, s in sorted(gone.placements)),
                        ", ".join(rules) or "(none now)")
        if gone.inactive_users is not None:
            self._note_inactive_users(gone.inactive_users)
        if lost_markers or lost_urls:
            self._forget_field_ids(lost_markers, lost_urls)
        self._read_catalog_again()
        return self.context()

    def _note_inactive_users(self, inactive: frozenset[int]) -> None:
        """amoCRM refused a responsible user: note which of the settings' users it has deactivated
        (the renewal tasks' too) and who stands in for the Sync settings' one."""
        from ..sync.gone_fields import note_inactive_users

        chosen = self.config.sync.responsible_user_id
        named = {int(u) for u in (chosen, *(r.responsible_user_id for r in self.config.renewals)) if u}
        current = self.amo().account().get("current_user_id")
        stand_in_id = current if isinstance(current, int) else None
        if chosen in inactive:
            log.warning("amoCRM user %d, the module's responsible user (Sync settings), is deactivated: "
                        "what the module makes goes to the integration's user %s instead, and an entity a "
                        "deactivated user owns is given over when billing changes it (amoCRM takes no change "
                        "otherwise); choose an active user in Sync settings", chosen, stand_in_id)
        note_inactive_users(self.store, inactive, named, stand_in_id)

    def _forget_field_ids(self, markers: Sequence[Kind], urls: Sequence[Kind]) -> None:
        """Set these field ids to null in the latest amocrm.conf: :meth:`context` makes them anew."""
        from ..rules.config import rebuild
        from ..settings import update_config

        def record(current: Settings) -> ModuleConfig:
            latest = current.config.sync.model_dump(mode="json")
            for kind in markers:
                latest["marker_field_ids"][kind.value] = None
            for kind in urls:
                latest["url_field_ids"][kind.value] = None
            return rebuild(current.config, {"sync": latest})

        self.settings = update_config(self.paths, record)

    def _read_catalog_again(self) -> None:
        """The status and the panel judge the rules by the catalog last read: read it now."""
        from ..errors import AmoError
        from ..service.catalog_cache import catalog

        try:
            catalog(refresh=True, app=self)
        except AmoError as exc:
            log.info("the amoCRM catalog was not read again (%s); amocrm check reads it", exc)

    def _retired_tags(self) -> dict[Kind, tuple[str, ...]]:
        from ..foundation.clock import utcnow
        from ..sync.given_tags import retired_tags

        version, day = self.settings.source_version, utcnow().date()
        if self._tags_noted[:2] != (version, day):      # a retired tag is forgotten by the day
            self._tags_noted = (version, day, retired_tags(self.store, self.rules, utcnow()))
        return self._tags_noted[2]

    def stored_context(self) -> Optional[MappingContext]:
        """:meth:`context` from amocrm.conf alone (no amoCRM call); None until every marker field is known."""
        known = self.marker_fields()
        if len(known) < len(Kind):
            return None
        from ..sync.gone_fields import gone_fields, gone_placements

        sync = self.config.sync
        return MappingContext(marker_field_ids=known, url_field_ids=dict(sync.url_field_ids.as_map()),
                              default_responsible_user_id=self._responsible_user(),
                              gone_field_ids=gone_fields(self.store),
                              gone_placements=gone_placements(self.store))

    def side_connection(self, *, read_committed: bool = False) -> SideConnection:
        """BILLmanager reader + store on a connection of their own (autocommit); the caller closes it.
        The export's queueing thread (``sync.export.Enqueuer``) runs on one, and so does each lane.

        ``read_committed``: units of work on it lock only the rows they touch, not the gaps
        between them (fewer lock waits beside the hooks' inserts)."""
        from ..billing import BillingDb
        from ..db import connect
        from ..store.store import MySqlStore

        conn = connect(self.db, autocommit=True, read_committed=read_committed)
        return SideConnection(billing=BillingDb(conn, lang=self.billing.lang, mgrctl=self.billing.mgrctl),
                              store=MySqlStore(conn, units=self.units), conn=conn)

    def lane(self) -> Lane:
        """A lane: BILLmanager reader + store on a connection of their own, where the engine
        writes one batch while others are in flight (sync/lanes.py)."""
        from ..sync.lanes import Lane

        side = self.side_connection(read_committed=True)
        return Lane(billing=side.billing, store=side.store, close=side.close)

    def lanes(self) -> Optional[Lanes]:
        """``sync.concurrency`` lanes, opened as batches need them (None: one batch at a time)."""
        size = int(self.config.sync.concurrency)
        if size <= 1:
            return None
        if self._lanes is None or self._lanes.size != size:
            from ..sync.lanes import Lanes

            if self._lanes is not None:
                self._lanes.close()
            self._lanes = Lanes(self.lane, size)
        return self._lanes

    def lease(self) -> EngineLease:
        """The engine lease of this database, on a MySQL connection of its own (store/lease.py)."""
        if self._lease is None:
            from ..db import connect
            from ..store.lease import EngineLease

            self._lease = EngineLease(lambda: connect(self.db, autocommit=True), self.command)
        return self._lease

    def engine(self, chunk_size: Optional[int] = None) -> Engine:
        from ..sync.engine import Engine

        size = chunk_size or int(self.config.sync.batch_size)
        # every pass, not only when a client is built: a daemon's client outlives an
        # authorization of the module for another account on another host
        self._check_account()
        engine = Engine(self.amo(size), self.billing, self.store, self.rules, self.context(), batch_size=size,
                        recreate_deleted=bool(self.config.sync.recreate_deleted), lanes=self.lanes(),
                        settle_after=float(self.config.sync.settle_after), lease=self.lease(),
                        match_existing=bool(self.config.sync.match_existing))
        engine.on_heartbeat = self.heartbeat
        engine.on_gone = self.catalog_gone
        engine.timeline = self.timeline()
        return engine

    def timeline(self) -> Timeline:
        """This process's stamps of the database (sync/timeline.py): one, shared by whatever sends."""
        from ..sync.timeline import Timeline, quiet_seconds

        if self._timeline is None:
            self._timeline = Timeline(self.store, self.billing, self.paths.timeline_file,
                                      unchanged_for=self.store.tables_unchanged_for,
                                      quiet=quiet_seconds(os.environ))
        return self._timeline

    def heartbeat(self) -> None:
        """Keep the engine lease's connection and registry fresh, and this host's rate share."""
        from ..hosts import publish_share

        lease = self.lease()
        if lease.held:
            lease.heartbeat()
        publish_share(self)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self._lanes is not None:
            self._lanes.close()
            self._lanes = None
        if self._lease is not None:
            self._lease.close()
            self._lease = None
        try:
            self.conn.close()
        except Exception as exc:  # noqa: BLE001 - closing a dead connection must not mask the real error
            log.debug("closing the MySQL connection failed: %r", exc)


def build(paths: Optional[HostPaths] = None, *,
          amo_factory: Optional[Callable[[int], AmoApi]] = None) -> App:
    """Connect to MySQL (credentials under ``paths``), migrate the module's tables, load the settings."""
    from .. import settings
    from ..billing import BillingDb
    from ..db import connect
    from ..dbconf import load_db_settings
    from ..mgrctl import Mgrctl
    from ..store.migrations import migrate
    from ..store.store import MySqlStore

    paths = paths or host_paths()
    db = load_db_settings(paths)
    conn = connect(db)
    try:
        migrate(conn)
        stamp = settings.files_stamp(paths)
        loaded = settings.load(paths)
    except BaseException:
        conn.close()
        raise
    units = threading.RLock()
    return App(paths=paths, db=db, conn=conn, store=MySqlStore(conn, units=units),
               billing=BillingDb(conn, mgrctl=Mgrctl.on_host(paths)),
               settings=loaded, amo_factory=amo_factory, units=units, settings_stamp=stamp)
