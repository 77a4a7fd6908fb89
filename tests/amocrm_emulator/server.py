"""The emulator process: HTTP plumbing, request pipeline, lifecycle.

Pipeline for every amoCRM request (``/oauth2/*``, ``/api/v4/*``)::

    received in full ("sent") → inbound network delay → ARRIVAL, under the gateway lock:
      block (403 HTML) → rate limit (429 HTML) → fault pick → request log entry
    → [reset | status] at once, or the answer delay (+ a ``delay`` fault's seconds)
    → under the state lock: authenticate (401) → paid? (402) → route → validate → apply
    → [after_commit: answer the fault status | drop: close without answering]
    → outbound network delay → answer

Every wait is slept outside both locks, so slow answers overlap: the server runs one thread
per connection and holds a lock only while it counts a request or changes the state.
``/_emulator/*`` is the control API (``controlapi.py``): no auth, no rate limit, not logged.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs

from . import controlapi, errors
from .api import Api, parse_json
from .clock import Clock
from .entities import Store
from .faults import FaultRule, Faults
from .latency import ZERO, Latency, Range
from .oauth import OAuth, jwt_claims_unverified
from .ratelimit import RateLimiter
from .requestlog import RawBody, RequestLog, loggable_body
from .state import DEFAULT_REDIRECT_URI, DELETED_PATCH_MODES, State
from .transport import JSON, EmulatorServer, Handler

HAL = "application/hal+json"


@dataclass
class EmulatorOptions:
    host: str = "127.0.0.1"
    port: int = 0
    subdomain: str = "demo"
    rate_limit: int = 7
    rate_limit_enabled: bool = True
    block_after: int = 10  # 429s within block_window seconds that block the account; 0 = never
    block_window: float = 60.0
    seed: int = 1
    search_lag: float = 0.0
    deleted_patch_mode: str = "validation"
    redirect_uri: str = DEFAULT_REDIRECT_URI
    state_file: Optional[str] = None
    log_limit: int = 500_000
    # Waits in seconds, [min, max] drawn uniformly per request (see latency.py): one-way
    # network delay (in and out drawn separately), answer delay for reads (GET) and writes
    # (answer_delay sets both unless read_delay/write_delay say otherwise), and their seed.
    network_delay: Range = ZERO
    answer_delay: Range = ZERO
    read_delay: Optional[Range] = None
    write_delay: Optional[Range] = None
    delay_seed: int = 1


class Outcome:
    """What to send back: a response, or nothing (connection dropped/reset)."""

    def __init__(self, status: int, body: Any = None, content_type: str = HAL, close: str = "") -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.close = close  # "", "drop" (FIN) or "reset" (RST)


class Emulator:
    """One emulated amoCRM account behind an HTTP server."""

    def __init__(self, options: Optional[EmulatorOptions] = None) -> None:
        self.options = options or EmulatorOptions()
        if self.options.deleted_patch_mode not in DELETED_PATCH_MODES:
            raise ValueError(f"deleted_patch_mode must be one of {DELETED_PATCH_MODES}")
        self.lock = threading.RLock()  # the account state
        self.gateway = threading.RLock()  # rate limiter, fault pick, request log
        self.clock = Clock()
        self.faults = Faults(self.options.seed)
        self.limiter = self._new_limiter()
        self.latency = self._new_latency()
        self.log = RequestLog(self.options.log_limit)
        self._dirty = False
        self.httpd = EmulatorServer((self.options.host, self.options.port), Handler)
        self.httpd.emulator = self
        self.url = f"http://{self.options.host}:{self.httpd.server_address[1]}"
        self.state = State(self.options.subdomain)
        self.state.search_lag = self.options.search_lag
        self.state.deleted_patch_mode = self.options.deleted_patch_mode
        loaded = self._load_state_file()
        if not loaded:
            self.state.add_integration(self.options.redirect_uri)
        self._wire()
        self.integration = self.default_integration()
        self._thread: Optional[threading.Thread] = None
        self._saver: Optional[threading.Thread] = None
        self._stopping = threading.Event()

    # --- wiring ----------------------------------------------------------------
    def _new_limiter(self) -> RateLimiter:
        o = self.options
        return RateLimiter(o.rate_limit, o.rate_limit_enabled, o.block_after, o.block_window)

    def _new_latency(self) -> Latency:
        o = self.options
        return Latency.from_options(
            o.network_delay, o.answer_delay, o.read_delay, o.write_delay, o.delay_seed
        )

    def _wire(self) -> None:
        self.oauth = OAuth(self.state, self.clock)
        self.store = Store(self.state, self.url)
        self.api = Api(self.state, self.store, self.url)

    def default_integration(self) -> Dict[str, Any]:
        """The first integration plus a fresh authorization code."""
        with self.lock:
            integration = dict(next(iter(self.state.integrations.values())))
            integration["auth_code"] = self.oauth.new_auth_code(integration["client_id"])
            return integration

    # --- lifecycle ---------------------------------------------------------------
    def start(self) -> Emulator:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.01,), name="amocrm-emulator", daemon=True
        )
        self._thread.start()
        if self.options.state_file:
            self._saver = threading.Thread(target=self._save_loop, name="amocrm-emulator-saver", daemon=True)
            self._saver.start()
        return self

    def serve_forever(self) -> None:
        if self.options.state_file:
            self._saver = threading.Thread(target=self._save_loop, daemon=True)
            self._saver.start()
        try:
            self.httpd.serve_forever()
        finally:
            self._stopping.set()
            self.save()

    def stop(self) -> None:
        self._stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.save()

    # --- persistence -------------------------------------------------------------
    def _load_state_file(self) -> bool:
        path = self.options.state_file
        if not path or not os.path.exists(path):
            return False
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        self.state = State.restore(data["state"])
        self.clock.offset = float(data.get("clock_offset", 0.0))
        return True

    def save(self) -> None:
        path = self.options.state_file
        if not path:
            return
        with self.lock:
            text = json.dumps(
                {"state": self.state.snapshot(), "clock_offset": self.clock.offset}, ensure_ascii=False
            )
            self._dirty = False
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def _save_loop(self) -> None:
        while not self._stopping.wait(0.5):
            if self._dirty:
                self.save()

    # --- the amoCRM pipeline -------------------------------------------------------
    def handle(
        self, method: str, path: str, query: Dict[str, List[str]], raw: bytes, headers: Any,
        received_at: Optional[float] = None,
    ) -> Tuple[Outcome, str]:
        """One amoCRM request, taken in at ``received_at`` ("sent": its request line read; now
        when not given); returns when its answer may be written. The waits (``latency.py``) are
        slept here, outside every lock, and the inbound wait counts from ``received_at``."""
        sent = time.monotonic() if received_at is None else received_at
        request_id = secrets.token_hex(8)
        content_type = headers.get("Content-Type", "")
        integration = _integration_key(path, headers, raw, content_type)
        delays = self.latency.draw(method)
        if delays.inbound:
            # still on its way to amoCRM: what is left of the inbound wait once the body is read
            time.sleep(max(0.0, sent + delays.inbound - time.monotonic()))
        with self.gateway:
            # Arrival: the moment the gateway counts the request (limit and log alike): when
            # it was taken in plus its way in, not when this thread got the CPU back (a busy
            # emulator wakes it late, which a real gateway would not).
            arrival = sent + delays.inbound
            refusal = self.limiter.check(integration, arrival)
            fault = None if refusal else self.faults.pick(method, path)
            entry = self.log.add(
                {
                    "method": method,
                    "path": path,
                    "query": query,
                    "status": None,
                    "emulator_time": self.clock.now(),
                    "wall_time": time.time(),
                    "sent_time": sent,
                    "arrival_time": arrival,
                    "delays": delays._asdict(),
                    "refused": refusal,
                    "integration": integration,
                    "request_id": request_id,
                    # Parsed only when the log is read: parsing a 250-entity body twice per
                    # request would count as amoCRM's answer time.
                    "body": RawBody(raw, content_type) if raw else None,
                    "fault": None
                    if fault is None
                    else {"id": fault.id, "action": fault.action, "status": fault.status},
                }
            )
        outcome = self._run(method, path, query, raw, headers, refusal, fault, delays.answer)
        entry["status"] = outcome.status if not outcome.close else outcome.close
        if delays.outbound:
            time.sleep(delays.outbound)  # the answer on its way back
        return outcome, request_id

    def _run(
        self,
        method: str,
        path: str,
        query: Dict[str, List[str]],
        raw: bytes,
        headers: Any,
        refusal: Optional[int],
        fault: Optional[FaultRule],
        answer_delay: float,
    ) -> Outcome:
        # The gateway and injected failures answer at once; the application takes its time.
        if refusal is not None:
            return Outcome(refusal, errors.nginx_page(refusal), errors.HTML)
        if fault is not None and fault.action == "reset":
            return Outcome(0, close="reset")
        if fault is not None and fault.action == "status":
            return _error_outcome(errors.fault_error(fault.status))
        if fault is not None and fault.action == "delay":
            answer_delay += fault.delay
        if answer_delay:
            time.sleep(answer_delay)  # amoCRM working; the write is applied at the end
        with self.lock:
            outcome = self._process(method, path, query, raw, headers)
            if method != "GET" and outcome.status < 400:
                self._dirty = True
        if fault is not None and fault.action == "after_commit":
            return _error_outcome(errors.fault_error(fault.status))
        if fault is not None and fault.action == "drop":
            return Outcome(0, close="drop")
        return outcome

    def _process(
        self, method: str, path: str, query: Dict[str, List[str]], raw: bytes, headers: Any
    ) -> Outcome:
        try:
            if path.rstrip("/") == "/oauth2/access_token":
                if method != "POST":
                    raise errors.method_not_allowed()
                params = _token_params(raw, headers.get("Content-Type", ""))
                return Outcome(200, self.oauth.token_endpoint(params), JSON)
            if not path.startswith("/api/v4/"):
                raise errors.not_found()
            self.oauth.authenticate(headers.get("Authorization"))
            if not self.state.paid:
                raise errors.payment_required()
            body = parse_json(raw) if method in ("POST", "PATCH") else None
            status, payload = self.api.dispatch(method, path, query, body, self.clock.now())
            return Outcome(status, payload, HAL)
        except errors.ApiError as exc:
            return _error_outcome(exc)
        except Exception:  # an emulator bug must show up as a 500, not a hung client
            traceback.print_exc(file=sys.stderr)
            return _error_outcome(errors.problem(500, "Internal Server Error", "Emulator error"))

    # --- control API -------------------------------------------------------------------
    def control(self, method: str, path: str, query: Dict[str, List[str]], raw: bytes) -> Tuple[int, Any]:
        name = path[len("/_emulator/") :].strip("/")
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return 400, {"error": "control body must be JSON"}
        try:
            with self.lock, self.gateway:
                return controlapi.dispatch(self, method, name, query, body)
        except (ValueError, KeyError, TypeError) as exc:
            return 400, {"error": str(exc)}

    def mark_dirty(self) -> None:
        self._dirty = True

    def reset(self) -> None:
        """Fresh account and clock; integrations keep their credentials; faults, log, limits
        and network/answer delays back to the options."""
        integrations = list(self.state.integrations.values())
        self.state = State(self.options.subdomain)
        self.state.search_lag = self.options.search_lag
        self.state.deleted_patch_mode = self.options.deleted_patch_mode
        for integration in integrations:
            self.state.add_integration(
                integration["redirect_uri"], integration["client_id"], integration["client_secret"]
            )
        self.clock.offset = 0.0
        self.faults = Faults(self.options.seed)
        self.limiter = self._new_limiter()
        self.latency = self._new_latency()
        self.log.clear()
        self._wire()
        self.integration = self.default_integration()
        self._dirty = True

    def full_state(self) -> Dict[str, Any]:
        with self.lock:
            data = self.state.snapshot()
            data["clock"] = {"now": self.clock.now(), "offset": self.clock.offset}
            data["faults"] = self.faults.to_json()
            data["rate"] = self.limiter.to_json()
            data["latency"] = self.latency.to_json()
            data["token_stats"] = self.oauth.stats()
            data["options"] = asdict(self.options)
            return json.loads(json.dumps(data, default=list))

    def rate_stats(self, window: float = 1.0) -> Dict[str, Any]:
        """Busiest ``window`` by arrival time per integration (all, accepted), and the 429s."""
        with self.gateway:
            return self.log.rate_stats(window, self.limiter.total_429)


def _error_outcome(exc: errors.ApiError) -> Outcome:
    return Outcome(exc.status, exc.body, exc.content_type)


def _token_params(raw: bytes, content_type: str) -> Dict[str, Any]:
    text = raw.decode("utf-8", "replace").strip()
    if "json" in content_type or text.startswith("{"):
        try:
            data = json.loads(text or "{}")
        except ValueError as exc:
            raise errors.oauth_request_error("The request body is not valid JSON") from exc
        if not isinstance(data, dict):
            raise errors.oauth_request_error("The request body must be an object")
        return data
    return {k: v[0] for k, v in parse_qs(text).items()}


def _integration_key(path: str, headers: Any, raw: bytes, content_type: str) -> str:
    """Which integration a request counts against (the 7 req/s limit is per integration)."""
    auth = headers.get("Authorization") or ""
    if auth.startswith("Bearer "):
        claims = jwt_claims_unverified(auth[7:].strip())
        if claims and claims.get("aud"):
            return str(claims["aud"])
    if path.startswith("/oauth2/") and raw:
        body = loggable_body(raw, content_type)  # token requests are small
        if isinstance(body, dict) and body.get("client_id"):
            return str(body["client_id"])
    return "anonymous"
