"""Conditions that stop all traffic, shared by every process of the module.

``var/amocrm/client_state.json`` records at most two things:

* ``reauth``: the refresh token was revoked or the keys were refused; no request
  is sent until :func:`~billmgr_amocrm.amocrm.oauth.authorize` succeeds again.
* ``stop``: amoCRM answered 403 (account blocked) or 402 (unpaid). Every process
  stops sending; once per ``probe_interval`` (default 15 min, on the injected
  clock) exactly one request across all processes is let through as a probe; a
  success clears the stop, another 403/402 keeps it.

Writes are atomic and serialized by ``client_state.lock`` (:class:`..foundation.locks.FileLock`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from ..errors import Reauthorize, Stop
from ..foundation.files import write_atomic
from ..foundation.locks import FileLock

DEFAULT_PROBE_INTERVAL = 15 * 60.0


class ClientState:
    """The shared stop/re-authorize state of one host (``HostPaths.client_state``)."""

    def __init__(self, file: Path, *, clock: Callable[[], float] = time.time,
                 probe_interval: float = DEFAULT_PROBE_INTERVAL) -> None:
        self.file = file
        self.clock = clock
        self.probe_interval = probe_interval

    # ------------------------------------------------------------------ reading
    def read(self) -> Dict[str, Any]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # a damaged file must not stop the module; the next write repairs it
        return data if isinstance(data, dict) else {}

    def gate(self, *, bypass: bool = False) -> bool:
        """Raise if traffic is stopped; True when this request is the (single) probe of a stop."""
        if bypass or not self.file.exists():
            return False
        state = self.read()
        reauth = state.get("reauth")
        if reauth:
            # the cause's own code when it was recorded (its text says what to do), else the general one
            code = str(reauth.get("code") or "reauth_required")
            params = reauth.get("params") if isinstance(reauth.get("params"), dict) else {}
            raise Reauthorize(code=code, params={**params, "reason": str(reauth.get("reason", ""))})
        if not state.get("stop"):
            return False
        with self._locked():
            state = self.read()
            stop = state.get("stop")
            if not stop:
                return False
            now = self.clock()
            last = float(stop.get("last_probe") or stop.get("since") or 0)
            if now - last >= self.probe_interval:
                stop["last_probe"] = now
                self._write(state)
                return True
        reason = str(stop.get("reason", "blocked"))
        next_probe = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last + self.probe_interval))
        raise Stop(code="stopped_unpaid" if reason == "unpaid" else "stopped_blocked",
                   params={"next_probe": next_probe}, reason=reason, status=stop.get("status"),
                   detail=str(stop.get("detail", "")))

    # ------------------------------------------------------------------ writing
    def record_stop(self, reason: str, status: int, detail: str = "") -> None:
        with self._locked():
            state = self.read()
            now = self.clock()
            old = state.get("stop") or {}
            state["stop"] = {"reason": reason, "status": status, "detail": detail[:300],
                             "since": old.get("since", now), "last_probe": now}
            self._write(state)

    def clear_stop(self) -> None:
        self._drop("stop")

    def record_reauth(self, reason: str, code: str = "", params: Optional[Dict[str, Any]] = None) -> None:
        """Stop every request until the module is authorized again (``code``, ``params``: the cause)."""
        with self._locked():
            state = self.read()
            state["reauth"] = {"reason": reason[:300], "code": code, "params": dict(params or {}),
                               "since": self.clock()}
            self._write(state)

    def clear_reauth(self) -> None:
        self._drop("reauth")

    def _drop(self, key: str) -> None:
        if not self.file.exists():
            return
        with self._locked():
            state = self.read()
            if state.pop(key, None) is not None:
                self._write(state)

    def _write(self, state: Dict[str, Any]) -> None:
        write_atomic(self.file, json.dumps(state, ensure_ascii=False, sort_keys=True) + "\n")

    def _locked(self) -> FileLock:
        return FileLock(self.file.with_suffix(".lock"))
