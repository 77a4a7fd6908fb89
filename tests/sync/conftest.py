"""Integration set-up: sandbox BILLmanager (MariaDB) + emulator + an authorized module."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from billmgr_amocrm import service
from billmgr_amocrm.bootstrap import App, build


@dataclass
class Rig:
    root: Path
    sandbox: Any
    emulator: Any
    app: App

    def entities(self, entity: str) -> list[dict[str, Any]]:
        return self.emulator.control.entities(entity, include_deleted=False)

    def marker_counts(self, entity: str) -> dict[str, int]:
        """marker value -> how many live amoCRM entities carry it (duplicates show as > 1)."""
        field_ids = set(self.app.marker_fields().values())
        counts: dict[str, int] = {}
        for record in self.entities(entity):
            for cf in record.get("custom_fields_values") or []:
                if cf.get("field_id") in field_ids:
                    value = cf["values"][0]["value"]
                    counts[value] = counts.get(value, 0) + 1
        return counts


@pytest.fixture
def rig(sandbox_db: Any, amocrm_emulator_factory: Any, mgr5_root: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """An authorized module (service.authorize, as the settings form does) over a seeded sandbox."""
    monkeypatch.setenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", "1")
    emulator = amocrm_emulator_factory(search_lag=30)
    default_conf = Path(__file__).resolve().parents[2] / "etc" / "amocrm" / "amocrm.conf.default"
    (mgr5_root / "etc" / "amocrm" / "amocrm.conf").write_text(default_conf.read_text(encoding="utf-8"))
    integ = emulator.integration
    service.authorize(emulator.url, integ["client_id"], integ["client_secret"], integ["redirect_uri"],
                      integ["auth_code"])
    app = build()
    try:
        yield Rig(mgr5_root, sandbox_db, emulator, app)
    finally:
        app.close()
