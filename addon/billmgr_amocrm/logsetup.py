"""Logging in ISPsystem's line format, with levels from ``etc/debug.conf``.

Line format (as ISPsystem's own modules write it)::

    Nov 25 15:54:01 [4554] amocrm_task INFO queue drained: 12 done

``etc/debug.conf`` holds ``<module> <level>`` lines with ISPsystem's numeric levels
(9 debug, 6 extinfo, 5 info, 4 warning, 3 error, 2 critical); ``amocrm_task 9`` or
``amocrm.* 9`` or ``* 4`` all apply, the most specific one wins. Default: 5 (info).

Every handler gets the redaction filter: secrets registered with
:func:`register_secret` (client secret, tokens, auth code) are replaced before a
record is formatted, whatever logger or exception text carried them.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import time
from pathlib import Path
from typing import Dict, Optional, Tuple

from .paths import host_paths

ISP_TO_PY = {9: logging.DEBUG, 8: logging.DEBUG, 7: logging.DEBUG, 6: logging.INFO, 5: logging.INFO,
             4: logging.WARNING, 3: logging.ERROR, 2: logging.CRITICAL, 1: logging.CRITICAL,
             0: logging.CRITICAL + 10}
DEFAULT_ISP_LEVEL = 5

# The secrets this process has seen, oldest first. Bounded: a daemon that refreshes daily
# for a year must not carry (and scan for) hundreds of dead tokens. The live ones (client
# secret, current pair) are registered again on every read, so they never age out; only
# long-superseded tokens do. Plain str.replace over a few dozen values, not one regex
# rebuilt on every new secret: that rebuild grew with every token ever seen (quadratic
# time, and the re module's cache kept each ever-larger pattern; found by proof scenario 5).
MAX_SECRETS = 64
_secrets: Dict[str, None] = {}
_longest_first: Tuple[str, ...] = ()
REDACTED = "***"


def register_secret(value: Optional[str]) -> None:
    """Never let this value reach a log line. Short values are ignored (too many false hits)."""
    global _longest_first
    if not value or len(value) < 6:
        return
    if value in _secrets:
        if next(reversed(_secrets)) != value:
            _secrets[value] = _secrets.pop(value)  # most recent last
        return
    _secrets[value] = None
    while len(_secrets) > MAX_SECRETS:
        del _secrets[next(iter(_secrets))]
    _longest_first = tuple(sorted(_secrets, key=len, reverse=True))


def redact(text: str) -> str:
    for secret in _longest_first:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _longest_first:
            record.msg = redact(record.getMessage())
            record.args = None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return True


class IspFormatter(logging.Formatter):
    """``Mon d HH:MM:SS [pid] module LEVEL message``."""

    def __init__(self, module: str) -> None:
        super().__init__()
        self.module = module

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%b %d %H:%M:%S", time.localtime(record.created))
        text = f"{stamp} [{record.process}] {self.module} {record.levelname} {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            text += "\n" + record.exc_text
        return redact(text)


def isp_level_for(module: str, debug_conf: Optional[Path] = None) -> int:
    path = debug_conf or host_paths().debug_conf
    best: Optional[tuple[int, int]] = None  # (specificity, level)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return DEFAULT_ISP_LEVEL
    for raw in lines:
        parts = raw.split()
        if len(parts) != 2 or raw.lstrip().startswith("#"):
            continue
        pattern, level_text = parts
        if not level_text.isdigit() or not fnmatch.fnmatchcase(module, pattern):
            continue
        specificity = len(pattern.replace("*", ""))
        if best is None or specificity >= best[0]:
            best = (specificity, int(level_text))
    return best[1] if best else DEFAULT_ISP_LEVEL


def setup_logging(module: str, log_file: Optional[Path] = None, *, stderr: bool = False) -> logging.Logger:
    """Configure the root ``billmgr_amocrm`` logger to write ``var/<module>.log``.

    ``module`` is ``amocrm_task`` for the worker and ``amocrm_action`` for panel actions.
    """
    log_file = log_file or host_paths().var / f"{module}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("billmgr_amocrm")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    level = ISP_TO_PY.get(isp_level_for(module), logging.INFO)
    logger.setLevel(level)
    # Propagation stays on: nothing on a host configures the root logger, and a
    # host application (or pytest's caplog) that does should see our records too.
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)
    handlers: list[logging.Handler] = [logging.FileHandler(log_file, encoding="utf-8")]
    if stderr:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(IspFormatter(module))
        handler.addFilter(RedactingFilter())
        logger.addHandler(handler)
    return logger
