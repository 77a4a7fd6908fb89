"""Scenario 9: a property-based state machine over the whole module.

Hypothesis drives panel-like changes in the sandbox BILLmanager (clients created and edited,
legal payers added, renamed and switched 2 -> 1 -> 2, services opened, prolonged and edited),
each queued as the hook would queue it, interleaved with worker passes, injected amoCRM
faults (transient 5xx, lost create answers, read timeouts), token expiry, and real worker
crashes: ``sbin/amocrm_task --once`` started as cron starts it and SIGKILLed after a drawn
delay (a real subprocess, so the crash can land between amoCRM's answer and the link
commit). After a final drain of every example the invariants are checked:

* at most one amoCRM entity per BILLmanager entity (by the marker field), every link live
  and carrying its own marker;
* amoCRM shows the latest state (name and price of the latest edit) of everything touched;
* every event is done or failed with a reason (nothing pending, no silent drop);
* never more than 7 requests in any 1-second window; every refresh token presented once;
* no secret (client secret, any access or refresh token seen, the auth code) in any log or
  worker output.

One sandbox database and one emulator serve all examples (building them is the slow part):
"resetting" an example means clearing the faults; each example creates its own clients,
payers and services, so their ids (and markers) are new, and the global invariants
(duplicates, links, rate, tokens, secrets) are checked over everything, old examples
included. CI: a few short examples, no shrinking; ``--full-scale``: many more and longer.
"""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any, Callable, List, Set

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from billmgr_amocrm.domain import Kind

from .support import IN_FLIGHT, READ_TIMEOUT, REPO, Key, ProofRig

AMOCRM_LIMIT = 7
WORKER = [sys.executable, str(REPO / "sbin" / "amocrm_task"), "--once"]
# A restarted worker comes back after the writes a crashed one left in flight have landed
# (cron starts it a minute later, systemd after RestartSec): the longest injected delay.
RESTART_GAP = READ_TIMEOUT + IN_FLIGHT + 0.2
SECRET_FILES = ("client_secret", "access_token", "refresh_token")

# Names as admins and clients type them: quotes, backslashes, SQL-looking text, Cyrillic.
NAME_TEXT = st.text(alphabet="абвгдеёжАБВ abcXYZ'\"\\;-%_0123", min_size=1, max_size=16)

FAULTS = {
    "5xx": lambda c, n: [c.add_fault("status", path="^/api/v4/", status=s, count=n) for s in (502, 503)],
    "500-on-write": lambda c, n: c.add_fault("status", path="^/api/v4/(contacts|companies|leads)",
                                             method="POST", status=500, count=n),
    "lost-create": lambda c, n: c.add_fault("drop", path="^/api/v4/(contacts|companies|leads)$",
                                            method="POST", count=n),
    "504-after-commit": lambda c, n: c.add_fault("after_commit", path="^/api/v4/(contacts|companies|leads)$",
                                                 method="POST", status=504, count=n),
    "timeout": lambda c, n: c.add_fault("delay", path="^/api/v4/(contacts|companies|leads)",
                                        delay=READ_TIMEOUT + IN_FLIGHT, count=n),
    "token-5xx": lambda c, n: c.add_fault("status", path="^/oauth2/access_token$", status=502, count=1),
}


def every_log_text(rig: ProofRig) -> str:
    chunks = []
    for path in rig.root.rglob("*"):
        if path.is_file() and path.name not in SECRET_FILES:
            chunks.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(chunks)


def machine_for(rig: ProofRig, outputs: List[str], secrets: Set[str], steps: Counter,
                per_example: int) -> type:
    """The state machine class, bound to one rig (hypothesis instantiates it per example).

    ``per_example`` bounds the heavy steps of one example (crashes, faults, passes):
    hypothesis picks among the enabled rules alike, and these, always enabled, would
    otherwise crowd out the BILLmanager changes."""

    def remember_tokens() -> None:
        for name in ("access_token", "refresh_token"):
            secrets.add(getattr(rig.paths, name).read_text(encoding="utf-8").strip())

    def counted(method: Callable[..., Any]) -> Callable[..., Any]:
        """Count the rules that ran, so the test can show the histories were not trivial."""
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            steps[method.__name__] += 1
            return method(self, *args, **kwargs)
        return wrapper

    class ModuleMachine(RuleBasedStateMachine):
        clients = Bundle("clients")
        payers = Bundle("payers")
        services = Bundle("services")

        def __init__(self) -> None:
            super().__init__()
            rig.control.clear_faults()
            rig.make_due()
            self.keys: Set[Key] = set()
            self.heavy: Counter = Counter()
            self.serial = 0
            self.engine = rig.engine()

        def _queue(self, kind: Kind, billmgr_id: int, reason: str) -> None:
            rig.enqueue(kind, billmgr_id, reason)
            self.keys.add((kind, billmgr_id))

        def _name(self, prefix: str, text: str) -> str:
            self.serial += 1
            return f"{prefix}{self.serial} {text}"

        def _room(self, step: str) -> bool:
            return self.heavy[step] < per_example

        # ---------------------------------------------------------- BILLmanager changes
        @initialize(target=clients)
        def first_client(self) -> int:
            return self.create_client.__wrapped__(self, "первый")  # type: ignore[attr-defined]

        @rule(target=clients, text=NAME_TEXT)
        @counted
        def create_client(self, text: str) -> int:
            name = self._name("Клиент ", text)
            account = rig.sandbox.add_client(name=name, email=f"sm{time.time_ns()}@example.com").account_id
            self._queue(Kind.CONTACT, account, "edit")
            return account

        @rule(account=clients, text=NAME_TEXT)
        @counted
        def edit_client(self, account: int, text: str) -> None:
            rig.sandbox.edit_client(account, realname=self._name("Правка ", text))
            self._queue(Kind.CONTACT, account, "edit")

        @rule(target=payers, account=clients, text=NAME_TEXT)
        @counted
        def add_legal_payer(self, account: int, text: str) -> int:
            payer = rig.sandbox.add_payer(account, name=self._name('ООО "', text) + '"')
            self._queue(Kind.COMPANY, payer, "edit")
            return payer

        @rule(payer=payers, text=NAME_TEXT)
        @counted
        def rename_payer(self, payer: int, text: str) -> None:
            rig.sandbox.edit_payer(payer, name=self._name("АО ", text))
            self._queue(Kind.COMPANY, payer, "edit")

        @rule(payer=payers, profiletype=st.sampled_from((1, 2, 3)))
        @counted
        def change_payer_type(self, payer: int, profiletype: int) -> None:
            rig.sandbox.edit_payer(payer, profiletype=profiletype)
            self._queue(Kind.COMPANY, payer, "edit")

        @rule(payer=payers, sync_between=st.booleans())
        @counted
        def payer_type_roundtrip(self, payer: int, sync_between: bool) -> None:
            """2 -> 1 (a person now) -> 2 (a company again), synced or not in between."""
            rig.sandbox.edit_payer(payer, profiletype=2)
            self._queue(Kind.COMPANY, payer, "edit")
            rig.sandbox.edit_payer(payer, profiletype=1)
            self._queue(Kind.COMPANY, payer, "edit")
            if sync_between:
                self.engine.run_pass()
            rig.sandbox.edit_payer(payer, profiletype=2)
            self._queue(Kind.COMPANY, payer, "edit")

        @rule(target=services, account=clients, itemtype=st.sampled_from(("vds", "domain", "vhost", "dedic")))
        @counted
        def open_service(self, account: int, itemtype: str) -> int:
            self.serial += 1
            item = rig.sandbox.open_service(account, itemtype=itemtype,
                                            params={"domain": f"sm{self.serial}.example.ru"})
            self._queue(Kind.LEAD, item, "open")
            return item

        @rule(item=services)
        @counted
        def prolong_service(self, item: int) -> None:
            rig.sandbox.prolong_service(item)
            self._queue(Kind.LEAD, item, "prolong")

        @rule(item=services, text=st.text(alphabet="abcdef-0123", min_size=1, max_size=10))
        @counted
        def edit_service(self, item: int, text: str) -> None:
            self.serial += 1
            rig.sandbox.set_service_param(item, "domain", f"{text}{self.serial}.example.ru")
            self._queue(Kind.LEAD, item, "edit")

        # ---------------------------------------------------------- the world
        @precondition(lambda self: self._room("fault"))
        @rule(fault=st.sampled_from(sorted(FAULTS)), count=st.integers(1, 3))
        @counted
        def inject_fault(self, fault: str, count: int) -> None:
            self.heavy["fault"] += 1
            FAULTS[fault](rig.control, count)

        @precondition(lambda self: self.heavy["expiry"] < 1)
        @rule()
        @counted
        def expire_access_token(self) -> None:
            self.heavy["expiry"] += 1
            remember_tokens()
            rig.control.advance(86400 + 60)

        @precondition(lambda self: self._room("pass"))
        @rule()
        @counted
        def worker_pass(self) -> None:
            self.heavy["pass"] += 1
            self.engine.run_pass()
            remember_tokens()
            rig.make_due()

        @precondition(lambda self: self._room("crash"))
        @rule(after=st.floats(0.3, 2.5))
        @counted
        def crash_the_worker(self, after: float) -> None:
            """The real worker, SIGKILLed at a drawn moment (maybe between an answer and its commit)."""
            self.heavy["crash"] += 1
            remember_tokens()
            proc = subprocess.Popen(WORKER, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                proc.communicate(timeout=after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate()
            outputs.append(out.decode("utf-8", "replace") + err.decode("utf-8", "replace"))
            time.sleep(RESTART_GAP)
            remember_tokens()
            rig.rebuild()          # the token pair may have rotated under the in-process client
            self.engine = rig.engine()
            rig.make_due()

        # ---------------------------------------------------------- invariants
        def teardown(self) -> None:
            steps["examples"] += 1
            rig.control.clear_faults()
            rig.make_due()
            rig.drain(max_passes=100)
            remember_tokens()
            audit = rig.audit(keys=self.keys)
            failed = audit.failed
            reasonless = [f for f in failed if f.rstrip().endswith(":") or f.endswith("None")]
            assert not reasonless, f"failed without a reason: {reasonless}"
            failed_keys = {(Kind(k), int(b)) for k, b in
                           rig.sql("SELECT kind, billmgr_id FROM amocrm_queue WHERE state = 'failed'")}
            missing = [k for k in audit.missing if k not in failed_keys]
            assert not (audit.duplicates or missing or audit.dangling or audit.wrong_marker or audit.stale
                        or audit.wrong_company or audit.pending), audit.summary()
            assert rig.control.max_requests_per_window(1.0) <= AMOCRM_LIMIT
            uses = rig.control.refresh_token_uses()
            assert max(uses.values(), default=0) <= 1, "a refresh token was presented twice"

    return ModuleMachine


def test_random_histories_keep_every_invariant(proof_rig_factory: Callable[..., ProofRig],
                                               scale: Any) -> None:
    rig = proof_rig_factory(clients=5, services=5)
    canaries = {rig.paths.client_secret.read_text().strip(), rig.emulator.integration["auth_code"]}
    outputs: List[str] = []
    seen_tokens: Set[str] = set()
    steps: Counter = Counter()
    machine = machine_for(rig, outputs, seen_tokens, steps, per_example=scale(2, 4))
    full = bool(scale.full)
    run_state_machine_as_test(machine, settings=settings(
        max_examples=scale(6, 40), stateful_step_count=scale(20, 50), deadline=None, database=None,
        derandomize=not full, phases=[Phase.explicit, Phase.generate] + ([Phase.shrink] if full else []),
        suppress_health_check=list(HealthCheck), print_blob=True))

    print(f"state machine: {rig.events} events; steps {dict(steps)}")
    assert steps["examples"] >= scale(6, 40) and steps["crash_the_worker"] and steps["inject_fault"]
    assert len(seen_tokens) >= 2
    text = "\n".join(outputs) + every_log_text(rig)
    for secret in canaries | seen_tokens:
        assert len(secret) >= 16
        assert secret not in text, "a secret leaked into a log or the worker's output"
