"""Every statement the module runs on BILLmanager's own tables, named.

All values are bound parameters (``%s``). ``{}`` marks where ``values.placeholders``
puts one ``%s`` per id of an IN list; ``{lang}`` is filled only from
``reader.SUPPORTED_LANGS``. What is assumed about the columns is in ``unverified.py``.
"""

from __future__ import annotations

from ..domain import Kind

ACCOUNTS = (
    "SELECT a.id, a.name, a.registration_date, c.name, c.iso2 "
    "FROM account a LEFT JOIN country c ON c.id = a.country WHERE a.id IN ({})"
)
# The client's project: the lowest project id it is linked to (usually the only one).
PROJECTS = (
    "SELECT ap.account, p.id, p.name FROM account2project ap "
    "JOIN project p ON p.id = ap.project WHERE ap.account IN ({}) ORDER BY ap.account, p.id"
)
USERS = (
    "SELECT id, account, name, realname, email, phone, enabled FROM user "
    "WHERE account IN ({}) ORDER BY account, id"
)
# Payers: billing/payers.py builds their statements from the columns `profile` has.

# Localized names: name_<lang> when filled, else the default name.
ITEMS = (
    "SELECT i.id, i.account, i.status, i.pricelist, i.name, "
    "COALESCE(NULLIF(pl.name_{lang}, ''), pl.name), it.intname, "
    "COALESCE(NULLIF(it.name_{lang}, ''), it.name), i.cost, cur.iso, i.period, "
    "i.createdate, i.opendate, i.expiredate, i.autoprolong, i.processingmodule, "
    "i.abusesuspend, i.employeesuspend, i.autosuspend "   # unverified.SUSPEND_KIND_COLUMNS' order
    "FROM item i LEFT JOIN pricelist pl ON pl.id = i.pricelist "
    "LEFT JOIN itemtype it ON it.id = pl.itemtype "
    "LEFT JOIN currency cur ON cur.id = i.currency WHERE i.id IN ({in_})"
)
PARAMS = "SELECT item, intname, value FROM itemparam WHERE item IN ({}) ORDER BY item, id"
NAMED_PARAMS = ("SELECT item, intname, value FROM itemparam WHERE item IN ({}) AND intname IN ({}) "
                    "ORDER BY item, id")

ID_PAGE = {
    Kind.CONTACT: "SELECT id FROM account WHERE id > %s ORDER BY id LIMIT %s",
    Kind.COMPANY: "SELECT id FROM profile WHERE profiletype = %s AND id > %s ORDER BY id LIMIT %s",
    Kind.LEAD: "SELECT id FROM item WHERE id > %s ORDER BY id LIMIT %s",
}
# Which of these entities still exist, and whose (the client) each is: a contact's is itself.
ACCOUNTS_OF = {
    Kind.CONTACT: "SELECT id, id FROM account WHERE id IN ({})",
    Kind.COMPANY: "SELECT id, account FROM profile WHERE id IN ({})",
    Kind.LEAD: "SELECT id, account FROM item WHERE id IN ({})",
}
# BILLmanager's public address as its first project (brand) records it (unverified.PUBLIC_URL_SOURCE).
PUBLIC_URL = "SELECT billurl FROM project WHERE billurl IS NOT NULL AND billurl <> '' ORDER BY id LIMIT 1"
# The reconciler's lifecycle scan (sync/lifecycle.py): every item's status, a page at a time.
STATUS_PAGE = "SELECT id, status FROM item WHERE id > %s ORDER BY id LIMIT %s"
CHANGED_PAGE = (
    "SELECT id FROM item WHERE id > %s AND "
    "(createdate >= %s OR opendate >= %s OR expiredate >= %s) ORDER BY id LIMIT %s"
)

ACCOUNT_OF_USER = "SELECT account FROM user WHERE id = %s"
# Two rows at most: a second account means the login does not name one client.
ACCOUNTS_BY_LOGIN = "SELECT DISTINCT account FROM user WHERE name = %s LIMIT 2"
ACCOUNT_BY_EMAIL = "SELECT MAX(account) FROM user WHERE LOWER(TRIM(email)) = LOWER(%s)"
NEWEST_PAYER = "SELECT MAX(id) FROM profile WHERE account = %s"
LEGAL_PAYERS_BY_ACCOUNT = (
    "SELECT account, id FROM profile WHERE profiletype = %s AND account IN ({}) ORDER BY account, id"
)
SERVICES_BY_ACCOUNT = "SELECT account, id FROM item WHERE account IN ({}) ORDER BY account, id"

# Readable names for the bindings table.
CLIENT_NAMES = (
    "SELECT a.id, a.name, (SELECT u.realname FROM user u WHERE u.account = a.id ORDER BY u.id LIMIT 1) "
    "FROM account a WHERE a.id IN ({})"
)
