"""Notes and tasks over the amoCRM client (implements ``ports.activities.ActivityApi``).

One item per request: payments and renewals come a few at a time, and one item per request
keeps a lost answer about one note or task, so the settle looks for one token. A POST whose
answer is lost raises ``AmbiguousWriteError`` from the transport (nothing is resent); a 400
raises ``FixData`` with amoCRM's words about the item. Reads go through the client's pages,
so they share its rate limit, token handling and retries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence, Tuple

from ..errors import AmbiguousWriteError, FixData
from .batch import MAX_CHUNK, JsonDict, attribute_issues
from .transport import Reply, error_for

if TYPE_CHECKING:
    from ..ports.activities import ActivityApi
    from .api import AmoClient

NOTE_ENTITIES = ("contacts", "leads")


class AmoActivities:
    def __init__(self, client: AmoClient) -> None:
        self.client = client

    # ------------------------------------------------------------------ notes
    def add_note(self, entity: str, entity_id: int, text: str) -> int:
        _check(entity)
        body = [{"entity_id": int(entity_id), "note_type": "common", "params": {"text": text},
                 "request_id": "0"}]
        return self._created(self.client.request("POST", f"/api/v4/{entity}/notes", body=body),
                             f"{entity}/notes", "notes")

    def find_note(self, entity: str, entity_id: int, needle: str, since: int) -> Optional[int]:
        _check(entity)
        params = [("filter[updated_at][from]", int(since)), ("order[id]", "asc")]
        for rows in self.client.pages(f"/api/v4/{entity}/{int(entity_id)}/notes", "notes", params):
            for row in rows:
                if needle in str((row.get("params") or {}).get("text") or ""):
                    return int(row["id"])
        return None

    # ------------------------------------------------------------------ tasks
    def add_task(self, task: JsonDict) -> int:
        body = [{**task, "request_id": "0"}]
        return self._created(self.client.request("POST", "/api/v4/tasks", body=body), "tasks", "tasks")

    def find_task(self, lead_id: int, needle: str, since: int) -> Optional[int]:
        params: Sequence[Tuple[str, Any]] = [
            ("filter[entity_type]", "leads"), ("filter[entity_id][]", int(lead_id)),
            ("filter[updated_at][from]", int(since)), ("order[id]", "asc")]
        for rows in self.client.pages("/api/v4/tasks", "tasks", params):
            for row in rows:
                if needle in str(row.get("text") or ""):
                    return int(row["id"])
        return None

    def complete_task(self, task_id: int, result: str) -> bool:
        body = {"is_completed": True, "result": {"text": result}}
        try:
            reply = self.client.request("PATCH", f"/api/v4/tasks/{int(task_id)}", body=body)
        except AmbiguousWriteError:
            # completing is idempotent: ask again whether it took
            reply = self.client.request("PATCH", f"/api/v4/tasks/{int(task_id)}", body=body)
        if reply.status in (204, 404):
            return False
        if reply.status == 400 and self.client._read(f"/api/v4/tasks/{int(task_id)}") is None:
            return False     # deleted in amoCRM: amoCRM refuses a PATCH of it (the task is gone anyway)
        if reply.status >= 300:
            raise _refused(reply, "PATCH", "tasks")
        return True

    # ------------------------------------------------------------------ answers
    def _created(self, reply: Reply, what: str, key: str) -> int:
        if reply.status >= 300:
            raise _refused(reply, "POST", what)
        data = reply.json() or {}
        rows = ((data.get("_embedded") or {}).get(key) or []) if isinstance(data, dict) else []
        if not rows or not isinstance(rows[0].get("id"), int):
            # accepted without an id: the item may exist; the caller settles it like a lost answer
            raise AmbiguousWriteError(code="ids_missing", params={"entity": what, "count": 1},
                                      request_ids=["0"], **reply.where())
        return int(rows[0]["id"])


def _refused(reply: Reply, method: str, what: str) -> FixData:
    by_index = [{"request_id": str(n)} for n in range(MAX_CHUNK)]
    found, _ = attribute_issues(reply.problem(), by_index, by_id=False)
    issues = [i for group in found.values() for i in group]
    return error_for(reply, FixData, code="write_refused",
                     params={"method": method, "entity": what, "status": reply.status}, issues=issues)


def _check(entity: str) -> None:
    if entity not in NOTE_ENTITIES:
        raise ValueError(f"notes are made on {NOTE_ENTITIES}, not {entity!r}")


if TYPE_CHECKING:
    def _implements_port(api: AmoActivities) -> ActivityApi:
        return api
