"""Token requests that outlive the process that started them: a refresh, a code exchange.

amoCRM's refresh tokens and authorization codes are single-use: once amoCRM has answered,
the old token (or the code) is dead and the new pair exists only in that answer. A process
killed between the answer and the write of the token files (SIGKILL from an admin, an OOM
kill, ``kill`` of a cron run, Ctrl-C at ``amocrm authorize``, a panel handler stopped)
used to lose the pair, and the module needed a new one-time code from the admin (proof
scenario 3 found it for the refresh).

So the exchange runs in a child interpreter of its own session: a signal to the parent,
its process group or its terminal does not reach it, and it ignores the SIGTERM that
systemd's stop sends to every process of the unit (the worker waits for it anyway). The
child inherits the open ``token.lock`` description, so the lock stays held until the child
has written the pair, whoever dies first; peers waiting for the lock then find the new
pair on disk and use it.

- A refresh (:class:`DetachedRefresh`): the child reads the secret and the pair from the
  host's files itself; what it gets on stdin is no secret: the host root, the account URL,
  the rate settings and the refresh token's fingerprint it must still find on disk
  (otherwise it spends nothing).
- A code exchange (:class:`DetachedExchange`): the form is on the child's stdin (a pipe
  between the two processes only, never argv or the environment), secret key and code
  included; the child writes the secret file and the pair, which records the code's
  fingerprint, so the same code given again finds it (``authorization.exchanged_before``).

Outcome on the child's stdout, one JSON object: ``{"outcome": "rotated"}`` or
``{"outcome": "exchanged"}``, ``{"outcome": "changed"}`` (the files hold another pair:
nothing sent) or ``{"outcome": "error", "error": {...}}`` (an :class:`AmoError`, rebuilt
by the parent).
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple, Type

from .. import errors
from ..errors import AmoError, RetryLater
from ..logsetup import redact
from ..paths import HostPaths
from .models import TokenMeta
from .tokens import TokenSet, TokenStore, fingerprint
from .transport import Transport

if TYPE_CHECKING:
    from .authorization import AuthForm

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
        order = {"op": "refresh", "root": str(self.store.paths.root), "base_url": self.transport.base_url,
                 "fingerprint": fingerprint(current.refresh), "requested_at": requested_at,
                 "lock_fd": lock_fd, "timeout": list(self.transport.timeout),
                 "max_attempts": self.transport.max_attempts,
                 "rate": limiter.budget.capacity / limiter.budget.window, "margin": limiter.margin}
        returncode, err = spawn(self.python, order, lock_fd, self.wait_seconds, slow="token_refresh_slow")
        written = self.store.read()
        if written is not None and written.refresh != current.refresh:
            return written     # rotated (or, "changed", another pair is there: use it)
        log.error("the token refresh process ended with %s and no new pair: %s", returncode,
                  redact(err.strip()[-2000:]) or "(no output)")
        raise RetryLater(code="token_refresh_failed", params={"status": returncode})


@dataclass(frozen=True)
class DetachedExchange:
    """Exchanges a one-time code through a child process that stores the secret key and the pair
    (see the module docstring); the ``authorization.Exchange`` of a host."""

    paths: HostPaths
    rate: float
    margin: float
    timeout: Tuple[float, float]
    max_attempts: int = 3
    python: str = sys.executable
    wait_seconds: float = WAIT_SECONDS

    def __call__(self, form: AuthForm, *, lock_fd: int, requested_at: float) -> TokenMeta:
        """The stored pair's metadata, read back from the files the child wrote; raises what it met."""
        order = {"op": "exchange", "root": str(self.paths.root), "requested_at": requested_at,
                 "lock_fd": lock_fd, "timeout": list(self.timeout), "max_attempts": self.max_attempts,
                 "rate": self.rate, "margin": self.margin,
                 "form": {"base_url": form.account.base_url, "client_id": form.client_id,
                          "client_secret": form.client_secret, "redirect_uri": form.redirect_uri,
                          "code": form.code}}
        # slow: it may be about to store the pair, which the same code then finds
        returncode, err = spawn(self.python, order, lock_fd, self.wait_seconds, slow="code_exchange_slow")
        written = TokenStore(self.paths).read()
        if written is not None and written.meta.code_fingerprint == fingerprint(form.code):
            return written.meta
        log.error("the code exchange process ended with %s and no pair: %s", returncode,
                  redact(err.strip()[-2000:]) or "(no output)")
        raise RetryLater(code="code_exchange_failed", params={"status": returncode})


def spawn(python: str, order: Dict[str, Any], lock_fd: int, wait_seconds: float, *,
          slow: str) -> Tuple[int, str]:
    """Run this module in a child of its own session holding ``lock_fd`` too, ``order`` on its
    stdin: raises the :class:`AmoError` it answered, or ``RetryLater(slow)`` after
    ``wait_seconds`` (the child is not killed: it keeps the lock until it has written the
    pair); otherwise its exit status and stderr, for the caller to read the files."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
        [python, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, pass_fds=(lock_fd,), start_new_session=True, env=env, text=True)
    try:
        out, err = child.communicate(json.dumps(order), timeout=wait_seconds)
    except subprocess.TimeoutExpired:
        raise RetryLater(code=slow, params={"seconds": f"{wait_seconds:g}"}) from None
    try:
        answer = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    except ValueError:
        answer = {}
    if isinstance(answer, dict) and answer.get("outcome") == "error":
        raise rebuild_error(answer.get("error") or {})
    return child.returncode, err


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
    """The child's work: check the lock, then the refresh or the code exchange, files written."""
    lock_fd = int(order["lock_fd"])
    # the inherited description holds the lock already, so this succeeds at once; if it does
    # not, someone else holds it and nothing may be spent
    fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    # the lock file names its holder (for a peer's timeout message and the admin): now us
    os.ftruncate(lock_fd, 0)
    os.pwrite(lock_fd, f"{os.getpid()} {time.time():.3f}\n".encode(), 0)
    paths = HostPaths(Path(order["root"]))
    if order.get("op") == "exchange":
        return _exchange(order, paths)
    return _refresh(order, paths)


def _transport(order: Dict[str, Any], paths: HostPaths, base_url: str) -> Transport:
    """The host's transport to ``base_url`` with the parent's rate settings and timeouts."""
    from ..bootstrap.amocrm import build_amo_client

    return build_amo_client(paths, base_url=base_url, rate=float(order["rate"]),
                            network_margin=float(order["margin"]),
                            timeout=(float(order["timeout"][0]), float(order["timeout"][1])),
                            max_attempts=int(order["max_attempts"])).transport


def _refresh(order: Dict[str, Any], paths: HostPaths) -> Dict[str, Any]:
    from ..bootstrap.amocrm import client_secret
    from .oauth import refresh_pair

    store = TokenStore(paths)
    current = store.read()
    if current is None or fingerprint(current.refresh) != order["fingerprint"]:
        return {"outcome": "changed"}
    new = refresh_pair(_transport(order, paths, order["base_url"]), current,
                       client_secret=client_secret(paths).read(), clock=lambda: float(order["requested_at"]))
    store.write(new)    # before anything else can fail: the old refresh token is dead now
    return {"outcome": "rotated"}


def _exchange(order: Dict[str, Any], paths: HostPaths) -> Dict[str, Any]:
    from ..bootstrap.amocrm import client_secret
    from .authorization import check_form, exchange_and_store

    form = check_form(**order["form"])     # also registers the secret key and code for redaction
    transport = _transport(order, paths, form.account.base_url)
    try:
        exchange_and_store(transport, form, tokens=TokenStore(paths), secret_file=client_secret(paths),
                           requested_at=float(order["requested_at"]))
    finally:
        transport.session.close()
    return {"outcome": "exchanged"}


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
