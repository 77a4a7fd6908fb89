"""A token refresh that outlives the process that started it.

amoCRM's refresh tokens are single-use: once amoCRM has answered a refresh, the old token is
dead and the new pair exists only in that answer. A worker killed between the answer and
the write of the token files (SIGKILL from an admin, an OOM kill, ``kill`` of a cron run)
used to lose the pair, and the module needed a new one-time code from the admin (proof
scenario 3 found it).

So the exchange runs in a child interpreter of its own session: a signal to the worker,
its process group or its terminal does not reach it, and it ignores the SIGTERM that
systemd's stop sends to every process of the unit (the worker waits for it anyway). The
child inherits the open ``token.lock`` description, so the lock stays held until the child
has written the pair, whoever dies first; peers waiting for the lock then find the new
pair on disk and use it. The child reads the secret and the pair from the host's files itself; what it gets on
stdin is no secret: the host root, the account URL, the rate settings and the refresh
token's fingerprint it must still find on disk (otherwise it spends nothing).

Outcome on the child's stdout, one JSON object: ``{"outcome": "rotated"}``,
``{"outcome": "changed"}`` (the files hold another pair: nothing sent) or
``{"outcome": "error", "error": {...}}`` (an :class:`AmoError`, rebuilt by the parent).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Type

from .. import errors
from ..errors import AmoError, RetryLater
from ..logsetup import redact
from .tokens import TokenSet, TokenStore, fingerprint
from .transport import Transport

log = logging.getLogger("billmgr_amocrm.amocrm")

# The parent waits this long for the child; the child's own request is bounded by the
# transport's timeouts. Past it the parent gives up waiting but the child goes on.
WAIT_SECONDS = 120.0
# the folder the package was imported from (not resolved: an installed host links it to the
# current release, and the link's folder is what the executables put on sys.path)
PACKAGE_ROOT = Path(os.path.abspath(__file__)).parents[2]
REBUILT: Dict[str, Type[AmoError]] = {cls.__name__: cls for cls in (
    errors.AmoError, errors.ConfigError, errors.RetryLater, errors.AmbiguousWriteError,
    errors.Reauthorize, errors.AuthorizationRefused, errors.Stop)}


class DetachedRefresh:
    """Rotates the pair of ``store`` through a child process (see the module docstring)."""

    def __init__(self, transport: Transport, store: TokenStore, *, python: str = sys.executable,
                 wait_seconds: float = WAIT_SECONDS) -> None:
        self.transport = transport
        self.store = store
        self.python = python
        self.wait_seconds = wait_seconds

    def __call__(self, current: TokenSet, *, lock_fd: int, requested_at: float) -> TokenSet:
        """The new pair, read back from the files the child wrote; raises what the child met."""
        limiter = self.transport.limiter
        order = {"root": str(self.store.paths.root), "base_url": self.transport.base_url,
                 "fingerprint": fingerprint(current.refresh), "requested_at": requested_at,
                 "lock_fd": lock_fd, "timeout": list(self.transport.timeout),
                 "max_attempts": self.transport.max_attempts,
                 "rate": limiter.budget.capacity / limiter.budget.window, "margin": limiter.margin}
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            [self.python, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, pass_fds=(lock_fd,), start_new_session=True, env=env, text=True)
        try:
            out, err = child.communicate(json.dumps(order), timeout=self.wait_seconds)
        except subprocess.TimeoutExpired:
            # not killed: it may be about to write the pair; it keeps the lock until it has
            raise RetryLater(code="token_refresh_slow",
                             params={"seconds": f"{self.wait_seconds:g}"}) from None
        return self._outcome(current, child.returncode, out, err)

    def _outcome(self, current: TokenSet, returncode: int, out: str, err: str) -> TokenSet:
        try:
            answer = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        except ValueError:
            answer = {}
        outcome = answer.get("outcome")
        if outcome == "error":
            raise rebuild_error(answer.get("error") or {})
        written = self.store.read()
        if written is not None and written.refresh != current.refresh:
            return written     # rotated (or, "changed", another pair is there: use it)
        log.error("the token refresh process ended with %s and no new pair: %s", returncode,
                  redact(err.strip()[-2000:]) or "(no output)")
        raise RetryLater(code="token_refresh_failed", params={"status": returncode})


def rebuild_error(data: Dict[str, Any]) -> AmoError:
    cls = REBUILT.get(str(data.get("class")), AmoError)
    fields = {k: data[k] for k in ("code", "params", "method", "path", "status", "request_id", "detail")
              if data.get(k) is not None}
    if cls in (errors.AuthorizationRefused, errors.Stop):
        fields["reason"] = data.get("reason") or "refused"
    return cls(str(data.get("message") or ""), **fields)


def describe_error(exc: AmoError) -> Dict[str, Any]:
    data: Dict[str, Any] = {"class": type(exc).__name__, "message": exc.message, "code": exc.code,
                            "params": {k: v if isinstance(v, (int, float, str, bool)) or v is None else str(v)
                                       for k, v in exc.params.items()},
                            "method": exc.method, "path": exc.path, "status": exc.status,
                            "request_id": exc.request_id, "detail": exc.detail}
    reason: Optional[str] = getattr(exc, "reason", None)
    if reason is not None:
        data["reason"] = reason
    return data


def run_child(order: Dict[str, Any]) -> Dict[str, Any]:
    """The child's work: check the lock and the pair, refresh, write the files."""
    from ..bootstrap.amocrm import build_amo_client, client_secret
    from ..paths import HostPaths
    from .oauth import refresh_pair

    lock_fd = int(order["lock_fd"])
    # the inherited description holds the lock already, so this succeeds at once; if it does
    # not, someone else holds it and nothing may be spent
    fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    # the lock file names its holder (for a peer's timeout message and the admin): now us
    os.ftruncate(lock_fd, 0)
    os.pwrite(lock_fd, f"{os.getpid()} {time.time():.3f}\n".encode(), 0)
    paths = HostPaths(Path(order["root"]))
    client = build_amo_client(paths, base_url=order["base_url"], rate=float(order["rate"]),
                              network_margin=float(order["margin"]),
                              timeout=(float(order["timeout"][0]), float(order["timeout"][1])),
                              max_attempts=int(order["max_attempts"]))
    store = TokenStore(paths)
    current = store.read()
    if current is None or fingerprint(current.refresh) != order["fingerprint"]:
        return {"outcome": "changed"}
    new = refresh_pair(client.transport, current, client_secret=client_secret(paths).read(),
                       clock=lambda: float(order["requested_at"]))
    store.write(new)    # before anything else can fail: the old refresh token is dead now
    return {"outcome": "rotated"}


def main() -> int:
    # systemd's stop sends SIGTERM to every process of the unit and a terminal's Ctrl-C reaches
    # the foreground group: this job is short (the transport's timeouts bound it) and must end
    # with the files written, so it finishes before it goes
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    try:
        answer = run_child(json.loads(sys.stdin.read()))
    except AmoError as exc:
        answer = {"outcome": "error", "error": describe_error(exc)}
    # the parent may be gone (killed): the files already say what happened
    with contextlib.suppress(OSError):
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
