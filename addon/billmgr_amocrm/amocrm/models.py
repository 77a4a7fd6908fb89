"""Typed shapes of what amoCRM sends back (pydantic v2; unknown keys are kept).

Annotations use ``typing`` generics: pydantic evaluates them at runtime and the
hosts run Python 3.9.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class TokenResponse(_Loose):
    """Answer of POST /oauth2/access_token."""

    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int = Field(gt=0)
    access_token: str = Field(min_length=1, repr=False)
    refresh_token: str = Field(min_length=1, repr=False)
    server_time: Optional[int] = None


TokenKind = Literal["oauth", "long_lived"]
OAUTH: TokenKind = "oauth"
LONG_LIVED: TokenKind = "long_lived"


class TokenMeta(BaseModel):
    """``token.json``: everything that belongs with the token pair, but no secret.

    ``kind``: ``oauth`` (a pair from a one-time code, refreshed every day) or ``long_lived``
    (a private integration's long-lived token, 1 day to 5 years, never refreshed: its
    ``expires_at`` is the token's own ``exp`` and the refresh token file stays empty)."""

    model_config = ConfigDict(extra="ignore")

    kind: TokenKind = OAUTH
    base_url: str
    client_id: str
    redirect_uri: str
    subdomain: str = ""
    base_domain: str = ""
    api_domain: str = ""
    account_id: Optional[int] = None
    issued_at: float            # when the current pair was obtained (local clock)
    expires_at: float           # access token expiry (local clock)
    refresh_issued_at: float    # the refresh token rotates with every pair
    refresh_fingerprint: str = ""   # short hash: tells a peer's refresh from ours
    # short hash of the one-time code this pair was exchanged for; empty once it is refreshed.
    # The same code given again finds its pair here instead of being refused as spent.
    code_fingerprint: str = ""

    @property
    def long_lived(self) -> bool:
        return self.kind == LONG_LIVED


class Link(_Loose):
    href: str = ""


class ListPage(_Loose):
    """A page of a list: ``_embedded`` holds one key (leads, contacts, custom_fields, ...)."""

    page: Optional[int] = Field(default=None, alias="_page")
    links: Dict[str, Link] = Field(default_factory=dict, alias="_links")
    embedded: Dict[str, Any] = Field(default_factory=dict, alias="_embedded")

    def items(self, key: str) -> List[Dict[str, Any]]:
        value = self.embedded.get(key) or []
        return [x for x in value if isinstance(x, dict)]

    @property
    def has_next(self) -> bool:
        return "next" in self.links


class CustomFieldValue(_Loose):
    field_id: Optional[int] = None
    field_code: Optional[str] = None
    values: List[Dict[str, Any]] = Field(default_factory=list)


class Entity(_Loose):
    """A contact, company or lead as read (only what the client itself looks at)."""

    id: int
    name: Optional[str] = None
    request_id: Optional[Union[str, List[str]]] = None
    custom_fields_values: Optional[List[CustomFieldValue]] = None
    is_deleted: Optional[bool] = None
    # Any, not a dict: PHP encodes an empty array as [], and a shape this client only reads
    # from must never fail the lookups that read it
    embedded: Any = Field(default=None, alias="_embedded")

    def field_values(self, field_id: int) -> List[str]:
        return self._values(lambda cf: cf.field_id == field_id)

    def coded_values(self, field_code: str) -> List[str]:
        """The values of the predefined field ``field_code`` (``PHONE``, ``EMAIL``)."""
        return self._values(lambda cf: cf.field_code == field_code)

    def embedded_ids(self, key: str) -> List[int]:
        """Ids of the linked entities ``_embedded`` lists under ``key`` (read ``with`` them)."""
        refs = self.embedded.get(key) if isinstance(self.embedded, dict) else None
        return [int(r["id"]) for r in refs or [] if isinstance(r, dict) and isinstance(r.get("id"), int)]

    def _values(self, chosen: Callable[[CustomFieldValue], bool]) -> List[str]:
        out: List[str] = []
        for cf in self.custom_fields_values or []:
            if chosen(cf):
                out.extend(str(v.get("value")) for v in cf.values if v.get("value") is not None)
        return out


class CustomField(_Loose):
    id: int
    name: str = ""
    type: str = ""
    code: Optional[str] = None
    enums: Optional[List[Dict[str, Any]]] = None


class Status(_Loose):
    id: int
    name: str = ""
    pipeline_id: Optional[int] = None
    type: int = 0


class Pipeline(_Loose):
    id: int
    name: str = ""
    is_main: bool = False
    embedded: Dict[str, Any] = Field(default_factory=dict, alias="_embedded")

    @property
    def statuses(self) -> List[Status]:
        return [Status.model_validate(s) for s in self.embedded.get("statuses") or []]


class ValidationEntry(_Loose):
    code: str = ""
    path: str = ""
    detail: str = ""


class ValidationItem(_Loose):
    request_id: Optional[Union[str, int]] = None
    errors: List[ValidationEntry] = Field(default_factory=list)


class ProblemBody(_Loose):
    """An error body (problem+json). ``errors`` is the PATCH shape {entity_id: message}."""

    title: str = ""
    type: str = ""
    status: Optional[int] = None
    detail: str = ""
    hint: str = ""
    validation_errors: List[ValidationItem] = Field(default_factory=list, alias="validation-errors")
    errors: Optional[Union[Dict[str, Any], List[Any]]] = None
