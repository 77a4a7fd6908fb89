"""What the module's tables are: the numbered migration steps and the list of tables it owns.

``migrations.py`` runs these steps; the installer drops exactly ``MODULE_TABLES``.
Every step is safe to run twice (``IF NOT EXISTS``, ``AddColumn``), because MySQL commits
DDL implicitly: a step interrupted half-way is simply run again. Never edit a released
step: add a new one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Union

from ..foundation.clock import to_db, utcnow

log = logging.getLogger("billmgr_amocrm.store.migrations")

TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"


def _link_table(name: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {name} (
        id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        billmgr_id INT NOT NULL UNIQUE,
        amocrm_id BIGINT NOT NULL,
        KEY ix_{name}_amocrm (amocrm_id)
    ) {TABLE_OPTIONS}"""


@dataclass(frozen=True)
class AddColumn:
    """``ALTER TABLE ... ADD COLUMN`` run only when the column is missing (MySQL 8 has no
    ``ADD COLUMN IF NOT EXISTS``), so the step stays safe to run twice."""

    table: str
    column: str
    definition: str

    def statement(self) -> str:
        return f"ALTER TABLE {self.table} ADD COLUMN {self.column} {self.definition}"



def _one_link_per_amocrm_id(cur: Any) -> None:
    """Step 2: ``UNIQUE(amocrm_id)`` in the link tables, so one amoCRM entity is never linked to
    two BILLmanager entities.

    Existing duplicates are resolved first, deterministically and without amoCRM (a
    migration cannot call it): the link of the lowest BILLmanager id stays, the others are
    dropped, and each is logged. Both sides are queued for a full push: the kept one's PATCH
    writes its own marker into the shared entity, the dropped ones are created afresh, so
    amoCRM ends with one entity per marker. Safe to run twice.
    """
    from ..domain import Kind
    from .queries import link_table, marks, rows, sql

    for kind in Kind:
        table = link_table(kind)
        cur.execute(sql("duplicate_links", link_table=table))
        shared: dict[int, list[int]] = {}
        for amocrm_id, billmgr_id in cur.fetchall():
            shared.setdefault(int(amocrm_id), []).append(int(billmgr_id))
        dropped: list[int] = []
        for amocrm_id, owners in shared.items():
            kept, others = owners[0], owners[1:]
            log.warning("%s: amoCRM %s %d was linked to %s %s; kept the link of %d, dropped %s (queued: "
                        "re-created at the next sync; the kept one's push writes its own marker)",
                        table, kind.amo_entity, amocrm_id, kind.value, ", ".join(map(str, owners)), kept,
                        ", ".join(map(str, others)))
            dropped += others
        if dropped:
            cur.execute(sql("delete_links", link_table=table, ids=marks(len(dropped))), dropped)
            queued = sorted({b for owners in shared.values() for b in owners})
            cur.execute(sql("bind_shared"), (kind.value, to_db(utcnow()), "resync", 0))
            cur.execute(sql("enqueue", rows=rows("enqueue_row", len(queued))), queued)
        if not _has_index(cur, table, f"uq_{table}_amocrm"):
            cur.execute(f"ALTER TABLE {table} ADD UNIQUE KEY uq_{table}_amocrm (amocrm_id)")
        if _has_index(cur, table, f"ix_{table}_amocrm"):
            cur.execute(f"ALTER TABLE {table} DROP INDEX ix_{table}_amocrm")   # the unique key covers it


def _has_index(cur: Any, table: str, index: str) -> bool:
    cur.execute("SELECT COUNT(*) FROM information_schema.statistics "
                "WHERE table_schema = DATABASE() AND table_name = %s AND index_name = %s", (table, index))
    return bool(cur.fetchone()[0])


# A step is SQL text, or a function of a cursor for what SQL alone cannot say (it must be
# just as safe to run twice).
Statement = Union[str, AddColumn, Callable[[Any], None]]

# version -> statements. Never edit a released step: add a new one.
STEPS: tuple[tuple[int, tuple[Statement, ...]], ...] = (
    (1, (
        _link_table("amocrm_account2contact"),
        _link_table("amocrm_profile2company"),
        _link_table("amocrm_item2lead"),
        # One row per entity waiting to be synced; events for the same entity coalesce
        # into it (version counts them). state failed = dead letter, kept until retried.
        f"""CREATE TABLE IF NOT EXISTS amocrm_queue (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            kind VARCHAR(16) NOT NULL,
            billmgr_id INT NOT NULL,
            reason VARCHAR(16) NOT NULL,
            version INT NOT NULL DEFAULT 1,
            state ENUM('pending','failed') NOT NULL DEFAULT 'pending',
            attempts INT NOT NULL DEFAULT 0,
            next_attempt_at DATETIME(6) NOT NULL,
            first_queued_at DATETIME(6) NOT NULL,
            updated_at DATETIME(6) NOT NULL,
            last_error TEXT NULL,
            UNIQUE KEY uq_amocrm_queue_entity (kind, billmgr_id),
            KEY ix_amocrm_queue_due (state, kind, next_attempt_at),
            KEY ix_amocrm_queue_age (state, first_queued_at)
        ) {TABLE_OPTIONS}""",
        # Per entity: last successful sync, what was sent, and the create intent of the
        # exactly-once protocol (set and committed before the POST, cleared by the link).
        f"""CREATE TABLE IF NOT EXISTS amocrm_sync_state (
            kind VARCHAR(16) NOT NULL,
            billmgr_id INT NOT NULL,
            last_sync_at DATETIME(6) NULL,
            fingerprint VARCHAR(128) NOT NULL DEFAULT '',
            create_started_at DATETIME(6) NULL,
            PRIMARY KEY (kind, billmgr_id),
            KEY ix_amocrm_sync_state_create (kind, create_started_at),
            KEY ix_amocrm_sync_state_last (last_sync_at)
        ) {TABLE_OPTIONS}""",
        # Initial export: how far the enqueueing of each kind got, so it resumes.
        f"""CREATE TABLE IF NOT EXISTS amocrm_export_progress (
            kind VARCHAR(16) NOT NULL PRIMARY KEY,
            started_at DATETIME(6) NOT NULL,
            last_id INT NOT NULL DEFAULT 0,
            enqueued INT NOT NULL DEFAULT 0,
            finished_at DATETIME(6) NULL
        ) {TABLE_OPTIONS}""",
        # Small named bookmarks (reconciler's last run, and the like).
        f"""CREATE TABLE IF NOT EXISTS amocrm_cursor (
            name VARCHAR(64) NOT NULL PRIMARY KEY,
            value VARCHAR(255) NOT NULL,
            updated_at DATETIME(6) NOT NULL
        ) {TABLE_OPTIONS}""",
    )),
    (2, (
        # Who holds the engine lease (a MySQL named lock, the authority): one row.
        f"""CREATE TABLE IF NOT EXISTS amocrm_engine (
            id TINYINT NOT NULL PRIMARY KEY,
            host VARCHAR(255) NOT NULL,
            pid INT NOT NULL,
            command VARCHAR(64) NOT NULL,
            connection_id BIGINT NOT NULL,
            since DATETIME(6) NOT NULL,
            heartbeat_at DATETIME(6) NOT NULL
        ) {TABLE_OPTIONS}""",
        # The hosts whose workers use this database, for sharing amoCRM's rate between them.
        f"""CREATE TABLE IF NOT EXISTS amocrm_hosts (
            host VARCHAR(255) NOT NULL PRIMARY KEY,
            since DATETIME(6) NOT NULL,
            seen_at DATETIME(6) NOT NULL
        ) {TABLE_OPTIONS}""",
    )),
    (3, (
        # The token of the create request an intent belongs to: the created entities carry it
        # in their marker, so a lost answer is settled by one search (sync/settle.py).
        AddColumn("amocrm_sync_state", "create_token", "VARCHAR(32) NULL AFTER create_started_at"),
    )),
    (4, (_one_link_per_amocrm_id,)),
    (5, (
        # The last service event of each item (issue 15): a recheck, a resync or an export
        # gives rules keyed on the event the answer the event gave. The engine writes it
        # when it syncs the event's row; new events (suspend, resume, close) are new values.
        f"""CREATE TABLE IF NOT EXISTS amocrm_service_event (
            billmgr_id INT NOT NULL PRIMARY KEY,
            event VARCHAR(16) NOT NULL,
            event_at DATETIME(6) NOT NULL
        ) {TABLE_OPTIONS}""",
    )),
    (6, (
        # Payment notes (issue 17.2): one row per (payment, state, target), the target being
        # the client's contact or one of the payment's services' leads. The unique key is what
        # makes a note happen once per payment state on each entity, whichever path (event,
        # reconciler) found it. token + intent_at are the intent, committed before the POST;
        # the note's text carries bmsync-<token>, so a lost answer is settled by reading the
        # entity's notes (sync/notes.py). note_id set = done.
        f"""CREATE TABLE IF NOT EXISTS amocrm_payment2note (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            payment_id INT NOT NULL,
            state VARCHAR(16) NOT NULL,
            target_kind VARCHAR(16) NOT NULL,
            target_id INT NOT NULL,
            status ENUM('pending','done','failed') NOT NULL DEFAULT 'pending',
            entity_id BIGINT NULL,
            note_id BIGINT NULL,
            token VARCHAR(32) NULL,
            intent_at DATETIME(6) NULL,
            queued_at DATETIME(6) NOT NULL,
            noted_at DATETIME(6) NULL,
            attempts INT NOT NULL DEFAULT 0,
            last_error TEXT NULL,
            UNIQUE KEY uq_amocrm_payment2note (payment_id, state, target_kind, target_id),
            KEY ix_amocrm_payment2note_status (status, queued_at)
        ) {TABLE_OPTIONS}""",
    )),
    (7, (
        # Renewal tasks (issue 17.3): one task per (service, expiry date). Same intent/settle
        # protocol as the notes (token in the task text); status open until the service is
        # prolonged or closed, then the task is completed in amoCRM and the row says so.
        f"""CREATE TABLE IF NOT EXISTS amocrm_renewal_task (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            item_id INT NOT NULL,
            expiredate DATE NOT NULL,
            rule_id VARCHAR(64) NOT NULL,
            status ENUM('pending','open','completed','failed') NOT NULL DEFAULT 'pending',
            lead_id BIGINT NULL,
            task_id BIGINT NULL,
            token VARCHAR(32) NULL,
            intent_at DATETIME(6) NULL,
            due_at DATETIME(6) NOT NULL,
            created_at DATETIME(6) NOT NULL,
            done_at DATETIME(6) NULL,
            attempts INT NOT NULL DEFAULT 0,
            last_error TEXT NULL,
            UNIQUE KEY uq_amocrm_renewal_task (item_id, expiredate),
            KEY ix_amocrm_renewal_task_status (status, item_id)
        ) {TABLE_OPTIONS}""",
    )),
    # Step 8: what the module did each day (the panel's 30-day report and the status view):
    # one row per day and metric, counted up where the work is done.
    (8, (
        f"""CREATE TABLE IF NOT EXISTS amocrm_daily_stats (
            day DATE NOT NULL,
            metric VARCHAR(16) NOT NULL,
            count INT UNSIGNED NOT NULL,
            PRIMARY KEY (day, metric)
        ) {TABLE_OPTIONS}""",
    )),
    # Step 9: every tag a tag rule has given (sync/given_tags.py): a rule deleted or renamed
    # leaves its tag on entities, and it stays the module's to take off (retired_at: when it
    # left the rules) rather than a tag people added by hand.
    (9, (
        f"""CREATE TABLE IF NOT EXISTS amocrm_given_tag (
            kind VARCHAR(16) NOT NULL,
            name VARCHAR(255) NOT NULL,
            retired_at DATETIME(6) NULL,
            PRIMARY KEY (kind, name)
        ) {TABLE_OPTIONS}""",
    )),
    # Step 10: the amoCRM entities an admin unlinked (amocrm unlink, the panel's Unlink), whose
    # marker the next pass takes off (sync/unmark.py): billmgr_id is the billing entity the
    # marker named, so a marker that names another record by then is left alone.
    (10, (
        f"""CREATE TABLE IF NOT EXISTS amocrm_unmark (
            kind VARCHAR(16) NOT NULL,
            amocrm_id BIGINT UNSIGNED NOT NULL,
            billmgr_id BIGINT UNSIGNED NOT NULL,
            requested_at DATETIME(6) NOT NULL,
            PRIMARY KEY (kind, amocrm_id)
        ) {TABLE_OPTIONS}""",
    )),
)

LATEST_VERSION = STEPS[-1][0]

# Every table the module owns, for the uninstaller (--drop-data).
MODULE_TABLES = (
    "amocrm_account2contact", "amocrm_profile2company", "amocrm_item2lead",
    "amocrm_queue", "amocrm_sync_state", "amocrm_export_progress", "amocrm_cursor",
    "amocrm_engine", "amocrm_hosts", "amocrm_service_event",
    "amocrm_payment2note", "amocrm_renewal_task", "amocrm_daily_stats", "amocrm_given_tag",
    "amocrm_unmark", "amocrm_schema_version",
)
