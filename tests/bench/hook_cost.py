"""Figure 1: wall time of the real event hook, as the panel runs it, against a bare interpreter.

The hook is laid out as the installer leaves it: ``addon/amocrm_event`` with its
shebang rewritten to the module's interpreter plus ``-IS`` (here: the project's
virtualenv python, which the baseline runs too), the package beside it. Each run
is a fresh process with the panel's environment (``tests.harness.panel_env``:
PARAM_*, AUTH_*) and a realistic ``service.postopen`` result document on stdin;
``sok=ok`` makes it a real save, so every run writes one spool file. Runs of the
hook, ``python -c pass`` and the naive inline hook are interleaved (rotating
order) so machine noise hits all of them alike; medians are compared.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

from .report import Figure, Results
from .sitesetup import ADDON, Site

HOOK_TARGET = 1.5
NAIVE_HOOK = Path(__file__).resolve().parent / "naive_hook.py"


def postopen_document(item_id: int) -> bytes:
    """The result document BILLmanager hands an ``after`` handler of service.postopen on success."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<doc lang="ru" func="service.postopen" binary="/billmgr" host="https://my.example.com" '
        'theme="orion" stylesheet="orion/xsl/billmgr.xsl" features="a1b2c3d4" notify="1" level="30">'
        "<saved_filters/><ok/>"
        f"<tparams><elid>{item_id}</elid><func>service.postopen</func><sok>ok</sok>"
        "<out>xml</out><lang>ru</lang></tparams></doc>\n"
    ).encode()


def install_like_hook(site: Site, python: str) -> Path:
    """addon/amocrm_event as installed: shebang = module interpreter + ``-IS``, package beside it."""
    addon = site.tmp / "installed-addon"
    addon.mkdir()
    source = (ADDON / "amocrm_event").read_text(encoding="utf-8").splitlines(keepends=True)
    source[0] = f"#!{python} -IS\n"
    hook = addon / "amocrm_event"
    hook.write_text("".join(source), encoding="utf-8")
    hook.chmod(0o755)
    (addon / "billmgr_amocrm").symlink_to(ADDON / "billmgr_amocrm", target_is_directory=True)
    return hook


def timed(cmd: Sequence[str], env: Dict[str, str], stdin: bytes) -> float:
    """One run, timed as the panel sees it: spawn, feed stdin, read stdout to the end."""
    started = time.perf_counter()
    proc = subprocess.run(list(cmd), input=stdin, capture_output=True, env=env, timeout=60, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace")[-500:]
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {tail}")
    return elapsed


def run(results: Results, runs: int) -> None:
    from billmgr_amocrm.paths import host_paths
    from tests.harness import panel_env

    python = sys.executable
    with Site.create() as site:
        site.sandbox(clients=20, services=60)
        site.start_emulator(limit=False)
        site.activate()
        item = int(site.summary.services)
        doc = postopen_document(item)
        hook = install_like_hook(site, python)
        env = panel_env({"func": "service.postopen", "elid": str(item), "sok": "ok"},
                        auth_user="admin", auth_level=29, event_type="after")
        naive_conf = site.tmp / "naive.json"
        naive_conf.write_text(json.dumps({
            "db": {"host": site.db.host, "port": site.db.port, "user": site.db.user,
                   "password": site.db.password, "database": site.db.database},
            "url": site.emulator.url, "token": site.emulator.tokens()["access_token"]}), encoding="utf-8")
        naive_env = dict(env, NAIVE_HOOK_CONFIG=str(naive_conf))
        commands = {
            "bare": ([python, "-c", "pass"], env),
            "bare_is": ([python, "-I", "-S", "-c", "pass"], env),
            "hook": ([str(hook)], env),
            "naive": ([python, str(NAIVE_HOOK)], naive_env),
        }
        times: Dict[str, List[float]] = {name: [] for name in commands}
        order = list(commands)
        for name in order:  # warm the page cache once, untimed
            timed(commands[name][0], commands[name][1], doc)
        for i in range(runs):
            for name in order[i % len(order):] + order[:i % len(order)]:
                cmd, cmd_env = commands[name]
                times[name].append(timed(cmd, cmd_env, doc))
        echo = subprocess.run([str(hook)], input=doc, capture_output=True, env=env, check=False).stdout
        spooled = len([n for n in os.listdir(host_paths().spool_dir) if n.endswith(".json")])
    med = {name: statistics.median(values) * 1000 for name, values in times.items()}
    ratio = med["hook"] / med["bare"]
    results.add(Figure("1. event hook / `python -c pass` (median wall time)",
                       f"{ratio:.2f}x ({med['hook']:.1f} / {med['bare']:.1f} ms)",
                       f"<= {HOOK_TARGET}x", ratio <= HOOK_TARGET))
    results.add(Figure("1b. event hook / `python -I -S -c pass` (same flags)",
                       f"{med['hook'] / med['bare_is']:.2f}x ({med['hook']:.1f} / {med['bare_is']:.1f} ms)"))
    results.add(Figure("1c. naive inline hook (requests+PyMySQL, sync HTTP) / `python -c pass`",
                       f"{med['naive'] / med['bare']:.2f}x ({med['naive']:.1f} ms; "
                       f"{med['naive'] / med['hook']:.1f}x the real hook)"))
    results.note(f"hook: {runs} interleaved runs each, interpreter {python} (Python "
                 f"{sys.version.split()[0]}), hook installed as `#!{python} -IS`, sok=ok save of "
                 f"service.postopen ({len(doc)} B document); {spooled} spool files written "
                 f"(expected {runs + 2}); echo {'byte-identical' if echo == doc else 'DIFFERS'}. "
                 f"p90: hook {_p(times['hook'], 0.9):.1f} ms, bare {_p(times['bare'], 0.9):.1f} ms.")


def _p(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000
