"""Validation of the amoCRM account URL the admin types into the settings form.

A real account URL is ``https://{subdomain}.{base_domain}`` with ``base_domain``
one of ``amocrm.ru``, ``amocrm.com``, ``kommo.com``: https only, no ``www``, no
path, query, port or credentials. The client secret is sent to this host, so
anything else is refused with a :class:`ConfigError` that says what to type.

Test and demo opt-in: when the environment variable
``BILLMGR_AMOCRM_ALLOW_LOOPBACK=1`` is set, plain ``http://`` URLs on the loopback
host (``127.0.0.1``, ``localhost``, ``::1``) with any port are also accepted, so
the project's amoCRM emulator can stand in for an account. Nothing else is
relaxed, and production hosts never set it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from ..errors import ConfigError

BASE_DOMAINS = ("amocrm.ru", "amocrm.com", "kommo.com")
LOOPBACK_ENV = "BILLMGR_AMOCRM_ALLOW_LOOPBACK"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class AccountUrl:
    """A validated account: ``base_url`` has no trailing slash."""

    base_url: str
    subdomain: str
    base_domain: str


def loopback_allowed() -> bool:
    return os.environ.get(LOOPBACK_ENV) == "1"


def parse_account_url(url: str, *, allow_loopback: Optional[bool] = None) -> AccountUrl:
    """Check an account URL and split it; raise ConfigError with a fix-it hint otherwise."""
    text = (url or "").strip()
    if allow_loopback is None:
        allow_loopback = loopback_allowed()
    example = "https://yourcompany.amocrm.ru"
    if not text:
        raise ConfigError(f"the amoCRM account URL is empty; enter it like {example}")
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{text!r} has an invalid port; enter it like {example}") from exc
    if parts.username or parts.password:
        raise ConfigError(f"{text!r} must not contain a user name or password")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{text!r} must be just the account address, without a path; like {example}")
    if allow_loopback and parts.scheme == "http" and host in LOOPBACK_HOSTS:
        netloc = f"[{host}]" if ":" in host else host
        base = f"http://{netloc}" + (f":{port}" if port else "")
        return AccountUrl(base_url=base, subdomain="emulator", base_domain=host)
    if parts.scheme != "https":
        raise ConfigError(f"{text!r} must start with https://; like {example}")
    if port not in (None, 443):
        raise ConfigError(f"{text!r} must not name a port; like {example}")
    for base_domain in BASE_DOMAINS:
        suffix = "." + base_domain
        if host.endswith(suffix):
            subdomain = host[: -len(suffix)]
            if subdomain == "www":
                raise ConfigError(f"{text!r} is the amoCRM site, not an account; use your account "
                                  f"address like {example}")
            if not _SUBDOMAIN.match(subdomain):
                raise ConfigError(f"{text!r} is not an amoCRM account address; like {example}")
            return AccountUrl(base_url=f"https://{host}", subdomain=subdomain, base_domain=base_domain)
    raise ConfigError(f"{text!r} is not an amoCRM account: the host must end with "
                      f"{', '.join(BASE_DOMAINS)}; like {example}")
