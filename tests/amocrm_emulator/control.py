"""Drive an emulator from any process: ``EmulatorControl`` (HTTP client of ``/_emulator/``)
and ``start_emulator`` (in a thread or as a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import requests

REPO = Path(__file__).resolve().parents[2]


class EmulatorControl:
    """Thin client of the control API; every method is one HTTP call."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def _call(self, method: str, name: str, body: Any = None, params: Optional[Dict[str, Any]] = None) -> Any:
        response = self.session.request(
            method, f"{self.url}/_emulator/{name}", json=body, params=params, timeout=self.timeout
        )
        if response.status_code >= 400:
            raise RuntimeError(f"control {method} {name}: {response.status_code} {response.text}")
        return response.json()

    # state and logs
    def state(self) -> Dict[str, Any]:
        return self._call("GET", "state")

    def requests(self, since: int = 0) -> List[Dict[str, Any]]:
        return self._call("GET", "requests", params={"since": since})

    def rate_stats(self, window: float = 1.0) -> Dict[str, Any]:
        return self._call("GET", "rate_stats", params={"window": window})

    def max_requests_per_window(self, window: float = 1.0, accepted_only: bool = False) -> int:
        stats = self.rate_stats(window)
        return int(stats["max_accepted" if accepted_only else "max_all"])

    def entities(self, entity: str, include_deleted: bool = True) -> List[Dict[str, Any]]:
        records = self.state()["entities"][entity]
        return [r for r in records if include_deleted or not r["is_deleted"]]

    def token_grants(self, grant_type: str = "authorization_code") -> List[Dict[str, Any]]:
        """The logged requests to the token endpoint of ``grant_type`` (refused ones too), in order."""
        return [r for r in self.requests() if r["path"] == "/oauth2/access_token"
                and (r.get("body") or {}).get("grant_type") == grant_type]

    def refresh_token_uses(self) -> Dict[str, int]:
        """Per issued refresh token: how many times it was presented to the token endpoint."""
        return self.state()["token_stats"]["refresh_token_presentations"]

    def reset(self) -> Dict[str, Any]:
        return self._call("POST", "reset")["integration"]

    # clock
    def advance(self, seconds: float) -> float:
        return float(self._call("POST", "clock", {"advance": seconds})["now"])

    def set_time(self, timestamp: float) -> float:
        return float(self._call("POST", "clock", {"set": timestamp})["now"])

    def now(self) -> float:
        return float(self._call("POST", "clock", {})["now"])

    # OAuth
    def new_integration(self, redirect_uri: Optional[str] = None) -> Dict[str, Any]:
        body = {"redirect_uri": redirect_uri} if redirect_uri else {}
        return self._call("POST", "integration", body)

    def auth_code(self, client_id: Optional[str] = None) -> str:
        return str(
            self._call("POST", "auth_code", {"client_id": client_id} if client_id else {})["auth_code"]
        )

    def issue_tokens(self, client_id: Optional[str] = None) -> Dict[str, Any]:
        """A token pair issued directly (no code exchange, not logged as a request)."""
        return self._call("POST", "tokens", {"client_id": client_id} if client_id else {})

    def long_lived_token(self, seconds: int = 365 * 86400, client_id: Optional[str] = None) -> str:
        """A private integration's long-lived token, valid ``seconds`` on the emulator's clock."""
        body: Dict[str, Any] = {"seconds": seconds}
        if client_id:
            body["client_id"] = client_id
        return str(self._call("POST", "long_lived_token", body)["access_token"])

    def revoke_token(self, token: str) -> bool:
        """Revoke an access token as the integration's owner would in amoCRM."""
        return bool(self._call("POST", "revoke_token", {"token": token})["revoked"])

    # faults
    def add_fault(
        self,
        action: str = "status",
        path: str = ".*",
        method: str = "*",
        status: int = 0,
        delay: float = 0.0,
        count: Optional[int] = None,
        probability: float = 1.0,
    ) -> Dict[str, Any]:
        spec = {
            "action": action,
            "path": path,
            "method": method,
            "status": status,
            "delay": delay,
            "count": count,
            "probability": probability,
        }
        return self._call("POST", "faults", spec)[0]

    def seed_faults(self, seed: int) -> None:
        self._call("POST", "faults", {"seed": seed})

    def faults(self) -> List[Dict[str, Any]]:
        return self._call("GET", "faults")

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    # account switches
    def delete_entity(self, entity: str, entity_id: int) -> None:
        self._call("POST", "delete", {"entity": entity, "id": entity_id})

    def edit_by_hand(self, entity: str, entity_id: int, field_id: int, value: Any) -> Dict[str, Any]:
        """A person edits a custom field in amoCRM's UI (refused, RuntimeError 403, if it is API-only)."""
        return self._call("POST", "edit", {"entity": entity, "id": entity_id, "field_id": field_id,
                                           "value": value})

    def delete_custom_field(self, entity: str, field_id: int) -> None:
        """A custom field of ``entity`` (contacts, companies, leads) deleted in the UI."""
        self._call("POST", "delete", {"entity": "custom_fields", "entity_type": entity, "id": field_id})

    def delete_pipeline(self, pipeline_id: int) -> None:
        self._call("POST", "delete", {"entity": "pipelines", "id": pipeline_id})

    def delete_status(self, pipeline_id: int, status_id: int) -> None:
        self._call("POST", "delete", {"entity": "statuses", "pipeline_id": pipeline_id, "id": status_id})

    def deactivate_user(self, user_id: int) -> None:
        self._call("POST", f"users/{user_id}/deactivate")

    def activate_user(self, user_id: int) -> None:
        self._call("POST", f"users/{user_id}/activate")

    def set_rate(
        self,
        limit: Optional[int] = None,
        enabled: Optional[bool] = None,
        block_after: Optional[int] = None,
        block_window: Optional[float] = None,
    ) -> Dict[str, Any]:
        body = {
            k: v
            for k, v in {
                "limit": limit,
                "enabled": enabled,
                "block_after": block_after,
                "block_window": block_window,
            }.items()
            if v is not None
        }
        return self._call("POST", "rate", body)

    def block(self) -> None:
        self._call("POST", "block")

    def unblock(self) -> None:
        self._call("POST", "unblock")

    def set_paid(self, paid: bool) -> None:
        self._call("POST", "account", {"paid": paid})

    def set_search_lag(self, seconds: float) -> None:
        self._call("POST", "settings", {"search_lag": seconds})

    def set_deleted_patch_mode(self, mode: str) -> None:
        self._call("POST", "settings", {"deleted_patch_mode": mode})

    def set_latency(
        self,
        network_delay: Optional[Sequence[float]] = None,
        answer_delay: Optional[Sequence[float]] = None,
        read_delay: Optional[Sequence[float]] = None,
        write_delay: Optional[Sequence[float]] = None,
        seed: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Network and answer delays, ``[min, max]`` seconds each (see ``latency.py``); only the
        ones given change. ``answer_delay`` sets reads and writes; returns the new settings."""
        ranges = {
            "network_delay": network_delay,
            "answer_delay": answer_delay,
            "read_delay": read_delay,
            "write_delay": write_delay,
        }
        body: Dict[str, Any] = {k: list(v) for k, v in ranges.items() if v is not None}
        if seed is not None:
            body["delay_seed"] = seed
        return self._call("POST", "settings", body)


class EmulatorHandle:
    """A running emulator: ``url``, ``control``, ``integration`` (client_id, client_secret,
    redirect_uri, auth_code), ``emulator`` (the in-process object, None for a subprocess), ``stop()``."""

    def __init__(
        self,
        url: str,
        integration: Dict[str, Any],
        emulator: Any = None,
        process: Optional[subprocess.Popen[str]] = None,
    ) -> None:
        self.url = url
        self.integration = integration
        self.emulator = emulator
        self.process = process
        self.control = EmulatorControl(url)

    def tokens(self) -> Dict[str, Any]:
        """A fresh token pair (handy for tests that do not exercise the code exchange)."""
        return self.control.issue_tokens(self.integration["client_id"])

    def session(self) -> requests.Session:
        """A ``requests.Session`` already carrying a valid Bearer token."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.tokens()['access_token']}"
        return session

    def stop(self) -> None:
        self.control.session.close()
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_emulator(subprocess_mode: bool = False, **options: Any) -> EmulatorHandle:
    """Start an emulator; ``options`` are :class:`EmulatorOptions` fields (port, rate_limit,
    rate_limit_enabled, subdomain, state_file, search_lag, deleted_patch_mode, seed,
    network_delay, answer_delay, read_delay, write_delay, delay_seed, ...)."""
    if not subprocess_mode:
        from .server import Emulator, EmulatorOptions

        emulator = Emulator(EmulatorOptions(**options)).start()
        return EmulatorHandle(emulator.url, emulator.integration, emulator=emulator)
    args = [sys.executable, "-m", "tests.amocrm_emulator"]
    flags = {
        "port": "--port",
        "rate_limit": "--rate-limit",
        "subdomain": "--subdomain",
        "state_file": "--state-file",
        "block_after": "--block-after",
        "seed": "--seed",
        "delay_seed": "--delay-seed",
    }
    range_flags = {
        "network_delay": "--network-delay",
        "answer_delay": "--answer-delay",
        "read_delay": "--read-delay",
        "write_delay": "--write-delay",
    }
    for key, value in options.items():
        if key == "rate_limit_enabled":
            if not value:
                args.append("--no-rate-limit")
        elif key in flags:
            args += [flags[key], str(value)]
        elif key in range_flags:
            if value is not None:
                low, high = value
                args += [range_flags[key], str(low), str(high)]
        else:
            raise TypeError(f"option {key!r} is not available in subprocess mode")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=str(REPO), env=env)
    assert process.stdout is not None
    url = integration = None
    for line in process.stdout:
        if line.startswith("amoCRM emulator listening on "):
            url = line.split(" on ", 1)[1].strip()
        elif line.startswith("{"):
            integration = json.loads(line)
            break
    if url is None or integration is None:
        process.kill()
        raise RuntimeError("emulator subprocess did not start")
    return EmulatorHandle(url, integration, process=process)
