"""The export child measures the product's client: the configured rate and network margin.

Figure 2's export rows ran a client built from ``build_amo_client``'s defaults, so its limiter
counted a request as arrived 25 ms after it was sent while the grid's network took up to
50 ms one way: every export row saw 429s and the backlog rows (the product's own client)
none (issue 16). No database or emulator: the factory is given the parts of ``App`` it uses.
"""

from __future__ import annotations

import functools
import types
from pathlib import Path

from billmgr_amocrm.amocrm.models import TokenMeta
from billmgr_amocrm.amocrm.tokens import TokenSet, TokenStore
from billmgr_amocrm.bootstrap import App
from billmgr_amocrm.paths import HostPaths
from billmgr_amocrm.rules.config import ModuleConfig, SyncConfig
from tests.bench.export_child import UNTHROTTLED_RATE, amo_factory


def app_with(tmp_path: Path, margin: float) -> types.SimpleNamespace:
    paths = HostPaths(tmp_path)
    meta = TokenMeta(base_url="https://example.amocrm.ru", client_id="c", redirect_uri="https://x/",
                     issued_at=0.0, expires_at=1e12, refresh_issued_at=0.0)
    TokenStore(paths).write(TokenSet(access="a", refresh="r", meta=meta))
    app = types.SimpleNamespace(paths=paths, config=ModuleConfig(sync=SyncConfig(network_margin=margin)))
    app._amo_client = functools.partial(App._amo_client, app)
    return app


def test_the_export_childs_client_keeps_the_configured_network_margin(tmp_path: Path) -> None:
    client = amo_factory(app_with(tmp_path, 0.05), unthrottled=False, request_size=None)(250)
    assert client.transport.limiter.margin == 0.05
    assert client.transport.limiter.budget.capacity == 7
    assert client.chunk_size == 250


def test_unthrottled_and_one_entity_requests_keep_it_too(tmp_path: Path) -> None:
    client = amo_factory(app_with(tmp_path, 0.05), unthrottled=True, request_size=1)(250)
    assert client.transport.limiter.margin == 0.05
    assert client.transport.limiter.budget.capacity == int(UNTHROTTLED_RATE)
    assert client.chunk_size == 1
