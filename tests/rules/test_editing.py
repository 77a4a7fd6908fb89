"""Panel editing API: add/update/delete/move by id, validation, describe, save/load round trip."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from billmgr_amocrm.paths import HostPaths
from billmgr_amocrm.rules.config import TagRule, default_config
from billmgr_amocrm.rules.editing import (
    add_rule,
    delete_rule,
    describe_rule,
    get_rule,
    list_rules,
    move_rule,
    update_rule,
)
from billmgr_amocrm.rules.errors import ConfigError, UnknownRuleError
from billmgr_amocrm.rules.presets import Presets
from billmgr_amocrm.settings import load, save_config

VDS = {"value": "service.type", "validator": "equals", "argument": "vds"}


def test_round_trip_through_save_and_load(mgr5_root: Path, presets: Presets) -> None:
    paths = HostPaths(mgr5_root)
    config, tag = add_rule(default_config(), "tags", {"entity": "lead", "tag": "vps", "conditions": [VDS]},
                           presets)
    config, cond = add_rule(config, "conditions.lead",
                            {"value": "service.status", "validator": "equals", "argument": "2"}, presets)
    config, first = add_rule(config, "pipelines", {"pipeline_id": 1, "status_id": 2}, presets)
    config, second = add_rule(config, "pipelines", {"pipeline_id": 3, "status_id": 4, "conditions": [VDS]},
                              presets)
    config = move_rule(config, "pipelines", second.id, 0, presets)
    config = update_rule(config, "tags", tag.id, {"entity": "lead", "tag": "vds", "conditions": [VDS]},
                         presets)
    save_config(config, paths, presets)
    assert stat.S_IMODE(paths.amocrm_conf.stat().st_mode) == 0o600

    loaded = load(paths).config
    assert loaded == config
    assert [r.id for r in list_rules(loaded, "pipelines")] == [second.id, first.id]
    assert get_rule(loaded, "tags", tag.id).tag == "vds"           # id kept across the update
    assert list_rules(loaded, "conditions.lead")[0].id == cond.id

    loaded = delete_rule(loaded, "tags", tag.id, presets)
    assert list_rules(loaded, "tags") == ()


def test_new_ids_are_unique_across_sections(presets: Presets) -> None:
    config = default_config()
    ids = set()
    for _ in range(20):
        config, rule = add_rule(config, "tags", {"entity": "contact", "tag": "x"}, presets)
        ids.add(rule.id)
    assert len(ids) == 20 and all(i.startswith("t") for i in ids)


def test_invalid_rules_are_refused_with_a_path_and_nothing_changes(presets: Presets) -> None:
    config, tag = add_rule(default_config(), "tags", {"entity": "lead", "tag": "ok"}, presets)
    with pytest.raises(ConfigError) as caught:
        add_rule(config, "tags", {"entity": "lead", "tag": "x", "conditions": [
            {"value": "service.cost", "validator": "greater", "argument": "abc"}]}, presets)
    assert [p.path for p in caught.value.problems] == ["tags.1.conditions.0.argument"]
    with pytest.raises(ConfigError, match="tags.0.conditions.0.value: not a client value"):
        update_rule(config, "tags", tag.id, {"entity": "contact", "tag": "x", "conditions": [VDS]}, presets)
    assert list_rules(config, "tags") == (tag,)


def test_unknown_ids_and_sections(presets: Presets) -> None:
    with pytest.raises(UnknownRuleError, match="tags: no rule with id 'nope'"):
        delete_rule(default_config(), "tags", "nope", presets)
    with pytest.raises(ConfigError, match="unknown section"):
        list_rules(default_config(), "tagz")


def test_describe_rules_in_both_languages(presets: Presets) -> None:
    tag = TagRule(id="t1", entity="lead", tag="vps", conditions=(VDS,))  # type: ignore[arg-type]
    assert describe_rule(tag, presets, "ru") == "Сделка: Тип услуги (внутреннее имя) равно vds → тег vps"
    assert describe_rule(tag, presets, "en") == "Lead: Service type (internal name) equals vds → tag vps"
    config, pipe = add_rule(default_config(), "pipelines", {"pipeline_id": 5, "status_id": 6, "conditions": [
        {"value": "service.status", "validator": "equals", "argument": "2"},
        {"value": "service.param.domain", "validator": "not_empty"}]}, presets)
    assert describe_rule(pipe, presets, "ru") == (
        "Состояние услуги равно 2 (Активна) и Доменное имя не пусто → воронка #5, этап #6")
    config, field = add_rule(config, "fields", {"entity": "company", "field_id": 9, "field_type": "text",
                                                "value": "payer.inn"}, presets)
    assert describe_rule(field, presets, "en") == "Company: Taxpayer id (INN) → field #9"
    _, always = add_rule(config, "tags", {"entity": "contact", "tag": "bm"}, presets)
    assert describe_rule(always, presets, "ru") == "Контакт: всегда → тег bm"
