"""Hosts on AlmaLinux 9 run Python 3.9: every module must parse with the 3.9 grammar."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


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
