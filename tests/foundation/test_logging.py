from __future__ import annotations

import logging
import re
from pathlib import Path

from billmgr_amocrm import logsetup


def test_line_format_and_level_from_debug_conf(mgr5_root: Path) -> None:
    (mgr5_root / "etc/debug.conf").write_text("* 4\namocrm_* 9\n")
    logger = logsetup.setup_logging("amocrm_task")
    logging.getLogger("billmgr_amocrm.worker").debug("queue drained: %d done", 12)
    for handler in logger.handlers:
        handler.flush()
    line = (mgr5_root / "var/amocrm_task.log").read_text().splitlines()[-1]
    pattern = r"[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} \[\d+\] amocrm_task DEBUG queue drained: 12 done"
    assert re.fullmatch(pattern, line)


def test_most_specific_debug_conf_line_wins(tmp_path: Path) -> None:
    conf = tmp_path / "debug.conf"
    conf.write_text("amocrm_task 3\n* 9\n")
    assert logsetup.isp_level_for("amocrm_task", conf) == 3
    assert logsetup.isp_level_for("amocrm_action", conf) == 9
    assert logsetup.isp_level_for("x", tmp_path / "missing") == logsetup.DEFAULT_ISP_LEVEL


def test_registered_secrets_never_reach_the_file(mgr5_root: Path) -> None:
    canary = "canary-secret-7f3a9c2e"
    logsetup.register_secret(canary)
    logger = logsetup.setup_logging("amocrm_action")
    log = logging.getLogger("billmgr_amocrm.test")
    log.warning("token is %s", canary)
    try:
        raise RuntimeError(f"failed with {canary}")
    except RuntimeError:
        log.exception("boom")
    for handler in logger.handlers:
        handler.flush()
    text = (mgr5_root / "var/amocrm_action.log").read_text()
    assert canary not in text
    assert text.count(logsetup.REDACTED) >= 2
    assert "RuntimeError" in text


def test_secret_registry_is_bounded_and_keeps_the_live_secrets() -> None:
    """A daemon refreshing daily for years sees thousands of tokens: the registry keeps the
    most recent MAX_SECRETS, and a secret read again (the live client secret) never ages out."""
    live = "live-client-secret-0c1d2e3f"
    logsetup.register_secret(live)
    tokens = [f"token-{n:05d}-" + "x" * 700 for n in range(3 * logsetup.MAX_SECRETS)]
    for token in tokens:
        logsetup.register_secret(token)
        logsetup.register_secret(live)         # read again with every pair, as the client does
    assert len(logsetup._secrets) == logsetup.MAX_SECRETS
    line = f"a {live} b {tokens[-1]} c {tokens[-2]}"
    assert logsetup.redact(line) == "a *** b *** c ***"
    assert tokens[0] in logsetup.redact(tokens[0])   # long superseded, dead: aged out


def test_overlapping_secrets_are_redacted_longest_first() -> None:
    logsetup.register_secret("abcdef")
    logsetup.register_secret("abcdefghij")
    assert logsetup.redact("<abcdefghij> <abcdef>") == "<***> <***>"
