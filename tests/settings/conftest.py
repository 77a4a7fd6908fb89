from __future__ import annotations

import pytest

from billmgr_amocrm.rules.presets import Presets
from tests.rules.samples import shipped_presets


@pytest.fixture(scope="session")
def presets() -> Presets:
    return shipped_presets()
