"""BILLmanager's own tables -> domain snapshots: the ONE package with SQL on them.

Implements ``ports.BillingReader``::

    from billmgr_amocrm.billing import BillingDb
    from billmgr_amocrm import db

    billing = BillingDb(lambda: db.connect(settings))     # factory: owns an autocommit connection
    billing.clients([1, 2])        # -> {id: Client}   (missing ids are simply absent)
    billing.payers([5])            # -> {id: Payer}    (any profiletype)
    billing.account_by_login("bob")   # -> account id, only when one client has that login
    billing.services([7, 8])       # -> {id: Service}  (with every itemparam in .params)
    billing.services([7], params={"domain"})   # only the itemparams the rules read
    for ids in billing.iter_ids(Kind.LEAD, batch=1000): ...   # keyset pages, ascending
    billing.close()

Passing a factory is recommended: BillingDb then opens its connection with
autocommit, so every read sees the latest committed panel data, and reopens it when
it was closed. A connection passed directly is used as it is (with autocommit off,
its REPEATABLE READ snapshot is the caller's business).

What is assumed about BILLmanager's schema is marked in ``unverified.py`` and in
``tests/sandbox/schema.sql`` ([C] confirmed / [U] assumed columns). Payers are read
the way BILLmanager exposes them (``payers``): from the ``profile`` columns found at
run time and, for what no column holds, from ``mgrctl ... profile.edit`` when the
reader has an ``mgrctl`` (``BillingDb(..., mgrctl=Mgrctl.on_host(paths))``); no
requisite column is ever assumed to exist.

Dirty data never raises: NULLs become "" / None / 0, bytes are decoded as UTF-8 with
replacement characters, zero or invalid dates become None, text is stripped.

Modules: ``values`` (column values -> clean Python values), ``queries`` (every statement,
named), ``payers`` (payers from the columns that exist and mgrctl), ``reader``
(:class:`BillingDb`, which runs them).
"""

from __future__ import annotations

from .reader import BillingDb

__all__ = ["BillingDb"]
