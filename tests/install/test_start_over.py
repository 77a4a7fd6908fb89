"""An admin starts over: the module removed with its data, installed again, authorized again.

Through the installed copy's own executables, as an admin and cron run them: install,
authorize, cron's export; ``amocrm-install --uninstall --drop-data`` (the tables, etc/amocrm
and var/amocrm go; amoCRM keeps everything); install again, a new code for the same account,
a client edited meanwhile; cron's worker. amoCRM must end with each billing entity once,
bound to the entity it had before, and showing the edit (``sync/adopt.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from billmgr_amocrm.dbconf import DbSettings
from billmgr_amocrm.domain import KIND_ORDER, Kind
from tests.amocrm_emulator import EmulatorHandle
from tests.fixtures.database import SANDBOX_TODAY
from tests.install.conftest import Host
from tests.install.test_e2e import (
    CLIENTS,
    SEED,
    SERVICES,
    Rig,
    assert_everything_exported_once,
    billing_ids,
    links,
)
from tests.sandbox import Sandbox, create_sandbox

# Tests sharing one install must run on one xdist worker (make test uses --dist loadgroup).
pytestmark = pytest.mark.xdist_group("install-uninstall")


def authorize(rig: Rig) -> str:
    integ = rig.emulator.integration
    code = rig.emulator.control.auth_code(integ["client_id"])
    return rig.run(rig.host.sbin("amocrm"), "authorize", "--url", rig.emulator.url, "--client-id",
                   integ["client_id"], "--redirect-uri", integ["redirect_uri"], "--code", code,
                   stdin=integ["client_secret"] + "\n").stdout


def test_removed_with_its_data_and_installed_again_it_adopts_amocrms_entities_and_makes_none_twice(
        bare_host: Host, db_server: DbSettings, amocrm_emulator_factory: Callable[..., EmulatorHandle],
        tmp_path: Path) -> None:
    host = bare_host
    create_sandbox(host.db, clients=CLIENTS, services=SERVICES, seed=SEED, today=SANDBOX_TODAY,
                   create_db=False)
    host.install()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    sandbox = Sandbox(host.db)
    try:
        rig = Rig(host, sandbox, amocrm_emulator_factory(), cwd)
        assert "initial export requested" in authorize(rig)
        rig.worker()
        assert_everything_exported_once(rig)
        before = {kind: links(rig, kind) for kind in KIND_ORDER}
        held = {kind: len(rig.emulator.control.entities(kind.amo_entity)) for kind in KIND_ORDER}

        host.uninstall("--drop-data")
        assert not (host.root / "etc" / "amocrm" / "amocrm.conf").exists()
        assert not host.sql("SHOW TABLES LIKE 'amocrm\\_%%'")
        host.install()
        account = billing_ids(rig, Kind.CONTACT)[0]
        sandbox.edit_client(account, realname="Вернулся после переустановки")
        assert "initial export requested" in authorize(rig)
        rig.worker()

        assert_everything_exported_once(rig)   # each billing entity once in amoCRM, bound, queue empty
        assert {kind: links(rig, kind) for kind in KIND_ORDER} == before
        assert {kind: len(rig.emulator.control.entities(kind.amo_entity)) for kind in KIND_ORDER} == held
        [contact] = [e for e in rig.emulator.control.entities("contacts")
                     if e["id"] == before[Kind.CONTACT][account]]
        assert contact["name"] == "Вернулся после переустановки"
    finally:
        sandbox.close()
