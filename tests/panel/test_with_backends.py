"""The panel against the real parts: MariaDB (sandbox), the amoCRM emulator, the service facade.

One scenario per area keeps the number of sandboxes and handler processes small.
"""

from __future__ import annotations

import json
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict

import pytest
import requests
from lxml import etree

from billmgr_amocrm.db import connect
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.foundation.clock import local_day
from billmgr_amocrm.store.migrations import migrate
from billmgr_amocrm.store.store import MySqlStore
from tests.panel.support import assert_ok, error_text, golden, slist, ui

LOOPBACK = {"BILLMGR_AMOCRM_ALLOW_LOOPBACK": "1"}
REDIRECT = "https://billing.example.com/billmgr"


def settings_params(emulator: Any, integration: Dict[str, Any], **overrides: str) -> Dict[str, str]:
    params = {
        "sok": "ok",
        "url": emulator.url,
        "client_id": integration["client_id"],
        "client_secret": integration["client_secret"],
        "redirect_uri": REDIRECT,
        "code": integration["auth_code"],
    }
    params.update(overrides)
    return params


def test_settings_authorize_then_status_check_and_amocrm_backed_rule_forms(
    mgr5_root: Path, sandbox_db: Any, amocrm_emulator: Any
) -> None:
    integration = amocrm_emulator.control.new_integration(redirect_uri=REDIRECT)
    secret, code = integration["client_secret"], integration["auth_code"]

    opened = ui("amocrm.settings", env={"HTTP_HOST": "billing.example.com"})
    assert opened.findtext("client_secret") == "" and opened.findtext("code") == ""
    assert opened.findtext("redirect_uri") == REDIRECT  # suggested from the panel's own host
    golden("settings_open_new_ru", opened)

    # validation happens before anything is sent, with the field to fix
    wrong = {
        "url": ({"url": "https://evil.example.com"}, "ru"),
        "redirect_uri": ({"redirect_uri": "https://billing.example.com/other"}, "en"),
        "client_id": ({"client_id": "has spaces in it"}, "en"),
        "code": ({"code": ""}, "ru"),
        "client_secret": ({"client_secret": ""}, "en"),
    }
    for field, (override, lang) in wrong.items():
        doc = ui(
            "amocrm.settings",
            settings_params(amocrm_emulator, integration, **override),
            lang=lang,
            env=LOOPBACK,
        )
        assert doc.find("error") is not None and doc.find("error").get("object") == field, error_text(doc)
        answer = etree.tostring(doc)
        assert secret.encode() not in answer and code.encode() not in answer  # never echoed back
    golden(
        "settings_error_redirect_en",
        ui(
            "amocrm.settings",
            settings_params(amocrm_emulator, integration, redirect_uri="http://billing.example.com/billmgr"),
            lang="en",
            env=LOOPBACK,
        ),
        volatile_tags=("url", "client_id"),
    )

    saved = ui("amocrm.settings", settings_params(amocrm_emulator, integration), env=LOOPBACK)
    assert_ok(saved)
    etc = mgr5_root / "etc/amocrm"
    for name in ("client_secret", "access_token", "refresh_token"):
        assert stat.S_IMODE((etc / name).stat().st_mode) == 0o600
    assert (etc / "client_secret").read_text().strip() == secret

    reopened = ui("amocrm.settings", lang="en")
    assert reopened.findtext("client_secret") == ""
    placeholder = reopened.find("messages/msg[@name='placeholder_client_secret']")
    assert placeholder is not None and placeholder.text.startswith("saved")
    assert secret.encode() not in etree.tostring(reopened)

    # saved again with the same code (as after a set-up that stopped past the exchange): the
    # stored pair is that code's, so the save finishes with the stored secret, amoCRM not asked
    grants = len(amocrm_emulator.control.token_grants())
    again = ui(
        "amocrm.settings",
        settings_params(amocrm_emulator, integration, client_secret=""),
        lang="en",
        env=LOOPBACK,
    )
    assert_ok(again)
    assert len(amocrm_emulator.control.token_grants()) == grants

    # a code spent elsewhere is single-use: amoCRM's refusal shows in the form
    spent = amocrm_emulator.control.auth_code(integration["client_id"])
    assert requests.post(amocrm_emulator.url + "/oauth2/access_token", timeout=10, json={
        "client_id": integration["client_id"], "client_secret": secret, "grant_type": "authorization_code",
        "code": spent, "redirect_uri": REDIRECT}).status_code == 200
    refused = ui(
        "amocrm.settings",
        settings_params(amocrm_emulator, integration, client_secret="", code=spent),
        lang="en",
        env=LOOPBACK,
    )
    assert "code" in error_text(refused).lower()

    log = (mgr5_root / "var/amocrm_action.log").read_text()
    assert secret not in log and code not in log and spent not in log
    assert "changed=client_id,client_secret,code,redirect_uri,url result=ok" in log

    status = ui("amocrm.status")
    assert status.findtext("auth_state") == "авторизован"
    # the first export is asked for and no worker has run: the page says so, not "not started",
    # and that clients are first bound to the contacts the managers made
    assert status.findtext("export_progress") == (
        "сначала клиенты связываются с контактами, которые уже есть в amoCRM (тот же e-mail или телефон); "
        "запрошена, ждёт обработчика очереди (amocrm_task)")
    golden(
        "status_after_authorize_ru", status, volatile_tags=("queue_depth", "oldest_age", "export_progress")
    )

    checked = ui("amocrm.check", lang="en", env=LOOPBACK)
    assert checked.find("error") is None
    assert checked.findtext("result").startswith("amoCRM is reachable")
    golden("check_en", checked)

    # custom fields: the field list comes from amoCRM; a select field shows its options (setvalues)
    fields_form = ui("amocrm.fields.edit", {"kind": "contact"}, env=LOOPBACK)
    offered = slist(fields_form, "field_id")
    assert len(offered) > 50  # past amoCRM's first page of 50
    catalog = json.loads((mgr5_root / "var/amocrm/catalog.json").read_text())
    select = next(f for f in catalog["fields"]["contacts"] if f["type"] == "select" and f.get("enums"))
    option = select["enums"][0]["value"]
    sv = ui(
        "amocrm.fields.edit",
        {"sv_field": "field_id", "kind": "contact", "field_id": str(select["id"])},
        env=LOOPBACK,
    )
    assert option in sv.findtext("options")
    bad = ui(
        "amocrm.fields.edit",
        {
            "sok": "ok",
            "kind": "contact",
            "field_id": str(select["id"]),
            "value": "client.country",
            "enum_map": "RU = no such option",
        },
        env=LOOPBACK,
    )
    assert bad.find("error").get("object") == "enum_map"
    assert_ok(
        ui(
            "amocrm.fields.edit",
            {
                "sok": "ok",
                "kind": "contact",
                "field_id": str(select["id"]),
                "value": "client.country",
                "enum_map": f"RU = {option}",
            },
            env=LOOPBACK,
        )
    )
    config = json.loads((etc / "amocrm.conf").read_text())
    assert config["fields"][0]["field_type"] == "select"
    assert config["fields"][0]["enum_map"] == {"RU": select["enums"][0]["id"]}
    field_rule = config["fields"][0]["id"]
    reopened_field = ui("amocrm.fields.edit", {"elid": field_rule}, env=LOOPBACK)
    assert reopened_field.findtext("enum_map") == f"RU = {option}"
    assert reopened_field.findtext("field_id") == str(select["id"])
    fields_list = ui("amocrm.fields", lang="en")
    assert [e.findtext("id") for e in fields_list.findall("elem")] == [field_rule]
    assert fields_list.findtext("elem/field") == f"{select['id']} (select)"

    # pipelines: choosing a pipeline offers its statuses, never "unsorted"; a foreign status is refused
    first, second = catalog["pipelines"][:2]
    statuses = {s["id"]: s for s in first["_embedded"]["statuses"]}
    sv = ui(
        "amocrm.pipelines.edit", {"sv_field": "pipeline_id", "pipeline_id": str(first["id"])}, env=LOOPBACK
    )
    keys = {int(k) for k in slist(sv, "status_id") if k}
    assert keys == {sid for sid, s in statuses.items() if s["type"] != 1}
    foreign = next(s["id"] for s in second["_embedded"]["statuses"] if s["id"] not in statuses)
    refused = ui(
        "amocrm.pipelines.edit",
        {"sok": "ok", "pipeline_id": str(first["id"]), "status_id": str(foreign)},
        lang="en",
        env=LOOPBACK,
    )
    assert refused.find("error").get("object") == "status_id"
    chosen = sorted(keys)[0]
    assert_ok(
        ui(
            "amocrm.pipelines.edit",
            {
                "sok": "ok",
                "pipeline_id": str(first["id"]),
                "status_id": str(chosen),
                "c1_value": "service.event",
                "c1_validator": "equals",
                "c1_argument": "open",
            },
            env=LOOPBACK,
        )
    )
    listed = ui("amocrm.pipelines", lang="en")
    [rule] = json.loads((etc / "amocrm.conf").read_text())["pipelines"]
    assert [e.findtext("id") for e in listed.findall("elem")] == [rule["id"]]
    assert rule["status_id"] == chosen and rule["conditions"][0]["argument"] == "open"

    assert_ok(ui("amocrm.pipelines.delete", {"elid": rule["id"]}))
    assert_ok(ui("amocrm.fields.delete", {"elid": field_rule}))
    config = json.loads((etc / "amocrm.conf").read_text())
    assert config["pipelines"] == [] and config["fields"] == []
    assert config["auth"]["client_id"] == integration["client_id"]  # the rest of the file is untouched

    # amoCRM loses what the rules name: Check connection and the status say so, naming the rule
    sync_form = {"sok": "ok", "responsible_user_id": "504144", "rate_limit": "5", "batch_size": "50"}
    assert_ok(ui("amocrm.syncsettings", sync_form, env=LOOPBACK))
    tariff = next(f for f in catalog["fields"]["leads"] if f["name"] == "Тариф")
    assert_ok(ui("amocrm.fields.edit", {"sok": "ok", "kind": "lead", "field_id": str(tariff["id"]),
                                        "value": "service.param.domain"}, env=LOOPBACK))
    [tariff_rule] = json.loads((etc / "amocrm.conf").read_text())["fields"]
    amocrm_emulator.control.deactivate_user(504144)
    amocrm_emulator.control.delete_custom_field("leads", tariff["id"])
    found = ui("amocrm.check", lang="en", env=LOOPBACK).findtext("result")
    assert "amoCRM lacks what the rules name (2," in found
    assert "Sync settings (sync.responsible_user_id): amoCRM user 504144 is deactivated. Choose" in found
    assert f"Custom field rule {tariff_rule['id']} (fields.0.field_id): leads have no custom field" in found
    shown = ui("amocrm.status").findtext("catalog")   # the last catalog fetched: no network needed
    assert "пользователь amoCRM 504144 отключён" in shown and f"Правило поля {tariff_rule['id']}" in shown


@pytest.fixture
def store(sandbox_db: Any) -> Any:
    conn = connect()
    migrate(conn)
    store = MySqlStore(conn)
    store.conn_for_tests = conn
    yield store
    conn.close()


def test_bindings_list_pages_sorts_filters_and_runs_the_actions(mgr5_root: Path, store: Any) -> None:
    with store.transaction():
        cur = store.conn_for_tests.cursor()
        cur.execute("SELECT id FROM account ORDER BY id LIMIT 4")
        clients = [int(r[0]) for r in cur.fetchall()]
        cur.execute("SELECT id FROM item ORDER BY id LIMIT 1")
        service_id = int(cur.fetchone()[0])
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    store.put_links(Kind.CONTACT, [(client, 9000 + index) for index, client in enumerate(clients[:3])])
    store.record_synced_many(Kind.CONTACT, [(client, "") for client in clients[:3]], now)
    store.enqueue(Kind.LEAD, service_id, "open")
    store.enqueue(Kind.CONTACT, clients[3], "edit")
    [item] = [
        i for i in store.claim_after(Kind.CONTACT, 10, datetime.now(timezone.utc), None)
        if i.billmgr_id == clients[3]
    ]
    store.fail(item, "amoCRM refused the data: EMAIL is not valid")

    (mgr5_root / "etc/amocrm/amocrm.conf").write_text(
        json.dumps(
            {
                "version": 1,
                "auth": {"url": "https://demo.amocrm.ru", "client_id": "x", "redirect_uri": REDIRECT},
            }
        )
    )
    listed = ui("amocrm.bindings", {"p_sort": "billmgr_id", "p_order": "asc", "p_cnt": "2"}, lang="en")
    assert listed.findtext("p_elems") == "5" and len(listed.findall("elem")) == 2
    golden("bindings_page1_en", listed)
    first = listed.find("elem")
    assert (
        first.findtext("amocrm_url")
        == f"https://demo.amocrm.ru/contacts/detail/{first.findtext('amocrm_id')}"
    )
    page2 = ui("amocrm.bindings", {"p_sort": "billmgr_id", "p_order": "asc", "p_cnt": "2", "p_num": "2"})
    assert [e.findtext("billmgr_id") for e in page2.findall("elem")] != [
        e.findtext("billmgr_id") for e in listed.findall("elem")
    ]

    assert_ok(ui("amocrm.bindings.filter", {"sok": "ok", "state": "failed", "kind": "", "search": ""}))
    failed = ui("amocrm.bindings")
    assert [e.findtext("billmgr_id") for e in failed.findall("elem")] == [str(clients[3])]
    assert "EMAIL is not valid" in failed.find("elem").findtext("state")
    assert ui("amocrm.bindings.filter").findtext("state") == "failed"
    assert_ok(ui("amocrm.bindings.filter", {"sok": "ok", "state": "", "kind": "", "search": ""}))

    # resync queues, unlink forgets the link, retry revives the failed row
    assert_ok(ui("amocrm.resync", {"elid": f"contact:{clients[0]}, contact:{clients[1]}"}))
    assert ui("amocrm.resync", {"elid": "contact:1, robot:2"}).find("error").get("object") == "elid"
    assert ui("amocrm.resync", {"elid": ""}).find("error") is not None
    assert_ok(ui("amocrm.unlink", {"elid": f"contact:{clients[2]}"}))
    assert store.links(Kind.CONTACT, [clients[2]]) == {}
    summary = ui("amocrm.retry_failed")
    assert summary.findtext("summary").endswith(": 1")
    assert_ok(ui("amocrm.retry_failed", {"sok": "ok"}))
    assert store.queue_stats().failed_total == 0
    assert ui("amocrm.resync_all").findtext("summary")
    assert_ok(ui("amocrm.resync_all", {"sok": "ok"}))
    status = ui("amocrm.status", lang="en")
    assert status.findtext("auth_state") == "not configured"
    unauthorized = error_text(ui("amocrm.check", lang="en"))
    assert "not authorized" in unauthorized and "Internal error" not in unauthorized
    assert status.findtext("queue_depth") == "5"   # the unlink queued its client too

    log = (mgr5_root / "var/amocrm_action.log").read_text()
    assert f"func=amocrm.unlink elid=contact:{clients[2]}" in log and "result=unlinked 1" in log


def test_the_report_shows_thirty_days_with_their_counts_and_the_status_the_last_seven(
        mgr5_root: Path, store: Any) -> None:
    now = datetime.now(timezone.utc)
    store.count_daily({"contact": 3, "lead": 250, "failed": 1}, now)
    store.count_daily({"company": 2, "note": 4, "task": 1}, now - timedelta(days=2))
    store.count_daily({"contact": 9}, now - timedelta(days=40))          # outside both windows
    (mgr5_root / "etc/amocrm/amocrm.conf").write_text(json.dumps({"version": 1}))

    doc = ui("amocrm.report", lang="en")
    days = doc.findall("reportdata/days/elem")
    assert len(days) == 30
    assert [d.findtext("day") for d in days][-1] == f"{local_day(now):%Y-%m-%d}"
    today, two_days_ago = days[-1], days[-3]
    assert {c.tag: c.text for c in today} == {
        "day": f"{local_day(now):%Y-%m-%d}", "entities": "253", "contacts": "3", "companies": "0",
        "leads": "250", "notes": "0", "tasks": "0", "failed": "1"}
    assert (two_days_ago.findtext("companies"), two_days_ago.findtext("notes"),
            two_days_ago.findtext("tasks")) == ("2", "4", "1")
    assert sum(int(d.findtext("contacts") or 0) for d in days) == 3      # the 40-day-old count is out

    shown = ui("amocrm.status", lang="en").findtext("daily") or ""
    lines = shown.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{local_day(now):%Y-%m-%d}: contacts 3, companies 0, leads 250")
    assert "notes 4, tasks 1" in lines[1]
    ru = ui("amocrm.status", lang="ru").findtext("daily") or ""
    assert ru.startswith(f"{local_day(now):%d.%m.%Y}: контактов 3, компаний 0, сделок 250")


def test_a_long_lived_token_authorizes_from_the_settings_form_without_the_integration_keys(
    mgr5_root: Path, sandbox_db: Any, amocrm_emulator: Any
) -> None:
    control = amocrm_emulator.control
    token = control.long_lived_token(365 * 86400)
    opened = ui("amocrm.settings", lang="en")
    assert opened.findtext("long_lived_token") == ""
    only_token = {"sok": "ok", "url": amocrm_emulator.url, "client_id": "", "client_secret": "",
                  "redirect_uri": "", "code": ""}

    both = ui("amocrm.settings", dict(only_token, code="def50200abc", long_lived_token=token), lang="en",
              env=LOOPBACK)
    assert both.find("error") is not None and both.find("error").get("object") == "code"
    revoked = control.long_lived_token(30 * 86400)
    control.revoke_token(revoked)
    refused = ui("amocrm.settings", dict(only_token, long_lived_token=revoked), lang="en", env=LOOPBACK)
    error = refused.find("error")
    assert error is not None and error.get("object") == "long_lived_token", etree.tostring(refused)
    assert "refused the long-lived token" in error_text(refused)
    for answer in (both, refused):
        assert token.encode() not in etree.tostring(answer) and revoked.encode() not in etree.tostring(answer)
    assert not (mgr5_root / "etc/amocrm/access_token").exists()

    # pasted as the amoCRM page shows it, wrapped over lines
    saved = ui("amocrm.settings", dict(only_token, long_lived_token=f"{token[:60]}\n{token[60:]}"),
               env=LOOPBACK)
    assert_ok(saved)
    assert token.encode() not in etree.tostring(saved)
    etc = mgr5_root / "etc/amocrm"
    assert (etc / "access_token").read_text().strip() == token and (etc / "refresh_token").read_text() == "\n"
    assert stat.S_IMODE((etc / "access_token").stat().st_mode) == 0o600
    assert not (etc / "client_secret").exists()           # nothing else secret was needed
    assert not control.token_grants("authorization_code") and not control.token_grants("refresh_token")
    assert ui("amocrm.status", lang="en").findtext("auth_state") == "authorized"
    log = (mgr5_root / "var/amocrm_action.log").read_text()
    assert token not in log and revoked not in log
    assert "changed=long_lived_token,url result=ok" in log


def test_authorizing_another_account_while_bound_is_refused_at_the_url_field(
    mgr5_root: Path, sandbox_db: Any, amocrm_emulator: Any, amocrm_emulator_factory: Any
) -> None:
    first = amocrm_emulator.control.new_integration(redirect_uri=REDIRECT)
    assert_ok(ui("amocrm.settings", settings_params(amocrm_emulator, first), env=LOOPBACK))
    conn = connect(sandbox_db.settings)
    try:
        with conn.cursor() as cur:      # one client linked in the first account
            cur.execute("INSERT INTO amocrm_account2contact (billmgr_id, amocrm_id) VALUES (1, 4242)")
        conn.commit()
    finally:
        conn.close()
    other = amocrm_emulator_factory()
    second = other.control.new_integration(redirect_uri=REDIRECT)
    refused = ui("amocrm.settings", settings_params(other, second), lang="en", env=LOOPBACK)
    error = refused.find("error")
    assert error is not None and error.get("object") == "url", etree.tostring(refused)
    assert f"bound to amoCRM account {amocrm_emulator.url} (1 contact)" in error_text(refused)
    assert other.control.state()["auth_codes"][second["auth_code"]]["used"] is False
