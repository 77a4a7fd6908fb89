"""A pure-Python wheel of billmgr_amocrm, made with the standard library.

The package has no compiled parts, so the wheel is the package files plus a
dist-info; building it here avoids needing setuptools (or the network) on the host.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path
from typing import Dict

from .layout import PACKAGE
from .source import Source

DISTRIBUTION = "billmgr-amocrm"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_wheel(source: Source, version: str, outdir: Path) -> Path:
    """``billmgr_amocrm-<version>-py3-none-any.whl`` in ``outdir``, from the source's package."""
    stem = f"{PACKAGE}-{version}"
    dist_info = f"{stem}.dist-info"
    files: Dict[str, bytes] = {}
    for path in sorted(source.package.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
            continue
        files[f"{PACKAGE}/{path.relative_to(source.package).as_posix()}"] = path.read_bytes()
    meta = [
        "Metadata-Version: 2.1",
        f"Name: {DISTRIBUTION}",
        f"Version: {version}",
        "Summary: BILLmanager 6 module: one-way sync into amoCRM",
        "Requires-Python: >=3.9",
        *(f"Requires-Dist: {req}" for req in source.requirements()),
    ]
    files[f"{dist_info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: amocrm-install\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{dist_info}/top_level.txt"] = f"{PACKAGE}\n".encode()
    record = [f"{name},{_record_hash(data)},{len(data)}" for name, data in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = outdir / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel
