"""The amoCRM client's errors carry a code and params, and every code reads well in Russian and English."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from billmgr_amocrm import error_texts
from billmgr_amocrm.errors import AmoError, ConfigError, Reauthorize, RetryLater
from billmgr_amocrm.service import translate
from tests.panel.language import assert_english, assert_russian

ADDON = Path(__file__).resolve().parents[2] / "addon" / "billmgr_amocrm"
ERROR_CLASSES = {"AmoError", "ConfigError", "RetryLater", "AmbiguousWriteError", "FixData", "Reauthorize",
                 "AuthorizationRefused", "Stop", "error_for"}
# What each parameter holds when the client raises (ids, URLs, paths, numbers; an entity's API name).
SAMPLE = {"url": "https://abc.amocrm.ru", "example": "https://yourcompany.amocrm.ru",
          "domains": "amocrm.ru, amocrm.com, kommo.com", "status": 400, "path": "/api/v4/leads",
          "pages": 1000, "method": "POST", "entity": "leads", "count": 3, "attempts": 3,
          "kind": "ReadTimeout",
          "target": "https://other.example.com", "mode": "0644", "holder": "12345 1795633500.123",
          "seconds": "60", "stored": "https://a.amocrm.ru", "configured": "https://b.amocrm.ru",
          "bound": "b.amocrm.ru", "until": "2027-12-01",
          "account": "trial.amocrm.ru",
          "next_probe": "2026-12-01 10:15:00", "reason": "amoCRM refused the refresh token"}


@pytest.mark.parametrize("code", sorted(error_texts.TEXTS))
def test_every_code_reads_wholly_in_each_language(code: str) -> None:
    assert set(error_texts.TEXTS[code]) == {"ru", "en"}
    assert_russian(error_texts.render(code, SAMPLE, "ru"))
    assert_english(error_texts.render(code, SAMPLE, "en"))
    assert "?" not in error_texts.render(code, SAMPLE, "en")   # every placeholder has its sample


def raised_errors() -> list[tuple[str, int, ast.Call]]:
    found = []
    for path in [*sorted((ADDON / "amocrm").glob("*.py")), *sorted((ADDON / "bootstrap").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ERROR_CLASSES:
                found.append((path.name, node.lineno, node))
    return found


def test_every_error_the_client_raises_carries_a_known_code() -> None:
    calls = raised_errors()
    assert len(calls) > 30
    for name, line, call in calls:
        keywords = {k.arg: k.value for k in call.keywords}
        assert "code" in keywords, f"{name}:{line} raises without a code"
        prose = [a for a in call.args if isinstance(a, (ast.Constant, ast.JoinedStr))]
        assert not prose, f"{name}:{line} passes prose instead of a code"
        code = keywords["code"]
        if isinstance(code, ast.Constant):
            assert code.value in error_texts.TEXTS, f"{name}:{line}: {code.value} has no text"
    for what in ("client_id", "secret", "code"):    # authorization.py builds these two
        assert f"{what}_empty" in error_texts.TEXTS and f"{what}_spaces" in error_texts.TEXTS


def test_the_message_is_rendered_from_the_code_and_says_where() -> None:
    error = RetryLater(code="server_error", params={"attempts": 3}, method="GET", path="/api/v4/users",
                       status=500, request_id="abc", detail="Внутренняя ошибка")
    assert error.message == "amoCRM server error after 3 attempts"
    assert str(error) == ("amoCRM server error after 3 attempts [GET /api/v4/users -> 500, X-Request-Id abc] "
                          "amoCRM says: Внутренняя ошибка")
    words = translate(error)
    assert_russian(words.message("ru"))
    assert_english(words.message("en"))          # amoCRM's own (Russian) words stay out of the page...
    assert "Внутренняя ошибка" in words.message_en   # ...and in the full English text (logs, command line)
    assert "X-Request-Id abc" in words.message("en")


def test_errors_without_a_code_are_described_by_their_kind() -> None:
    for error in (RetryLater("amoCRM is down"), Reauthorize("tokens gone"), ConfigError("bad"),
                  AmoError("?")):
        words = translate(error)
        assert_russian(words.message("ru"))
        assert str(error) in words.message("en")


def test_entities_are_named_in_russian() -> None:
    assert "сделки" in error_texts.render("link_refused", {"entity": "leads", "status": 400}, "ru")
    assert "leads" in error_texts.render("link_refused", {"entity": "leads", "status": 400}, "en")
