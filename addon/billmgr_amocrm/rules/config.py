"""amocrm.conf: one pydantic tree (its shape; ``config_check`` checks it against the presets).

The file holds no secrets: the integration's secret key lives in the 0600 file
``etc/amocrm/client_secret`` and the tokens beside it. Reading and writing the file
is the ``settings`` adapter's job; nothing here touches the disk.

Shape (JSON)::

    {"version": 1,
     "auth": {"url": "https://example.amocrm.ru", "client_id": "...", "redirect_uri": "..."},
     "sync": {"rate_limit": 7, "batch_size": 50, "responsible_user_id": null,
              "marker_field_ids": {"contact": null, "company": null, "lead": null},
              "recreate_deleted": true, "match_existing": true, "language": "ru",
              "billmgr_url": "https://billing.example.com",
              "url_field_ids": {"contact": null, "lead": null}},
     "conditions": {"contact": [], "company": [], "lead": [
         {"id": "c1", "value": "service.status", "validator": "equals", "argument": "2"}]},
     "tags": [{"id": "t1", "entity": "lead", "tag": "vps",
               "conditions": [{"value": "service.type", "validator": "equals", "argument": "vds"}]}],
     "fields": [{"id": "f1", "entity": "company", "field_id": 501, "field_type": "text",
                 "value": "payer.inn", "enum_map": {}, "conditions": []}],
     "pipelines": [{"id": "p1", "pipeline_id": 10, "status_id": 11, "conditions": [...]}],
     "notes": {"payment_states": ["paid", "canceled", "refunded", "fraud"], "on_leads": true},
     "renewals": [{"id": "r1", "days_before": 14, "responsible_user_id": null,
                   "text": "Renew {service_name} ({domain}) by {expiredate}: {price}",
                   "skip_autoprolong": true, "conditions": [...]}]}

Empty condition lists mean "always": by default every client, every legal-entity
payer and every service is synced. Pipeline rules are tried in order; the first
whose conditions all hold wins, and with none amoCRM's default pipeline is used.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Dict, Literal, Optional, Tuple, Union
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..domain import URL_KINDS, Kind
from .errors import ConfigError
from .jsontext import validation_problems

EntityKind = Literal["contact", "company", "lead"]
# amoCRM field types a field rule can write (multitext PHONE/EMAIL are the module's own).
FieldType = Literal["text", "textarea", "numeric", "checkbox", "select", "radiobutton", "multiselect",
                    "date", "date_time", "birthday", "url", "streetaddress", "monetary"]
SELECT_TYPES = frozenset({"select", "radiobutton", "multiselect"})
_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_AMO_HOST = re.compile(r"^https://[a-z0-9][a-z0-9-]*\.(amocrm\.ru|amocrm\.com|kommo\.com)/?$")

_FROZEN = ConfigDict(extra="forbid", frozen=True)


def _rule_id(value: str) -> str:
    if not _ID_PATTERN.match(value):
        raise ValueError("rule id must be 1-64 letters, digits, '_', '-' or '.'")
    return value


RuleId = Annotated[StrictStr, AfterValidator(_rule_id)]


class AuthConfig(BaseModel):
    model_config = _FROZEN

    url: StrictStr = ""
    client_id: StrictStr = ""
    redirect_uri: StrictStr = ""

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("client_secret", "secret", "access_token", "refresh_token", "code"):
                if key in data:
                    raise ValueError(f"{key} does not belong in amocrm.conf: secrets live in their own "
                                     "0600 files in etc/amocrm/")
        return data

    @field_validator("url")
    @classmethod
    def _amo_url(cls, value: str) -> str:
        if value and not _AMO_HOST.match(value.strip().lower()):
            raise ValueError("must look like https://yourcompany.amocrm.ru (or .amocrm.com, .kommo.com)")
        return value.strip().rstrip("/").lower()

    @field_validator("redirect_uri")
    @classmethod
    def _https(cls, value: str) -> str:
        if value and not value.startswith("https://"):
            raise ValueError("must be the public https:// address of BILLmanager")
        return value


class MarkerFieldIds(BaseModel):
    """amoCRM ids of the "BILLmanager ID" custom field per entity, once created."""

    model_config = _FROZEN

    contact: Optional[PositiveInt] = None
    company: Optional[PositiveInt] = None
    lead: Optional[PositiveInt] = None

    def as_map(self) -> Dict[Kind, int]:
        return {kind: getattr(self, kind.value) for kind in Kind if getattr(self, kind.value)}


class UrlFieldIds(BaseModel):
    """amoCRM ids of the module's "BILLmanager" link (url) field on contacts and leads, once created."""

    model_config = _FROZEN

    contact: Optional[PositiveInt] = None
    lead: Optional[PositiveInt] = None

    def as_map(self) -> Dict[Kind, int]:
        return {kind: getattr(self, kind.value) for kind in URL_KINDS if getattr(self, kind.value)}


def billmgr_base_url(value: str) -> str:
    """BILLmanager's public address, normalized: ``https://host[:port][/prefix]`` without a trailing
    ``/`` or ``/billmgr`` (the links add ``/billmgr?...``); '' stays '' (no link is written).
    Raises ValueError for anything else (not https, credentials, a query, a fragment, no host)."""
    text = value.strip()
    if not text:
        return ""
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError("must be BILLmanager's public https:// address") from None
    host = parts.hostname or ""
    if (parts.scheme.lower() != "https" or not _HOST_NAME.match(host) or "." not in host
            or parts.username or parts.password or parts.query or parts.fragment):
        raise ValueError("must be BILLmanager's public https:// address, like https://billing.example.com")
    path = parts.path.rstrip("/")
    if path.endswith("/billmgr"):
        path = path[: -len("/billmgr")]
    return f"https://{parts.netloc.lower()}{path}"


class SyncConfig(BaseModel):
    model_config = _FROZEN

    # amoCRM allows 7 requests/s, counted by arrival; the limiter counts the same way
    # (amocrm/ratelimit.py), so the full 7 is safe
    rate_limit: float = Field(default=7.0, gt=0, le=7)
    # seconds: the longest one-way network delay to amoCRM. A request's slot is busy until it
    # can have arrived (sent + this); the transport raises it to the slowest TCP handshake seen
    network_margin: float = Field(default=0.025, ge=0, le=1)
    batch_size: int = Field(default=50, ge=1, le=250)     # amoCRM: max 250, recommended 50
    # batches in flight at once, each on a MySQL connection of its own (sync/lanes.py): amoCRM
    # answers a write in 0.3-2 s, and 7 requests/s need that many answers awaited at once
    concurrency: int = Field(default=16, ge=1, le=32)
    responsible_user_id: Optional[PositiveInt] = None
    marker_field_ids: MarkerFieldIds = MarkerFieldIds()
    recreate_deleted: StrictBool = True
    # the first export binds clients to the contacts people already made in amoCRM (same
    # e-mail or phone, one candidate each way: sync/match.py) instead of making second copies
    match_existing: StrictBool = True
    # seconds an unanswered create waits before its marker lookup: longer than a write can
    # stay in flight at amoCRM (the client's 30 s read timeout plus a margin)
    settle_after: float = Field(default=60.0, ge=0, le=3600)
    language: Literal["ru", "en"] = "ru"                  # for enum labels written into text fields
    # BILLmanager's public address: contacts and leads link back to the client and the service
    # in its admin panel ('' writes no link and clears one written before)
    billmgr_url: StrictStr = ""
    url_field_ids: UrlFieldIds = UrlFieldIds()

    @field_validator("billmgr_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return billmgr_base_url(value)


class Condition(BaseModel):
    """``value`` (a preset value name) checked by ``validator`` (a preset validator name)."""

    model_config = _FROZEN

    value: StrictStr
    validator: StrictStr
    argument: Optional[StrictStr] = None

    @field_validator("argument", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        # Hand-written JSON often has "argument": 2; the panel always sends text.
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        return value


class SyncCondition(Condition):
    id: RuleId


class Conditions(BaseModel):
    model_config = _FROZEN

    contact: Tuple[SyncCondition, ...] = ()
    company: Tuple[SyncCondition, ...] = ()
    lead: Tuple[SyncCondition, ...] = ()

    def of(self, kind: Kind) -> Tuple[SyncCondition, ...]:
        return tuple(getattr(self, kind.value))


class TagRule(BaseModel):
    model_config = _FROZEN

    id: RuleId
    entity: EntityKind
    tag: StrictStr = Field(min_length=1, max_length=255)
    conditions: Tuple[Condition, ...] = ()


class FieldRule(BaseModel):
    model_config = _FROZEN

    id: RuleId
    entity: EntityKind
    field_id: PositiveInt
    field_type: FieldType
    value: StrictStr
    # For select fields: BILLmanager value -> amoCRM enum id (int) or option text (str).
    enum_map: Dict[str, Union[StrictInt, StrictStr]] = Field(default_factory=dict)
    conditions: Tuple[Condition, ...] = ()


class PipelineRule(BaseModel):
    model_config = _FROZEN

    id: RuleId
    pipeline_id: PositiveInt
    status_id: PositiveInt
    conditions: Tuple[Condition, ...] = ()


PaymentState = Literal["paid", "canceled", "refunded", "fraud"]
# the placeholders a renewal task's text may use (sync/renewals.py fills them)
RENEWAL_PLACEHOLDERS = ("service_name", "domain", "price", "expiredate")


class NotesConfig(BaseModel):
    """Payment notes (issue 17.2): which payment states make a note; none turns them off."""

    model_config = _FROZEN

    payment_states: Tuple[PaymentState, ...] = ("paid", "canceled", "refunded", "fraud")
    # also on the leads of the services BILLmanager ties the payment to
    on_leads: StrictBool = True

    @field_validator("payment_states")
    @classmethod
    def _distinct(cls, value: Tuple[str, ...]) -> Tuple[str, ...]:
        return tuple(dict.fromkeys(value))


class RenewalRule(BaseModel):
    """A renewal task rule (issue 17.3): for services whose conditions hold, a task on the lead
    ``days_before`` their expiredate. Rules are tried in order; the first that holds wins."""

    model_config = _FROZEN

    id: RuleId
    days_before: int = Field(default=14, ge=0, le=365)
    responsible_user_id: Optional[PositiveInt] = None     # None: the sync's responsible user
    text: StrictStr = Field(min_length=1, max_length=2000)
    skip_autoprolong: StrictBool = True
    conditions: Tuple[Condition, ...] = ()


class ModuleConfig(BaseModel):
    model_config = _FROZEN

    version: Literal[1] = 1
    auth: AuthConfig = AuthConfig()
    sync: SyncConfig = SyncConfig()
    conditions: Conditions = Conditions()
    tags: Tuple[TagRule, ...] = ()
    fields: Tuple[FieldRule, ...] = ()
    pipelines: Tuple[PipelineRule, ...] = ()
    notes: NotesConfig = NotesConfig()
    renewals: Tuple[RenewalRule, ...] = ()


def rebuild(config: ModuleConfig, changes: Dict[str, Any]) -> ModuleConfig:
    """A copy with top-level sections replaced, re-validated by pydantic (not model_copy)."""
    data = config.model_dump(mode="json")
    data.update({k: (v.model_dump(mode="json") if isinstance(v, BaseModel) else
                     [r.model_dump(mode="json") if isinstance(r, BaseModel) else r for r in v]
                     if isinstance(v, (list, tuple)) else v) for k, v in changes.items()})
    try:
        return ModuleConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(None, validation_problems(exc)) from None


def config_json(config: ModuleConfig) -> str:
    return json.dumps(config.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"


def default_config() -> ModuleConfig:
    """What applies before amocrm.conf exists: every client, legal payer and service is synced."""
    return ModuleConfig()
