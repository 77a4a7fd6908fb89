"""``.packaging/requirements.lock``: the pinned runtime dependencies and the sha256 of every wheel.

The lock is a pip requirements file in hash-checking form, written by
``.packaging/make-lock``::

    lxml==6.1.3 ; python_version >= "3.10" \\
        --hash=sha256:<hex> \\
        --hash=sha256:<hex>
    ...
    # wheel lxml-6.1.3-cp311-cp311-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl <hex>

pip checks the hashes itself (``--require-hashes``); this module reads the lock for what
runs before pip does: the pip wheel the installer starts from a wheelhouse (its hash is
checked here, before it runs), and the wheel list ``.packaging/build`` fetches and ships.
Markers are limited to what make-lock writes: one ``python_version`` comparison.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

from .system import InstallError

PIP = "pip"
_MARKER = re.compile(r'^python_version\s*(<|<=|>|>=|==|!=)\s*"(\d+)\.(\d+)"$')
_WHEEL_LINE = re.compile(r"^#\s*wheel\s+(\S+\.whl)\s+([0-9a-f]{64})\s*$")


@dataclass(frozen=True)
class Pin:
    """One requirement line: ``name==version ; marker`` and the hashes pip accepts for it."""

    name: str
    version: str
    marker: str
    hashes: Tuple[str, ...]

    def applies_to(self, python: Tuple[int, int]) -> bool:
        if not self.marker:
            return True
        match = _MARKER.match(self.marker)
        if not match:
            raise InstallError(f"requirements.lock: unsupported marker {self.marker!r}")
        op, wanted = match.group(1), (int(match.group(2)), int(match.group(3)))
        return {"<": python < wanted, "<=": python <= wanted, ">": python > wanted,
                ">=": python >= wanted, "==": python == wanted, "!=": python != wanted}[op]

    @property
    def requirement(self) -> str:
        """The line without marker and hashes, as pip takes it on a command line."""
        return f"{self.name}=={self.version}"


def _logical_lines(text: str) -> List[str]:
    lines: List[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def read_pins(lock: Path) -> List[Pin]:
    pins: List[Pin] = []
    for line in _logical_lines(lock.read_text(encoding="utf-8")):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        words = line.split()
        options = [w for w in words if w.startswith("--")]
        spec = " ".join(w for w in words if not w.startswith("--"))
        requirement, _, marker = spec.partition(";")
        name, sep, version = requirement.strip().partition("==")
        if not sep or not name or not version:
            raise InstallError(f"requirements.lock: not an exact pin: {requirement.strip()!r}")
        hashes = tuple(w.split(":", 1)[1] for w in options if w.startswith("--hash=sha256:"))
        pins.append(Pin(name.strip(), version.strip(), marker.strip(), hashes))
    return pins


def read_wheels(lock: Path) -> Dict[str, str]:
    """The wheel files the packages carry: file name -> sha256."""
    found: Dict[str, str] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = _WHEEL_LINE.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_pip_wheel(lock: Path, wheelhouse: Path) -> Path:
    """The locked pip's wheel in ``wheelhouse``, after checking its sha256 against the lock."""
    pins = [pin for pin in read_pins(lock) if pin.name.lower() == PIP]
    if len(pins) != 1 or not pins[0].hashes:
        raise InstallError(f"{lock} pins no pip with a hash: regenerate it with .packaging/make-lock")
    wheel = wheelhouse / f"pip-{pins[0].version}-py3-none-any.whl"
    if not wheel.is_file():
        raise InstallError(f"{wheel} is missing: the wheelhouse does not match {lock}")
    digest = sha256_of(wheel)
    if digest not in pins[0].hashes:
        raise InstallError(f"{wheel} has sha256 {digest}, which {lock} does not list: refusing to run it")
    return wheel
