"""``AmoClient``: the amoCRM REST v4 client the worker and the panel use (implements ``ports.AmoApi``).

Construction (no network): ``bootstrap.build_amo_client(paths, rate=..., chunk_size=...)``
builds the parts from the host's files and passes them in::

    AmoClient(transport, credentials, state, chunk_size=50)

``transport`` (rate limiter, stop gate, timeouts, retries) talks to one account;
``credentials`` hand out its access tokens; ``state`` is the host's shared stop /
re-authorize state.

Batch writes and a lost answer: a 504, timeout or reset on a POST/PATCH raises
:class:`AmbiguousWriteError` at once (nothing is resent). When the cause was a
504 or timeout the client halves ``chunk_size`` first, so the write the core
retries after settling goes out in smaller chunks; ``next_chunk_size`` on the
exception tells the new size, never below an eighth of the configured size (a
504 on a small write is noise, not weight). After 5 clean chunks it doubles back up
to the configured size: under a steady rate of transient faults a slower recovery
let the chunk sink to 1 and throughput with it (proof scenario 1 at full scale).
Items not in ``ids``/``rejected``/``missing`` of the exception's ``outcome`` and not
in its ``request_ids`` were never sent.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ..errors import AmbiguousWriteError, FixData, ItemIssue, Reauthorize
from ..markers import SYNC_TAG_PREFIX, MarkedEntity, MarkedPage, MarkerSearch, marker_identity
from ..ports import BatchOutcome
from .batch import (
    DEFAULT_CHUNK,
    MAX_CHUNK,
    BatchProgress,
    JsonDict,
    accepted_ids,
    attribute_issues,
    check_entity,
    check_items,
    chunks,
    describe,
    owner_refused,
    unknown_field_ids,
)
from .circuit import ClientState
from .credentials import DEFAULT_KEEP_ALIVE_DAYS, Credentials
from .models import CustomField, Entity, ListPage, Pipeline
from .relations import refusal, relate
from .transport import Params, Reply, Transport, error_for

log = logging.getLogger("billmgr_amocrm.amocrm")

GROW_AFTER = 5
MAX_PAGES = 10_000


class AmoClient:
    """amoCRM REST v4 for one account, shared-safe across the host's processes."""

    def __init__(self, transport: Transport, credentials: Credentials, state: ClientState, *,
                 chunk_size: int = DEFAULT_CHUNK) -> None:
        if not 1 <= chunk_size <= MAX_CHUNK:
            raise ValueError(f"chunk_size must be 1..{MAX_CHUNK}, got {chunk_size}")
        self.transport = transport
        self.credentials = credentials
        self.state = state
        self.max_chunk_size = chunk_size
        self.chunk_size = chunk_size
        self._clean_chunks = 0

    def close(self) -> None:
        self.transport.session.close()

    def keep_alive(self, max_age_days: float = DEFAULT_KEEP_ALIVE_DAYS) -> bool:
        """Rotate tokens when the refresh token is older than ``max_age_days`` (the worker calls this)."""
        return self.credentials.keep_alive(max_age_days)

    # ------------------------------------------------------------------ requests
    def request(self, method: str, path: str, *, params: Params = None, body: Any = None) -> Reply:
        """Authorized request: refresh ahead of expiry; after a 401 refresh once and resend once."""
        token = self.credentials.access_token()
        reply = self.transport.send(method, path, params=params, json_body=body, token=token)
        if reply.status != 401:
            return reply
        token = self.credentials.after_401(token)
        # a 401 wrote nothing, so resending even a write is safe
        reply = self.transport.send(method, path, params=params, json_body=body, token=token)
        if reply.status == 401:
            error = error_for(reply, Reauthorize, code="token_rejected")
            self.state.record_reauth(error.message, error.code)
            raise error
        return reply

    def _read(self, path: str, params: Params = None) -> Optional[Any]:
        """GET: parsed JSON, or None for 204 (nothing there)."""
        reply = self.request("GET", path, params=params)
        if reply.status == 204:
            return None
        if reply.status >= 300:
            raise error_for(reply, FixData, code="read_refused",
                            params={"path": path, "status": reply.status})
        return reply.json()

    def pages(self, path: str, key: str, params: Sequence[Tuple[str, Any]] = (),
              limit: int = 250) -> Iterator[List[JsonDict]]:
        """Every page of a list until ``_links.next`` disappears (or 204)."""
        for page in range(1, MAX_PAGES + 1):
            data = self._read(path, [*params, ("page", page), ("limit", limit)])
            if not isinstance(data, dict):
                return
            listing = ListPage.model_validate(data)
            rows = listing.items(key)
            if rows:
                yield rows
            if not rows or not listing.has_next:
                return
        raise FixData(code="too_many_pages", params={"path": path, "pages": MAX_PAGES})

    # ------------------------------------------------------------------ AmoApi: writes
    def create(self, entity: str, items: Sequence[JsonDict]) -> BatchOutcome:
        return self._write_batch("POST", entity, items)

    def update(self, entity: str, items: Sequence[JsonDict]) -> BatchOutcome:
        return self._write_batch("PATCH", entity, items)

    def _write_batch(self, method: str, entity: str, items: Sequence[JsonDict]) -> BatchOutcome:
        check_entity(entity)
        check_items(method, items)
        done = BatchProgress()
        for chunk in chunks(items, self.chunk_size):
            try:
                self._write_chunk(method, entity, chunk, done)
            except AmbiguousWriteError as exc:
                if exc.status == 504 or exc.cause == "timeout":
                    self._shrink()
                raise AmbiguousWriteError(exc.message, code=exc.code, params=exc.params,
                                          request_ids=exc.request_ids, outcome=done.outcome(),
                                          next_chunk_size=self.chunk_size, cause=exc.cause,
                                          method=exc.method, path=exc.path,
                                          status=exc.status, request_id=exc.request_id,
                                          detail=exc.detail) from None
            self._grow()
        return done.outcome()

    def _write_chunk(self, method: str, entity: str, chunk: List[JsonDict], done: BatchProgress) -> None:
        by_id = method == "PATCH"
        pending = list(chunk)
        while pending:
            try:
                reply = self.request(method, f"/api/v4/{entity}", body=pending)
            except AmbiguousWriteError as exc:
                exc.request_ids = [str(i["request_id"]) for i in pending]
                raise
            if reply.status < 300:
                self._settle_accepted(entity, pending, reply, done, by_id=by_id)
                return
            if reply.status != 400:
                raise error_for(reply, FixData, code="write_refused",
                                params={"method": method, "entity": entity, "status": reply.status})
            found, complete = attribute_issues(reply.problem(), pending, by_id=by_id)
            if not complete:
                self._bisect(method, entity, pending, reply, done)
                return
            self._settle_refused(entity, pending, found, done, by_id=by_id)
            pending = [i for i in pending if i["request_id"] not in found]

    def _bisect(self, method: str, entity: str, pending: List[JsonDict], reply: Reply,
                done: BatchProgress) -> None:
        """A 400 that names no item: split until the culprit stands alone (a 400 writes nothing)."""
        if len(pending) == 1:
            rid = str(pending[0]["request_id"])
            issue = ItemIssue(rid, "", str(reply.status), reply.summary() or "refused")
            self._settle_refused(entity, pending, {rid: [issue]}, done, by_id=method == "PATCH")
            return
        half = len(pending) // 2
        for part in (pending[:half], pending[half:]):
            self._write_chunk(method, entity, part, done)

    def _settle_accepted(self, entity: str, pending: List[JsonDict], reply: Reply, done: BatchProgress, *,
                         by_id: bool) -> None:
        got = accepted_ids(entity, pending, reply.json(), by_id=by_id)
        done.ids.update(got)
        unanswered = [i for i in pending if i["request_id"] not in got]
        if not unanswered:
            return
        if not by_id:
            raise AmbiguousWriteError(
                code="ids_missing", params={"entity": entity, "count": len(unanswered)},
                request_ids=[i["request_id"] for i in unanswered], **reply.where())
        existing = self.get(entity, [i["id"] for i in unanswered])
        for item in unanswered:
            if item["id"] in existing:
                done.ids[item["request_id"]] = item["id"]
            else:
                done.missing.append(item["request_id"])

    def _settle_refused(self, entity: str, pending: List[JsonDict], found: Dict[str, List[ItemIssue]],
                        done: BatchProgress, *, by_id: bool) -> None:
        refused = [i for i in pending if i["request_id"] in found]
        existing = self.get(entity, [i["id"] for i in refused]) if by_id else {}
        for item in refused:
            rid = item["request_id"]
            if by_id and item["id"] not in existing:
                done.missing.append(rid)
                log.info("amoCRM %s %s (request %s) no longer exists", entity, item["id"], rid)
            else:
                done.rejected[rid] = describe(entity, found[rid])
                unknown = unknown_field_ids(item, found[rid])
                if unknown:
                    done.unknown_fields[rid] = unknown
                if owner_refused(found[rid]):
                    done.owner_refused.append(rid)
                log.warning("%s", done.rejected[rid])

    def _shrink(self) -> None:
        self.chunk_size = max(1, self.max_chunk_size // 8, self.chunk_size // 2)
        self._clean_chunks = 0
        log.warning("amoCRM write too heavy; chunk size now %d", self.chunk_size)

    def _grow(self) -> None:
        if self.chunk_size >= self.max_chunk_size:
            return
        self._clean_chunks += 1
        if self._clean_chunks >= GROW_AFTER:
            self.chunk_size = min(self.max_chunk_size, self.chunk_size * 2)
            self._clean_chunks = 0

    # ------------------------------------------------------------------ AmoApi: reads
    def get(self, entity: str, ids: Sequence[int], with_: Sequence[str] = ()) -> Dict[int, JsonDict]:
        check_entity(entity)
        out: Dict[int, JsonDict] = {}
        for part in chunks(sorted(set(ids)), 50):
            params: List[Tuple[str, Any]] = [("filter[id][]", i) for i in part]
            if with_:
                params.append(("with", ",".join(with_)))
            for rows in self.pages(f"/api/v4/{entity}", entity, params):
                for row in rows:
                    if isinstance(row.get("id"), int) and row["id"] in part and not row.get("is_deleted"):
                        out[row["id"]] = row
        return out

    def find_by_marker(self, entity: str, marker_field_id: int, markers: Sequence[str], *,
                       token: str = "", created_since: Optional[int] = None,
                       max_pages: int = 4) -> MarkerSearch:
        check_entity(entity)
        wanted = set(markers)
        found: Dict[str, int] = {}
        last_created: Optional[int] = None

        def consider(rows: List[JsonDict], every: bool = False) -> None:
            nonlocal last_created
            for row in rows:
                ent = Entity.model_validate(row)
                if isinstance(row.get("created_at"), int):
                    last_created = int(row["created_at"])
                for value in ent.field_values(marker_field_id):
                    marker = marker_identity(value)
                    if (every or marker in wanted) and (marker not in found or ent.id < found[marker]):
                        if marker in found:
                            log.warning("amoCRM has two %s with marker %s: %s and %s; using the older",
                                        entity, marker, found[marker], ent.id)
                        found[marker] = ent.id

        if token:
            # everything carrying the token is one create request's: all of it is reported
            for rows in self.pages(f"/api/v4/{entity}", entity, [("query", SYNC_TAG_PREFIX + token)]):
                consider(rows, every=True)
            if wanted <= set(found) or created_since is None:
                return MarkerSearch(found, complete=wanted <= set(found))
        if created_since is None:
            return MarkerSearch(found, complete=False)
        params = [("filter[created_at][from]", int(created_since)), ("order[id]", "asc")]
        pages = self.pages(f"/api/v4/{entity}", entity, params)
        for seen, rows in enumerate(pages, start=1):
            consider(rows)
            if wanted <= set(found):
                return MarkerSearch(found, complete=True)
            if seen >= max_pages:
                # stopped at the budget: the next call goes on from the last creation time seen
                # (entities of that same second are read again; that is all)
                return MarkerSearch(found, complete=False, resume_from=last_created)
        return MarkerSearch(found, complete=True)

    def markers_of(self, entity: str, marker_field_id: int, ids: Sequence[int]) -> Dict[int, str]:
        """amoCRM id -> the marker its marker field holds now ("" for none), for the ids amoCRM
        still holds (a GET per 50)."""
        return {amocrm_id: next((marker_identity(v) for v in Entity.model_validate(row).field_values(
                    marker_field_id)), "")
                for amocrm_id, row in self.get(entity, ids).items()}

    def marked_since(self, entity: str, marker_field_id: int, created_since: int = 0) -> Iterator[MarkedPage]:
        """Every entity created since ``created_since`` (unix time) that carries a marker, a page
        at a time in id order (the list, not the search: its index lags; ``sync/adopt.py``)."""
        check_entity(entity)
        params = [("filter[created_at][from]", int(created_since)), ("order[id]", "asc")]
        if entity != "contacts":
            params.append(("with", "contacts"))
        for rows in self.pages(f"/api/v4/{entity}", entity, params):
            marked: List[MarkedEntity] = []
            unmarked: List[MarkedEntity] = []
            last_created = created_since
            for row in rows:
                ent = Entity.model_validate(row)
                if isinstance(row.get("created_at"), int):
                    last_created = max(last_created, int(row["created_at"]))
                markers = ent.field_values(marker_field_id)
                if not markers and entity != "contacts":
                    continue   # only a contact without a marker is of use (people's: sync/match.py)
                found = MarkedEntity(
                    marker_identity(markers[0]) if markers else "", ent.id, ent.name or "",
                    tuple(ent.coded_values("EMAIL")), tuple(ent.coded_values("PHONE")),
                    tuple(ent.embedded_ids("contacts")))
                (marked if markers else unmarked).append(found)
            yield MarkedPage(marked, last_created, unmarked)

    def custom_fields(self, entity: str) -> List[JsonDict]:
        check_entity(entity)
        path = f"/api/v4/{entity}/custom_fields"
        rows = [row for page in self.pages(path, "custom_fields", limit=50) for row in page]
        for row in rows:
            CustomField.model_validate(row)  # fail loudly on a shape we do not understand
        return rows

    def create_custom_fields(self, entity: str, fields: Sequence[JsonDict]) -> List[JsonDict]:
        return self._write_fields("POST", entity, fields)

    def update_custom_fields(self, entity: str, fields: Sequence[JsonDict]) -> List[JsonDict]:
        return self._write_fields("PATCH", entity, fields)

    def _write_fields(self, method: str, entity: str, fields: Sequence[JsonDict]) -> List[JsonDict]:
        check_entity(entity)
        reply = self.request(method, f"/api/v4/{entity}/custom_fields", body=list(fields))
        if reply.status >= 300:
            raise refusal(reply, "fields_refused" if method == "POST" else "fields_change_refused", entity)
        return ListPage.model_validate(reply.json() or {}).items("custom_fields")

    def pipelines(self) -> List[JsonDict]:
        data = self._read("/api/v4/leads/pipelines")
        rows = ListPage.model_validate(data or {}).items("pipelines")
        for row in rows:
            Pipeline.model_validate(row)
        return rows

    def link(self, entity: str, links: Sequence[JsonDict]) -> Dict[int, str]:
        return relate(self, "link", entity, links)

    def unlink(self, entity: str, links: Sequence[JsonDict]) -> Dict[int, str]:
        return relate(self, "unlink", entity, links)

    def account(self) -> JsonDict:
        data = self._read("/api/v4/account")
        if not isinstance(data, dict):
            raise FixData(code="no_account")
        return data

    def users(self) -> List[JsonDict]:
        return [row for rows in self.pages("/api/v4/users", "users") for row in rows]

