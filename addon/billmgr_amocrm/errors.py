"""Errors of the amoCRM client, grouped by what the caller must do.

    AmoError                      base: method, path, status, X-Request-Id, detail
      ConfigError                 the account URL (or other local setting) is wrong: fix the config
      RetryLater                  429, 5xx on a read, timeout, outage: try again later (``retry_after``)
      AmbiguousWriteError         a write may or may not have been applied: settle it first
      FixData                     400: amoCRM refused the data (``issues`` per item and field)
      Reauthorize                 tokens are gone/revoked or the integration keys are wrong
        AuthorizationRefused      the token endpoint refused the code or the client (``reason``)
      Stop                        403 block or 402 unpaid: all traffic stops until it clears

``AmbiguousWriteError`` is deliberately NOT a ``RetryLater``: a generic
``except RetryLater: retry`` must never resend a write that may have created
entities. The sync core settles it (find by marker) before retrying.

Every error raised by the client carries a ``code`` and ``params`` (ids, URLs, paths,
numbers): its English message is rendered from ``error_texts`` with them, and the panel
renders the same code in the admin's language (``describe``). Messages carry method,
path, status and amoCRM's X-Request-Id, never a token, secret, code or header; they are
also passed through the log redaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

from .error_texts import render
from .logsetup import redact

if TYPE_CHECKING:
    from .ports import BatchOutcome, EngineHolder


class AmoError(Exception):
    """An amoCRM call failed; ``str()`` says where and why, without secrets.

    ``code`` names the failure in ``error_texts`` and ``params`` fills its text; the message,
    when not given, is that text in English. An error without a code (a test's stand-in)
    keeps its message and is described by its class.
    """

    def __init__(self, message: str = "", *, code: str = "", params: Optional[Mapping[str, Any]] = None,
                 method: str = "", path: str = "", status: Optional[int] = None, request_id: str = "",
                 detail: str = "") -> None:
        self.code = code
        self.params: dict[str, Any] = dict(params or {})
        self.message = message or render(code, self.params, "en") or code
        self.method = method
        self.path = path
        self.status = status
        self.request_id = request_id
        self.detail = detail
        super().__init__(self._render())

    def location(self) -> str:
        """``[POST /api/v4/leads -> 400, X-Request-Id abc]``, or "" when the call is not known."""
        where = " ".join(p for p in (self.method, self.path) if p)
        if not where:
            return ""
        if self.status is not None:
            where += f" -> {self.status}"
        if self.request_id:
            where += f", X-Request-Id {self.request_id}"
        return f"[{where}]"

    def _render(self) -> str:
        parts = [self.message, self.location()]
        if self.detail:
            parts.append(f"amoCRM says: {self.detail}")
        return redact(" ".join(p for p in parts if p))


class ConfigError(AmoError):
    """The configured amoCRM account URL or integration settings are not usable."""


class RetryLater(AmoError):
    """Transient: rate limit, server error on a read, timeout, outage."""

    def __init__(self, message: str = "", *, retry_after: Optional[float] = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class AmbiguousWriteError(AmoError):
    """A write may have been applied but its answer was lost: settle before resending.

    ``request_ids``: the items of the request in doubt. ``outcome``: what earlier
    requests of the same logical batch achieved. ``next_chunk_size``: the chunk
    size the client will use for its next write (halved after a 504 or timeout).
    ``cause``: ``status`` (5xx), ``timeout`` or ``connection`` (reset, dropped).
    """

    def __init__(self, message: str = "", *, request_ids: Sequence[str] = (),
                 outcome: Optional[BatchOutcome] = None, next_chunk_size: int = 0, cause: str = "status",
                 **kw: Any) -> None:
        self.request_ids = list(request_ids)
        self.cause = cause
        self.outcome = outcome
        self.next_chunk_size = next_chunk_size
        super().__init__(message, **kw)


@dataclass(frozen=True)
class ItemIssue:
    """One thing amoCRM refused: which item (request_id / entity id), which field, why."""

    request_id: str
    path: str
    code: str
    detail: str

    def describe(self) -> str:
        field = f" at {self.path}" if self.path else ""
        code = f"{self.code}: " if self.code else ""
        return f"{code}{self.detail}{field}".strip()


class FixData(AmoError):
    """amoCRM refused the request's data (400); ``issues`` names item and field."""

    def __init__(self, message: str = "", *, issues: Sequence[ItemIssue] = (), **kw: Any) -> None:
        self.issues = list(issues)
        super().__init__(message, **kw)

    def _render(self) -> str:
        """amoCRM's own words about each item and field belong in every report of the refusal."""
        if not self.issues:
            return super()._render()
        return redact(f"{super()._render()}: " + "; ".join(i.describe() for i in self.issues))


class Reauthorize(AmoError):
    """The module must be authorized again in the panel (new one-time code)."""


class AuthorizationRefused(Reauthorize):
    """The token endpoint said no. ``reason``: bad_client | bad_code | revoked | refused."""

    def __init__(self, message: str = "", *, reason: str, **kw: Any) -> None:
        self.reason = reason
        super().__init__(message, **kw)


class Stop(AmoError):
    """amoCRM stopped serving the account: ``reason`` is blocked (403) or unpaid (402)."""

    def __init__(self, message: str = "", *, reason: str, **kw: Any) -> None:
        self.reason = reason
        super().__init__(message, **kw)


# --------------------------------------------------------------------------- the engine lease
# who holds the engine when its registration could not be read (it may have just ended)
UNKNOWN_HOLDER = "another process"


class EngineBusy(Exception):
    """Another engine holds the sync; nothing was run beside it."""

    def __init__(self, holder: Optional[EngineHolder]) -> None:
        self.holder = holder
        self.who = holder.describe() if holder is not None else UNKNOWN_HOLDER
        super().__init__(f"the sync engine is busy: {self.who} is running it")


class LeaseLost(Exception):
    """This engine no longer holds the lease (its connection to MySQL dropped): it stops."""


class Halted(Exception):
    """The pass is stopping (another batch in flight met an outage, a refused token or a lost
    lease): this request was not sent, and the batch sends nothing more; its rows not yet
    handled stay queued as they are."""
