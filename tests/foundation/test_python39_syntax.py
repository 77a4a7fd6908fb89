"""Hosts on AlmaLinux 8/9 and Debian 11 run Python 3.9: every module must parse with the 3.9 grammar.

``make lint`` also runs vermin (the minimum version of what the code uses, not only its
grammar). Where a real Python 3.9 is at hand (pyenv's, or python3.9 on PATH; CI machines may
have none) the sources are also compiled by it, and the .rpm package test builds the module's
virtualenv on it and imports every module there (tests/install/test_package.py).
"""

from __future__ import annotations

import ast
import glob
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import pytest

REPO = Path(__file__).resolve().parents[2]


def python39() -> Optional[str]:
    found = [*sorted(glob.glob("/root/.pyenv/versions/3.9*/bin/python3.9")), shutil.which("python3.9")]
    probe = "import sys; assert sys.version_info[:2] == (3, 9)"
    for candidate in found:  # pyenv's shim named python3.9 exists even when it refuses to run
        if candidate and subprocess.run([candidate, "-c", probe], capture_output=True).returncode == 0:
            return candidate
    return None


def python_sources() -> list[Path]:
    files = sorted((REPO / "addon").rglob("*.py")) + sorted((REPO / "tests").rglob("*.py"))
    for directory in (REPO / "addon", REPO / "sbin"):
        for path in directory.iterdir():
            if path.is_file() and path.suffix == "" and path.read_bytes()[:2] == b"#!" \
                    and b"python" in path.read_bytes().splitlines()[0]:
                files.append(path)
    return files


@pytest.mark.parametrize("path", python_sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_parses_with_python39_grammar(path: Path) -> None:
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 9))


def test_runtime_annotations_avoid_pep604_unions_in_pydantic_models() -> None:
    """pydantic evaluates annotations at runtime: `X | None` there breaks on 3.9."""
    offenders = []
    for path in (REPO / "addon").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, (ast.Name, ast.Attribute)) and "Model" in ast.unparse(base)
                for base in node.bases
            ):
                for item in node.body:
                    if isinstance(item, ast.AnnAssign) and "|" in ast.unparse(item.annotation):
                        offenders.append(f"{path.relative_to(REPO)}:{item.lineno}")
    assert offenders == []


def test_a_real_python39_compiles_every_source(tmp_path: Path) -> None:
    python = python39()
    if python is None:
        pytest.skip("no Python 3.9 interpreter here (optional: make lint's vermin covers the check)")
    listing = tmp_path / "sources.txt"
    listing.write_text("\n".join(str(p) for p in python_sources()) + "\n", encoding="utf-8")
    check = ("import sys\nfor path in open(sys.argv[1]).read().split():\n"
             "    compile(open(path, encoding='utf-8').read(), path, 'exec')\n")
    proc = subprocess.run([python, "-I", "-c", check, str(listing)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
