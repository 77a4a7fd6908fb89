"""amoCRM REST API v4 emulator (test infrastructure; never installed on a host).

Faithful to ``/work/shared/reference/amocrm-api.md``: OAuth with single-use codes
and refresh tokens, contacts/companies/leads with strict validation and the real
400 shapes, custom fields (paged by 50), tags, pipelines, links, users, notes, tasks,
7 req/s counted at arrival with HTML 429 and a 403 block, network and answer delays,
and fault injection. The base URL ``http://127.0.0.1:PORT`` stands for
``https://{subdomain}.amocrm.ru``.

In pytest (fixtures in ``tests/fixtures/emulator.py``)::

    def test_something(amocrm_emulator):                # fresh state, 7 req/s limit on
        emu = amocrm_emulator
        emu.url                                          # base URL for the client
        emu.integration   # {"client_id","client_secret","redirect_uri","auth_code"}
        tokens = emu.tokens()                            # or exchange emu.integration["auth_code"]
        emu.control.add_fault("status", path="^/api/v4/contacts$", method="POST",
                              status=502, probability=0.2)
        emu.control.state()["entities"]["contacts"]      # what amoCRM now holds

    def test_fast(amocrm_emulator_factory):
        emu = amocrm_emulator_factory(rate_limit_enabled=False, search_lag=5)

    def test_real_answer_times(amocrm_emulator_factory):
        emu = amocrm_emulator_factory(network_delay=(0, 0.2), answer_delay=(0.2, 2.0), delay_seed=3)
        emu.control.set_latency(write_delay=[0.5, 1.0])      # or change them while it runs
        emu.control.rate_stats()    # busiest second by arrival, per integration, and the 429s

From Python: ``with start_emulator(rate_limit=7) as emu: ...`` (thread) or
``start_emulator(subprocess_mode=True)``; from a shell:
``python -m tests.amocrm_emulator --port 8099``. Another process drives a running
emulator with ``EmulatorControl(url)`` (control API under ``/_emulator/``).

Module map: ``server`` (HTTP, pipeline, lifecycle), ``controlapi`` (the control API),
``latency`` (network and answer delays), ``requestlog`` (log, rate stats), ``api``
(routes; entities, complex, links), ``catalogs`` (account, users, pipelines, custom
fields, tags), ``notes``, ``tasks``, ``listing`` (paging, filters), ``entities``
(storage, rendering, search, links), ``validation`` (entity writes), ``checks`` (the
shared item checks and the two 400 shapes), ``oauth``, ``state`` + ``seed`` (account
data), ``faults``, ``ratelimit``, ``clock``, ``errors``, ``control`` (client + launcher).
"""

from __future__ import annotations

from .control import EmulatorControl, EmulatorHandle, start_emulator
from .server import Emulator, EmulatorOptions

__all__ = ["Emulator", "EmulatorControl", "EmulatorHandle", "EmulatorOptions", "start_emulator"]
