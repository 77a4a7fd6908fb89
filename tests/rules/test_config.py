"""amocrm.conf's schema: what hand-written JSON may say."""

from __future__ import annotations

from billmgr_amocrm.rules.presets import Presets

from .samples import make_config


def test_numeric_arguments_in_hand_written_json_are_accepted(presets: Presets) -> None:
    config = make_config(presets, conditions={"lead": [
        {"id": "c1", "value": "service.status", "validator": "equals", "argument": 2}]})
    assert config.conditions.lead[0].argument == "2"
