"""The amoCRM adapter's parts, built from one host's files: the client, the code exchange,
the token status and the secret. None of them needs the database, so the panel can show a
module's status before it is authorized, and ``authorize`` can run before anything else.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Optional, Tuple

if TYPE_CHECKING:
    import requests

    from ..amocrm import AmoClient, ClientSecret, TokenInfo, TokenStatus
    from ..amocrm.backoff import Backoff
    from ..amocrm.transport import Reply
    from ..amocrm.urls import AccountUrl
    from ..paths import HostPaths


def build_amo_client(paths: HostPaths, *, rate: Optional[float] = None, chunk_size: Optional[int] = None,
                     network_margin: Optional[float] = None,
                     base_url: Optional[str] = None, timeout: Tuple[float, float] = (5.0, 30.0),
                     max_attempts: int = 3, backoff: Optional[Backoff] = None,
                     session: Optional[requests.Session] = None, refresh_margin: Optional[float] = None,
                     probe_interval: Optional[float] = None, clock: Callable[[], float] = time.time,
                     sleep: Callable[[float], None] = time.sleep) -> AmoClient:
    """The amoCRM client for the account in ``token.json`` (or ``base_url``), from the host's files.

    ``App.amo`` builds its clients here, and so do the tests (with short timeouts and a
    fake clock). Raises ``Reauthorize`` when the module was never authorized.
    """
    from ..amocrm import AmoClient
    from ..amocrm.batch import DEFAULT_CHUNK
    from ..amocrm.circuit import DEFAULT_PROBE_INTERVAL, ClientState
    from ..amocrm.credentials import DEFAULT_REFRESH_MARGIN, Credentials
    from ..amocrm.detached import DetachedRefresh
    from ..amocrm.ratelimit import DEFAULT_MARGIN, DEFAULT_RATE, MAX_SAFE_RATE, RateLimiter
    from ..amocrm.tokens import TokenStore
    from ..amocrm.transport import Transport
    from ..errors import Reauthorize

    rate = DEFAULT_RATE if rate is None else rate
    if rate > MAX_SAFE_RATE:
        raise ValueError(f"rate {rate} exceeds amoCRM's limit of {MAX_SAFE_RATE:g} requests per second")
    tokens = TokenStore(paths)
    if base_url is None:
        meta = tokens.read_meta()
        if meta is None:
            raise Reauthorize(code="not_authorized")
        base_url = meta.base_url
    state = ClientState(paths.client_state, clock=clock,
                        probe_interval=DEFAULT_PROBE_INTERVAL if probe_interval is None else probe_interval)
    margin = DEFAULT_MARGIN if network_margin is None else network_margin
    limiter = RateLimiter(paths.rate_state, rate, margin=margin, sleep=sleep)
    transport = Transport(base_url, limiter=limiter, state=state,
                          timeout=timeout, max_attempts=max_attempts, backoff=backoff, session=session,
                          clock=clock, sleep=sleep)
    credentials = Credentials(DetachedRefresh(transport, tokens), store=tokens, state=state,
                              expected_base_url=base_url, clock=clock,
                              margin=DEFAULT_REFRESH_MARGIN if refresh_margin is None else refresh_margin)
    return AmoClient(transport, credentials, state, chunk_size=chunk_size or DEFAULT_CHUNK)


def authorize(paths: HostPaths, url: str, client_id: str, secret: str, redirect_uri: str, code: str, *,
              rate: Optional[float] = None, timeout: Tuple[float, float] = (5.0, 30.0),
              clock: Callable[[], float] = time.time) -> TokenInfo:
    """Exchange the one-time code (``amocrm.authorize``) with this host's files and rate limit,
    in a child process that stores the pair even if this one is killed meanwhile."""
    from ..amocrm import authorize as exchange
    from ..amocrm.circuit import ClientState
    from ..amocrm.detached import DetachedExchange
    from ..amocrm.ratelimit import DEFAULT_MARGIN, DEFAULT_RATE
    from ..amocrm.tokens import TokenStore

    detached = DetachedExchange(paths, rate=DEFAULT_RATE if rate is None else rate, margin=DEFAULT_MARGIN,
                                timeout=timeout)
    return exchange(url, client_id, secret, redirect_uri, code, exchange=detached, tokens=TokenStore(paths),
                    state=ClientState(paths.client_state, clock=clock), secret_file=client_secret(paths),
                    clock=clock)


def authorize_long_lived(paths: HostPaths, url: str, token: str, *, rate: Optional[float] = None,
                         timeout: Tuple[float, float] = (5.0, 30.0),
                         clock: Callable[[], float] = time.time) -> TokenInfo:
    """Store a long-lived token (``amocrm.longlived``) once the account has accepted it, asking
    through this host's rate limit. Nothing is spent, so this runs in-process."""
    from ..amocrm.circuit import ClientState
    from ..amocrm.longlived import ACCOUNT_PATH
    from ..amocrm.longlived import authorize_long_lived as store
    from ..amocrm.tokens import TokenStore

    def probe(account: AccountUrl, token: str) -> Reply:
        client = build_amo_client(paths, rate=rate, base_url=account.base_url, timeout=timeout,
                                  max_attempts=2, clock=clock)
        try:
            return client.transport.send("GET", ACCOUNT_PATH, token=token, bypass_gate=True)
        finally:
            client.close()

    return store(url, token, probe=probe, tokens=TokenStore(paths),
                 state=ClientState(paths.client_state, clock=clock), clock=clock)


def token_status(paths: HostPaths, *, clock: Callable[[], float] = time.time) -> TokenStatus:
    """The token and stop state from this host's files (no network, no secret read)."""
    from ..amocrm import token_status as status_of
    from ..amocrm.circuit import ClientState
    from ..amocrm.tokens import TokenStore

    return status_of(TokenStore(paths), ClientState(paths.client_state, clock=clock), clock=clock)


def client_secret(paths: HostPaths) -> ClientSecret:
    from ..amocrm import ClientSecret

    return ClientSecret(paths.client_secret)
