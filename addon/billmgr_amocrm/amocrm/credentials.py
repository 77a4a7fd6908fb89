"""Keeps a usable access token: refresh ahead of expiry, once after a 401, and keep-alive.

Every refresh runs under ``token.lock`` (all processes of the host): after taking
it the files are read again, and if a peer already rotated the pair we use
theirs instead of spending our (now dead) refresh token. The exchange itself is
``rotate``'s (in production :class:`.detached.DetachedRefresh`: a child process that
writes the new pair even if this process is killed while amoCRM answers); the new
pair is on disk before it is used. A revoked refresh token (checked against a fresh read of the
files once) records the persistent re-authorize state and raises; the token
files are never deleted and an old authorization code is never reused.

A long-lived token (:mod:`.longlived`) is never refreshed: ahead of its expiry nothing is
done (the status screen warns two weeks before), and a 401 for it records the re-authorize
state with what to do (make a new token in amoCRM), exactly as a revoked refresh token does.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Optional, Protocol

from ..errors import AuthorizationRefused, Reauthorize
from ..foundation.files import InsecureFileError, check_private, write_atomic
from ..logsetup import register_secret
from .circuit import ClientState
from .longlived import RENEW_AHEAD, day_of
from .tokens import TokenSet, TokenStore

log = logging.getLogger("billmgr_amocrm.amocrm")

DEFAULT_REFRESH_MARGIN = 300.0
DEFAULT_KEEP_ALIVE_DAYS = 7.0


class ClientSecret:
    """The integration's secret key in ``etc/amocrm/client_secret`` (root-only 0600, atomic)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> str:
        path = self.path
        try:
            check_private(path)
            secret = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise Reauthorize(code="secret_file_missing", params={"path": str(path)}) from None
        except InsecureFileError as exc:
            raise Reauthorize(code="file_insecure", params={"path": str(path), "mode": exc.mode}) from None
        if not secret:
            raise Reauthorize(code="secret_file_empty", params={"path": str(path)})
        register_secret(secret)
        return secret

    def write(self, secret: str) -> None:
        secret = secret.strip()
        if not secret:
            raise ValueError("the secret key is empty")
        register_secret(secret)
        write_atomic(self.path, secret + "\n")

    def saved(self) -> bool:
        """A key is stored (the file is there and not empty); its content is not read."""
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False


class Rotate(Protocol):
    """Spends ``current``'s refresh token and returns the new pair, already written to the files;
    called with ``token.lock`` held through the descriptor ``lock_fd``."""

    def __call__(self, current: TokenSet, *, lock_fd: int, requested_at: float) -> TokenSet: ...


class Credentials:
    """Hands out access tokens for one host's token files."""

    def __init__(self, rotate: Rotate, *, store: TokenStore, state: ClientState,
                 expected_base_url: Optional[str] = None,
                 margin: float = DEFAULT_REFRESH_MARGIN, clock: Callable[[], float] = time.time) -> None:
        self.rotate = rotate
        self.store = store
        self.state = state
        self.expected_base_url = expected_base_url
        self.margin = margin
        self.clock = clock

    def current(self) -> TokenSet:
        tokens = self.store.read()
        if tokens is None:
            raise Reauthorize(code="not_authorized")
        if self.expected_base_url and tokens.meta.base_url.rstrip("/") != self.expected_base_url.rstrip("/"):
            raise Reauthorize(code="tokens_other_account",
                              params={"stored": tokens.meta.base_url, "configured": self.expected_base_url})
        return tokens

    def access_token(self) -> str:
        """A token valid for at least ``margin`` seconds (refreshing if needed)."""
        tokens = self.current()
        if self._expiring(tokens):
            tokens = self.refresh(self._expiring, why="access token expires soon")
        return tokens.access

    def after_401(self, rejected_access: str) -> str:
        """amoCRM refused ``rejected_access``: a new token, unless a peer already has one."""
        return self.refresh(lambda t: t.access == rejected_access, why="amoCRM answered 401").access

    def keep_alive(self, max_age_days: float = DEFAULT_KEEP_ALIVE_DAYS) -> bool:
        """Rotate the pair when the refresh token is older than ``max_age_days``; True if rotated.
        A long-lived token is never rotated (its end, when near, is logged)."""
        before = self.current()

        def old(tokens: TokenSet) -> bool:
            return self.clock() - tokens.meta.refresh_issued_at >= max_age_days * 86400

        if before.meta.long_lived:
            self._announce_end(before)
            return False
        if not old(before):
            return False
        return self.refresh(old, why=f"keep-alive (refresh token older than {max_age_days:g} days)"
                            ).refresh != before.refresh

    def _announce_end(self, tokens: TokenSet) -> None:
        """The daily keep-alive of a long-lived token: nothing to rotate, but its last two weeks are
        said in the worker's log every day (an admin may read the log, not the status screen)."""
        left = tokens.meta.expires_at - self.clock()
        if left < RENEW_AHEAD:
            log.warning("the long-lived amoCRM token ends on %s (in %.0f days): make a new one in amoCRM "
                        "(the integration's Keys and scopes) and enter it in the module settings",
                        day_of(tokens.meta.expires_at), max(left, 0) / 86400)

    def _expiring(self, tokens: TokenSet) -> bool:
        # a long-lived token cannot be renewed from here: it is used until amoCRM refuses it
        return not tokens.meta.long_lived and tokens.meta.expires_at - self.clock() < self.margin

    def refresh(self, needed: Callable[[TokenSet], bool], *, why: str) -> TokenSet:
        """Rotate the pair under the host-wide lock if ``needed`` still holds for the files read
        under the lock (a peer may have rotated it meanwhile; files read without the lock may
        even be half-written by that peer, so the decision is taken again here)."""
        with self.store.lock() as lock_fd:
            current = self.current()
            if not needed(current):
                log.debug("token pair already rotated by another process")
                return current
            if current.meta.long_lived:
                return self._refused(current, long_lived_refused(current))
            log.info("refreshing the amoCRM token pair: %s", why)
            try:
                new = self.rotate(current, lock_fd=lock_fd, requested_at=self.clock())
            except AuthorizationRefused as exc:
                return self._refused(current, exc)
            log.info("amoCRM token pair rotated; access token valid until %s",
                     time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(new.meta.expires_at)))
            return new

    def _refused(self, used: TokenSet, exc: AuthorizationRefused) -> TokenSet:
        again = self.store.read()
        if again is not None and (again.refresh, again.access) != (used.refresh, used.access):
            return again  # someone wrote a new pair meanwhile (e.g. a fresh authorization)
        self.state.record_reauth(exc.message, exc.code, exc.params)
        log.error("amoCRM refused the %s: %s; sync stops until the module is authorized again",
                  "long-lived token" if used.meta.long_lived else "token refresh", exc)
        raise exc


def long_lived_refused(tokens: TokenSet) -> AuthorizationRefused:
    """amoCRM refused the long-lived token (revoked, or past its expiry): only a new one helps."""
    return AuthorizationRefused(code="auth_long_lived_refused",
                                params={"until": day_of(tokens.meta.expires_at)}, reason="revoked")
