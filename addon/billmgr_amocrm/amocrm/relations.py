"""Links between entities (POST /{entity}/link and /unlink), and what a refused call says.

amoCRM names a refused link by its position in the request. A 400 writes nothing, so the
links it did not name are sent again without the refused ones; a 400 that names none is
split until the culprit stands alone, as batch writes are (:mod:`.api`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Sequence, Tuple

from ..errors import FixData, ItemIssue
from .batch import MAX_CHUNK, JsonDict, attribute_issues, check_entity, chunks, describe_link
from .transport import Reply, error_for

if TYPE_CHECKING:
    from .api import AmoClient

Pending = List[Tuple[int, JsonDict]]


def relate(client: AmoClient, action: str, entity: str, links: Sequence[JsonDict]) -> Dict[int, str]:
    """``action`` (link | unlink) in chunks; index in ``links`` -> amoCRM's reason for each item it
    refused (400). Raises FixData when amoCRM refuses the call itself (another 4xx)."""
    check_entity(entity)
    refused: Dict[int, str] = {}
    for part in chunks(list(enumerate(links)), client.chunk_size):
        _send(client, action, entity, part, refused)
    return refused


def _send(client: AmoClient, action: str, entity: str, pending: Pending, refused: Dict[int, str]) -> None:
    while pending:
        reply = client.request("POST", f"/api/v4/{entity}/{action}", body=[item for _, item in pending])
        if reply.status < 300:
            return
        if reply.status != 400:
            raise refusal(reply, f"{action}_refused", entity)
        positions = [{"request_id": str(n)} for n in range(len(pending))]
        found, complete = attribute_issues(reply.problem(), positions, by_id=False)
        if not complete:
            if len(pending) > 1:
                half = len(pending) // 2
                for part in (pending[:half], pending[half:]):
                    _send(client, action, entity, part, refused)
                return
            found = {"0": [ItemIssue("0", "", str(reply.status), reply.summary() or "refused")]}
        for key, issues in found.items():
            index, item = pending[int(key)]
            refused[index] = describe_link(action, entity, item, issues)
        pending = [p for n, p in enumerate(pending) if str(n) not in found]


def refusal(reply: Reply, code: str, entity: str) -> FixData:
    """FixData for a refused call (its ``code`` in error_texts), with the items and fields amoCRM
    named (by position)."""
    by_index = [{"request_id": str(n)} for n in range(MAX_CHUNK)]
    found, _ = attribute_issues(reply.problem(), by_index, by_id=False)
    issues = [i for group in found.values() for i in group]
    return error_for(reply, FixData, code=code, params={"entity": entity, "status": reply.status},
                     issues=issues)
