"""Sharing amoCRM's 7 requests per second between hosts that use one database and one integration.

Each host's rate limiter counts only its own processes (``amocrm/ratelimit.py``). When
several hosts' workers use the same database, this host's worker publishes its share into
the host's limiter state now and then:

    one host alive                 the whole limit (nothing changes for a single host)
    this host runs the engine      the limit minus one per other live host, once it has held the
                                   engine lease for SHARE_TTL (the previous holder's share lapses
                                   by then)
    another host runs the engine   one request per window
    this host just joined          none for QUIET seconds, until the others have seen it

A share lapses after SHARE_TTL unless renewed; a lapsed share of a host that knew of others
falls back to one request per window. Liveness is judged on the database server's clock.
A host is one BILLmanager root on one machine (``hostname:root``).
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .bootstrap import App

log = logging.getLogger("billmgr_amocrm.worker")

SHARE_TTL = 30.0        # a published share lapses after this long unless renewed
PUBLISH_EVERY = 10.0    # how often a running worker or engine renews it
LIVE_WINDOW = 180.0     # a host not seen for this long is gone (cron runs every 60 s)
QUIET = 15.0            # a host that just joined sends nothing while the others learn of it


def host_id(root: str) -> str:
    return f"{socket.gethostname()}:{root}"


def share_for(capacity: int, hosts: int, holds_engine: bool, held_for: float, just_joined: bool) -> int:
    """This host's requests per window (pure: see the module docstring)."""
    if hosts <= 1:
        return capacity
    if just_joined:
        return 0
    if holds_engine and held_for >= SHARE_TTL:
        return max(1, capacity - (hosts - 1))
    return 1


def publish_share(app: App) -> int:
    """Announce this host and publish its share; returns the share."""
    from .amocrm.ratelimit import RateLimiter

    lease = app.lease()
    hosts, just_joined = lease.announce_host(host_id(str(app.paths.root)), LIVE_WINDOW, QUIET)
    limiter = RateLimiter(app.paths.rate_state, float(app.config.sync.rate_limit))
    share = share_for(limiter.budget.capacity, hosts, lease.held, lease.held_for(), just_joined)
    limiter.set_share(share, hosts, SHARE_TTL)
    if hosts > 1:
        log.debug("rate share: %d of %d requests per window (%d hosts on the database)",
                  share, limiter.budget.capacity, hosts)
    return share
