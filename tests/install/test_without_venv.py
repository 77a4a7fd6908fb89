"""An installed copy whose virtualenv is gone (the distribution removed the Python it was built with).

The panel's saves must go on: the hook runs on the host's own Python from the core copy
(R/lib/amocrm/core/current), echoes the document byte for byte and spools the event. And the
admin can still drop the module's data: the drop runs from the same copy, not the venv.
"""

from __future__ import annotations

import json
import shutil

import pytest

from billmgr_amocrm.store.migrations import MODULE_TABLES
from tests.harness import run_addon
from tests.install.conftest import Host

pytestmark = pytest.mark.xdist_group("install-uninstall")

DOC = ('<?xml version="1.0" encoding="UTF-8"?>\n<doc lang="ru" func="service.postopen">'
       "<elid>77</elid><ok/><name>VDS «Тест» &amp; Co</name></doc>\n").encode()


def test_without_its_virtualenv_the_hook_still_records_and_the_data_can_still_be_dropped(
        bare_host: Host) -> None:
    host = bare_host
    host.install()
    lib = host.root / "lib" / "amocrm"
    shutil.rmtree(lib / "releases")
    (lib / "venv").unlink()
    assert not host.venv_python.exists() and not host.addon("billmgr_amocrm").exists()  # the link dangles

    run = run_addon(host.addon("amocrm_event"), {"func": "service.postopen", "elid": "77", "sok": "ok"}, DOC,
                    extra=host.env())

    assert (run.returncode, run.stdout, run.stderr) == (0, DOC, b"")
    spool = host.root / "var" / "amocrm" / "spool"
    (event,) = [json.loads(p.read_text()) for p in spool.glob("*.json")]
    assert (event["func"], event["elid"]) == ("service.postopen", "77")
    assert not (host.root / "var" / "amocrm_task.log").exists()   # nothing went wrong on the way

    proc = host.uninstall("--drop-data")

    assert sorted(proc.stdout.split("dropped: ")[1].split("\n")[0].split()) == sorted(MODULE_TABLES)
    assert [t for t in host.tables() if t.startswith("amocrm_")] == []
    assert not host.etc.exists() and not lib.exists()
