"""Figure 5: event-to-amoCRM latency with the worker daemon running and no backlog.

A small sandbox is exported first; then ``sbin/amocrm_task --daemon`` runs as a
subprocess with the shipped sync settings (emulator limit on, 7 req/s). N panel
saves follow, ~0.25 s apart, alternating a new service (``service.postopen`` ->
a lead is created) and a renamed user (``user.edit`` -> the contact is patched).
Each save changes the sandbox the way the panel does, then runs the installed-form
hook; latency = from the hook's start to the arrival of the matching write at the
emulator (its request log's wall time; the write is answered 2xx).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from billmgr_amocrm.markers import marker_identity

from .hook_cost import install_like_hook, postopen_document
from .report import Figure, Results
from .sitesetup import REPO, Site, child_env
from .throughput import export_in_child, last_seq

P95_TARGET = 2.0
SPACING = 0.25
QUIET_SECONDS = 1.5
SETTLE_TIMEOUT = 30.0
WAIT_AFTER_LAST = 20.0


@dataclass
class Expected:
    """A fired event and the write that shows it reached amoCRM."""

    fired_at: float
    method: str
    path: str
    marker: Optional[str] = None      # a create: the entity's marker value
    entity_id: Optional[int] = None   # an update: the amoCRM id patched
    seen_at: Optional[float] = None

    def matches(self, entry: Dict[str, Any]) -> bool:
        status = entry.get("status")
        if entry["method"] != self.method or entry["path"].rstrip("/") != self.path:
            return False
        if not isinstance(status, int) or not 200 <= status < 300 or entry["wall_time"] < self.fired_at:
            return False
        body = entry.get("body")
        items = body if isinstance(body, list) else []
        for item in items:
            if not isinstance(item, dict):
                continue
            if self.entity_id is not None and item.get("id") == self.entity_id:
                return True
            if self.marker is not None and self.marker in json.dumps(item, ensure_ascii=False):
                return True
        return False


def contact_ids(site: Site, field_id: int) -> Dict[int, int]:
    """account id -> amoCRM contact id, read from the emulator by the marker field."""
    found: Dict[int, int] = {}
    for record in site.emulator.control.entities("contacts", include_deleted=False):
        for cf in record.get("custom_fields_values") or []:
            if cf.get("field_id") == field_id:
                value = marker_identity(str(cf["values"][0]["value"]))
                if value.startswith("billmgr:contact:"):
                    found[int(value.rsplit(":", 1)[1])] = int(record["id"])
    return found


def wait_quiet(site: Site, timeout: float = SETTLE_TIMEOUT) -> None:
    """Until the emulator has seen no request for QUIET_SECONDS (the daemon's first pass is over)."""
    deadline = time.monotonic() + timeout
    seq = last_seq(site)
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now_seq = last_seq(site)
        if now_seq != seq:
            seq, quiet_since = now_seq, time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_SECONDS:
            return


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(1, int(round(q * len(ordered) + 0.4999)))  # nearest rank
    return ordered[min(rank, len(ordered)) - 1]


def run(results: Results, events: int) -> None:
    from tests.harness import panel_env
    from tests.sandbox import Sandbox

    with Site.create() as site:
        site.sandbox(clients=150, services=450)
        site.start_emulator(limit=True)
        site.authorize()
        export_in_child(site)
        conf = json.loads((site.root / "etc" / "amocrm" / "amocrm.conf").read_text(encoding="utf-8"))
        contacts = contact_ids(site, int(conf["sync"]["marker_field_ids"]["contact"]))
        box = Sandbox(site.db)
        users = [(int(u), int(a)) for u, a in box.query("SELECT id, account FROM user ORDER BY id")
                 if int(a) in contacts]
        hook = install_like_hook(site, sys.executable)
        daemon_err = site.tmp / "daemon.stderr"
        with open(daemon_err, "wb") as err:
            daemon = subprocess.Popen([sys.executable, str(REPO / "sbin" / "amocrm_task"), "--daemon"],
                                      env=child_env(site.root), stdout=subprocess.DEVNULL, stderr=err)
        expected: List[Expected] = []
        try:
            wait_quiet(site)
            since = last_seq(site)
            for i in range(events):
                slot = time.monotonic() + SPACING
                user_id, account = users[(i * 7) % len(users)]
                if i % 2 == 0:
                    item = box.open_service(account, itemtype="vds", params={"domain": f"lat{i}.example.com"})
                    params = {"func": "service.postopen", "elid": str(item), "sok": "ok"}
                    want = Expected(time.time(), "POST", "/api/v4/leads", marker=f"billmgr:lead:{item}")
                    doc = postopen_document(item)
                else:
                    box.edit_user(user_id, realname=f"Задержка Проверка {i}")
                    params = {"func": "user.edit", "elid": str(user_id), "sok": "ok"}
                    want = Expected(time.time(), "PATCH", "/api/v4/contacts", entity_id=contacts[account])
                    doc = b'<?xml version="1.0" encoding="UTF-8"?>\n<doc><ok/></doc>\n'
                want.fired_at = time.time()
                subprocess.run([str(hook)], input=doc, capture_output=True, check=False,
                               env=panel_env(params, auth_user="admin", auth_level=29, event_type="after"))
                expected.append(want)
                time.sleep(max(0.0, slot - time.monotonic()))
            deadline = time.monotonic() + WAIT_AFTER_LAST
            while time.monotonic() < deadline and any(e.seen_at is None for e in expected):
                time.sleep(0.3)
                _match(site.emulator.control.requests(since), expected)
        finally:
            box.close()
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
            stderr = daemon_err.read_text(encoding="utf-8", errors="replace")
    seen = [e.seen_at - e.fired_at for e in expected if e.seen_at is not None]
    missing = len(expected) - len(seen)
    if not seen:
        results.add(Figure("5. event -> amoCRM latency (daemon)", "no event arrived",
                           f"p95 <= {P95_TARGET:g} s", False))
        results.note(f"latency: none of {len(expected)} events reached the emulator; daemon stderr: "
                     f"{stderr[-300:]!r}")
        return
    p50, p95 = percentile(seen, 0.5), percentile(seen, 0.95)
    ok = p95 <= P95_TARGET and missing == 0
    results.add(Figure(f"5. event -> amoCRM latency, daemon, {len(expected)} events",
                       f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(seen):.2f} s"
                       + (f"; {missing} never arrived" if missing else ""), f"p95 <= {P95_TARGET:g} s", ok))
    results.note(f"latency: events {SPACING} s apart, alternating service.postopen (lead POST) and user.edit "
                 f"(contact PATCH); worker `sbin/amocrm_task --daemon` (poll 0.3 s) with amocrm.conf sync "
                 f"rate_limit {site.sync.get('rate_limit')} req/s, batch_size {site.sync.get('batch_size')}; "
                 f"emulator limit 7 req/s.")


def _match(log: List[Dict[str, Any]], expected: List[Expected]) -> None:
    for want in expected:
        if want.seen_at is not None:
            continue
        for entry in log:
            if want.matches(entry):
                want.seen_at = float(entry["wall_time"])
                break
