"""BILLmanager's own command line, ``$MGR5_ROOT/sbin/mgrctl``: run a function, read its answer.

ISPsystem's modules ask the panel instead of guessing its tables: ``paramlist`` for the
database credentials (``dbconf``), ``profile.edit elid=N`` for a payer as the panel's form
shows it (``billing.payers``). The answer (``-o xml``) is parsed with entities, DTDs and the
network off, and only the root document's own children are read: a reply also echoes the
request, and a value may hold any text.

Nothing here logs or repeats what mgrctl printed: paramlist's answer holds the database
password. An error names the function and how it failed, never the output.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Mapping, Optional

from lxml import etree

if TYPE_CHECKING:
    from .paths import HostPaths

# A payer read or a paramlist answers in well under a second on a live panel; a panel busy
# restarting may take longer, and a worker waiting longer than this should retry later.
DEFAULT_TIMEOUT = 30.0
MAX_ANSWER_BYTES = 16 * 1024 * 1024


class MgrctlError(Exception):
    """mgrctl could not run, failed, timed out or printed no usable document."""


class MgrctlRefused(MgrctlError):
    """BILLmanager answered with ``<error>``: ``error_type`` (e.g. ``missing``) and ``error_object``."""

    def __init__(self, message: str, error_type: str, error_object: str) -> None:
        self.error_type = error_type
        self.error_object = error_object
        super().__init__(message)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


def parse_answer(data: bytes, func: str) -> etree._Element:
    """The root element of mgrctl's XML answer; :class:`MgrctlRefused` for an ``<error>``."""
    if not data.strip():
        raise MgrctlError(f"mgrctl {func}: empty answer")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError:
        raise MgrctlError(f"mgrctl {func}: the answer is not an XML document") from None
    error = root.find("error")
    if error is not None:
        kind, obj = error.get("type", ""), error.get("object", "")
        raise MgrctlRefused(f"mgrctl {func}: BILLmanager refused ({kind or 'error'} {obj})".rstrip(),
                            kind, obj)
    return root


def root_values(root: etree._Element) -> Dict[str, str]:
    """The root's own children that hold a value: ``{tag: text}`` (stripped; the first of a repeat).

    Lists (``<slist>``), the request echo (``<tparams>``) and anything else with children are
    skipped, so a value is never taken from a nested document.
    """
    values: Dict[str, str] = {}
    for child in root:
        if not isinstance(child.tag, str) or len(child) or child.tag in values:
            continue
        values[child.tag] = (child.text or "").strip()
    return values


@dataclass(frozen=True)
class Mgrctl:
    """Runs ``<root>/sbin/mgrctl -m billmgr -o xml FUNC key=value ...`` from the root (as ISPsystem's lib)."""

    executable: Path
    root: Path
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def on_host(cls, paths: HostPaths, timeout: float = DEFAULT_TIMEOUT) -> Optional[Mgrctl]:
        """The host's mgrctl, or None where there is none (a host without BILLmanager, a test root)."""
        if not os.access(paths.mgrctl, os.X_OK) or not paths.mgrctl.is_file():
            return None
        return cls(paths.mgrctl, paths.root, timeout)

    def call(self, func: str, params: Optional[Mapping[str, str]] = None) -> etree._Element:
        """The answer's root element; :class:`MgrctlError` when there is none to read."""
        args = [str(self.executable), "-m", "billmgr", "-o", "xml", func]
        args += [f"{key}={value}" for key, value in (params or {}).items()]
        try:
            proc = subprocess.run(args, cwd=str(self.root), stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise MgrctlError(f"mgrctl {func}: no answer in {self.timeout:g} s") from None
        except OSError as exc:
            raise MgrctlError(f"mgrctl {func}: cannot run {self.executable} ({exc.strerror})") from None
        if len(proc.stdout) > MAX_ANSWER_BYTES:
            raise MgrctlError(f"mgrctl {func}: answer larger than {MAX_ANSWER_BYTES} bytes")
        if proc.returncode != 0 and not proc.stdout.strip():
            raise MgrctlError(f"mgrctl {func}: exited with status {proc.returncode}")
        return parse_answer(proc.stdout, func)
