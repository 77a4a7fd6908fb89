"""Fixtures for client tests: a real emulator over HTTP, a temp mgr5 root, an authorized module."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Iterator, Type

import pytest

from billmgr_amocrm import bootstrap
from billmgr_amocrm.amocrm import AmoClient, TokenInfo
from billmgr_amocrm.amocrm.backoff import Backoff
from billmgr_amocrm.amocrm.urls import LOOPBACK_ENV
from billmgr_amocrm.paths import HostPaths
from tests.amocrm_emulator import EmulatorHandle


@contextmanager
def serving(handler: Type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A plain HTTP server on a free loopback port answering with ``handler``; its base URL."""
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def authorize(url: str, client_id: str, secret: str, redirect_uri: str, code: str, paths: HostPaths,
              **kw: Any) -> TokenInfo:
    """``bootstrap.authorize`` (what ``service.authorize`` runs) with the arguments in the form's order."""
    return bootstrap.authorize(paths, url, client_id, secret, redirect_uri, code, **kw)


class FakeClock:
    """The client's clock; tests move it together with the emulator's."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Setup:
    emu: EmulatorHandle
    paths: HostPaths
    clock: FakeClock
    sleeps: list

    def client(self, **kw: Any) -> AmoClient:
        """A client with short timeouts and backoff (tests stay fast), on the fake clock."""
        kw.setdefault("timeout", (1.0, 1.0))
        kw.setdefault("backoff", Backoff(base=0.02, cap=0.1))
        return bootstrap.build_amo_client(self.paths, clock=self.clock, sleep=self._sleep, **kw)

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(min(seconds, 0.2))

    def jump(self, seconds: float) -> None:
        """Move both clocks: the emulator's (token expiry) and the client's."""
        self.emu.control.advance(seconds)
        self.clock.advance(seconds)

    def api_requests(self) -> list:
        return [r for r in self.emu.control.requests() if not r["path"].startswith("/_emulator")]


@pytest.fixture
def emu(amocrm_emulator: EmulatorHandle) -> EmulatorHandle:
    """The shared emulator fixture (tests/fixtures/emulator.py): a fresh account per test."""
    return amocrm_emulator


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOOPBACK_ENV, "1")


@pytest.fixture
def setup(emu: EmulatorHandle, mgr5_root: Any, loopback: None) -> Setup:
    """The module authorized against a fresh emulator account."""
    paths = HostPaths(mgr5_root)
    clock = FakeClock()
    i = emu.integration
    authorize(emu.url, i["client_id"], i["client_secret"], i["redirect_uri"], i["auth_code"], paths,
              clock=clock)
    return Setup(emu=emu, paths=paths, clock=clock, sleeps=[])
