"""Proof scenarios (issue 7): CI runs them at a reduced scale, ``--full-scale`` at the full one.

    make proof                                   # pytest -q tests/proof --full-scale
    pytest -q tests/proof                        # CI scale (part of make test)

Fixtures: ``scale`` (picks the CI or the full number), ``proof_rig`` (an authorized module
over a sandbox BILLmanager and a fresh emulator, see ``support.ProofRig``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.client.conftest import emu, loopback, setup  # noqa: F401 - the client tests' rig, reused
from tests.fixtures.database import SANDBOX_TODAY

from .support import CI_CLIENTS, CI_SERVICES, ProofRig, open_rig


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--full-scale", action="store_true", default=False,
                     help="run the proof scenarios at full scale (10,000 events, 200 kills, ...)")


FULL_SCALE_TIMEOUT = 1800   # seconds per test at full scale (pyproject's default of 300 fits CI scale)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """At full scale a scenario may run for many minutes: lift pytest-timeout's default for them."""
    if not config.getoption("--full-scale"):
        return
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.timeout(FULL_SCALE_TIMEOUT))


class Scale:
    """``scale(ci, full)``: the number for this run."""

    def __init__(self, full: bool) -> None:
        self.full = full

    def __call__(self, ci: int, full: int) -> int:
        return full if self.full else ci


@pytest.fixture
def scale(request: pytest.FixtureRequest) -> Scale:
    return Scale(bool(request.config.getoption("--full-scale")))


@pytest.fixture
def proof_rig_factory(fresh_db: Any, mgr5_root: Path, amocrm_emulator_factory: Callable[..., Any],
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ProofRig]]:
    """Build the rig with options: ``clients``, ``services``, emulator options (``search_lag``...)."""
    rigs: list[ProofRig] = []

    def factory(clients: int = CI_CLIENTS, services: int = CI_SERVICES, **emulator_options: Any) -> ProofRig:
        monkeypatch.setenv("BILLMGR_AMOCRM_ALLOW_LOOPBACK", "1")
        emulator = amocrm_emulator_factory(**emulator_options)
        rig = open_rig(fresh_db, mgr5_root, emulator, clients=clients, services=services,
                       today=SANDBOX_TODAY)
        rigs.append(rig)
        return rig

    yield factory
    for rig in rigs:
        rig.close()


@pytest.fixture
def proof_rig(proof_rig_factory: Callable[..., ProofRig]) -> ProofRig:
    return proof_rig_factory()
