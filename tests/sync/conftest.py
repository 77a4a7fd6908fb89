"""Integration set-up: sandbox BILLmanager (MariaDB) + emulator + an authorized module."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import pytest

from billmgr_amocrm import service
from billmgr_amocrm.bootstrap import App, build
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.markers import marker_identity


@dataclass
class Rig:
    root: Path
    sandbox: Any
    emulator: Any
    app: App

    def entities(self, entity: str) -> list[dict[str, Any]]:
        return self.emulator.control.entities(entity, include_deleted=False)

    def link(self, kind: Kind, billmgr_id: int) -> Optional[int]:
        return self.app.store.links(kind, [billmgr_id]).get(billmgr_id)

    def all_links(self, kind: Kind) -> dict[int, int]:
        return self.app.store.links(kind, list(range(1, 100000)))

    def tag_names(self, entity: str, amocrm_ids: Iterable[int]) -> dict[int, set[str]]:
        """amoCRM id -> the tags amoCRM shows on it, read through the API as a manager's screen shows them."""
        ids = sorted(set(amocrm_ids))
        held = self.app.amo().get(entity, ids)
        return {i: {t["name"] for t in held[i]["_embedded"]["tags"]} for i in ids}

    def entity(self, entity: str, amocrm_id: int) -> dict[str, Any]:
        (found,) = [e for e in self.entities(entity) if e["id"] == amocrm_id]
        return found

    def sync(self) -> Any:
        """One worker pass in this process (what ``amocrm sync`` does)."""
        return service.sync_now(app=self.app)

    def make_due(self) -> None:
        """Skip the backoff: every pending row is due now (the test plays the clock)."""
        with self.app.conn.cursor() as cur:
            cur.execute("UPDATE amocrm_queue SET next_attempt_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND")
        self.app.conn.commit()

    def request_seq(self) -> int:
        log = self.emulator.control.requests()
        return int(log[-1]["seq"]) if log else 0

    def requests_since(self, seq: int, method: str = "", path: str = "") -> list[dict[str, Any]]:
        return [r for r in self.emulator.control.requests(since=seq)
                if (not method or r["method"] == method) and (not path or r["path"] == path)]

    def add_rule(self, section: str, rule: dict[str, Any]) -> str:
        """Add a rule through the rules editing API and save a real amocrm.conf, as the panel does."""
        from billmgr_amocrm.rules.editing import add_rule
        from billmgr_amocrm.settings import save_config

        config, added = add_rule(self.app.config, section, rule, self.app.presets)
        save_config(config, self.app.paths, self.app.presets)
        self.app.reload_rules()
        return str(added.id)

    def delete_rule(self, section: str, rule_id: str) -> None:
        from billmgr_amocrm.rules.editing import delete_rule
        from billmgr_amocrm.settings import save_config

        config = delete_rule(self.app.config, section, rule_id, self.app.presets)
        save_config(config, self.app.paths, self.app.presets)
        self.app.reload_rules()

    def marker_counts(self, entity: str) -> dict[str, int]:
        """marker value -> how many live amoCRM entities carry it (duplicates show as > 1)."""
        field_ids = set(self.app.marker_fields().values())
        counts: dict[str, int] = {}
        for record in self.entities(entity):
            for cf in record.get("custom_fields_values") or []:
                if cf.get("field_id") in field_ids:
                    value = marker_identity(str(cf["values"][0]["value"]))
                    counts[value] = counts.get(value, 0) + 1
        return counts


@pytest.fixture
def emulator(sandbox_db: Any, amocrm_emulator_factory: Any, mgr5_root: Path,
             monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh emulator account beside a seeded sandbox, the module not yet authorized."""
    monkeypatch.setenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", "1")
    return amocrm_emulator_factory()


@pytest.fixture
def rig(sandbox_db: Any, amocrm_emulator_factory: Any, mgr5_root: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """An authorized module (service.authorize, as the settings form does) over a seeded sandbox."""
    monkeypatch.setenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", "1")
    emulator = amocrm_emulator_factory(search_lag=30)
    default_conf = Path(__file__).resolve().parents[2] / "etc" / "amocrm" / "amocrm.conf.default"
    # the tests play the clock (make_due): an unanswered create is looked up as soon as it is due;
    # the settle_after wait itself is tested with its own value
    conf = default_conf.read_text(encoding="utf-8").replace('"settle_after": 60.0', '"settle_after": 0.0')
    assert '"settle_after": 0.0' in conf
    (mgr5_root / "etc" / "amocrm" / "amocrm.conf").write_text(conf, encoding="utf-8")
    integ = emulator.integration
    service.authorize(emulator.url, integ["client_id"], integ["client_secret"], integ["redirect_uri"],
                      integ["auth_code"])
    app = build()
    try:
        yield Rig(mgr5_root, sandbox_db, emulator, app)
    finally:
        app.close()
