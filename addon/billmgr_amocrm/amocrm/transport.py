"""One HTTP exchange with amoCRM: limiter, stop gate, timeouts, status classification, retries.

Retry rules (the sync core relies on them):

* Reads (GET) are retried after 5xx, 429, timeouts and broken connections, with
  exponential backoff and jitter, up to ``max_attempts``; then :class:`RetryLater`.
* Writes (POST/PATCH/token requests) are resent only when the request provably
  never left the host (connect timeout, refused, DNS) or amoCRM refused it with
  429 (the gateway rejects before processing). A 5xx, read timeout or reset after
  sending raises :class:`AmbiguousWriteError`.
* 429 pauses every process (shared limiter) for the backoff, honouring Retry-After.
* 403 records a block and 402 an unpaid account in the shared state
  (:mod:`.circuit`) and raise :class:`Stop`; later requests are refused locally
  except one probe per interval.

2xx, 400, 401 and other 4xx are returned as a :class:`Reply` for the caller. A 3xx
raises :class:`RetryLater` (never followed, and not the record's fault).
TLS verification is always on.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple, Type, TypeVar, Union

import requests
import urllib3
from requests.structures import CaseInsensitiveDict

from ..errors import AmbiguousWriteError, AmoError, Halted, RetryLater, Stop
from ..logsetup import redact
from .backoff import Backoff, parse_retry_after
from .circuit import ClientState
from .models import ProblemBody
from .ratelimit import RateLimiter
from .timing import TimedAdapter, watching

log = logging.getLogger("billmgr_amocrm.amocrm")

Params = Union[Mapping[str, Any], Sequence[Tuple[str, Any]], None]
READ_METHODS = ("GET", "HEAD")
# connections kept per host: one per write in flight (the engine sends several at once)
POOL_SIZE = 32
# a handshake slower than this says more about DNS or a cold route than about the steady
# one-way delay: it raises the limiter's network margin no further
MAX_AUTO_MARGIN = 0.25


_cancel = threading.local()


@contextmanager
def cancelled_when(check: Callable[[], bool]) -> Iterator[None]:
    """On this thread, a request that gets its rate slot once ``check()`` holds is not sent
    (:class:`Halted`): a batch of a stopping pass may have waited a second for its slot."""
    previous = getattr(_cancel, "check", None)
    _cancel.check = check
    try:
        yield
    finally:
        _cancel.check = previous


def _cancelled() -> bool:
    check: Optional[Callable[[], bool]] = getattr(_cancel, "check", None)
    return check is not None and check()


@dataclass
class Reply:
    method: str
    path: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def request_id(self) -> str:
        return self.headers.get("X-Request-Id", "")

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def problem(self) -> ProblemBody:
        data = self.json()
        return ProblemBody.model_validate(data) if isinstance(data, dict) else ProblemBody()

    def summary(self) -> str:
        """amoCRM's own words about an error, short; never the request."""
        data = self.json()
        if isinstance(data, dict):
            p = self.problem()
            text = " ".join(x for x in (p.title, p.detail, f"({p.hint})" if p.hint else "") if x)
            return redact(text[:300])
        if not self.body:
            return ""
        html_title = re.search(rb"<title>(.*?)</title>", self.body, re.I | re.S)
        snippet = html_title.group(1) if html_title else self.body[:120]
        return redact("non-JSON body: " + snippet.decode("utf-8", "replace").strip())

    def where(self) -> Dict[str, Any]:
        return {"method": self.method, "path": self.path, "status": self.status,
                "request_id": self.request_id}


def sent_nothing(exc: requests.RequestException) -> bool:
    """True when the request provably never reached the server (safe to resend a write)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, (urllib3.exceptions.NewConnectionError,
                                   urllib3.exceptions.ConnectTimeoutError))
    return False


class Transport:
    """Sends requests to one amoCRM account; shared state lives in files, not here."""

    def __init__(self, base_url: str, *, limiter: RateLimiter, state: ClientState,
                 timeout: Tuple[float, float] = (5.0, 30.0), max_attempts: int = 3,
                 backoff: Optional[Backoff] = None, session: Optional[requests.Session] = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.state = state
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff or Backoff()
        self.session = session or requests.Session()
        self.session.verify = True
        # connections that tell the rate limiter when a request has really left (see .timing)
        adapter = TimedAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
        for scheme in ("https://", "http://"):
            self.session.mount(scheme, adapter)
        self.clock = clock
        self.sleep = sleep

    def send(self, method: str, path: str, *, params: Params = None, json_body: Any = None,
             form: Optional[Mapping[str, str]] = None, token: Optional[str] = None,
             bypass_gate: bool = False) -> Reply:
        """One logical request with the retries its method allows (see module docstring)."""
        write = method.upper() not in READ_METHODS
        # Encoded once, before a rate slot is taken: a slot is held until the answer, so work
        # done while holding it lowers the rate. Compact UTF-8 is also a third of the bytes of
        # the default \uXXXX escapes for Cyrillic names.
        body = None if json_body is None else json.dumps(
            json_body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        attempt = 0
        while True:
            probe = self.state.gate(bypass=bypass_gate)
            # Everything but the exchange itself happens before the rate slot is taken: a slot
            # counts from the moment it is taken until the request can have arrived (ratelimit).
            prepared, settings = self._prepare(method, path, params, body, form, token)
            ticket = self.limiter.acquire()
            if _cancelled():
                self.limiter.release(ticket, left_host=False)
                raise Halted(f"{method} {path} not sent: the pass is stopping")
            started = time.monotonic()
            failure: Optional[requests.RequestException] = None
            response: Optional[requests.Response] = None
            left_host = True
            try:
                # stream: return at the answer's headers; amoCRM has counted the request by
                # then, so the slot's arrival bound is known before the body is read
                with watching(functools.partial(self.limiter.sent, ticket), self._handshake):
                    response = self.session.send(prepared, timeout=self.timeout, allow_redirects=False,
                                                 stream=True, **settings)
                self.limiter.answered(ticket)
            except requests.RequestException as exc:
                failure = exc
                left_host = not sent_nothing(exc)
            finally:
                self.limiter.release(ticket, left_host=left_host)
            if response is not None:
                try:
                    reply = self._read(method, path, response)
                except requests.RequestException as exc:
                    failure = exc
            if failure is not None:
                attempt += 1
                self._on_network_error(failure, method, path, write, attempt)
                continue
            log.debug("amoCRM %s %s -> %s in %.0f ms (X-Request-Id %s)", method, path, reply.status,
                      (time.monotonic() - started) * 1000, reply.request_id or "-")
            if probe and reply.status not in (402, 403):
                self.state.clear_stop()
                log.warning("amoCRM answers again (probe %s %s -> %s): traffic resumes",
                            method, path, reply.status)
            if 300 <= reply.status < 400:
                raise _redirected(reply)
            if reply.status < 500 and reply.status not in (402, 403, 429):
                return reply
            attempt += 1
            self._on_error_status(reply, write, attempt)

    # ------------------------------------------------------------------ internals
    def _handshake(self, seconds: float) -> None:
        """A TCP handshake took ``seconds``: no one-way delay on this route is known to be longer."""
        self.limiter.raise_margin(min(seconds, MAX_AUTO_MARGIN))

    def _prepare(self, method: str, path: str, params: Params, body: Optional[bytes],
                 form: Optional[Mapping[str, str]], token: Optional[str]
                 ) -> Tuple[requests.PreparedRequest, Dict[str, Any]]:
        """The request ready to go, and the session's environment settings (proxies, CA bundle)."""
        headers = {"Accept": "application/json", "User-Agent": "billmgr-amocrm"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        prepared = self.session.prepare_request(requests.Request(
            method, self.base_url + path, params=params, data=body if body is not None else form,
            headers=headers))
        merged = self.session.merge_environment_settings(prepared.url, {}, True, None, None)
        settings: Dict[str, Any] = {
            "proxies": merged.get("proxies") or {}, "cert": merged.get("cert"),
            # a CA bundle from the environment (REQUESTS_CA_BUNDLE) is kept; checks stay on
            "verify": merged.get("verify") or True,
        }
        return prepared, settings

    @staticmethod
    def _read(method: str, path: str, response: requests.Response) -> Reply:
        try:
            return Reply(method=method, path=path, status=response.status_code,
                         headers=CaseInsensitiveDict(response.headers), body=response.content)
        finally:
            response.close()

    def _on_network_error(self, exc: requests.RequestException, method: str, path: str,
                          write: bool, attempt: int) -> None:
        kind = type(exc).__name__
        where: Dict[str, Any] = {"method": method, "path": path}
        if isinstance(exc, requests.exceptions.SSLError):
            raise RetryLater(code="tls_failure", params={"kind": kind}, **where) from None
        if write and not sent_nothing(exc):
            cause = "timeout" if isinstance(exc, requests.exceptions.Timeout) else "connection"
            raise AmbiguousWriteError(code="write_lost", params={"kind": kind}, cause=cause,
                                      **where) from None
        if attempt >= self.max_attempts:
            raise RetryLater(code="unreachable", params={"kind": kind, "attempts": attempt},
                             **where) from None
        delay = self.backoff.delay(attempt - 1)
        log.info("amoCRM %s %s failed (%s); retry %d in %.1f s", method, path, kind, attempt, delay)
        self.sleep(delay)

    def _on_error_status(self, reply: Reply, write: bool, attempt: int) -> None:
        where = reply.where()
        summary = reply.summary()
        if reply.status == 403:
            self.state.record_stop("blocked", 403, summary)
            log.error("amoCRM answered 403 to %s %s: all traffic stops (%s)",
                      reply.method, reply.path, summary)
            raise Stop(code="blocked", reason="blocked", detail=summary, **where)
        if reply.status == 402:
            self.state.record_stop("unpaid", 402, summary)
            log.error("amoCRM answered 402 to %s %s: the account is not paid", reply.method, reply.path)
            raise Stop(code="unpaid", reason="unpaid", detail=summary, **where)
        if reply.status == 429:
            retry_after = parse_retry_after(reply.headers.get("Retry-After"), self.clock())
            delay = self.backoff.delay(attempt, retry_after)
            self.limiter.pause(delay)
            log.warning("amoCRM rate limit (429) on %s %s; every process pauses %.1f s",
                        reply.method, reply.path, delay)
            if attempt >= self.max_attempts:
                raise RetryLater(code="rate_limited", retry_after=delay, detail=summary, **where)
            return
        if write:
            raise AmbiguousWriteError(code="write_status_unknown", params={"status": reply.status},
                                      detail=summary, **where)
        if attempt >= self.max_attempts:
            raise RetryLater(code="server_error", params={"attempts": attempt}, detail=summary, **where)
        delay = self.backoff.delay(attempt - 1)
        log.info("amoCRM %s %s -> %s; retry %d in %.1f s",
                 reply.method, reply.path, reply.status, attempt, delay)
        self.sleep(delay)


def _redirected(reply: Reply) -> RetryLater:
    """A redirect is never followed (the token would go with it) and applies to every request
    alike, so it is no fault of the record: keep it queued and say where amoCRM points."""
    target = urllib3.util.parse_url(reply.headers.get("Location", "") or "")
    known = f"{target.scheme}://{target.host}" if target.scheme and target.host else ""
    log.error("amoCRM answered %s%s to %s %s: redirects are not followed; check the account URL in "
              "the integration settings", reply.status, f" to {known}" if known else "", reply.method,
              reply.path)
    if known:
        return RetryLater(code="redirected_to", params={"status": reply.status, "target": known},
                          **reply.where())
    return RetryLater(code="redirected", params={"status": reply.status}, **reply.where())


E = TypeVar("E", bound=AmoError)


def error_for(reply: Reply, cls: Type[E], **extra: Any) -> E:
    """Build an error of ``cls`` (``code=``, ``params=`` in ``extra``) that carries the reply's method,
    path, status and request id."""
    return cls(detail=reply.summary(), **reply.where(), **extra)
