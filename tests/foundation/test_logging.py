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
