"""Shared helpers for the emulator's own tests: an emulator without rate limiting and an API client."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import pytest
import requests

from tests.amocrm_emulator import EmulatorHandle


class Api:
    """Authorized calls to one emulator, paths relative to the base URL."""

    def __init__(self, handle: EmulatorHandle) -> None:
        self.handle = handle
        self.base = handle.url
        self.http = handle.session()

    def get(self, path: str, params: Optional[Any] = None) -> requests.Response:
        return self.http.get(self.base + path, params=params, timeout=10)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.http.post(self.base + path, json=body, timeout=10)

    def patch(self, path: str, body: Any) -> requests.Response:
        return self.http.patch(self.base + path, json=body, timeout=10)

    def create(self, entity: str, items: Any) -> Any:
        response = self.post(f"/api/v4/{entity}", items)
        assert response.status_code == 200, response.text
        return response.json()["_embedded"][entity]

    def field_id(self, entity: str, code_or_name: str) -> int:
        fields = self.handle.control.state()["custom_fields"][entity]
        return next(f["id"] for f in fields if code_or_name in (f["code"], f["name"]))


@pytest.fixture
def emu(amocrm_emulator_factory: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    return amocrm_emulator_factory(rate_limit_enabled=False)


@pytest.fixture
def api(emu: EmulatorHandle) -> Api:
    return Api(emu)


def validation_errors(response: requests.Response) -> Dict[str, Any]:
    """``{path: code}`` of a validation-errors 400 (all items merged)."""
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["detail"] == "Request validation failed"
    return {e["path"]: e["code"] for item in body["validation-errors"] for e in item["errors"]}


def validation_errors_by_item(response: requests.Response) -> Dict[str, Dict[str, str]]:
    """``{request_id: {path: code}}`` of a validation-errors 400."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["detail"] == "Request validation failed"
    return {
        item["request_id"]: {e["path"]: e["code"] for e in item["errors"]}
        for item in body["validation-errors"]
    }
