"""The BILLmanager facts the module relies on, each marked with how sure it is.

[U] items (unverified: no public source confirms them) live here and only here, so an
admin with a real host can correct them in one place; each says how to check it on a
host. [C] items (confirmed by public sources, shared/reference/billmanager-plugin.md
section 12) sit beside them where the [U] ones depend on them, with their source.
"""

from __future__ import annotations

# [U] Name of the admin "Integration" group in BILLmanager 6's main menu.
# Check: grep -o 'node name="mainmenu[a-z_]*"' /usr/local/mgr5/etc/xml/billmgr*.xml
MAINMENU_INTEGRATION_NODE = "mainmenuintegration"

# [U] <plugin><group> value used by integration modules on Integration -> Modules.
PLUGIN_GROUP = "integration"

# [C] AUTH_LEVEL: 30 root (and mgrctl), 29 administrator, 16 client user. 28 is a
# department row in `user`, not a person, so an administrator is level 29 or above
# (ispmanager developer guide "access levels"; openprovider's domainauthcode.php checks 29).
ADMIN_MIN_LEVEL = 29

# [C] AUTH_USER: BILLmanager sends the acting user's numeric id (user.id), or "root".
# [U] Older panels sent the login (user.name): store/resolve.py still accepts one when
# exactly one client has a user with that login.
AUTH_USER_ROOT = "root"

# item.status: [C] 2 active, 3 suspended, 4 deleted; [S] 1 ordered, 5 an operation in progress.
ITEM_STATUS = {1: "ordered", 2: "active", 3: "suspended", 4: "deleted", 5: "processing"}

# [C] profile.profiletype (openprovider's Api.php): 1 individual, 2 legal entity, 3 sole proprietor.
PROFILE_TYPE_LEGAL = 2

# [C] Processing modules call service.postopen, postprolong, postsuspend, postresume,
# postclose, postreopen and postsetparam with elid=<item>&sok=ok (ISPsystem's
# pmthesslstore.cpp, pmregistrar.php).
# [U] Events the module hooks (after="yes", type="xml"). Whether every path that opens,
# prolongs, suspends, resumes or closes a service reaches them (an admin's manual action,
# renewal or suspension by the billing's own cron, closure by expiry) is unverified: the
# reconciler covers the gaps (sync/lifecycle.py reads item.status for the last three).
HOOKED_EVENTS = (
    "register",
    "account.edit",
    "user.edit",
    "profile.edit",
    "profile.delete",
    "service.postopen",
    "service.postprolong",
    "service.postsuspend",
    "service.postresume",
    "service.postclose",
    "service.postreopen",
    "service.postsetparam",
    "payment.setpaid",
    "payment.setcanceled",
    "payment.setfraud",
)

# item.status -> the lifecycle event a service in that status last had ([C] codes 2, 3, 4;
# see ITEM_STATUS): the reconciler queues that event when the recorded one differs.
ITEM_STATUS_ACTIVE = 2
ITEM_STATUS_SUSPENDED = 3
ITEM_STATUS_DELETED = 4

# [C] The suspension kinds are the item columns autosuspend (non-payment, by the billing),
# employeesuspend (by an employee) and abusesuspend (for abuse) (billmanager-plugin.md
# section 12, ISPsystem's iteminfo()). [U] Their values: read as set when not NULL, not
# empty, not 'off' and not 0 (they may be 'on'/'off' flags or dates). [U] Which one wins
# when several are set: abuse, then employee, then non-payment (the gravest reason).
# Check: mysql billmgr -e "SELECT id, status, autosuspend, employeesuspend, abusesuspend
#        FROM item WHERE status = 3 LIMIT 20"
SUSPEND_KIND_COLUMNS = (("abusesuspend", "abuse"), ("employeesuspend", "employee"),
                        ("autosuspend", "nonpayment"))
SUSPEND_FLAG_OFF = ("", "off", "0", "no", "0000-00-00", "0000-00-00 00:00:00")

# [C] payment.status (section 12 of the reference): 4 paid, 6 refunded, 7 fraud, 9 canceled
# are the states a payment note is made for (the others are steps on the way). The events
# payment.setpaid / setcanceled / setfraud are [C]; a refund has no event the module knows,
# so refunds are found by the reconciler. The worker reads the status when it handles an
# event, never trusts the event's name: events can arrive late and out of order.
PAYMENT_STATUS_STATE = {4: "paid", 6: "refunded", 7: "fraud", 9: "canceled"}
PAYMENT_STATES = ("paid", "canceled", "refunded", "fraud")
# [C] Payment modules call these as actions without sok (LocalQuery("payment.setpaid",
# {"elid": ...}) in public payment modules): they have no form that could merely be opened,
# so the hook records them without PARAM_sok.
# [U] profile.delete (a payer deleted from the client's or the admin's list, elid a list on a
# group delete) is recorded without sok too: a delete has no form that could merely be opened, a
# refused one carries <error>, and an event for a payer that still exists only re-sends it. The
# reconciler finds a deletion that reached no event (sync/reconcile.py, bound payers gone).
EVENTS_WITHOUT_SOK = ("payment.setpaid", "payment.setcanceled", "payment.setfraud", "profile.delete")
# [U] payment.account (the client; BILLmanager may reach it through subaccount), payment.createdate
# and payment.paydate. Check: mysql billmgr -e 'SHOW COLUMNS FROM payment'
# [U] The table tying a payment to the services it paid for: payment2item(payment, item). Looked
# for at run time; without it payments are noted on contacts only.
# Check: mysql billmgr -e "SHOW TABLES LIKE 'payment%'"
PAYMENT_ITEM_TABLE = "payment2item"

# [C] item.status 4 (ITEM_STATUS_DELETED above): deleted (closed). No renewal task is made for it,
# and its open one is completed.
# [U] item.autoprolong: the prolongation period in months when the service renews itself, NULL
# or 0 when it does not. Check: compare the column with the service's "auto-renew" checkbox.

# [U] Which request parameters identify the entity on each hooked event.
# elid is the edited object; on a create it is empty and the object is resolved from
# plid (parent: the client of a user or payer) or su (client login) or the email.
EVENT_PARAMS_KEPT = ("func", "elid", "plid", "su", "email", "sok", "profiletype")

# [C] The payer form and `mgrctl -m billmgr -o xml profile.edit elid=N` carry these
# fields (openprovider's Api.php): two countries (legal and physical address), never one.
# [U] Whether they are also columns of `profile`: billing/ reads them from the columns it
# finds at run time (SHOW COLUMNS FROM profile) and asks mgrctl for the rest.
PROFILE_FORM_FIELDS = (
    "person", "vatnum", "email", "phone",
    "country_legal", "postcode_legal", "city_legal", "address_legal",
    "country_physical", "postcode_physical", "city_physical", "address_physical",
)

# [U] KPP and OGRN are payer parameters a provider defines per country (Directories ->
# Country -> Parameters), so their names are the provider's. These are the names tried,
# as a column of `profile` and as a field of profile.edit, in order.
# Check: mgrctl -m billmgr -o xml profile.edit elid=N  (a Russian legal entity's payer)
PROFILE_PARAM_NAMES: dict[str, tuple[str, ...]] = {"kpp": ("kpp",), "ogrn": ("ogrn", "ogrnip")}

# [U] `mgrctl -m billmgr -o xml paramlist` answers with the db.conf names (DBHost,
# DBUser, DBPassword, DBName, DBSocket) as elements; the command is [C], the shape [U].
# Check: /usr/local/mgr5/sbin/mgrctl -m billmgr -o xml paramlist | grep -v Password
# [U] Whether a handler running inside a panel request may call mgrctl without waiting on
# the panel itself (billmanager-plugin.md section 11, question 2): the panel handler asks
# paramlist like every process does, gives up after dbconf.PARAMLIST_TIMEOUT and reads
# db.conf instead.

# [U] The `country` table: columns `name` and `iso2` are assumed.
COUNTRY_ASSUMED_COLUMNS = ("name", "iso2")

# [U] Panel behaviours the descriptor relies on (xml/billmgr_mod_amocrm.xml):
#  - toolbar buttons of type="new" open our confirmation forms (check, resync all, retry failed);
#  - <ok type="list">func=amocrm.bindings</ok> returns to the bindings list after saving the filter;
#  - a list column holding a URL (amocrm_url) is rendered as a clickable link;
#  - a form's title can be switched for new rules by sending the `title_new` message as `title`.
PANEL_UNVERIFIED_BEHAVIOURS = (
    "toolbar type=new opens a confirmation form",
    "ok type=list redirect after a form save",
    "URL column rendered as a link",
    "title override for new-rule forms",
    "checkbox inputs post 'on'/'off' (the handler also accepts yes/true/1)",
    "toolbar icon names t-up / t-down exist",
)

# [U] The admin panel's forms that open a client and a service by id (issue 17.4): the links
# contacts and leads carry are {base}/billmgr?startform=<form>&elid=<id>. Check: log in as an
# administrator and open {base}/billmgr?startform=account.edit&elid=<a client's id>.
ADMIN_EDIT_FORMS = {"contact": "account.edit", "lead": "item.edit"}

# [C] project(id, name, billurl): a project's (brand's) billing address. [U] That it is the
# admin panel's public URL too and looks like https://host/billmgr: the module prefills its
# billmgr_url setting from the first project's billurl (without /billmgr), else from the
# redirect URL, and the admin confirms it. Check: mysql billmgr -e "SELECT id, billurl FROM project"
PUBLIC_URL_SOURCE = "project.billurl"

# [U] MySQL 8 keeps `information_schema.tables.create_time` current when a dump's restore
# creates a table anew (MariaDB does: tested). sync/timeline.py waits, after it noticed that the
# database went back, until no table was created or altered for a while; a server that showed
# a cached, older time would end that wait at once (the notice's own QUIET seconds still hold).
# Check: mysql billmgr -e "CREATE TABLE t_probe (a INT); SELECT create_time FROM
# information_schema.tables WHERE table_name = 't_probe'; DROP TABLE t_probe"
RESTORE_SIGNAL = "information_schema.tables.create_time"
