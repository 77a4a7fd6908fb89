-- The statements of MySqlStore, by name (loaded once by store/queries.py).
--
-- A block is "-- name: <query_name>", a one-line description, more "--" lines of notes
-- (for the reader: they are not sent to the server), then the SQL. Values are always
-- bound (%s). A {slot} is a variable part, filled only from fixed fragments or counts
-- (queries.py: marks, rows, fragment, joined, link_table), never from input.
-- Values every row of a statement shares (kind, time, reason) are bound once into the
-- session variables @amocrm_* (bind_shared) and each row binds only its own: PyMySQL
-- escapes every value in Python, and a datetime costs more to escape than a row costs
-- MySQL to insert.


-- ---------------------------------------------------------------- unit of work

-- name: bind_shared
-- Set the session variables the row templates read: kind, now, reason, created (0/1).
SET @amocrm_kind = %s, @amocrm_now = %s, @amocrm_reason = %s, @amocrm_created = %s

-- name: server_version
-- The server's version string (does it understand SKIP LOCKED?).
SELECT VERSION()


-- ---------------------------------------------------------------- queue

-- name: enqueue
-- Coalesce events into one row per (kind, billmgr_id); {rows}: enqueue_row per id.
-- A new event bumps version and makes the row due now; the row keeps its age and its
-- attempts (the backoff history), except a failed row: it is revived with a fresh age
-- and attempts 0, like retry_failed. last_error is kept.
-- The assignments run left to right and later ones see earlier results, so the columns
-- that read the old state come first (reason, attempts, age) and state comes last.
-- reason: suspend, resume and close rank 3 (the service's newest status wins among them),
-- FIELD gives open 2, prolong 1, the rest 0; the higher stays, among equals the newest
-- wins (a later edit/reconcile/export never erases a service event).
INSERT INTO amocrm_queue
    (kind, billmgr_id, reason, version, state, attempts, next_attempt_at,
     first_queued_at, updated_at, last_error)
  VALUES {rows}
  ON DUPLICATE KEY UPDATE
    reason = IF(IF(VALUES(reason) IN ('suspend', 'resume', 'close'), 3,
                   FIELD(VALUES(reason), 'prolong', 'open'))
                >= IF(reason IN ('suspend', 'resume', 'close'), 3, FIELD(reason, 'prolong', 'open')),
                VALUES(reason), reason),
    attempts = IF(state = 'failed', 0, attempts),
    first_queued_at = IF(state = 'failed', VALUES(first_queued_at), first_queued_at),
    version = version + 1,
    next_attempt_at = VALUES(next_attempt_at),
    updated_at = VALUES(updated_at),
    state = 'pending'

-- name: enqueue_row
-- One row of enqueue: only its billmgr_id is bound.
(@amocrm_kind, %s, @amocrm_reason, 1, 'pending', 0, @amocrm_now, @amocrm_now, @amocrm_now, NULL)

-- name: enqueue_absent
-- Queue rows only for entities that have none (a recheck); a row already there, pending or failed, stays as it is; {rows}: enqueue_row per id.
INSERT IGNORE INTO amocrm_queue
    (kind, billmgr_id, reason, version, state, attempts, next_attempt_at,
     first_queued_at, updated_at, last_error)
  VALUES {rows}

-- name: claim
-- Pending rows of a kind due at a time, oldest first; {after}: nothing or claim_keyset; {lock}: nothing or skip_locked.
SELECT id, billmgr_id, reason, version, attempts, first_queued_at
  FROM amocrm_queue
  WHERE state = 'pending' AND kind = %s AND next_attempt_at <= %s {after}
  ORDER BY first_queued_at, id
  LIMIT %s {lock}

-- name: claim_keyset
-- Only rows after a given one in the claim order (first_queued_at, then id).
-- A drain claims batch after batch while the one in flight is still pending: the keyset
-- skips it (and everything before it) in the index instead of reading it again.
AND (first_queued_at > %s OR (first_queued_at = %s AND id > %s))

-- name: skip_locked
-- Rows no other transaction holds (MariaDB >= 10.6, MySQL >= 8), for a claim inside a caller's transaction.
FOR UPDATE SKIP LOCKED

-- name: complete
-- Delete claimed rows whose version is unchanged; {versions}: complete_version per version, joined by OR.
DELETE FROM amocrm_queue WHERE {versions}

-- name: complete_version
-- The rows of a complete claimed at one version; {ids}: a mark per row id.
-- One "version = v AND id IN (...)" per version, not an (id, version) pair per row: a
-- batch mostly shares one version, so each row costs one bound value, and the range
-- optimizer still finds the rows by primary key (EXPLAIN: range on PRIMARY).
(version = %s AND id IN ({ids}))

-- name: complete_newer
-- Rows a complete left (a newer event came): this sync succeeded, they start with a clean slate; {ids}.
UPDATE amocrm_queue SET attempts = 0, last_error = NULL, updated_at = %s WHERE id IN ({ids})

-- name: retry
-- Count the attempt, keep the error and make a pending row due at a later time.
UPDATE amocrm_queue
  SET attempts = attempts + 1, next_attempt_at = %s, last_error = %s, updated_at = %s
  WHERE id = %s AND state = 'pending'

-- name: postpone
-- Make a pending row due at a later time without counting an attempt (nothing failed yet).
UPDATE amocrm_queue
  SET next_attempt_at = %s, last_error = %s, updated_at = %s
  WHERE id = %s AND state = 'pending'

-- name: fail
-- Dead-letter a row, unless a newer event came since it was claimed: then it stays pending with the error noted.
UPDATE amocrm_queue
  SET attempts = attempts + 1, last_error = %s, updated_at = %s,
      state = IF(version = %s, 'failed', 'pending')
  WHERE id = %s

-- name: queue_counts
-- How many rows per kind and state.
SELECT kind, state, COUNT(*) FROM amocrm_queue GROUP BY kind, state

-- name: oldest_pending
-- When the oldest pending row (due or not) was first queued.
SELECT MIN(first_queued_at) FROM amocrm_queue WHERE state = 'pending'

-- name: due_count
-- Pending rows due now, every kind (what an engine would send now).
SELECT COUNT(*) FROM amocrm_queue WHERE state = 'pending' AND next_attempt_at <= %s;

-- name: failed_ids
-- BILLmanager ids of the dead-lettered rows of one kind (the reconciler skips them).
SELECT billmgr_id FROM amocrm_queue WHERE state = 'failed' AND kind = %s;

-- name: failed_rows
-- Dead-letter rows (of a kind, or all when the kind is NULL), most recently failed first.
SELECT id, kind, billmgr_id, reason, attempts, last_error, first_queued_at, updated_at
  FROM amocrm_queue
  WHERE state = 'failed' AND (%s IS NULL OR kind = %s)
  ORDER BY updated_at DESC, id DESC
  LIMIT %s OFFSET %s

-- name: retry_failed
-- Revive dead-letter rows (of a kind, or all when NULL) as pending, due now, with a fresh age; {only_ids}: nothing or and_id_in.
UPDATE amocrm_queue
  SET state = 'pending', attempts = 0, next_attempt_at = %s, first_queued_at = %s, updated_at = %s,
      version = version + 1
  WHERE state = 'failed' AND (%s IS NULL OR kind = %s) {only_ids}

-- name: and_id_in
-- Only the queue rows with these ids; {ids}.
AND id IN ({ids})


-- ---------------------------------------------------------------- links, create intents, sync state

-- name: links
-- The amoCRM ids linked to these BILLmanager ids; {link_table}, {ids}.
SELECT billmgr_id, amocrm_id FROM {link_table} WHERE billmgr_id IN ({ids})

-- name: bound_page
-- The next BILLmanager ids with a link, ascending (keyset pagination); {link_table}.
SELECT billmgr_id FROM {link_table} WHERE billmgr_id > %s ORDER BY billmgr_id LIMIT %s

-- name: put_link
-- Insert or replace a link (billmgr_id is unique); {link_table}. One row of VALUES: executemany sends many rows in one statement.
INSERT INTO {link_table} (billmgr_id, amocrm_id) VALUES (%s, %s)
  ON DUPLICATE KEY UPDATE amocrm_id = VALUES(amocrm_id)

-- name: links_to
-- The BILLmanager ids linked to these amoCRM ids (at most one each: amocrm_id is unique); {link_table}, {ids}.
SELECT amocrm_id, billmgr_id FROM {link_table} WHERE amocrm_id IN ({ids})

-- name: duplicate_links
-- Links that share their amoCRM id with another link, by amoCRM id then BILLmanager id; {link_table}.
-- Only before the unique key on amocrm_id exists (migration step 2) can there be any.
SELECT l.amocrm_id, l.billmgr_id
  FROM {link_table} l
  JOIN (SELECT amocrm_id FROM {link_table} GROUP BY amocrm_id HAVING COUNT(*) > 1) d
    ON d.amocrm_id = l.amocrm_id
  ORDER BY l.amocrm_id, l.billmgr_id

-- name: delete_links
-- Forget the links of these BILLmanager ids; {link_table}, {ids}.
DELETE FROM {link_table} WHERE billmgr_id IN ({ids})

-- name: delete_sync_state
-- Forget the sync state (last sync, fingerprint, create intent) of these entities; {ids}.
DELETE FROM amocrm_sync_state WHERE kind = %s AND billmgr_id IN ({ids})

-- name: note_unmarks
-- The amoCRM entities of these links, before they are forgotten: their marker is to be taken
-- off (sync/unmark.py); {link_table}, {ids}. Params: kind, requested_at, then the ids.
INSERT INTO amocrm_unmark (kind, amocrm_id, billmgr_id, requested_at)
  SELECT %s, amocrm_id, billmgr_id, %s FROM {link_table} WHERE billmgr_id IN ({ids})
  ON DUPLICATE KEY UPDATE billmgr_id = VALUES(billmgr_id), requested_at = VALUES(requested_at)

-- name: unmarks
-- The next unlinked amoCRM entities of a kind whose marker is to be taken off, oldest request first.
SELECT amocrm_id, billmgr_id FROM amocrm_unmark WHERE kind = %s ORDER BY requested_at, amocrm_id LIMIT %s

-- name: any_unmark
-- Whether a marker is waiting to be taken off.
SELECT 1 FROM amocrm_unmark LIMIT 1

-- name: forget_unmarks
-- These entities' markers are off (or need not be taken off); {ids}.
DELETE FROM amocrm_unmark WHERE kind = %s AND amocrm_id IN ({ids})

-- name: begin_create
-- Record create intents; {rows}: begin_create_row per entity; @amocrm_reason: the request's token.
-- An earlier open intent keeps its (earlier) time and its token, so a marker search from it
-- covers every attempt. The token is assigned first: it reads the old create_started_at.
INSERT INTO amocrm_sync_state (kind, billmgr_id, create_started_at, create_token)
  VALUES {rows}
  ON DUPLICATE KEY UPDATE
    create_token = IF(create_started_at IS NULL, VALUES(create_token), create_token),
    create_started_at = COALESCE(create_started_at, VALUES(create_started_at))

-- name: begin_create_row
-- One row of begin_create: only its billmgr_id is bound.
(@amocrm_kind, %s, @amocrm_now, NULLIF(@amocrm_reason, ''))

-- name: intent_tokens
-- The create token of open intents of a kind; {ids}.
SELECT billmgr_id, create_token FROM amocrm_sync_state
  WHERE kind = %s AND billmgr_id IN ({ids}) AND create_started_at IS NOT NULL AND create_token IS NOT NULL

-- name: open_creates
-- Create intents of a kind that have no link yet, with their time; {link_table}; {only_ids}: nothing or and_intent_in.
SELECT s.billmgr_id, s.create_started_at
  FROM amocrm_sync_state s
  LEFT JOIN {link_table} l ON l.billmgr_id = s.billmgr_id
  WHERE s.kind = %s AND s.create_started_at IS NOT NULL AND l.id IS NULL {only_ids}

-- name: and_intent_in
-- Only the intents of these BILLmanager ids; {ids}.
AND s.billmgr_id IN ({ids})

-- name: clear_creates
-- End the create intents of these entities (the sync state row stays); {ids}.
UPDATE amocrm_sync_state SET create_started_at = NULL, create_token = NULL
  WHERE kind = %s AND billmgr_id IN ({ids})

-- name: record_synced
-- Last successful sync time and fingerprint of what was sent; {rows}: record_synced_row per entity.
-- With @amocrm_created = 1 the entities were just created and linked: their create
-- intents end in the same statement.
INSERT INTO amocrm_sync_state (kind, billmgr_id, last_sync_at, fingerprint)
  VALUES {rows}
  ON DUPLICATE KEY UPDATE
    last_sync_at = VALUES(last_sync_at),
    fingerprint = VALUES(fingerprint),
    create_token = IF(@amocrm_created, NULL, create_token),
    create_started_at = IF(@amocrm_created, NULL, create_started_at)

-- name: record_synced_row
-- One row of record_synced: its billmgr_id and fingerprint are bound.
(@amocrm_kind, %s, @amocrm_now, %s)

-- name: fingerprints
-- What was last sent for these entities (synced ones only); {ids}.
SELECT billmgr_id, fingerprint FROM amocrm_sync_state
  WHERE kind = %s AND billmgr_id IN ({ids}) AND last_sync_at IS NOT NULL


-- ---------------------------------------------------------------- service event history

-- name: record_service_events
-- The last service event of items, and when it was synced; {rows}: record_service_event_row per item.
INSERT INTO amocrm_service_event (billmgr_id, event, event_at)
  VALUES {rows}
  ON DUPLICATE KEY UPDATE event = VALUES(event), event_at = VALUES(event_at)

-- name: record_service_event_row
-- One row of record_service_events: its billmgr_id and event are bound.
(%s, %s, @amocrm_now)

-- name: service_events
-- The last service event of these items (items that never had one are absent); {ids}.
SELECT billmgr_id, event FROM amocrm_service_event WHERE billmgr_id IN ({ids})


-- ---------------------------------------------------------------- daily counts

-- name: count_daily
-- Adds to the day's counts; {rows}: count_daily_row per metric.
INSERT INTO amocrm_daily_stats (day, metric, count)
  VALUES {rows}
  ON DUPLICATE KEY UPDATE count = count + VALUES(count)

-- name: count_daily_row
-- One row of count_daily: its day, metric and count are bound.
(%s, %s, %s)

-- name: daily_counts
-- Every count from a day on, oldest first.
SELECT day, metric, count FROM amocrm_daily_stats WHERE day >= %s ORDER BY day, metric


-- ---------------------------------------------------------------- the panel's read model

-- name: link_count
-- How many entities of a kind are linked; {link_table}.
SELECT COUNT(*) FROM {link_table}

-- name: last_sync_at
-- The newest successful sync of any entity.
SELECT MAX(last_sync_at) FROM amocrm_sync_state

-- name: last_sync_at_of_kind
-- The newest successful sync of an entity of a kind.
SELECT MAX(last_sync_at) FROM amocrm_sync_state WHERE kind = %s

-- name: bindings_linked
-- The links of one kind as bindings rows (kind, billmgr_id, amocrm_id); {link_table}.
SELECT %s AS kind, billmgr_id, amocrm_id FROM {link_table}

-- name: bindings_matching
-- Linked or queued entities with their state, filtered; {linked}: bindings_linked per kind, joined by UNION ALL; {kinds}: a mark per kind.
-- The three filters are off when their first value is NULL: state; an id (BILLmanager
-- or amoCRM); a LIKE pattern on the last error.
FROM (SELECT u.kind, u.billmgr_id, MAX(u.amocrm_id) AS amocrm_id,
             FIELD(u.kind, 'contact', 'company', 'lead') AS kind_order,
             CASE MAX(q.state) WHEN 'failed' THEN 'failed' WHEN 'pending' THEN 'queued'
                  ELSE 'synced' END AS state,
             MAX(q.last_error) AS last_error, MAX(s.last_sync_at) AS last_sync_at
        FROM ({linked} UNION ALL
              SELECT kind, billmgr_id, NULL FROM amocrm_queue WHERE kind IN ({kinds})) u
        LEFT JOIN amocrm_queue q ON q.kind = u.kind AND q.billmgr_id = u.billmgr_id
        LEFT JOIN amocrm_sync_state s ON s.kind = u.kind AND s.billmgr_id = u.billmgr_id
        GROUP BY u.kind, u.billmgr_id) b
  WHERE (%s IS NULL OR b.state = %s)
    AND (%s IS NULL OR b.billmgr_id = %s OR b.amocrm_id = %s)
    AND (%s IS NULL OR b.last_error LIKE %s)

-- name: notes_per_target
-- Notes made on these entities of one kind (payment notes: contacts and leads); {ids}.
SELECT target_id, COUNT(*) FROM amocrm_payment2note
  WHERE status = 'done' AND target_kind = %s AND target_id IN ({ids}) GROUP BY target_id

-- name: tasks_per_item
-- Renewal tasks made on these services' leads (open or completed); {ids}.
SELECT item_id, COUNT(*) FROM amocrm_renewal_task
  WHERE task_id IS NOT NULL AND item_id IN ({ids}) GROUP BY item_id

-- name: bindings_count
-- How many bindings match (for paging); {matching}: bindings_matching.
SELECT COUNT(*) {matching}

-- name: bindings_page
-- One page of the matching bindings; {matching}: bindings_matching; {order}: a column of BINDING_ORDERS; {direction}: ASC or DESC.
-- Ties are broken by kind and id, so pages are stable.
SELECT b.kind, b.billmgr_id, b.amocrm_id, b.state, b.last_error, b.last_sync_at {matching}
  ORDER BY {order} {direction}, b.kind_order, b.billmgr_id
  LIMIT %s OFFSET %s


-- ---------------------------------------------------------------- export progress, cursors

-- name: export_begin
-- Start the initial export of a kind, or resume it if it never finished (then it keeps its start and position).
INSERT INTO amocrm_export_progress (kind, started_at, last_id, enqueued, finished_at)
  VALUES (%s, %s, 0, 0, NULL)
  ON DUPLICATE KEY UPDATE
    last_id = IF(finished_at IS NULL, last_id, 0),
    enqueued = IF(finished_at IS NULL, enqueued, 0),
    started_at = IF(finished_at IS NULL, started_at, VALUES(started_at)),
    finished_at = NULL

-- name: export_advance
-- Everything of a kind up to an id is queued, and so many more rows were added.
UPDATE amocrm_export_progress SET last_id = %s, enqueued = enqueued + %s WHERE kind = %s

-- name: export_finish
-- The export of a kind is complete.
UPDATE amocrm_export_progress SET finished_at = %s WHERE kind = %s

-- name: export_forget
-- The module moved to another amoCRM account: no export has reached it yet.
DELETE FROM amocrm_export_progress

-- name: export_progress
-- How far the export of a kind got.
SELECT kind, started_at, last_id, enqueued, finished_at FROM amocrm_export_progress WHERE kind = %s

-- name: tables_unchanged_for
-- [U] CREATE_TIME: a dump's restore creates each table anew (sync/timeline.py)
SELECT TIMESTAMPDIFF(MICROSECOND, MAX(create_time), NOW()) / 1000000 FROM information_schema.tables
WHERE table_schema = DATABASE()

-- name: get_cursor
-- The value of a named bookmark.
SELECT value FROM amocrm_cursor WHERE name = %s

-- name: set_cursor
-- Set a named bookmark.
INSERT INTO amocrm_cursor (name, value, updated_at) VALUES (%s, %s, %s)
  ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = VALUES(updated_at)


-- ---------------------------------------------------------------- tags given (tags.py)

-- name: given_tags
-- Every tag a rule has given to a kind, and when it left the rules (NULL: a rule gives it now).
SELECT name, retired_at FROM amocrm_given_tag WHERE kind = %s FOR UPDATE

-- name: give_tag
-- A rule gives this tag now (again, if it had been retired).
INSERT INTO amocrm_given_tag (kind, name, retired_at) VALUES (%s, %s, NULL)
  ON DUPLICATE KEY UPDATE retired_at = NULL

-- name: retire_tag
-- No rule gives this tag any more.
UPDATE amocrm_given_tag SET retired_at = %s WHERE kind = %s AND name = %s AND retired_at IS NULL


-- ---------------------------------------------------------------- engine lease (lease.py)

-- name: current_database
-- The database this connection uses: the engine lock is per database.
SELECT DATABASE();

-- name: connection_id
-- This connection's id: the token that says the engine lock is ours.
SELECT CONNECTION_ID();

-- name: engine_lock_acquire
-- Take the engine lock, waiting up to %s seconds: 1 taken, 0 timed out.
SELECT GET_LOCK(%s, %s);

-- name: engine_lock_release
-- Give the engine lock back.
SELECT RELEASE_LOCK(%s);

-- name: engine_lock_holder
-- The connection id holding the engine lock, NULL when it is free.
SELECT IS_USED_LOCK(%s);

-- name: engine_register
-- Who holds the engine lock now (one row; the lock stays the authority).
REPLACE INTO amocrm_engine (id, host, pid, command, connection_id, since, heartbeat_at)
VALUES (1, %s, %s, %s, %s, %s, %s);

-- name: engine_heartbeat
-- The holder is alive (and its lease connection too).
UPDATE amocrm_engine SET heartbeat_at = %s WHERE id = 1 AND connection_id = %s;

-- name: host_seen
-- A host's worker is alive (host, then the live window in seconds); a host not seen within
-- the window comes back as new (since = now).
-- Times are the server's: one clock for every host.
INSERT INTO amocrm_hosts (host, since, seen_at) VALUES (%s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))
ON DUPLICATE KEY UPDATE
    since = IF(seen_at < UTC_TIMESTAMP(6) - INTERVAL %s SECOND, UTC_TIMESTAMP(6), since),
    seen_at = UTC_TIMESTAMP(6);

-- name: live_hosts
-- Hosts seen within the live window, and whether this host joined less than quiet seconds ago
-- (args: host, quiet, live window).
SELECT COUNT(*), COALESCE(MAX(host = %s AND since > UTC_TIMESTAMP(6) - INTERVAL %s SECOND), 0)
FROM amocrm_hosts WHERE seen_at > UTC_TIMESTAMP(6) - INTERVAL %s SECOND;

-- name: engine_holder
-- The registered holder of the engine lock.
SELECT host, pid, command, connection_id, since, heartbeat_at FROM amocrm_engine WHERE id = 1;


-- ---------------------------------------------------------------- payment notes (issue 17.2)

-- name: add_payment_notes
-- Note rows for (payment, state, target) not noted yet; one already there stays as it is (the exactly-once key); {rows}: add_payment_note_row per target.
INSERT IGNORE INTO amocrm_payment2note (payment_id, state, target_kind, target_id, status, queued_at)
  VALUES {rows}

-- name: add_payment_note_row
-- One row of add_payment_notes: payment, state, target kind and target id are bound.
(%s, %s, %s, %s, 'pending', @amocrm_now)

-- name: pending_payment_notes
-- Pending note rows that can move, oldest first: an open intent, or a target linked now (its amoCRM id).
-- Rows whose target is not linked (yet) are left out, so they never hold back the ones behind them.
-- A row whose intent is open keeps the entity it was sent to (entity_id), whatever the link says now.
SELECT n.id, n.payment_id, n.state, n.target_kind, n.target_id, n.entity_id, n.token, n.intent_at,
       n.attempts, COALESCE(c.amocrm_id, l.amocrm_id)
  FROM amocrm_payment2note n
  LEFT JOIN amocrm_account2contact c ON n.target_kind = 'contact' AND c.billmgr_id = n.target_id
  LEFT JOIN amocrm_item2lead l ON n.target_kind = 'lead' AND l.billmgr_id = n.target_id
  WHERE n.status = 'pending' AND (n.token IS NOT NULL OR c.amocrm_id IS NOT NULL OR l.amocrm_id IS NOT NULL)
  ORDER BY n.id LIMIT %s

-- name: has_pending_notes
-- Is any note row pending? (asked after every pass: one index probe)
SELECT 1 FROM amocrm_payment2note WHERE status = 'pending' LIMIT 1

-- name: payment_note_intent
-- The intent of a note: committed before its POST; the note's text carries the token.
-- Only a row with no intent takes one (compare and set): of two processes that read the row at
-- once, one changes it (1 row) and sends; the other sees 0 rows and leaves it alone.
UPDATE amocrm_payment2note SET token = %s, entity_id = %s, intent_at = %s
  WHERE id = %s AND status = 'pending' AND token IS NULL

-- name: payment_note_done
-- The note exists in amoCRM (created, or found by its token after a lost answer).
UPDATE amocrm_payment2note SET status = 'done', note_id = %s, entity_id = %s, noted_at = %s, last_error = NULL
  WHERE id = %s

-- name: payment_note_retry
-- A note that could not be made now: forget the intent (its absence was settled or the request never left) and count the attempt.
UPDATE amocrm_payment2note SET token = NULL, intent_at = NULL, attempts = attempts + 1, last_error = %s
  WHERE id = %s

-- name: payment_note_failed
-- A note amoCRM refused (400), with its words: kept as failed until retried.
UPDATE amocrm_payment2note SET status = 'failed', token = NULL, intent_at = NULL, attempts = attempts + 1,
    last_error = %s WHERE id = %s

-- name: payment_note_counts
-- Note rows per status; pending rows whose contact or lead is not in amoCRM (not synced yet, or
-- left out by the sync conditions) count as 'unlinked': they wait for it, nothing is wrong.
SELECT CASE WHEN n.status = 'pending' AND n.token IS NULL AND c.amocrm_id IS NULL AND l.amocrm_id IS NULL
            THEN 'unlinked' ELSE n.status END, COUNT(*)
  FROM amocrm_payment2note n
  LEFT JOIN amocrm_account2contact c ON n.target_kind = 'contact' AND c.billmgr_id = n.target_id
  LEFT JOIN amocrm_item2lead l ON n.target_kind = 'lead' AND l.billmgr_id = n.target_id
  GROUP BY 1

-- name: failed_payment_notes
-- Failed note rows, newest first, for amocrm failed.
SELECT payment_id, state, target_kind, target_id, attempts, last_error FROM amocrm_payment2note
  WHERE status = 'failed' ORDER BY id DESC LIMIT %s

-- name: retry_failed_payment_notes
-- Failed note rows become pending again.
UPDATE amocrm_payment2note SET status = 'pending', attempts = 0 WHERE status = 'failed'


-- ---------------------------------------------------------------- renewal tasks (issue 17.3)

-- name: add_renewal_tasks
-- Task rows for (service, expiry date) that have none; one already there stays (the exactly-once key); {rows}: add_renewal_task_row per service.
INSERT IGNORE INTO amocrm_renewal_task (item_id, expiredate, rule_id, status, due_at, created_at)
  VALUES {rows}

-- name: add_renewal_task_row
-- One row of add_renewal_tasks: item, expiredate, rule id and the task's due time are bound.
(%s, %s, %s, 'pending', %s, @amocrm_now)

-- name: pending_renewal_tasks
-- Pending task rows that can move, oldest first: an open intent, or a service linked to a lead now.
SELECT t.id, t.item_id, t.expiredate, t.rule_id, t.lead_id, t.token, t.intent_at, t.due_at, t.attempts,
       l.amocrm_id
  FROM amocrm_renewal_task t LEFT JOIN amocrm_item2lead l ON l.billmgr_id = t.item_id
  WHERE t.status = 'pending' AND (t.token IS NOT NULL OR l.amocrm_id IS NOT NULL)
  ORDER BY t.id LIMIT %s

-- name: renewal_task_intent
-- The intent of a task: committed before its POST; the task's text carries the token.
-- Compare and set, as payment_note_intent: only the process that changed the row sends.
UPDATE amocrm_renewal_task SET token = %s, lead_id = %s, intent_at = %s
  WHERE id = %s AND status = 'pending' AND token IS NULL

-- name: renewal_task_open
-- The task exists in amoCRM (created, or found by its token after a lost answer).
UPDATE amocrm_renewal_task SET status = 'open', task_id = %s, lead_id = %s, last_error = NULL WHERE id = %s

-- name: renewal_task_retry
-- A task that could not be made now: forget the intent and count the attempt.
UPDATE amocrm_renewal_task SET token = NULL, intent_at = NULL, attempts = attempts + 1, last_error = %s
  WHERE id = %s

-- name: renewal_task_failed
-- A task amoCRM refused (400), with its words: kept as failed until retried.
UPDATE amocrm_renewal_task SET status = 'failed', token = NULL, intent_at = NULL, attempts = attempts + 1,
    last_error = %s WHERE id = %s

-- name: renewal_task_completed
-- The task was completed in amoCRM (or never made: a pending row whose service moved on), with why.
UPDATE amocrm_renewal_task SET status = 'completed', done_at = %s, last_error = %s WHERE id = %s

-- name: live_renewal_tasks
-- Open and pending task rows after an id (keyset pages): the ones the completion check looks at.
SELECT id, item_id, expiredate, status, task_id, token FROM amocrm_renewal_task
  WHERE status IN ('open', 'pending') AND id > %s ORDER BY id LIMIT %s

-- name: renewal_task_counts
-- Task rows per status.
SELECT status, COUNT(*) FROM amocrm_renewal_task GROUP BY status

-- name: failed_renewal_tasks
-- Failed task rows, newest first, for amocrm failed.
SELECT item_id, expiredate, rule_id, attempts, last_error FROM amocrm_renewal_task
  WHERE status = 'failed' ORDER BY id DESC LIMIT %s

-- name: retry_failed_renewal_tasks
-- Failed task rows become pending again.
UPDATE amocrm_renewal_task SET status = 'pending', attempts = 0 WHERE status = 'failed'
