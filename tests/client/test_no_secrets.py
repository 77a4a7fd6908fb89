"""No secret (client secret, codes, access/refresh tokens, a planted canary) reaches a log or an error."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, List

import pytest
import requests

from billmgr_amocrm.errors import AmoError
from billmgr_amocrm.logsetup import setup_logging

from .conftest import Setup, authorize

CANARY_SECRET = "CANARY-client-secret-5b1f0c9e7d"
CANARY_CODE = "CANARY-auth-code-93a7e1f4c2"


@pytest.fixture
def debug_log(setup: Setup) -> Iterator[str]:
    setup.paths.debug_conf.write_text("* 9\n")
    log_file = setup.paths.var / "amocrm_task.log"
    setup_logging("amocrm_task", log_file)
    yield str(log_file)
    logger = logging.getLogger("billmgr_amocrm")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def test_a_whole_life_cycle_leaks_no_secret(setup: Setup, debug_log: str) -> None:
    emu, i = setup.emu, setup.emu.integration
    messages: List[str] = []
    seen_access: List[str] = []

    def attempt(fn, *args, **kw) -> None:  # type: ignore[no-untyped-def]
        try:
            fn(*args, **kw)
        except AmoError as exc:
            messages.extend([str(exc), repr(exc), exc.detail])
        seen_access.append(setup.paths.access_token.read_text().strip())

    attempt(authorize, emu.url, i["client_id"], CANARY_SECRET, i["redirect_uri"], CANARY_CODE, setup.paths)
    attempt(authorize, emu.url, i["client_id"], i["client_secret"], i["redirect_uri"], i["auth_code"],
            setup.paths)                                           # a used code
    client = setup.client()
    setup.jump(86400)
    attempt(client.account)                                        # refresh
    emu.control.advance(2 * 86400)
    attempt(client.account)                                        # 401 -> refresh
    emu.control.add_fault("status", path="^/api/v4/users$", status=500)
    attempt(client.users)
    bad_field = [{"field_id": 1, "values": [{"value": 1}]}]
    attempt(client.create, "contacts", [{"name": "x", "request_id": "c-1",
                                          "custom_fields_values": bad_field}])
    stolen = setup.paths.refresh_token.read_text().strip()
    requests.post(emu.url + "/oauth2/access_token", timeout=5, json={
        "client_id": i["client_id"], "client_secret": i["client_secret"], "grant_type": "refresh_token",
        "refresh_token": stolen, "redirect_uri": i["redirect_uri"]})
    setup.jump(86400)
    attempt(client.account)                                        # revoked -> re-authorize
    attempt(client.account)
    emu.control.block()
    attempt(authorize, emu.url, i["client_id"], i["client_secret"], i["redirect_uri"],
            emu.control.auth_code(), setup.paths)

    state = emu.control.state()
    secrets = [CANARY_SECRET, CANARY_CODE, i["client_secret"], *state["refresh_tokens"], *state["auth_codes"],
               *seen_access]
    assert len(messages) >= 8 and len(set(seen_access)) >= 3
    log_text = Path(debug_log).read_text(encoding="utf-8")
    assert "refreshing the amoCRM token pair" in log_text          # the log is really written at debug
    haystack = log_text + "\n".join(messages)
    leaked = [s[:12] + "..." for s in secrets if s and s in haystack]
    assert leaked == []
