"""Loading and saving amocrm.conf: defaults, errors with file and path, atomic 0600 save."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from billmgr_amocrm.paths import HostPaths
from billmgr_amocrm.rules.config import ModuleConfig, default_config
from billmgr_amocrm.rules.errors import ConfigError
from billmgr_amocrm.rules.presets import Presets
from billmgr_amocrm.settings import load, save_config
from billmgr_amocrm.settings.files import read_document
from tests.rules.samples import REPO, make_config


def load_config(paths: HostPaths) -> ModuleConfig:
    return load(paths).config


def _write_conf(root: Path, data: Any) -> Path:
    path = root / "etc" / "amocrm" / "amocrm.conf"
    path.write_text(json.dumps(data), "utf-8")
    return path


def test_the_shipped_default_config_loads_and_syncs_everything(mgr5_root: Path) -> None:
    (mgr5_root / "etc" / "amocrm" / "amocrm.conf").write_text(
        (REPO / "etc" / "amocrm" / "amocrm.conf.default").read_text("utf-8"), "utf-8")
    config = load_config(HostPaths(mgr5_root))
    assert config == default_config()
    assert config.sync.batch_size == 50 and config.sync.rate_limit <= 7


@pytest.mark.parametrize(("data", "path", "words"), [
    ({"conditions": {"lead": [{"id": "c1", "value": "service.nosuch", "validator": "equals",
                               "argument": "x"}]}},
     "conditions.lead.0.value", "unknown value 'service.nosuch'"),
    ({"conditions": {"lead": [{"id": "c1", "value": "client.email", "validator": "equals",
                               "argument": "x"}]}},
     "conditions.lead.0.value", "not a service value"),
    ({"tags": [{"id": "t1", "entity": "lead", "tag": "x", "conditions": [
        {"value": "service.type", "validator": "eq", "argument": "vds"}]}]},
     "tags.0.conditions.0.validator", "unknown validator 'eq'"),
    ({"tags": [{"id": "t1", "entity": "lead", "tag": "x", "conditions": [
        {"value": "service.param.domain", "validator": "regex", "argument": "("}]}]},
     "tags.0.conditions.0.argument", "invalid regular expression"),
    ({"pipelines": [{"id": "p1", "pipeline_id": 1, "status_id": 2, "conditions": [
        {"value": "service.cost", "validator": "greater", "argument": "lots"}]}]},
     "pipelines.0.conditions.0.argument", "not a valid number"),
    ({"pipelines": [{"id": "p1", "pipeline_id": 1, "status_id": 2, "conditions": [
        {"value": "service.type", "validator": "greater", "argument": "1"}]}]},
     "pipelines.0.conditions.0.argument", "does not apply to string"),
    ({"pipelines": [{"id": "p1", "pipeline_id": 1, "status_id": 2},
                    {"id": "p1", "pipeline_id": 1, "status_id": 3}]},
     "pipelines.1.id", "used twice"),
    ({"fields": [{"id": "f1", "entity": "company", "field_id": 5, "field_type": "text",
                  "value": "service.type"}]},
     "fields.0.value", "unknown payer value"),
    ({"fields": [{"id": "f1", "entity": "company", "field_id": 5, "field_type": "phone",
                  "value": "payer.inn"}]},
     "fields.0.field_type", "Input should be"),
    ({"sync": {"batch_size": 500}}, "sync.batch_size", "less than or equal to 250"),
    ({"auth": {"url": "http://evil.example.com"}}, "auth.url", "amocrm.ru"),
    ({"auth": {"client_secret": "s3cr3t-value"}}, "auth", "secrets live in their own"),
    ({"tags": [{"id": "bad id!", "entity": "lead", "tag": "x"}]}, "tags.0.id", "rule id must be"),
])
def test_config_errors_name_file_path_and_problem(mgr5_root: Path, data: Any, path: str, words: str) -> None:
    conf = _write_conf(mgr5_root, data)
    with pytest.raises(ConfigError) as caught:
        load_config(HostPaths(mgr5_root))
    assert caught.value.file == str(conf)
    assert [p.path for p in caught.value.problems] == [path]
    assert words in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_several_problems_are_reported_together(mgr5_root: Path) -> None:
    _write_conf(mgr5_root, {"tags": [
        {"id": "t1", "entity": "lead", "tag": "a", "conditions": [{"value": "x.y", "validator": "equals"}]},
        {"id": "t2", "entity": "contact", "tag": "b", "conditions": [
            {"value": "client.email", "validator": "empty", "argument": "no"}]}]})
    with pytest.raises(ConfigError) as caught:
        load_config(HostPaths(mgr5_root))
    assert [p.path for p in caught.value.problems] == ["tags.0.conditions.0.value",
                                                       "tags.1.conditions.0.argument"]


def test_save_writes_0600_atomically_and_loads_back(mgr5_root: Path, presets: Presets) -> None:
    paths = HostPaths(mgr5_root)
    config = make_config(presets, auth={"url": "https://shop.amocrm.ru", "client_id": "abc",
                                        "redirect_uri": "https://billing.example/billmgr"},
                         tags=[{"id": "t1", "entity": "lead", "tag": "vps", "conditions": [
                             {"value": "service.type", "validator": "equals", "argument": "vds"}]}])
    save_config(config, paths, presets)
    assert stat.S_IMODE(paths.amocrm_conf.stat().st_mode) == 0o600
    assert load_config(paths) == config
    assert [p.name for p in paths.amocrm_etc.iterdir() if p.name.endswith(".tmp")] == []


def test_a_refused_config_leaves_the_old_file_untouched(mgr5_root: Path, presets: Presets) -> None:
    paths = HostPaths(mgr5_root)
    save_config(default_config(), paths, presets)
    before = paths.amocrm_conf.read_bytes()
    broken = default_config().model_copy(update={"tags": (
        default_config().tags + tuple([make_config(presets, tags=[
            {"id": "t1", "entity": "lead", "tag": "x"}]).tags[0]] * 2))})
    with pytest.raises(ConfigError, match="used twice"):
        save_config(broken, paths, presets)
    assert paths.amocrm_conf.read_bytes() == before


def test_no_config_yet_means_the_defaults_and_a_missing_file_is_a_clear_error(mgr5_root: Path) -> None:
    paths = HostPaths(mgr5_root)
    assert load_config(paths) == default_config()
    with pytest.raises(ConfigError, match="amocrm.conf: file not found"):
        read_document(paths.amocrm_conf)
