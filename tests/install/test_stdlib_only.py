"""The installer runs before any virtualenv exists: bare standard library, nothing else.

Both checks run a fresh interpreter with ``-I -S`` (no site-packages, no environment),
as a host's bare python3 would be: the package imported with a sys.path of only the
standard library plus addon/, and the three-line sbin/amocrm-install run from a copy
laid out as the .deb/.rpm carry it (R/src/amocrm/{sbin,addon}).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from billmgr_amocrm.foundation.exitstatus import ExitStatus
from tests.install.conftest import INSTALLER, REPO

ADDON = REPO / "addon"
# Every module of the installer package, imported into a bare interpreter; prints where each
# module in sys.modules came from, and the interpreter's own sys.path (the standard library).
IMPORT_ALL = r"""
import importlib, json, pkgutil, sys
stdlib = list(sys.path)
sys.path.append(sys.argv[1])
import billmgr_amocrm.installer as installer
for info in pkgutil.iter_modules(installer.__path__, installer.__name__ + "."):
    importlib.import_module(info.name)
print(json.dumps({"stdlib": stdlib,
                  "modules": {name: getattr(module, "__file__", None)
                              for name, module in sorted(sys.modules.items())}}))
"""


def test_the_installer_imports_only_the_standard_library_and_its_own_stdlib_modules() -> None:
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", IMPORT_ALL, str(ADDON)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    stdlib = [path for path in seen["stdlib"] if path]
    assert stdlib and not [p for p in stdlib if "site-packages" in p or "dist-packages" in p]
    modules = seen["modules"]
    assert "billmgr_amocrm.installer.cli" in modules and "site" not in modules
    foreign = {name: path for name, path in modules.items()
               if path and not name.startswith("billmgr_amocrm")
               and not any(path.startswith(root.rstrip("/") + "/") for root in stdlib)}
    assert foreign == {}
    own = [name for name in modules if name.split(".")[0] == "billmgr_amocrm"]
    assert all(modules[name].startswith(str(ADDON) + "/") for name in own)


def test_the_script_runs_on_a_bare_python_from_the_packaged_tree(tmp_path: Path) -> None:
    tree = tmp_path / "usr" / "local" / "mgr5" / "src" / "amocrm"
    (tree / "sbin").mkdir(parents=True)
    shutil.copy2(INSTALLER, tree / "sbin" / INSTALLER.name)
    shutil.copytree(ADDON / "billmgr_amocrm", tree / "addon" / "billmgr_amocrm",
                    ignore=shutil.ignore_patterns("__pycache__"))

    def installer(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-I", "-S", str(tree / "sbin" / INSTALLER.name), *args],
                              capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)

    helped = installer("--help")
    assert helped.returncode == ExitStatus.OK, helped.stderr
    assert "--drop-data" in helped.stdout
    misused = installer("--drop-data")
    assert misused.returncode == ExitStatus.USAGE
    assert "--drop-data only goes with --uninstall" in misused.stderr
    missing = installer("--root", str(tmp_path / "no-such-root"))
    assert missing.returncode == ExitStatus.ERROR
    assert "does not exist" in missing.stderr
    # The default --source is the tree holding the script (this copy has no pyproject.toml).
    (tmp_path / "mgr5").mkdir()
    incomplete = installer("--root", str(tmp_path / "mgr5"))
    assert incomplete.returncode == ExitStatus.ERROR
    assert f"source tree {tree} is incomplete" in incomplete.stderr
    assert sorted(p.name for p in (tmp_path / "mgr5").iterdir()) == []
    # The package's files stay as dpkg/rpm installed them: no byte-code written beside them.
    assert sorted(p.relative_to(tree) for p in tree.rglob("__pycache__")) == []
