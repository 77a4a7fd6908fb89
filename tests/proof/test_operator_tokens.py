"""Operator scenarios 6 and 8 (issue 14, point 10): the OAuth pair over time and across an
admin's re-authorization, with the real worker; and 9: a private integration's long-lived
token instead of the pair, for most of a year and through its revocation.

amoCRM's refresh token lives 3 months and is single-use; the emulator models both (expired:
401 "Token has expired"; presented twice: 401 "Token has been revoked"). A module that let
the pair lapse, or kept using a pair the admin replaced, ends in the "re-authorize" state
and its save is never delivered: the audit (``missing``/``stale``) and the token checks fail.
"""

from __future__ import annotations

import json
import random
import re
import time
from typing import Any, Callable, Dict, List, Tuple

import pytest

from billmgr_amocrm.amocrm.tokens import TokenStore
from billmgr_amocrm.bootstrap import token_status
from billmgr_amocrm.domain import Kind
from billmgr_amocrm.foundation.exitstatus import ExitStatus
from tests.sandbox.generate import main_user_id

from .operator_rig import (
    Operator,
    clock_ahead,
    drained_by_worker,
    faketime_library,
    record_figures,
    wait_until,
)
from .support import USABLE_TOKEN_STATES, ProofRig, all_keys

DAY = 86400
IDLE_DAYS = 100
ENTITY_WRITE = re.compile(r"^/api/v4/(contacts|companies|leads)(/link)?$")
PRODUCTION_DUTIES = {"BILLMGR_AMOCRM_RECONCILE_EVERY": "3600"}   # the default cadence, not the rig's


def _grants(rig: ProofRig, since: int = 0) -> List[Dict[str, Any]]:
    return [(r.get("body") or {}) for r in rig.control.requests(since=since)
            if r["path"] == "/oauth2/access_token" and isinstance(r.get("body"), dict)]


def _last_seq(rig: ProofRig) -> int:
    return max((int(r["seq"]) for r in rig.control.requests()), default=0)


def _exported_under_cron(proof_rig_factory: Callable[..., ProofRig],
                         scenario: int) -> Tuple[ProofRig, Operator, str]:
    """A rig whose initial export cron has finished at day 0, its operator, and libfaketime (the
    scenario is skipped without it: it moves the worker's wall clock)."""
    library = faketime_library()
    if library is None:
        pytest.skip("libfaketime is not installed (Debian: apt-get install faketime; .ci/run installs it): "
                    f"scenario {scenario} moves the worker's wall clock with it")
    rig = proof_rig_factory()
    cron = Operator(rig.root)
    cron.once(PRODUCTION_DUTIES)
    while rig.depth():
        rig.make_due()
        cron.once(PRODUCTION_DUTIES)
    return rig, cron, library


def test_a_hundred_idle_days_under_cron_keep_the_refresh_token_alive(
        proof_rig_factory: Callable[..., ProofRig], scale: Any) -> None:
    """Scenario 6: after the export nothing changes for 100 days; cron runs ``amocrm_task --once``
    while the clock moves (every 5 days at CI scale, every 6 hours at full scale). Then a client
    is saved in the panel and cron delivers it without a new authorization.

    Checked by hand on 2026-12-06 with the keep-alive off (``BILLMGR_AMOCRM_KEEP_ALIVE_EVERY=1e12``):
    no refresh in the 100 days, and the last cron run exits 3 (not authorized: amoCRM answered
    "Token has expired" to the 100-day-old refresh token)."""
    started = time.monotonic()
    rig, cron, library = _exported_under_cron(proof_rig_factory, 6)
    since = _last_seq(rig)
    step = scale(5 * DAY, DAY // 4)
    ahead = runs = 0
    while ahead < IDLE_DAYS * DAY:
        ahead += step
        rig.control.set_time(time.time() + ahead)       # amoCRM's clock and the host's move together
        cron.once(dict(PRODUCTION_DUTIES, **clock_ahead(library, ahead)))
        runs += 1
    refreshes = [g for g in _grants(rig, since) if g.get("grant_type") == "refresh_token"]
    # the weekly keep-alive rotated the pair all along: never older than a week plus one step
    assert len(refreshes) >= IDLE_DAYS // (7 + step // DAY), len(refreshes)

    account = sorted(rig.links(Kind.CONTACT))[0]
    rig.sandbox.edit_client(account, realname="Клиент Сто Дней")
    cron.save(rig, (Kind.CONTACT, account), clock_ahead(library, ahead))
    cron.once(dict(PRODUCTION_DUTIES, **clock_ahead(library, ahead)))

    assert not any(g.get("grant_type") == "authorization_code" for g in _grants(rig, since)), \
        "the module was authorized again"
    assert max(rig.control.refresh_token_uses().values(), default=0) <= 1
    audit = rig.audit(all_keys(rig))                    # the saved client shows its new name
    assert audit.ok, audit.summary()
    record_figures(rig, started, idle_days=ahead // DAY, cron_runs=runs, refreshes=len(refreshes))


LONG_LIVED_DAYS = 300


def test_a_long_lived_token_under_cron_for_most_of_a_year_then_revoked_and_replaced(
        proof_rig_factory: Callable[..., ProofRig], scale: Any) -> None:
    """Scenario 9: after the export (by a code) the admin switches to a one-year long-lived token
    from the shell. For 300 days cron runs ``amocrm_task --once`` on a moving clock (every 10
    days at CI scale, every 18 hours at full scale) while a client is saved every 30 days: no
    token request of any kind. Then the owner revokes the token in amoCRM; two clients are
    saved; cron stops (exit 3, the re-authorize state, the saves kept); a new token from the
    shell, and the next cron run delivers them, once."""
    started = time.monotonic()
    rig, cron, library = _exported_under_cron(proof_rig_factory, 9)     # by the code's pair
    since = _last_seq(rig)
    token = rig.control.long_lived_token(365 * DAY)
    cron.cli("authorize", "--url", rig.emulator.url, "--long-lived-token-file", "-", stdin=token + "\n")
    accounts = _editable(rig, sorted(rig.links(Kind.CONTACT)))
    step = scale(10 * DAY, 3 * DAY // 4)
    ahead = runs = saves = 0
    next_save = 30 * DAY
    while ahead < LONG_LIVED_DAYS * DAY:
        ahead += step
        rig.control.set_time(time.time() + ahead)       # amoCRM's clock and the host's move together
        late = clock_ahead(library, ahead)
        if ahead >= next_save:
            next_save += 30 * DAY
            account = accounts[saves % len(accounts)]
            rig.sandbox.edit_client(account, realname=f"Клиент дня {ahead // DAY}")
            cron.save(rig, (Kind.CONTACT, account), late)
            saves += 1
        cron.once(dict(PRODUCTION_DUTIES, **late))
        runs += 1
    assert not _grants(rig, since), "a token was requested while a long-lived token was in use"
    assert not rig.depth()
    audit = rig.audit(all_keys(rig))                    # every save delivered, nothing twice
    assert audit.ok, audit.summary()

    stored = TokenStore(rig.paths).read()
    assert stored is not None and stored.meta.kind == "long_lived"
    assert rig.control.revoke_token(stored.access)      # the owner revoked it in amoCRM
    late = clock_ahead(library, ahead)
    for account in accounts[-2:]:
        rig.sandbox.edit_client(account, realname=f"Клиент после отзыва {account}")
        cron.save(rig, (Kind.CONTACT, account), late)
    cron.once(dict(PRODUCTION_DUTIES, **late), expect=ExitStatus.NOT_AUTHORIZED)
    state = token_status(rig.paths, clock=lambda: time.time() + ahead)
    assert state.state == "needs_reauth" and "long-lived token" in state.reason, state
    assert not rig.audit(all_keys(rig)).ok             # the two saves wait: nothing was lost, nothing sent

    fresh = rig.control.long_lived_token(365 * DAY)
    cron.cli("authorize", "--url", rig.emulator.url, "--long-lived-token-file", "-", stdin=fresh + "\n")
    cron.once(dict(PRODUCTION_DUTIES, **late))
    while rig.depth():
        rig.make_due()
        cron.once(dict(PRODUCTION_DUTIES, **late))
    assert not _grants(rig, since)
    audit = rig.audit(all_keys(rig))
    assert audit.ok, audit.summary()
    record_figures(rig, started, days=ahead // DAY, cron_runs=runs, saves=saves + 2, token_requests=0)


def _editable(rig: ProofRig, accounts: List[int]) -> List[int]:
    """The clients whose name the panel can edit (some sandbox accounts have no user)."""
    return [a for a in accounts if main_user_id(rig.sandbox.conn, a) is not None]


def _entity_writes(rig: ProofRig) -> int:
    return sum(1 for r in rig.control.requests() if r["method"] in ("POST", "PATCH")
               and ENTITY_WRITE.match(r["path"]))


def test_authorize_again_while_the_worker_drains_a_backlog(
        proof_rig_factory: Callable[..., ProofRig], scale: Any) -> None:
    """Scenario 8: the daemon drains the export (writes answered slowly) when the admin runs
    ``amocrm authorize`` with a fresh code; then the access tokens expire at amoCRM: the
    daemon must refresh with the NEW pair (the old refresh token is never presented)."""
    started = time.monotonic()
    rig = proof_rig_factory()
    admin = Operator(rig.root)
    admin.once()                                         # the initial export
    # the backlog: edits in small batches, one at a time, each write answered in 0.3 s (a
    # backlog of a few hundred rows is drained in seconds otherwise, before the admin is done)
    conf = json.loads(rig.paths.amocrm_conf.read_text(encoding="utf-8"))
    conf["sync"].update(batch_size=5, concurrency=1)
    rig.paths.amocrm_conf.write_text(json.dumps(conf, ensure_ascii=False), encoding="utf-8")
    rng = random.Random(8)
    for _ in range(scale(2, 30)):
        with rig.app.store.transaction():
            for n in range(50):
                rig.random_event(rng, rig.events + n)
    rig.control.add_fault("delay", path=ENTITY_WRITE.pattern, method="POST", delay=0.3)
    rig.control.add_fault("delay", path=ENTITY_WRITE.pattern, method="PATCH", delay=0.3)
    try:
        before = _entity_writes(rig)                     # the initial export's
        daemon = admin.start_daemon()
        wait_until(lambda: _entity_writes(rig) >= before + 3, 60, "the daemon's first writes")
        old = TokenStore(rig.paths).read()
        admin.authorize(rig)
        new = TokenStore(rig.paths).read()
        assert old is not None and new is not None and new.refresh != old.refresh
        backlog = rig.depth()
        assert backlog, "the backlog was drained before the authorization: the scenario proved nothing"
        rig.control.advance(DAY + 60)                    # every access token issued so far expires
        wait_until(drained_by_worker(rig), scale(180, 1200), "the daemon to drain the backlog")
        Operator.stop(daemon)
        rig.control.clear_faults()
        uses = rig.control.refresh_token_uses()
        assert uses.get(old.refresh, 0) == 0, "the replaced refresh token was presented"
        assert max(uses.values(), default=0) <= 1
        assert any(g.get("grant_type") == "refresh_token" for g in _grants(rig)), \
            "the daemon never met the expiry: the scenario proved nothing"
        assert token_status(rig.paths).state in USABLE_TOKEN_STATES, token_status(rig.paths)
        audit = rig.audit(all_keys(rig))
        assert audit.ok, audit.summary()
        record_figures(rig, started, pending_at_authorize=backlog)
    finally:
        admin.kill_all()
