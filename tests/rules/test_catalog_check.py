"""The config against amoCRM's catalog: pipelines/statuses, fields/options, users."""

from __future__ import annotations

from typing import Any, Dict, List

from billmgr_amocrm.domain import Kind
from billmgr_amocrm.rules.catalog_check import check_against_catalog
from billmgr_amocrm.rules.presets import Presets

from .samples import make_config

PIPELINES: List[Dict[str, Any]] = [
    {"id": 10, "name": "Продажи", "is_archive": False, "_embedded": {"statuses": [
        {"id": 100, "type": 1, "pipeline_id": 10}, {"id": 101, "type": 0, "pipeline_id": 10},
        {"id": 142, "type": 0, "pipeline_id": 10}]}},
    {"id": 20, "name": "Старая", "is_archive": True, "_embedded": {"statuses": [
        {"id": 201, "type": 0, "pipeline_id": 20}]}},
]
FIELDS = {
    "leads": [{"id": 601, "type": "select", "enums": [{"id": 7001, "value": "Активна"},
                                                      {"id": 7002, "value": "Остановлена"}]},
              {"id": 602, "type": "date", "enums": None}, {"id": 902, "type": "text"}],
    Kind.COMPANY: [{"id": 501, "type": "text"}],
}
USERS = [{"id": 1, "rights": {"is_active": True}}, {"id": 2, "rights": {"is_active": False}}]


def codes(presets: Presets, users: Any = USERS, **sections: Any) -> List[Any]:
    issues = check_against_catalog(make_config(presets, **sections), FIELDS, PIPELINES, users)
    return [(i.path, i.code, i.rule_id) for i in issues]


def test_a_consistent_config_has_no_issues(presets: Presets) -> None:
    assert codes(presets, sync={"responsible_user_id": 1, "marker_field_ids": {"lead": 902}},
                 pipelines=[{"id": "p1", "pipeline_id": 10, "status_id": 101},
                            {"id": "p2", "pipeline_id": 10, "status_id": 142}],
                 fields=[{"id": "f1", "entity": "lead", "field_id": 601, "field_type": "select",
                          "value": "service.status", "enum_map": {"2": 7001, "3": "Остановлена"}},
                         {"id": "f2", "entity": "company", "field_id": 501, "field_type": "text",
                          "value": "payer.inn"}]) == []


def test_pipeline_and_status_problems(presets: Presets) -> None:
    assert codes(presets, pipelines=[
        {"id": "p1", "pipeline_id": 10, "status_id": 201},
        {"id": "p2", "pipeline_id": 10, "status_id": 100},
        {"id": "p3", "pipeline_id": 99, "status_id": 101},
        {"id": "p4", "pipeline_id": 20, "status_id": 201},
    ]) == [("pipelines.0.status_id", "status_not_in_pipeline", "p1"),
           ("pipelines.1.status_id", "status_unsorted", "p2"),
           ("pipelines.2.pipeline_id", "pipeline_missing", "p3"),
           ("pipelines.3.pipeline_id", "pipeline_archived", "p4")]


def test_field_problems(presets: Presets) -> None:
    assert codes(presets, sync={"marker_field_ids": {"lead": 999, "contact": 5}}, fields=[
        {"id": "f1", "entity": "lead", "field_id": 404, "field_type": "text", "value": "service.type"},
        {"id": "f2", "entity": "lead", "field_id": 602, "field_type": "text", "value": "service.type"},
        {"id": "f3", "entity": "lead", "field_id": 601, "field_type": "select", "value": "service.status",
         "enum_map": {"2": 7001, "4": 7777, "5": "Удалена"}},
    ]) == [("fields.0.field_id", "field_missing", "f1"),
           ("fields.1.field_type", "field_type_mismatch", "f2"),
           ("fields.2.enum_map.4", "option_missing", "f3"),
           ("fields.2.enum_map.5", "option_missing", "f3"),
           # contacts' catalog was not given: not checked
           ("sync.marker_field_ids.lead", "marker_field_missing", None)]


def test_a_url_field_deleted_in_amocrm_is_reported(presets: Presets) -> None:
    """Issue 17.4: every write of a contact or a lead would be refused while the link field is gone."""
    assert codes(presets, sync={"url_field_ids": {"lead": 999, "contact": 5}}) == [
        ("sync.url_field_ids.lead", "url_field_missing", None)]


def test_responsible_user_must_exist_and_be_active(presets: Presets) -> None:
    assert codes(presets, sync={"responsible_user_id": 2}) == [
        ("sync.responsible_user_id", "user_inactive", None)]
    assert codes(presets, sync={"responsible_user_id": 3}) == [
        ("sync.responsible_user_id", "user_missing", None)]


def test_a_renewal_rules_responsible_user_must_exist_and_be_active(presets: Presets) -> None:
    rules = [{"id": "r1", "text": "t", "responsible_user_id": 2}, {"id": "r2", "text": "t"},
             {"id": "r3", "text": "t", "responsible_user_id": 3}]
    assert codes(presets, renewals=rules) == [("renewals.0.responsible_user_id", "user_inactive", "r1"),
                                              ("renewals.2.responsible_user_id", "user_missing", "r3")]


def test_issues_speak_both_languages(presets: Presets) -> None:
    issue = check_against_catalog(make_config(presets, pipelines=[
        {"id": "p1", "pipeline_id": 10, "status_id": 100}]), FIELDS, PIPELINES, USERS)[0]
    assert "Неразобранное" in issue.message("ru") and "unsorted" in issue.message("en")


def test_advice_names_the_rule_what_is_wrong_and_what_to_fix(presets: Presets) -> None:
    issues = check_against_catalog(make_config(presets, sync={"responsible_user_id": 2}, pipelines=[
        {"id": "p7", "pipeline_id": 99, "status_id": 101}]), FIELDS, PIPELINES, USERS)
    advice = {i.code: (i.advice("en"), i.advice("ru")) for i in issues}
    en, ru = advice["pipeline_missing"]
    assert en.startswith("Pipeline rule p7 (pipelines.0.pipeline_id): pipeline 99 does not exist in amoCRM.")
    assert "Choose an existing pipeline" in en
    assert ru.startswith("Правило воронки p7 (pipelines.0.pipeline_id): воронки 99 нет в amoCRM.")
    en, ru = advice["user_inactive"]
    assert en.startswith("Sync settings (sync.responsible_user_id): amoCRM user 2 is deactivated.")
    assert "Choose an active amoCRM user" in en and "Выберите ответственным" in ru
