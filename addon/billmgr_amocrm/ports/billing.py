"""``BillingReader``: what the sync core reads of BILLmanager's tables (``billing/`` implements it)."""

from __future__ import annotations

from datetime import datetime
from typing import Collection, Iterator, Optional, Protocol, Sequence

from ..domain import Client, Kind, Payer, Service


class BillingReader(Protocol):
    def clients(self, ids: Sequence[int]) -> dict[int, Client]: ...

    def payers(self, ids: Sequence[int]) -> dict[int, Payer]: ...

    def services(self, ids: Sequence[int], params: Optional[Collection[str]] = None) -> dict[int, Service]:
        """Services by id; ``params``: only these itemparams (None: all)."""

    def iter_ids(self, kind: Kind, after_id: int = 0, batch: int = 1000) -> Iterator[list[int]]:
        """All ids of a kind in ascending order, streamed in batches (payers: profiletype 2 only)."""

    def account_of_user(self, user_id: int) -> Optional[int]: ...

    def account_by_login(self, login: str) -> Optional[int]:
        """The client whose user has this login, when exactly one client has; else None."""

    def account_by_login_or_email(self, value: str) -> Optional[int]: ...

    def newest_payer_of(self, account_id: int) -> Optional[int]: ...

    def legal_payers_by_account(self, account_ids: Sequence[int]) -> dict[int, list[int]]:
        """account id -> its legal-entity payer ids, ascending; accounts without one are absent."""

    def services_by_account(self, account_ids: Sequence[int]) -> dict[int, list[int]]:
        """account id -> its service ids, ascending; accounts without a service are absent."""

    def item_statuses(self, batch: int = 1000) -> Iterator[list[tuple[int, int]]]:
        """(item id, item.status) of every service, ascending, in pages (the lifecycle scan)."""

    def services_changed_since(self, since: datetime) -> Iterator[list[int]]:
        """Items opened or prolonged (opendate/expiredate moved) since a time, for the reconciler."""

    def accounts_of(self, kind: Kind, ids: Sequence[int]) -> dict[int, int]:
        """id -> its client's account id, for those of ``ids`` that still exist (a contact's: itself)."""

    def names(self, kind: Kind, ids: Sequence[int]) -> dict[int, str]:
        """Readable names for the bindings table (client name, payer name, service name)."""


