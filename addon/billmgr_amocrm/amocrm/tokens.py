"""The token pair on disk and the cross-process lock that serializes refreshes.

Files (under the root ``bootstrap`` passes in): ``etc/amocrm/access_token``, ``refresh_token``
(the secrets, root-only 0600, each written atomically) and ``token.json``
(:class:`TokenMeta`: expiry, domains, no secret). A long-lived token leaves ``refresh_token``
empty (there is nothing to refresh). A new pair is written refresh
token first: the old refresh token is already dead once amoCRM answered, so it
is the one thing that must survive a crash. ``token.lock`` beside them is held
(``fcntl.flock``, exclusive) around every refresh; ``token.queue`` keeps its
waiters in fair turns (:meth:`TokenStore.lock`).
"""

from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from pydantic import ValidationError

from ..errors import Reauthorize, RetryLater
from ..foundation.files import InsecureFileError, check_private, write_atomic
from ..foundation.locks import FileLock, LockTimeout
from ..logsetup import register_secret
from ..paths import HostPaths
from .models import TokenMeta


def fingerprint(secret: str) -> str:
    """A short, non-reversible tag of a token, safe to store and compare."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class TokenSet:
    access: str
    refresh: str
    meta: TokenMeta

    def __repr__(self) -> str:  # never print the secrets
        return f"TokenSet(expires_at={self.meta.expires_at}, refresh={self.meta.refresh_fingerprint})"


class TokenStore:
    """Reads and writes the token files of one host root."""

    def __init__(self, paths: HostPaths) -> None:
        self.paths = paths

    def read(self) -> Optional[TokenSet]:
        """The stored pair, or None when the module was never authorized."""
        p = self.paths
        try:
            # A token others could read may already have leaked: refuse it loudly rather
            # than keep using it (the message says how to fix the mode).
            check_private(p.access_token)
            check_private(p.refresh_token)
            access = p.access_token.read_text(encoding="utf-8").strip()
            refresh = p.refresh_token.read_text(encoding="utf-8").strip()
            meta_text = p.token_meta.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except InsecureFileError as exc:
            raise Reauthorize(code="tokens_insecure", params={"path": exc.path, "mode": exc.mode}) from None
        register_secret(access)
        register_secret(refresh)
        try:
            meta = TokenMeta.model_validate_json(meta_text)
        except ValidationError as exc:
            raise Reauthorize(code="tokens_damaged",
                              params={"path": str(p.token_meta), "count": exc.error_count()}) from None
        if not access or not (refresh or meta.long_lived):   # a long-lived token has no refresh token
            raise Reauthorize(code="tokens_empty", params={"path": str(p.amocrm_etc)})
        return TokenSet(access=access, refresh=refresh, meta=meta)

    def read_meta(self) -> Optional[TokenMeta]:
        try:
            return TokenMeta.model_validate_json(self.paths.token_meta.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValidationError):
            return None

    def write(self, tokens: TokenSet) -> None:
        register_secret(tokens.access)
        register_secret(tokens.refresh)
        p = self.paths
        write_atomic(p.refresh_token, tokens.refresh + "\n")
        write_atomic(p.access_token, tokens.access + "\n")
        write_atomic(p.token_meta, tokens.meta.model_dump_json(indent=1) + "\n")

    @contextmanager
    def lock(self, timeout: float = 60.0, clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> Iterator[int]:
        """Hold ``token.lock`` exclusively, yielding its descriptor (a child that inherits it holds
        the lock too, until both have closed it); RetryLater when it is not ours within ``timeout``.

        Waiters take fair turns through ``token.queue`` (see :mod:`..foundation.locks`): a
        refresh loop that runs late must not starve its peers. The lock file names its
        holder and since when, so a timeout (and an admin) can tell who has it.
        """
        path = self.paths.token_lock
        lock = FileLock(path, turnstile=path.with_suffix(".queue"), note_holder=True, clock=clock,
                        sleep=sleep)
        try:
            with lock.held(timeout) as held:
                yield held.fd
        except LockTimeout as exc:
            raise RetryLater(code="token_lock_busy",
                             params={"holder": exc.holder, "path": str(path),
                                     "seconds": f"{timeout:g}"}) from None
