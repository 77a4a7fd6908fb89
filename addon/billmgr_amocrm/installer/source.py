"""The module's source tree: a git checkout, or the package's copy under R/src/amocrm."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List

from .layout import DESCRIPTOR, PACKAGE
from .system import InstallError

UNIT_NAME = "amocrm-task.service"
INSTALLER_NAME = "amocrm-install"  # in sbin/, but never installed: it works on the source tree


def default_source() -> Path:
    """The tree this installer belongs to: <tree>/addon/billmgr_amocrm/installer/."""
    return Path(__file__).resolve().parents[3]


class Source:
    """The files of the source tree the installer reads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.package = path / "addon" / PACKAGE
        self.lock = path / ".packaging" / "requirements.lock"
        self.pyproject = path / "pyproject.toml"
        self.descriptor = path / "xml" / DESCRIPTOR
        self.etc = path / "etc" / "amocrm"
        self.unit_template = self.etc / "dist" / UNIT_NAME
        self.cron_template = self.etc / "dist" / "amocrm-task.cron"

    def check(self) -> None:
        for needed in (self.package / "__init__.py", self.lock, self.pyproject):
            if not needed.is_file():
                raise InstallError(f"source tree {self.path} is incomplete: {needed} is missing")

    def version(self) -> str:
        match = re.search(r'^version\s*=\s*"([^"]+)"', self.pyproject.read_text(encoding="utf-8"), re.M)
        if not match:
            raise InstallError(f"{self.pyproject}: no version line")
        return match.group(1)

    def requirements(self) -> List[str]:
        text = self.pyproject.read_text(encoding="utf-8")
        block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.S | re.M)
        return re.findall(r'"([^"]+)"', block.group(1)) if block else []

    def executables(self) -> Dict[str, List[Path]]:
        """Executable regular files directly in addon/ and sbin/, by target directory name."""
        found: Dict[str, List[Path]] = {"addon": [], "sbin": []}
        for sub in found:
            folder = self.path / sub
            if not folder.is_dir():
                continue
            for entry in sorted(folder.iterdir()):
                if entry.name == INSTALLER_NAME or entry.name.startswith("."):
                    continue
                if entry.is_file() and os.access(entry, os.X_OK):
                    found[sub].append(entry)
        return found
