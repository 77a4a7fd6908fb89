"""Run an addon executable exactly as BILLmanager does.

The panel starts the handler as a child process with ``PARAM_<name>`` for every
request parameter, ``AUTH_USER``/``AUTH_LEVEL`` for the acting user, the current
XML document on stdin, and reads the replacement document from stdout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Union

REPO = Path(__file__).resolve().parent.parent
ADDON_DIR = REPO / "addon"


@dataclass(frozen=True)
class HandlerRun:
    stdout: bytes
    stderr: bytes
    returncode: int
    elapsed: float

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


def panel_env(
    params: Mapping[str, str],
    *,
    auth_user: str = "root",
    auth_level: int = 30,
    lang: str = "ru",
    event_type: Optional[str] = None,
    extra: Optional[Mapping[str, str]] = None,
    base: Optional[Mapping[str, str]] = None,
) -> dict[str, str]:
    """The environment the panel gives a handler (PARAM_*, AUTH_*, the language cookie)."""
    env = dict(os.environ if base is None else base)
    for key in [k for k in env if k.startswith("PARAM_")]:
        del env[key]
    for name, value in params.items():
        env[f"PARAM_{name}"] = value
    func = params.get("func")
    if func:
        env.setdefault("ACTION_NAME", func)
    if event_type:
        env["EVENT_TYPE"] = event_type
    env["AUTH_USER"] = auth_user
    env["AUTH_LEVEL"] = str(auth_level)
    env["HTTP_COOKIE"] = f"billmgrlang5=billmgr:{lang}"
    env.setdefault("PYTHONIOENCODING", "utf-8")
    # The work tree's executables start with "#!/usr/bin/env python3": resolve that to the
    # interpreter running the tests (the project's venv, with lxml and friends), as the
    # installer's rewritten shebang does on a host. Without this a handler could fail to
    # import its dependencies and a test of its error path would pass for the wrong reason.
    interpreter_dir = os.path.dirname(sys.executable)
    path = env.get("PATH", "")
    if path.split(os.pathsep)[:1] != [interpreter_dir]:
        env["PATH"] = interpreter_dir + (os.pathsep + path if path else "")
    if extra:
        env.update(extra)
    return env


def run_addon(
    executable: Union[str, Path],
    params: Mapping[str, str],
    stdin: Union[bytes, str] = b"",
    *,
    timeout: float = 60.0,
    **env_kwargs: object,
) -> HandlerRun:
    """Run ``addon/<executable>`` (or a path) as the panel would and collect what it printed."""
    path = Path(executable)
    if not path.is_absolute():
        path = ADDON_DIR / path
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    env = panel_env(params, **env_kwargs)  # type: ignore[arg-type]
    cmd = [str(path)] if os.access(path, os.X_OK) else [sys.executable, str(path)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, input=data, capture_output=True, env=env, timeout=timeout, check=False)
    return HandlerRun(proc.stdout, proc.stderr, proc.returncode, time.perf_counter() - started)
