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
        raise ConfigError(code="url_empty", params={"example": example})
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(code="url_bad_port", params={"url": text, "example": example}) from exc
    if parts.username or parts.password:
        raise ConfigError(code="url_credentials", params={"url": text})
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(code="url_has_path", params={"url": text, "example": example})
    if allow_loopback and parts.scheme == "http" and host in LOOPBACK_HOSTS:
        netloc = f"[{host}]" if ":" in host else host
        base = f"http://{netloc}" + (f":{port}" if port else "")
        return AccountUrl(base_url=base, subdomain="emulator", base_domain=host)
    if parts.scheme != "https":
        raise ConfigError(code="url_not_https", params={"url": text, "example": example})
    if port not in (None, 443):
        raise ConfigError(code="url_has_port", params={"url": text, "example": example})
    for base_domain in BASE_DOMAINS:
        suffix = "." + base_domain
        if host.endswith(suffix):
            subdomain = host[: -len(suffix)]
            if subdomain == "www":
                raise ConfigError(code="url_amocrm_site", params={"url": text, "example": example})
            if not _SUBDOMAIN.match(subdomain):
                raise ConfigError(code="url_bad_subdomain", params={"url": text, "example": example})
            return AccountUrl(base_url=f"https://{host}", subdomain=subdomain, base_domain=base_domain)
    raise ConfigError(code="url_foreign_host",
                      params={"url": text, "domains": ", ".join(BASE_DOMAINS), "example": example})
