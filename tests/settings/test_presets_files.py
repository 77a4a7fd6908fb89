"""Loading the presets files: presets.custom adds and overrides; errors name file, path and problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billmgr_amocrm.paths import HostPaths
from billmgr_amocrm.rules.errors import ConfigError
from billmgr_amocrm.rules.presets import Presets
from billmgr_amocrm.settings import load


def load_presets(paths: HostPaths) -> Presets:
    return load(paths).presets


def _write(root: Path, name: str, data: object) -> None:
    (root / "etc" / "amocrm" / name).write_text(json.dumps(data), "utf-8")


def test_custom_presets_add_values_and_fixed_argument_validators(mgr5_root: Path) -> None:
    _write(mgr5_root, "presets.custom", {
        "values": {"service": {"param.ostempl": {"type": "string", "path": "param.ostempl",
                                                  "label": {"ru": "ОС", "en": "OS"}}}},
        "validators": {"ru_zone": {"operator": "regex", "takes_argument": False, "argument": r"\.ru$",
                                   "label": {"ru": "в зоне .ru", "en": "in .ru zone"}}},
    })
    presets = load_presets(HostPaths(mgr5_root))
    assert presets.value("service.param.ostempl").path == "param.ostempl"
    check = presets.compile("service.param.domain", "ru_zone", None)
    assert check.holds({"param.domain": "shop.RU"}) and not check.holds({"param.domain": "shop.com"})
    assert presets.value("service.type").type == "string"  # defaults survive the merge


def test_custom_presets_override_a_default_entry_whole(mgr5_root: Path) -> None:
    _write(mgr5_root, "presets.custom", {"values": {"service": {"type": {
        "type": "enum", "path": "type", "label": {"ru": "Вид", "en": "Kind"},
        "options": {"vds": {"ru": "VPS", "en": "VPS"}}}}}})
    presets = load_presets(HostPaths(mgr5_root))
    assert presets.value("service.type").label.ru == "Вид"
    assert presets.value("service.type").option_label("vds", "ru") == "VPS"


@pytest.mark.parametrize(("custom", "path", "words"), [
    ({"values": {"service": {"domain": {"type": "text", "path": "param.domain",
                                        "label": {"ru": "a", "en": "b"}}}}},
     "values.service.domain.type", "Input should be"),
    ({"values": {"service": {"x": {"type": "string", "path": "nosuch", "label": {"ru": "a", "en": "b"}}}}},
     "values.service.x.path", "not an attribute of a service"),
    ({"values": {"service": {"x": {"type": "enum", "path": "status", "label": {"ru": "a", "en": "b"}}}}},
     "values.service.x.options", "needs its options"),
    ({"validators": {"v": {"operator": "regex", "takes_argument": False, "argument": "(a+)+",
                           "label": {"ru": "a", "en": "b"}}}},
     "validators.v.argument", "repeated group"),
    ({"validators": {"v": {"operator": "greater", "takes_argument": False,
                           "label": {"ru": "a", "en": "b"}}}},
     "validators.v.argument", "needs an argument"),
    ({"validators": {"v": {"operator": "contains", "takes_argument": True, "types": ["date"],
                           "label": {"ru": "a", "en": "b"}}}},
     "validators.v.types", "does not apply to date"),
    ({"valuez": {}}, "valuez", "Extra inputs"),
])
def test_bad_custom_presets_name_file_path_and_problem(mgr5_root: Path, custom: object, path: str,
                                                       words: str) -> None:
    _write(mgr5_root, "presets.custom", custom)
    with pytest.raises(ConfigError) as caught:
        load_presets(HostPaths(mgr5_root))
    assert caught.value.file == str(mgr5_root / "etc" / "amocrm" / "presets.custom")
    assert [p.path for p in caught.value.problems] == [path]
    assert words in str(caught.value)


def test_json_syntax_error_gives_line_and_column(mgr5_root: Path) -> None:
    (mgr5_root / "etc" / "amocrm" / "presets.custom").write_text('{"values": {\n  "service": ,}}', "utf-8")
    with pytest.raises(ConfigError, match=r"presets.custom: not valid JSON: .* line 2 column 14"):
        load_presets(HostPaths(mgr5_root))


def test_duplicate_keys_are_refused_not_silently_merged(mgr5_root: Path) -> None:
    (mgr5_root / "etc" / "amocrm" / "presets.custom").write_text(
        '{"validators": {}, "validators": {}}', "utf-8")
    with pytest.raises(ConfigError, match="'validators' appears twice"):
        load_presets(HostPaths(mgr5_root))


def test_missing_presets_default_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="presets.default: file not found"):
        load_presets(HostPaths(tmp_path))
