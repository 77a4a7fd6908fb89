"""The bytes a write puts on the wire: compact UTF-8 JSON, Cyrillic as itself, not \\uXXXX."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Iterator, List

import pytest

from billmgr_amocrm.bootstrap import build_amo_client
from billmgr_amocrm.paths import HostPaths

from .conftest import serving


@pytest.fixture
def received() -> Iterator[tuple]:
    bodies: List[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as url:
        yield url, bodies


def test_a_body_goes_as_compact_utf8_json_exactly(received: tuple, mgr5_root: object) -> None:
    url, bodies = received
    body = [{"name": "ООО «Ромашка» \u2028", "price": 1.5, "big": 12345678901234567890, "none": None,
             "custom_fields_values": [{"field_id": 7, "values": [{"value": "é"}]}], "ok": True}]
    client = build_amo_client(HostPaths(mgr5_root), base_url=url, timeout=(2.0, 2.0))  # type: ignore[arg-type]
    try:
        assert client.transport.send("POST", "/api/v4/contacts", json_body=body, token="t" * 20).status == 200
    finally:
        client.close()
    assert bodies == [json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")]
    assert b"\\u" not in bodies[0] and "Ромашка".encode() in bodies[0]
