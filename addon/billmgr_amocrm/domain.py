"""What the module knows about BILLmanager entities: frozen snapshots, no I/O.

The BILLmanager adapter (``billing/``) builds these from SQL; the rules
(``rules/``) turn them into amoCRM payloads; the planner and worker move them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Mapping, Optional


class Kind(str, Enum):
    """A BILLmanager entity kind and the amoCRM entity it becomes."""

    CONTACT = "contact"   # BILLmanager client (account)
    COMPANY = "company"   # BILLmanager payer (profile) with profiletype 2
    LEAD = "lead"         # BILLmanager service (item)

    @property
    def amo_entity(self) -> str:
        """amoCRM API collection name."""
        return {"contact": "contacts", "company": "companies", "lead": "leads"}[self.value]

    @property
    def link_table(self) -> str:
        return {"contact": "amocrm_account2contact", "company": "amocrm_profile2company",
                "lead": "amocrm_item2lead"}[self.value]


# Sync order: a contact before the company linked to it, both before leads.
KIND_ORDER = (Kind.CONTACT, Kind.COMPANY, Kind.LEAD)

# The entities that carry a link back to BILLmanager's admin panel (issue 17.4): a client, a service.
URL_KINDS = (Kind.CONTACT, Kind.LEAD)


# profile.profiletype (confirmed): 1 individual, 2 legal entity, 3 sole proprietor.
PROFILE_INDIVIDUAL = 1


class ServiceEvent(str, Enum):
    """What happened to a service: the hooked ``service.post*`` events, or a status change
    the reconciler found in the database (suspend, resume, close) without one."""

    OPEN = "open"
    PROLONG = "prolong"
    SUSPEND = "suspend"
    RESUME = "resume"
    CLOSE = "close"


# Events that follow the item's status (``item.status`` 3 suspended, 2 active, 4 deleted):
# a newer one replaces an older one in the queue, whichever it is.
LIFECYCLE_EVENTS = (ServiceEvent.SUSPEND, ServiceEvent.RESUME, ServiceEvent.CLOSE)


class SuspendKind(str, Enum):
    """Why a suspended service is suspended (``item`` columns, see unverified.SUSPEND_KIND_COLUMNS)."""

    ABUSE = "abuse"
    EMPLOYEE = "employee"
    NONPAYMENT = "nonpayment"


@dataclass(frozen=True)
class ClientUser:
    id: int
    login: str
    realname: str = ""
    email: str = ""
    phone: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class Client:
    """A BILLmanager account with its users (contact data lives on users)."""

    id: int
    name: str
    registration_date: Optional[datetime] = None
    project_id: Optional[int] = None
    project_name: str = ""
    country: str = ""
    users: tuple[ClientUser, ...] = ()

    @property
    def main_user(self) -> Optional[ClientUser]:
        enabled = [u for u in self.users if u.enabled]
        candidates = enabled or list(self.users)
        return candidates[0] if candidates else None


@dataclass(frozen=True)
class Payer:
    """A BILLmanager profile. Only profiletype 2 (legal entity) becomes a company.

    A payer has two countries, one per address (``country_legal``, ``country_physical``);
    ``country`` is the one its contact data belongs to.
    """

    id: int
    account_id: int
    name: str
    profiletype: int
    person: str = ""
    inn: str = ""
    kpp: str = ""
    ogrn: str = ""
    address_legal: str = ""
    address_postal: str = ""
    email: str = ""
    phone: str = ""
    country_legal: str = ""
    country_physical: str = ""

    @property
    def country(self) -> str:
        """The legal address's country for a legal entity or a sole proprietor, the physical
        address's for an individual; the other one when that is empty."""
        first, second = ((self.country_physical, self.country_legal) if self.profiletype == PROFILE_INDIVIDUAL
                         else (self.country_legal, self.country_physical))
        return first or second


@dataclass(frozen=True)
class Service:
    """A BILLmanager item with what the lead needs from pricelist, itemtype and currency."""

    id: int
    account_id: int
    status: int
    pricelist_id: int
    pricelist_name: str = ""
    itemtype_intname: str = ""
    itemtype_name: str = ""
    cost: Optional[Decimal] = Decimal("0")   # None: the item has no cost (NULL)
    currency_iso: str = ""
    period: int = 0
    createdate: Optional[date] = None
    opendate: Optional[date] = None
    expiredate: Optional[date] = None
    autoprolong: int = 0
    processingmodule: Optional[int] = None
    params: Mapping[str, str] = field(default_factory=dict)
    name: str = ""   # item.name: the service's own name, when BILLmanager filled it
    suspend_kind: Optional[SuspendKind] = None   # why it is suspended (status 3 only), when known
