"""The emulator process: HTTP plumbing, request pipeline, control API, lifecycle.

Pipeline for every amoCRM request (``/oauth2/*``, ``/api/v4/*``)::

    block (403 HTML) → rate limit (429 HTML) → fault pick → [reset | delay | status]
      → under the state lock: authenticate (401) → paid? (402) → route → validate → apply
      → [after_commit: answer the fault status | drop: close without answering] → answer

``/_emulator/*`` is the control API: no auth, no rate limit, not logged.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import struct
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Deque, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

from . import errors
from .api import Api, parse_json
from .clock import Clock
from .entities import Store, first
from .faults import FaultRule, Faults
from .oauth import OAuth, jwt_claims_unverified
from .ratelimit import RateLimiter
from .state import DEFAULT_REDIRECT_URI, DELETED_PATCH_MODES, ENTITY_TYPES, State

HAL = "application/hal+json"
JSON = "application/json"


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
        self.lock = threading.RLock()
        self.clock = Clock()
        self.faults = Faults(self.options.seed)
        self.limiter = self._new_limiter()
        self.log: Deque[Dict[str, Any]] = deque(maxlen=self.options.log_limit)
        self._seq = 0
        self._dirty = False
        self.httpd = _Server((self.options.host, self.options.port), _Handler)
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
        self, method: str, path: str, query: Dict[str, List[str]], raw: bytes, headers: Any
    ) -> Tuple[Outcome, str]:
        request_id = secrets.token_hex(8)
        content_type = headers.get("Content-Type", "")
        # The body is parsed for the log only when the log is read (``_logged``): parsing a
        # 250-entity body twice per request would count as amoCRM's answer time.
        body_for_log = _RawBody(raw, content_type) if raw else None
        with self.lock:
            self._seq += 1
            entry: Dict[str, Any] = {
                "seq": self._seq,
                "method": method,
                "path": path,
                "query": query,
                "status": None,
                "emulator_time": self.clock.now(),
                "wall_time": time.time(),
                "integration": _integration_key(path, headers, raw, content_type),
                "request_id": request_id,
                "body": body_for_log,
                "fault": None,
            }
            self.log.append(entry)
            refusal = self.limiter.check(entry["integration"])
            fault = None if refusal else self.faults.pick(method, path)
            if fault is not None:
                entry["fault"] = {"id": fault.id, "action": fault.action, "status": fault.status}
        outcome = self._run(method, path, query, raw, headers, refusal, fault)
        entry["status"] = outcome.status if not outcome.close else outcome.close
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
    ) -> Outcome:
        if refusal is not None:
            return Outcome(refusal, errors.nginx_page(refusal), errors.HTML)
        if fault is not None:
            if fault.action == "reset":
                return Outcome(0, close="reset")
            if fault.action == "delay":
                time.sleep(fault.delay)
            if fault.action == "status":
                return _error_outcome(errors.fault_error(fault.status))
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
            with self.lock:
                return self._control(method, name, query, body)
        except (ValueError, KeyError, TypeError) as exc:
            return 400, {"error": str(exc)}

    def _control(self, method: str, name: str, query: Dict[str, List[str]], body: Any) -> Tuple[int, Any]:
        parts = name.split("/")
        if (method, name) == ("GET", "state"):
            return 200, self.full_state()
        if (method, name) == ("GET", "requests"):
            since = int(first(query, "since") or 0)
            return 200, [_logged(e) for e in self.log if e["seq"] > since]
        if (method, name) == ("GET", "rate_stats"):
            return 200, self.rate_stats(float(first(query, "window") or 1.0))
        if (method, name) == ("POST", "reset"):
            self.reset()
            return 200, {"integration": self.integration}
        if (method, name) == ("POST", "clock"):
            if "advance" in body:
                self.clock.advance(float(body["advance"]))
            if "set" in body:
                self.clock.set(float(body["set"]))
            return 200, {"now": self.clock.now(), "offset": self.clock.offset}
        if (method, name) == ("POST", "integration"):
            integration = self.state.add_integration(
                body.get("redirect_uri", self.options.redirect_uri),
                body.get("client_id"),
                body.get("client_secret"),
            )
            out = dict(integration, auth_code=self.oauth.new_auth_code(integration["client_id"]))
            return 200, out
        if (method, name) == ("POST", "auth_code"):
            client_id = body.get("client_id") or self.integration["client_id"]
            if client_id not in self.state.integrations:
                raise ValueError("unknown client_id")
            return 200, {"client_id": client_id, "auth_code": self.oauth.new_auth_code(client_id)}
        if (method, name) == ("POST", "tokens"):
            client_id = body.get("client_id") or self.integration["client_id"]
            if client_id not in self.state.integrations:
                raise ValueError("unknown client_id")
            return 200, self.oauth.issue_pair(client_id)
        if name == "faults":
            return self._control_faults(method, body)
        if (method, name) == ("POST", "delete"):
            entity, entity_id = body["entity"], int(body["id"])
            if entity not in ENTITY_TYPES or not self.store.mark_deleted(entity, entity_id):
                return 404, {"error": f"no {entity} {entity_id}"}
            self._dirty = True
            return 200, {"deleted": {"entity": entity, "id": entity_id}}
        if (
            method == "POST"
            and len(parts) == 3
            and parts[0] == "users"
            and parts[2] in ("deactivate", "activate")
        ):
            user = self.state.users.get(int(parts[1]))
            if user is None:
                return 404, {"error": "no such user"}
            user["rights"]["is_active"] = parts[2] == "activate"
            return 200, user
        if (method, name) == ("POST", "rate"):
            self.limiter.configure(body)
            return 200, self.limiter.to_json()
        if (method, name) == ("POST", "block"):
            self.limiter.block(body.get("reason", "manual"))
            return 200, self.limiter.to_json()
        if (method, name) == ("POST", "unblock"):
            self.limiter.unblock()
            return 200, self.limiter.to_json()
        if (method, name) == ("POST", "account"):
            if "paid" in body:
                self.state.paid = bool(body["paid"])
            return 200, {"paid": self.state.paid}
        if (method, name) == ("POST", "settings"):
            if "search_lag" in body:
                self.state.search_lag = float(body["search_lag"])
            if "deleted_patch_mode" in body:
                if body["deleted_patch_mode"] not in DELETED_PATCH_MODES:
                    raise ValueError(f"deleted_patch_mode must be one of {DELETED_PATCH_MODES}")
                self.state.deleted_patch_mode = body["deleted_patch_mode"]
            return 200, {
                "search_lag": self.state.search_lag,
                "deleted_patch_mode": self.state.deleted_patch_mode,
            }
        return 404, {"error": f"unknown control endpoint {method} /_emulator/{name}"}

    def _control_faults(self, method: str, body: Any) -> Tuple[int, Any]:
        if method == "GET":
            return 200, self.faults.to_json()
        if method == "DELETE":
            self.faults.clear()
            return 200, []
        if method != "POST":
            return 405, {"error": "use GET, POST or DELETE"}
        if isinstance(body, dict) and "seed" in body:
            self.faults.seed(int(body.pop("seed")))
            if not body:
                return 200, self.faults.to_json()
        specs = body if isinstance(body, list) else [body]
        added = [self.faults.add(dict(spec)).to_json() for spec in specs]
        return 200, added

    def reset(self) -> None:
        """Fresh account and clock; integrations keep their credentials; faults, log and limits cleared."""
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
            data["token_stats"] = self.oauth.stats()
            data["options"] = asdict(self.options)
            return json.loads(json.dumps(data, default=list))

    def rate_stats(self, window: float = 1.0) -> Dict[str, Any]:
        """Max requests in any ``window``-second span, per integration: all and accepted only."""
        per: Dict[str, Dict[str, List[float]]] = {}
        for entry in self.log:
            bucket = per.setdefault(entry["integration"], {"all": [], "accepted": []})
            bucket["all"].append(entry["wall_time"])
            if entry["status"] not in (429, 403):
                bucket["accepted"].append(entry["wall_time"])
        out = {
            key: {kind: max_in_window(times, window) for kind, times in b.items()} for key, b in per.items()
        }
        return {
            "window": window,
            "per_integration": out,
            "max_all": max((v["all"] for v in out.values()), default=0),
            "max_accepted": max((v["accepted"] for v in out.values()), default=0),
        }


def max_in_window(times: List[float], window: float) -> int:
    """Largest number of timestamps inside any half-open span of ``window`` seconds (two pointers)."""
    ordered = sorted(times)
    best = start = 0
    for end, stamp in enumerate(ordered):
        while ordered[start] <= stamp - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _error_outcome(exc: errors.ApiError) -> Outcome:
    return Outcome(exc.status, exc.body, exc.content_type)


class _RawBody:
    """A request body as received; parsed (once) when the request log is read."""

    __slots__ = ("raw", "content_type")

    def __init__(self, raw: bytes, content_type: str) -> None:
        self.raw = raw
        self.content_type = content_type


def _logged(entry: Dict[str, Any]) -> Dict[str, Any]:
    body = entry["body"]
    if isinstance(body, _RawBody):
        entry["body"] = _loggable_body(body.raw, body.content_type)
    return entry


def _loggable_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    try:
        if "x-www-form-urlencoded" in content_type:
            return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(raw.decode()).items()}
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {"_unparsed": raw[:2000].decode("utf-8", "replace")}


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
        body = _loggable_body(raw, content_type)   # token requests are small
        if isinstance(body, dict) and body.get("client_id"):
            return str(body["client_id"])
    return "anonymous"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    emulator: Emulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    disable_nagle_algorithm = True  # no 40 ms Nagle/delayed-ACK stalls on small answers
    server_version = "nginx"
    sys_version = ""
    server: _Server

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request stderr
        return

    def _handle(self, method: str) -> None:
        emulator = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        if split.path.startswith("/_emulator/"):
            status, body = emulator.control(method, split.path, query, raw)
            self._send(status, body, JSON, secrets.token_hex(8))
            return
        outcome, request_id = emulator.handle(method, split.path, query, raw, self.headers)
        if outcome.close:
            self._close(reset=outcome.close == "reset")
            return
        self._send(outcome.status, outcome.body, outcome.content_type, request_id)

    def _send(self, status: int, body: Any, content_type: str, request_id: str) -> None:
        if status == 204 or body is None:
            payload = b""
        elif isinstance(body, str):
            payload = body.encode("utf-8")
        else:
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        reason = self.responses.get(status, ("Error",))[0]
        head = [
            f"{self.protocol_version} {status} {reason}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            f"X-Request-Id: {request_id}",
        ]
        if status != 204:
            head += [f"Content-Type: {content_type}", f"Content-Length: {len(payload)}"]
        # Status line, headers and body leave in one write (one segment for small answers).
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)

    def _close(self, reset: bool) -> None:
        self.close_connection = True
        if reset:  # SO_LINGER 0: close() sends RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
