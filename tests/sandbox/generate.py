"""A BILLmanager sandbox database: schema, realistic generated data, panel-like edits.

Python API (tests, the demo, benchmarks)::

    from tests.sandbox import create_sandbox, Sandbox

    summary = create_sandbox(settings, clients=30, services=200, seed=7)   # DbSettings
    summary.dirty["client.emoji"]        # -> account id of a known dirty row
    summary.services_by_status[3]        # -> how many suspended services

    sb = Sandbox(settings)               # panel-like edits, each committed at once
    new = sb.add_client(name="ООО Ромашка", email="info@romashka.ru")   # NewClient(account_id, user_id)
    sb.edit_client(new.account_id, name="ООО Ромашка+", phone="+7 900 000-00-00")
    uid = sb.add_user(new.account_id, email="buh@romashka.ru")
    pid = sb.add_payer(new.account_id, profiletype=2, name="ООО Ромашка", inn="7701234567")
    sb.edit_payer(pid, kpp="770101001")
    iid = sb.open_service(new.account_id, itemtype="vds", params={"domain": "vps.romashka.ru"})
    sb.prolong_service(iid)              # expiredate += period months
    sb.set_service_status(iid, 3)        # suspend
    sb.close()

The same helpers exist as functions taking an open connection first
(``add_client(conn, ...)``). The data is deterministic for a (seed, today) pair; it
always contains every profile type, every item status, every item type and the dirty
rows named in ``DIRTY_CASES``, whatever the requested size (tiny sizes are raised to
the minimum that holds them).

``create_sandbox(..., requisite_columns=False)`` builds a BILLmanager whose ``profile``
table has only the confirmed columns (id, account, name, profiletype): the payers'
requisites then live in ``sandbox_profile_full`` (``PROFILE_STORE``), which only the fake
mgrctl reads (``tests.sandbox.fake_mgrctl``), as BILLmanager's own mgrctl answers
``profile.edit``. The helpers edit payers the same way in both shapes.
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, NamedTuple, Optional, Sequence

import pymysql
import pymysql.connections
from pymysql.converters import escape_string

from billmgr_amocrm.dbconf import DbSettings

SCHEMA_PATH = Path(__file__).with_name("schema.sql")
INSERT_CHUNK_ROWS = 10000

# item.status codes (see unverified.ITEM_STATUS).
STATUS_ORDERED, STATUS_ACTIVE, STATUS_SUSPENDED, STATUS_DELETED, STATUS_PROCESSING = 1, 2, 3, 4, 5
ALL_STATUSES = (1, 2, 3, 4, 5)
STATUS_WEIGHTS = (8, 60, 10, 15, 7)

PROFILE_INDIVIDUAL, PROFILE_LEGAL, PROFILE_SOLE = 1, 2, 3

# Named rows every sandbox contains; ``SandboxSummary.dirty`` maps each to its id
# (account id for client.*, profile id for payer.*, item id for service.*).
DIRTY_CASES = (
    "client.no_email", "client.empty_email", "client.shared_phone_a", "client.shared_phone_b",
    "client.long_name", "client.emoji", "client.html", "client.sql", "client.no_users",
    "client.null_name", "client.disabled_main_user", "client.multi_user", "client.messy_email",
    "client.phone_extension", "client.no_project", "client.bad_country", "client.control_chars",
    "client.us_phone",
    "payer.legal_full", "payer.legal_no_inn", "payer.legal_html", "payer.legal_long_name",
    "payer.individual", "payer.sole_proprietor", "payer.null_name",
    "service.no_params", "service.missing_pricelist", "service.null_dates", "service.zero_date",
    "service.null_cost", "service.idn_domain", "service.html_param", "service.null_currency",
    "service.long_param",
    "service.status_1", "service.status_2", "service.status_3", "service.status_4", "service.status_5",
)
MIN_CLIENTS = sum(1 for c in DIRTY_CASES if c.startswith("client.")) + 2
MIN_SERVICES = sum(1 for c in DIRTY_CASES if c.startswith("service.")) + 5  # +1 per item type

LONG_NAME = ("Общество с ограниченной ответственностью «Очень Длинное Название "
             "Компании" + " и Партнёры" * 30)[:255]
EMOJI_NAME = "Пётр 🚀 Smith 👍🏽"
HTML_NAME = "<b>Bold</b> &amp; Co <i>Ltd</i>"
SQL_NAME = "Robert'); DROP TABLE account;--"
CONTROL_NAME = "Иван\u200bИванов\tтест\r\n"
SHARED_PHONE = "+7 (900) 111-22-33"


# --------------------------------------------------------------------------- reference data
COUNTRIES = (  # id, name (ru default), name_ru, name_en, iso2
    (1, "Россия", "Россия", "Russia", "RU"),
    (2, "Казахстан", "Казахстан", "Kazakhstan", "KZ"),
    (3, "Беларусь", "Беларусь", "Belarus", "BY"),
    (4, "США", "США", "United States", "US"),
    (5, "Германия", "Германия", "Germany", "DE"),
)
PROJECTS = ((1, "Хостинг «Первый»", "https://my.first-host.ru/billmgr"),
            (2, "Second Cloud", "https://billing.second.cloud/billmgr"))
CURRENCIES = ((126, "Российский рубль", "RUB", "₽", 643, "on"),
              (153, "US Dollar", "USD", "$", 840, "on"),
              (44, "Euro", "EUR", "€", 978, "on"))
ITEMTYPES = (  # id, intname, name, name_ru, name_en, orderpriority
    (1, "vds", "Виртуальный сервер", "Виртуальный сервер", "Virtual server", 1),
    (2, "vhost", "Виртуальный хостинг", "Виртуальный хостинг", "Shared hosting", 2),
    (3, "domain", "Домен", "Домен", "Domain", 3),
    (4, "certificate", "SSL-сертификат", "SSL-сертификат", "SSL certificate", 4),
    (5, "dedic", "Выделенный сервер", "Выделенный сервер", "Dedicated server", 5),
)
ITEMTYPE_ID = {row[1]: row[0] for row in ITEMTYPES}
PRICELISTS = (  # id, itemtype, intname, project, name_ru, name_en, cost RUB, period months
    (1, 1, "vds-1", 1, "VDS-1 (1 vCPU, 1 ГБ)", "VDS-1 (1 vCPU, 1 GB)", "390.00", 1),
    (2, 1, "vds-4", 1, "VDS-4 (4 vCPU, 8 ГБ)", "VDS-4 (4 vCPU, 8 GB)", "2490.00", 1),
    (3, 1, "cloud-xl", 2, "Cloud XL", "Cloud XL", "7990.50", 3),
    (4, 2, "host-start", 1, "Хостинг «Старт»", "Hosting Start", "149.00", 1),
    (5, 2, "host-biz", 1, "Хостинг «Бизнес»", None, "590.00", 12),   # no English name: fallback
    (6, 3, "domain-ru", 1, "Домен .ru", "Domain .ru", "199.00", 12),
    (7, 3, "domain-rf", 1, "Домен .рф", "Domain .рф", "199.00", 12),
    (8, 3, "domain-com", 2, "Домен .com", "Domain .com", "1290.00", 12),
    (9, 4, "ssl-dv", 1, "Sectigo PositiveSSL", "Sectigo PositiveSSL", "1500.00", 12),
    (10, 4, "ssl-ov", 2, "Thawte SSL Web Server OV", "Thawte SSL Web Server OV", "14990.00", 12),
    (11, 5, "dedic-e2236", 1, "Intel Xeon E-2236 / 32 ГБ", "Intel Xeon E-2236 / 32 GB", "9900.00", 1),
)
MISSING_PRICELIST_ID = 9999
PRICELISTS_BY_TYPE: dict[str, list[tuple[Any, ...]]] = {}
for _row in PRICELISTS:
    _intname = next(t[1] for t in ITEMTYPES if t[0] == _row[1])
    PRICELISTS_BY_TYPE.setdefault(_intname, []).append(_row)
ITEMTYPE_WEIGHTS = {"vds": 30, "vhost": 25, "domain": 30, "certificate": 10, "dedic": 5}
CURRENCY_RATE = {126: Decimal(1), 153: Decimal("0.011"), 44: Decimal("0.010")}

RU_MALE_FIRST = ("Александр", "Дмитрий", "Максим", "Сергей", "Андрей", "Алексей", "Артём", "Илья",
                 "Кирилл", "Михаил", "Никита", "Матвей", "Роман", "Егор", "Иван", "Пётр")
RU_FEMALE_FIRST = ("Анастасия", "Мария", "Анна", "Виктория", "Екатерина", "Наталья", "Ольга",
                   "Юлия", "Татьяна", "Елена", "Дарья", "Алёна")
RU_LAST = ("Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
           "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров")
RU_PATRONYMIC = ("Александров", "Дмитриев", "Сергеев", "Андреев", "Иванов", "Петров", "Михайлов")
EN_FIRST = ("James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
            "Elizabeth", "William", "Barbara", "Aigerim", "Nursultan", "Jürgen", "Zoë", "François")
EN_LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "O'Brien",
           "Müller", "Schmidt", "Nazarbayeva", "Kowalski", "van der Berg", "Lefèvre")
RU_COMPANY_WORDS = ("Ромашка", "Вектор", "Альфа", "СтройИнвест", "ТехноСервис", "Гарант", "Меридиан",
                    "Северный ветер", "Рога и Копыта", "Инфосистемы", "Веб-Студия 42", "Сибирь")
RU_COMPANY_FORMS = ("ООО", "АО", "ПАО", "ЗАО")
EN_COMPANY_WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Stark Industries", "Wayne Enterprises",
                    "Hooli", "Pied Piper", "Soylent", "Vandelay Industries")
EN_COMPANY_FORMS = ("LLC", "Inc.", "Ltd", "GmbH", "LLP")
CITIES = (("Москва", "101000"), ("Санкт-Петербург", "190000"), ("Новосибирск", "630000"),
          ("Екатеринбург", "620000"), ("Казань", "420000"), ("Нижний Новгород", "603000"))
STREETS = ("ул. Ленина", "пр-т Мира", "ул. Тверская", "Невский пр-т", "ул. Садовая",
           "ул. Гагарина", "наб. Фонтанки")
EMAIL_DOMAINS = ("mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru", "outlook.com",
                 "example.com", "company.org", "почта.рф", "yahoo.co.uk")
TRANSLIT = str.maketrans({
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z", "и": "i",
    "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "sch", "ъ": "", "ы": "y",
    "ь": "", "э": "e", "ю": "yu", "я": "ya",
})
TLDS = (".ru", ".com", ".рф", ".net", ".org", ".su", ".io", ".kz")
OSTEMPLS = ("ISPsystem__Ubuntu-22.04", "ISPsystem__Debian-12", "ISPsystem__AlmaLinux-9",
            "ISPsystem__Windows-Server-2022", "ISPsystem__CentOS-7")


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class SandboxSummary:
    """What ``create_sandbox`` generated (counts and the ids of the named dirty rows)."""

    database: str
    seed: int
    today: date
    clients: int
    users: int
    payers: int
    services: int
    itemparams: int
    payers_by_type: Mapping[int, int] = field(default_factory=dict)
    services_by_status: Mapping[int, int] = field(default_factory=dict)
    services_by_itemtype: Mapping[str, int] = field(default_factory=dict)
    dirty: Mapping[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    requisite_columns: bool = True


class NewClient(NamedTuple):
    account_id: int
    user_id: int


# --------------------------------------------------------------------------- connections
def server_connection(settings: DbSettings, database: Optional[str] = None) -> pymysql.connections.Connection:
    """An autocommit utf8mb4 connection to the server (optionally to one database)."""
    kwargs: dict[str, Any] = {}
    if settings.unix_socket:
        kwargs["unix_socket"] = settings.unix_socket
    if database:
        kwargs["database"] = database
    return pymysql.connect(host=settings.host, port=settings.port, user=settings.user,
                           password=settings.password, charset="utf8mb4", autocommit=True,
                           connect_timeout=5, **kwargs)


def _quoted_db(name: str) -> str:
    # Database names cannot be bound parameters: allow only a safe alphabet.
    if not name or not all(ch.isalnum() or ch == "_" for ch in name) or not name.isascii():
        raise ValueError(f"unsafe database name: {name!r} (letters, digits and _ only)")
    return f"`{name}`"


def create_database(settings: DbSettings, *, drop: bool = False) -> None:
    """Create ``settings.database`` (dropping it first with ``drop``); it must not exist otherwise."""
    conn = server_connection(settings)
    try:
        with conn.cursor() as cur:
            if drop:
                cur.execute(f"DROP DATABASE IF EXISTS {_quoted_db(settings.database)}")
            cur.execute(f"CREATE DATABASE {_quoted_db(settings.database)} "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        conn.close()


def drop_database(settings: DbSettings) -> None:
    conn = server_connection(settings)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {_quoted_db(settings.database)}")
    finally:
        conn.close()


def schema_statements() -> list[str]:
    text = SCHEMA_PATH.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";").strip()]


def load_schema(conn: pymysql.connections.Connection) -> None:
    with conn.cursor() as cur:
        for statement in schema_statements():
            cur.execute(statement.rstrip(";"))


def sql_literal(value: Any) -> str:
    """A SQL literal for the generator's own value types (3x faster than the driver's escape)."""
    kind = type(value)
    if value is None:
        return "NULL"
    if kind is int or kind is Decimal:
        return str(value)
    if kind is str:
        return "'" + escape_string(value) + "'"
    if kind is datetime:
        return "'" + value.isoformat(" ") + "'"
    if kind is date:
        return "'" + value.isoformat() + "'"
    raise TypeError(f"sandbox values are int, Decimal, str, date, datetime or None, not {kind.__name__}")


def insert_statements(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                      chunk: int = INSERT_CHUNK_ROWS) -> Iterator[str]:
    """Multi-row INSERT statements of up to ``chunk`` rows each."""
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    buf: list[str] = []
    for row in rows:
        buf.append("(" + ",".join(map(sql_literal, row)) + ")")
        if len(buf) >= chunk:
            yield head + ",".join(buf)
            buf = []
    if buf:
        yield head + ",".join(buf)


def execute_pipelined(conn: pymysql.connections.Connection, statements: Iterable[str]) -> None:
    """Run statements while a thread formats the next ones.

    Formatting is Python work and executing is server work; overlapping them trims the
    wall time of a large load (the driver's own work still holds the GIL).
    """
    ready: queue.Queue[Optional[str]] = queue.Queue(maxsize=4)
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            for statement in statements:
                ready.put(statement)
        except BaseException as exc:  # handed to the consumer, re-raised there
            failure.append(exc)
        finally:
            ready.put(None)

    worker = threading.Thread(target=produce, name="sandbox-format", daemon=True)
    worker.start()
    try:
        with conn.cursor() as cur:
            while (statement := ready.get()) is not None:
                cur.execute(statement)
    finally:
        # Drain so the producer never blocks forever on a full queue after an error.
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.1)
        worker.join()
    if failure:
        raise failure[0]


def bulk_insert(conn: pymysql.connections.Connection, table: str, columns: Sequence[str],
                rows: Iterable[Sequence[Any]], chunk: int = INSERT_CHUNK_ROWS) -> None:
    execute_pipelined(conn, insert_statements(table, columns, rows, chunk))


# --------------------------------------------------------------------------- value makers
def add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for dom in (day.day, 30, 29, 28):
        try:
            return date(year, month, dom)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def translit(text: str) -> str:
    out = text.lower().translate(TRANSLIT)
    return "".join(ch for ch in out if ch.isascii() and (ch.isalnum() or ch in "._-"))


class Maker:
    """Random but deterministic people, companies, phones, emails and service params."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def person(self) -> tuple[str, str, str]:
        """(full name, first name, last name); about 60% Russian."""
        r = self.rng
        if r.random() < 0.6:
            female = r.random() < 0.45
            first = r.choice(RU_FEMALE_FIRST if female else RU_MALE_FIRST)
            last = r.choice(RU_LAST) + ("а" if female else "")
            patr = r.choice(RU_PATRONYMIC) + ("на" if female else "ич")
            full = f"{last} {first} {patr}" if r.random() < 0.7 else f"{first} {last}"
            return full, first, last
        first, last = r.choice(EN_FIRST), r.choice(EN_LAST)
        return f"{first} {last}", first, last

    def company(self) -> str:
        r = self.rng
        if r.random() < 0.7:
            form = r.choice(RU_COMPANY_FORMS)
            name = r.choice(RU_COMPANY_WORDS)
            return r.choice((f'{form} "{name}"', f"{form} «{name}»", f"{form} {name}"))
        return f"{r.choice(EN_COMPANY_WORDS)} {r.choice(EN_COMPANY_FORMS)}"

    def email(self, first: str, last: str, serial: int) -> str:
        r = self.rng
        local = translit(first)[:1] + "." + translit(last) if r.random() < 0.5 else translit(first + last)
        local = (local or "user") + str(serial)
        domain = r.choice(EMAIL_DOMAINS)
        roll = r.random()
        if roll < 0.1:
            return f"{local.capitalize()}@{domain.upper()}"
        if roll < 0.2:
            return f"{local}+billing@{domain}"
        return f"{local}@{domain}"

    def phone(self) -> Optional[str]:
        r = self.rng
        d = [str(r.randrange(10)) for _ in range(10)]
        code = "9" + "".join(d[:2])
        a, b, c = "".join(d[2:5]), "".join(d[5:7]), "".join(d[7:9])
        fmt = r.randrange(12)
        if fmt == 0:
            return f"+7 ({code}) {a}-{b}-{c}"
        if fmt == 1:
            return f"8-{code}-{a}{b}{c}"
        if fmt == 2:
            return f"8{code}{a}{b}{c}"
        if fmt == 3:
            return f"+7{code}{a}{b}{c}"
        if fmt == 4:
            return f"8 (495) {a}-{b}-{c} доб. {r.randrange(100, 999)}"
        if fmt == 5:
            return f"+1 415 555 0{''.join(d[:3])}"
        if fmt == 6:
            return f"+1 (212) 555-0{''.join(d[:3])} ext. {r.randrange(1, 99)}"
        if fmt == 7:
            return f"+49 30 {a}{b}{c}"
        if fmt == 8:
            return f"+7 {code} {a} {b} {c}"
        if fmt == 9:
            return None
        if fmt == 10:
            return ""
        return f"7{code}{a}{b}{c}"

    def domain(self, serial: int) -> str:
        r = self.rng
        word = translit(r.choice(RU_LAST + EN_LAST)) or "site"
        tld = r.choice(TLDS)
        if tld in (".рф",):
            return f"{r.choice(('пример', 'магазин', 'сайт'))}{serial}{tld}"
        return f"{word}{serial}{tld}"

    def ip(self) -> str:
        r = self.rng
        first = r.choice((185, 91, 45, 194, 212))
        return f"{first}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def inn(self, digits: int) -> str:
        return "".join(str(self.rng.randrange(10)) for _ in range(digits))

    def address(self) -> tuple[str, str, str]:
        city, postcode = self.rng.choice(CITIES)
        street = f"{self.rng.choice(STREETS)}, д. {self.rng.randrange(1, 120)}"
        if self.rng.random() < 0.3:
            street += f", офис {self.rng.randrange(1, 500)}"
        return postcode, city, street


# --------------------------------------------------------------------------- generation
ACCOUNT_COLS = ("id", "name", "country", "registration_date", "parent", "level")
USER_COLS = ("id", "account", "name", "realname", "email", "phone", "language", "level", "enabled")
PROFILE_COLS = ("id", "account", "name", "profiletype", "person", "vatnum", "kpp", "ogrn", "email",
                "phone", "country_legal", "postcode_legal", "city_legal", "address_legal",
                "country_physical", "postcode_physical", "city_physical", "address_physical")
# The confirmed columns of `profile`: all a requisite_columns=False sandbox shows.
PROFILE_CONFIRMED_COLS = ("id", "account", "name", "profiletype")
PROFILE_STORE = "sandbox_profile_full"
ITEM_COLS = ("id", "pricelist", "account", "period", "currency", "status", "createdate", "opendate",
             "expiredate", "cost", "costperiod", "processingmodule", "parent", "autoprolong",
             "lastpricelist", "suspenddate", "remoteid", "specialstatus", "scheduledclose",
             "intvalue", "price", "name", "autosuspend", "employeesuspend", "abusesuspend")
# Why a generated suspended service is suspended: one of these item columns is 'on' (by the
# item id, not the random stream, so every other generated value stays as it was).
SUSPEND_COLUMNS = ("autosuspend", "employeesuspend", "abusesuspend")
SUSPEND_KIND_BY_ID = ("autosuspend",) * 7 + ("employeesuspend",) * 2 + ("abusesuspend",)


def suspend_flags(item_id: int, status: int, column: Optional[str] = None) -> list[Optional[str]]:
    """The three suspension columns of an item: one 'on' for a suspended one, else NULL."""
    if status != STATUS_SUSPENDED:
        return [None, None, None]
    chosen = column or SUSPEND_KIND_BY_ID[item_id % len(SUSPEND_KIND_BY_ID)]
    return ["on" if c == chosen else None for c in SUSPEND_COLUMNS]
# item.name: what the generator puts there (the domain of a domain service; others stay NULL,
# so lead names exercise both item.name and the fallback built from tariff and params).
NAMED_ITEMTYPES = ("domain",)


class _Generator:
    def __init__(self, seed: int, today: date, clients: int, services: int) -> None:
        self.rng = random.Random(seed)
        self.make = Maker(self.rng)
        self.today = today
        self.n_clients = max(clients, MIN_CLIENTS)
        self.n_services = max(services, MIN_SERVICES)
        self.accounts: list[list[Any]] = []
        self.account2project: list[tuple[int, int]] = []
        self.users: list[list[Any]] = []
        self.profiles: list[list[Any]] = []
        self.items: list[tuple[Any, ...]] = []
        self.itemparams: list[tuple[Any, ...]] = []
        self.dirty: dict[str, int] = {}
        self.logins: set[str] = set()
        self.reg_dates: dict[int, datetime] = {}

    # clients -------------------------------------------------------------
    def _login(self, email: Optional[str], user_id: int) -> str:
        candidate = (email or "").strip().lower()
        if not candidate or candidate in self.logins or len(candidate) > 64:
            candidate = f"user{user_id}"
        self.logins.add(candidate)
        return candidate

    def _user(self, account_id: int, realname: Optional[str], email: Optional[str],
              phone: Optional[str], enabled: str = "on") -> list[Any]:
        user_id = len(self.users) + 1
        lang = "ru" if self.rng.random() < 0.8 else "en"
        row = [user_id, account_id, self._login(email, user_id), realname, email, phone, lang, 16, enabled]
        self.users.append(row)
        return row

    def clients(self) -> None:
        r = self.rng
        client_cases = [c for c in DIRTY_CASES if c.startswith("client.")]
        for account_id in range(1, self.n_clients + 1):
            case = client_cases[account_id - 1] if account_id <= len(client_cases) else ""
            if case:
                self.dirty[case] = account_id
            full, first, last = self.make.person()
            email: Optional[str] = self.make.email(first, last, account_id)
            phone = self.make.phone()
            name: Optional[str] = full if r.random() < 0.75 else self.make.company()
            realname: Optional[str] = full
            country: Optional[int] = 1 if r.random() < 0.7 else r.randrange(2, len(COUNTRIES) + 1)
            reg = datetime.combine(self.today, datetime.min.time()) - timedelta(
                days=r.randrange(1, 2000), seconds=r.randrange(86400))
            self.reg_dates[account_id] = reg
            n_users = 1 if r.random() < 0.8 else r.choice((2, 2, 3))
            projects = [1] if r.random() < 0.7 else ([2] if r.random() < 0.8 else [1, 2])
            enabled = "on"

            if case == "client.no_email":
                email = None
            elif case == "client.empty_email":
                email = ""
            elif case in ("client.shared_phone_a", "client.shared_phone_b"):
                phone = SHARED_PHONE
            elif case == "client.long_name":
                name = realname = LONG_NAME
            elif case == "client.emoji":
                name = realname = EMOJI_NAME
            elif case == "client.html":
                name = realname = HTML_NAME
            elif case == "client.sql":
                name = realname = SQL_NAME
            elif case == "client.no_users":
                n_users = 0
            elif case == "client.null_name":
                name = realname = None
            elif case == "client.disabled_main_user":
                enabled, n_users = "off", 2
            elif case == "client.multi_user":
                n_users = 3
            elif case == "client.messy_email":
                email = f"  Ivan.Petrov{account_id}@Example.COM "
            elif case == "client.phone_extension":
                phone = "+7 (495) 123-45-67 доб. 123"
            elif case == "client.no_project":
                projects, country = [], None
            elif case == "client.bad_country":
                country = 999
            elif case == "client.control_chars":
                name = realname = CONTROL_NAME
            elif case == "client.us_phone":
                phone = "+1 415 555 0100"

            self.accounts.append([account_id, name, country, reg, None, None])
            self.account2project.extend((account_id, p) for p in projects)
            if n_users:
                self._user(account_id, realname, email, phone, enabled)
            for extra in range(1, n_users):
                efull, efirst, elast = self.make.person()
                self._user(account_id, efull, self.make.email(efirst, elast, account_id * 10 + extra),
                           self.make.phone())

    # payers --------------------------------------------------------------
    def _profile(self, account_id: int, ptype: int) -> list[Any]:
        r, mk = self.rng, self.make
        person, _, _ = mk.person()
        pc_l, city_l, addr_l = mk.address()
        pc_p, city_p, addr_p = (pc_l, city_l, addr_l) if r.random() < 0.6 else mk.address()
        email = mk.email("buh", str(account_id), len(self.profiles) + 1) if r.random() < 0.8 else None
        phone = mk.phone()
        name: str
        inn: Optional[str]
        kpp: Optional[str]
        ogrn: Optional[str]
        legal: tuple[Optional[int], Optional[str], Optional[str], Optional[str]] = (1, pc_l, city_l, addr_l)
        if ptype == PROFILE_LEGAL:
            name, inn, kpp, ogrn = mk.company(), mk.inn(10), mk.inn(9), mk.inn(13)
        elif ptype == PROFILE_SOLE:
            name, inn, kpp, ogrn = f"ИП {person}", mk.inn(12), None, mk.inn(15)
        else:
            name, inn, kpp, ogrn = person, (mk.inn(12) if r.random() < 0.3 else None), None, None
            legal = (None, None, None, None)  # individuals have no legal address
        row = [len(self.profiles) + 1, account_id, name, ptype, person, inn, kpp, ogrn, email, phone,
               *legal, 1, pc_p, city_p, addr_p]
        self.profiles.append(row)
        return row

    def payers(self) -> None:
        r = self.rng
        for account_id in range(1, self.n_clients + 1):
            roll = r.random()
            count = 0 if roll < 0.15 else (1 if roll < 0.8 else 2)
            for _ in range(count):
                t = r.random()
                self._profile(account_id, PROFILE_INDIVIDUAL if t < 0.45 else
                              (PROFILE_LEGAL if t < 0.8 else PROFILE_SOLE))
        # Named payers on the first clients, so every sandbox has them whatever the size.
        legal_full = self._profile(2, PROFILE_LEGAL)
        legal_full[2] = 'ООО "Ромашка"'
        legal_full[5], legal_full[6], legal_full[7] = "7707083893", "773601001", "1027700132195"
        legal_full[8], legal_full[9] = "info@romashka.ru", "+7 (495) 500-55-50"
        self.dirty["payer.legal_full"] = legal_full[0]
        no_inn = self._profile(3, PROFILE_LEGAL)
        no_inn[5] = no_inn[6] = no_inn[7] = None
        self.dirty["payer.legal_no_inn"] = no_inn[0]
        html = self._profile(4, PROFILE_LEGAL)
        html[2] = 'ООО "Рога & Копыта" <script>alert(1)</script> &amp;'
        self.dirty["payer.legal_html"] = html[0]
        long_name = self._profile(5, PROFILE_LEGAL)
        long_name[2] = LONG_NAME
        self.dirty["payer.legal_long_name"] = long_name[0]
        self.dirty["payer.individual"] = self._profile(6, PROFILE_INDIVIDUAL)[0]
        self.dirty["payer.sole_proprietor"] = self._profile(7, PROFILE_SOLE)[0]
        null_name = self._profile(8, PROFILE_LEGAL)
        null_name[2] = null_name[4] = None
        self.dirty["payer.null_name"] = null_name[0]

    # services ------------------------------------------------------------
    def _params(self, item_id: int, intname: str) -> list[tuple[str, str]]:
        mk, r = self.make, self.rng
        if intname == "vds":
            return [("domain", f"vps{item_id}.{mk.domain(item_id)}"), ("ip", mk.ip()),
                    ("ostempl", r.choice(OSTEMPLS)), ("username", "root")]
        if intname == "vhost":
            return [("domain", mk.domain(item_id)), ("username", f"u{item_id}"), ("ip", mk.ip())]
        if intname == "domain":
            dom = mk.domain(item_id)
            return [("domain", dom), ("ns0", "ns1.first-host.ru"), ("ns1", "ns2.first-host.ru")]
        if intname == "certificate":
            return [("domain", mk.domain(item_id)), ("crt_type", r.choice(("DV", "OV", "EV"))),
                    ("approver_email", f"admin@{mk.domain(item_id)}")]
        return [("hostname", f"srv{item_id}.dc.first-host.ru"), ("ip", mk.ip()),
                ("ostempl", r.choice(OSTEMPLS))]

    def _item(self, item_id: int, account_id: int, intname: str, status: int) -> list[Any]:
        r = self.rng
        pl = r.choice(PRICELISTS_BY_TYPE[intname])
        currency = 126 if r.random() < 0.85 else r.choice((153, 44))
        period = pl[7]
        cost = (Decimal(pl[6]) * CURRENCY_RATE[currency]).quantize(Decimal("0.01"))
        reg = self.reg_dates[account_id].date()
        span = max(1, (self.today - reg).days)
        created = reg + timedelta(days=r.randrange(span))
        opened: Optional[date] = None
        expires: Optional[date] = None
        if status != STATUS_ORDERED:
            opened = min(self.today, created + timedelta(days=r.randrange(3)))
            months_since = max(0, (self.today - opened).days // 30)
            if status == STATUS_DELETED:
                terms = r.randrange(1, max(2, months_since // period + 1))
                expires = add_months(opened, period * terms)
                expires = min(expires, self.today - timedelta(days=1))
            elif status == STATUS_SUSPENDED:
                expires = self.today - timedelta(days=r.randrange(1, 60))
            else:
                expires = add_months(opened, period * (months_since // period + 1))
        suspend = expires if status == STATUS_SUSPENDED else None
        return [item_id, pl[0], account_id, period, currency, status, created, opened, expires, cost,
                period, r.choice((1, 2, 3, None)), None, period if r.random() < 0.6 else 0, pl[0],
                suspend, None, None, None, None, cost, None, *suspend_flags(item_id, status)]

    def services(self) -> None:
        r = self.rng
        types = list(ITEMTYPE_WEIGHTS)
        weights = list(ITEMTYPE_WEIGHTS.values())
        service_cases = [c for c in DIRTY_CASES if c.startswith("service.")]
        account_ids = [a[0] for a in self.accounts]
        for item_id in range(1, self.n_services + 1):
            idx = item_id - 1
            case = service_cases[idx] if idx < len(service_cases) else ""
            if idx < len(service_cases):
                intname = "domain" if case == "service.idn_domain" else "vds"
                status = int(case[-1]) if case.startswith("service.status_") else STATUS_ACTIVE
                account_id = account_ids[idx % 10]
            elif idx < len(service_cases) + len(types):
                intname, status = types[idx - len(service_cases)], STATUS_ACTIVE
                account_id = account_ids[idx % 10]
            else:
                intname = r.choices(types, weights)[0]
                status = r.choices(ALL_STATUSES, STATUS_WEIGHTS)[0]
                account_id = r.choice(account_ids)
            row = self._item(item_id, account_id, intname, status)
            params = self._params(item_id, intname)
            if case:
                self.dirty[case] = item_id
            if case == "service.no_params":
                params = []
            elif case == "service.missing_pricelist":
                row[1] = row[14] = MISSING_PRICELIST_ID
            elif case == "service.null_dates":
                row[5], row[6], row[7], row[8] = STATUS_ORDERED, None, None, None
            elif case == "service.zero_date":
                row[8] = "0000-00-00"
            elif case == "service.null_cost":
                row[9] = row[20] = None
            elif case == "service.idn_domain":
                params = [("domain", "пример-сайта.рф"), ("domain_punycode", "xn----7sbbhfgbd6bkk.xn--p1ai")]
            elif case == "service.html_param":
                params = [("domain", "<b>bold</b>.example.com"), ("comment", "a &amp; b; DROP TABLE item;--")]
            elif case == "service.null_currency":
                row[4] = None
            elif case == "service.long_param":
                params = [("domain", "long.example.com"), ("note", "Ж" * 2000)]
            if intname in NAMED_ITEMTYPES:
                row[21] = dict(params).get("domain")
            self.items.append(tuple(row))
            self.itemparams.extend((item_id, k, v) for k, v in params)

    # loading -------------------------------------------------------------
    def load(self, conn: pymysql.connections.Connection) -> None:
        conn.begin()  # one commit for the whole load instead of one per chunk
        with conn.cursor() as cur:
            cur.execute("SET SESSION unique_checks = 0")
            # Lets the zero-date dirty row in even when the server runs with NO_ZERO_DATE.
            cur.execute("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
        tables: list[tuple[str, Sequence[str], Iterable[Sequence[Any]]]] = [
            ("country", ("id", "name", "name_ru", "name_en", "iso2"), COUNTRIES),
            ("project", ("id", "name", "billurl"), PROJECTS),
            ("currency", ("id", "name", "iso", "symbol", "code", "active"), CURRENCIES),
            ("itemtype", ("id", "intname", "name", "name_ru", "name_en", "orderpriority"), ITEMTYPES),
            ("pricelist", ("id", "itemtype", "intname", "parent", "compound", "active", "orderpriority",
                           "project", "name", "name_ru", "name_en"),
             [(p[0], p[1], p[2], None, "off", "on", p[0], p[3], p[4], p[4], p[5]) for p in PRICELISTS]),
            ("account", ACCOUNT_COLS, self.accounts),
            ("account2project", ("account", "project"), self.account2project),
            ("user", USER_COLS, self.users),
            ("profile", PROFILE_COLS, self.profiles),
            ("item", ITEM_COLS, self.items),
            ("itemparam", ("item", "intname", "value"), self.itemparams),
        ]
        execute_pipelined(conn, (stmt for table, cols, rows in tables
                                 for stmt in insert_statements(table, cols, rows)))
        conn.commit()
        with conn.cursor() as cur:
            cur.execute("SET SESSION unique_checks = 1")


def hide_requisite_columns(conn: pymysql.connections.Connection) -> None:
    """Turn ``profile`` into what a BILLmanager without requisite columns shows: only the
    confirmed columns. The full rows move to ``PROFILE_STORE`` (the fake mgrctl's source)."""
    with conn.cursor() as cur:
        cur.execute(f"RENAME TABLE profile TO {PROFILE_STORE}")
        cur.execute(f"CREATE VIEW profile AS SELECT {', '.join(PROFILE_CONFIRMED_COLS)} FROM {PROFILE_STORE}")
    conn.commit()


def profile_store(conn: pymysql.connections.Connection) -> str:
    """The table that holds payers' rows whole: ``profile``, or ``PROFILE_STORE`` behind the view."""
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
                    "AND table_name = %s", (PROFILE_STORE,))
        row = cur.fetchone()
    return PROFILE_STORE if row and row[0] else "profile"


def create_sandbox(settings: DbSettings, clients: int = 30, services: int = 200, seed: int = 1,
                   *, today: Optional[date] = None, drop: bool = False,
                   create_db: bool = True, requisite_columns: bool = True) -> SandboxSummary:
    """Create ``settings.database``, load the schema and fill it; return what was made.

    ``create_db=False`` fills an existing empty database (e.g. the ``fresh_db`` fixture).
    ``today`` anchors every date (default: the current date); the rows are identical for
    the same (seed, today, clients, services). ``requisite_columns=False``: ``profile`` has
    only its confirmed columns (see the module docstring); the data is the same.
    """
    started = time.perf_counter()
    today = today or date.today()
    if create_db:
        create_database(settings, drop=drop)
    gen = _Generator(seed, today, clients, services)
    gen.clients()
    gen.payers()
    gen.services()
    conn = server_connection(settings, settings.database)
    try:
        load_schema(conn)
        gen.load(conn)
        if not requisite_columns:
            hide_requisite_columns(conn)
    finally:
        conn.close()
    status_of = {row[0]: row[5] for row in gen.items}
    itemtype_of_pl = {p[0]: next(t[1] for t in ITEMTYPES if t[0] == p[1]) for p in PRICELISTS}
    intname_of_item = {row[0]: itemtype_of_pl.get(row[1], "?") for row in gen.items}
    return SandboxSummary(
        database=settings.database, seed=seed, today=today,
        clients=len(gen.accounts), users=len(gen.users), payers=len(gen.profiles),
        services=len(gen.items), itemparams=len(gen.itemparams),
        payers_by_type=dict(Counter(p[3] for p in gen.profiles)),
        services_by_status=dict(Counter(status_of.values())),
        services_by_itemtype=dict(Counter(intname_of_item.values())),
        dirty=dict(gen.dirty),
        seconds=time.perf_counter() - started,
        requisite_columns=requisite_columns,
    )


# --------------------------------------------------------------------------- panel-like edits
ACCOUNT_FIELDS = ("name", "country")
USER_FIELDS = ("realname", "email", "phone", "language", "enabled")
PROFILE_FIELDS = {"name": "name", "profiletype": "profiletype", "person": "person", "inn": "vatnum",
                  "kpp": "kpp", "ogrn": "ogrn", "email": "email", "phone": "phone",
                  "country_legal": "country_legal", "postcode_legal": "postcode_legal",
                  "city_legal": "city_legal", "address_legal": "address_legal",
                  "country_physical": "country_physical", "postcode_physical": "postcode_physical",
                  "city_physical": "city_physical", "address_physical": "address_physical"}


def _update(conn: pymysql.connections.Connection, table: str, row_id: int,
            changes: Mapping[str, Any]) -> None:
    # Column names come from the fixed whitelists above, never from callers' strings.
    if not changes:
        return
    sets = ", ".join(f"{col} = %s" for col in changes)
    with conn.cursor() as cur:
        cur.execute(f"UPDATE {table} SET {sets} WHERE id = %s", (*changes.values(), row_id))
        if cur.rowcount == 0:
            cur.execute(f"SELECT 1 FROM {table} WHERE id = %s", (row_id,))
            if cur.fetchone() is None:
                raise LookupError(f"{table} {row_id} does not exist")
    conn.commit()


def _pick(fields: Iterable[str], changes: Mapping[str, Any], what: str) -> dict[str, Any]:
    allowed = set(fields)
    unknown = set(changes) - allowed
    if unknown:
        raise TypeError(f"{what}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return dict(changes)


def _insert(conn: pymysql.connections.Connection, sql: str, args: Sequence[Any]) -> int:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        new_id = int(cur.lastrowid)
    conn.commit()
    return new_id


def add_user(conn: pymysql.connections.Connection, account_id: int, *, login: Optional[str] = None,
             realname: Optional[str] = None, email: Optional[str] = None, phone: Optional[str] = None,
             enabled: bool = True, language: str = "ru") -> int:
    """A new user of a client (user.edit with empty elid); returns user.id."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO user (account, name, realname, email, phone, language, level, enabled) "
                    "VALUES (%s, UUID(), %s, %s, %s, %s, 16, %s)",
                    (account_id, realname, email, phone, language, "on" if enabled else "off"))
        user_id = int(cur.lastrowid)
        cur.execute("UPDATE user SET name = %s WHERE id = %s", (login or f"user{user_id}", user_id))
    conn.commit()
    return user_id


def add_client(conn: pymysql.connections.Connection, *, name: Optional[str] = "Новый клиент",
               email: Optional[str] = None, phone: Optional[str] = None, realname: Optional[str] = None,
               login: Optional[str] = None, country: Optional[int] = 1, project: Optional[int] = 1,
               registration_date: Optional[datetime] = None) -> NewClient:
    """A registered client: the account, its project link and its first user."""
    account_id = _insert(conn, "INSERT INTO account (name, country, registration_date) VALUES (%s, %s, %s)",
                         (name, country, registration_date or datetime.now().replace(microsecond=0)))
    if project is not None:
        _insert(conn, "INSERT INTO account2project (account, project) VALUES (%s, %s)", (account_id, project))
    user_id = add_user(conn, account_id, login=login, realname=realname if realname is not None else name,
                       email=email, phone=phone)
    return NewClient(account_id, user_id)


def main_user_id(conn: pymysql.connections.Connection, account_id: int) -> Optional[int]:
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM user WHERE account = %s ORDER BY id LIMIT 1", (account_id,))
        row = cur.fetchone()
    return int(row[0]) if row else None


def edit_client(conn: pymysql.connections.Connection, account_id: int, **changes: Any) -> int:
    """account.edit: ``name``/``country`` go to the account; ``realname``/``email``/``phone``/
    ``language``/``enabled`` to its first user (as the admin form does). Returns the account id."""
    picked = _pick((*ACCOUNT_FIELDS, *USER_FIELDS), changes, "edit_client")
    account_part = {k: v for k, v in picked.items() if k in ACCOUNT_FIELDS}
    user_part = {k: v for k, v in picked.items() if k in USER_FIELDS}
    _scalar(conn, "SELECT id FROM account WHERE id = %s", account_id, missing="account")
    _update(conn, "account", account_id, account_part)
    if user_part:
        uid = main_user_id(conn, account_id)
        if uid is None:
            raise LookupError(f"account {account_id} has no user to edit")
        edit_user(conn, uid, **user_part)
    return account_id


def _scalar(conn: pymysql.connections.Connection, sql: str, arg: Any, missing: str) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, (arg,))
        row = cur.fetchone()
    if row is None:
        raise LookupError(f"{missing} {arg} does not exist")
    return row[0]


def edit_user(conn: pymysql.connections.Connection, user_id: int, **changes: Any) -> int:
    picked = _pick(USER_FIELDS, changes, "edit_user")
    if "enabled" in picked and isinstance(picked["enabled"], bool):
        picked["enabled"] = "on" if picked["enabled"] else "off"
    _update(conn, "user", user_id, picked)
    return user_id


def add_payer(conn: pymysql.connections.Connection, account_id: int, *, profiletype: int = PROFILE_LEGAL,
              name: str = 'ООО "Новая компания"', **requisites: Any) -> int:
    """profile.edit with empty elid; requisites use the Payer field names (inn, kpp, ogrn, ...)."""
    picked = _pick(PROFILE_FIELDS, requisites, "add_payer")
    cols = ["account", "profiletype", "name"] + [PROFILE_FIELDS[k] for k in picked]
    marks = ", ".join(["%s"] * len(cols))
    return _insert(conn, f"INSERT INTO {profile_store(conn)} ({', '.join(cols)}) VALUES ({marks})",
                   (account_id, profiletype, name, *picked.values()))


def edit_payer(conn: pymysql.connections.Connection, profile_id: int, **changes: Any) -> int:
    picked = _pick(PROFILE_FIELDS, changes, "edit_payer")
    _update(conn, profile_store(conn), profile_id, {PROFILE_FIELDS[k]: v for k, v in picked.items()})
    return profile_id


def delete_payer(conn: pymysql.connections.Connection, profile_id: int) -> None:
    """profile.delete: the payer's row goes (what the client or an admin deletes in the panel)."""
    with conn.cursor() as cur:
        cur.execute(f"DELETE FROM {profile_store(conn)} WHERE id = %s", (profile_id,))
    conn.commit()


def delete_client(conn: pymysql.connections.Connection, account_id: int) -> None:
    """account.delete: the client's users and payers go with it (its services stay, closed)."""
    with conn.cursor() as cur:
        cur.execute(f"DELETE FROM {profile_store(conn)} WHERE account = %s", (account_id,))
        cur.execute("DELETE FROM user WHERE account = %s", (account_id,))
        cur.execute("DELETE FROM account WHERE id = %s", (account_id,))
    conn.commit()


def open_service(conn: pymysql.connections.Connection, account_id: int, *, itemtype: str = "vds",
                 pricelist_id: Optional[int] = None, params: Optional[Mapping[str, str]] = None,
                 status: int = STATUS_ACTIVE, opendate: Optional[date] = None, period: Optional[int] = None,
                 cost: Optional[Decimal] = None, currency: int = 126, name: Optional[str] = None) -> int:
    """An ordered-and-opened service (item + itemparams), as after service.postopen;
    ``name`` is item.name (left NULL by default, as for most generated services)."""
    if pricelist_id is None:
        if itemtype not in PRICELISTS_BY_TYPE:
            raise ValueError(f"unknown itemtype {itemtype!r}; known: {sorted(PRICELISTS_BY_TYPE)}")
        pl = PRICELISTS_BY_TYPE[itemtype][0]
    else:
        pl = next((p for p in PRICELISTS if p[0] == pricelist_id), (pricelist_id, 0, "", 0, "", "", "0", 1))
    period = period or int(pl[7])
    opened = opendate or date.today()
    expires = add_months(opened, period) if status != STATUS_ORDERED else None
    cost = cost if cost is not None else Decimal(pl[6])
    item_id = _insert(conn, "INSERT INTO item (pricelist, account, period, currency, status, createdate, "
                            "opendate, expiredate, cost, costperiod, autoprolong, lastpricelist, price, "
                            "name) "
                            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                      (pl[0], account_id, period, currency, status, opened,
                       opened if status != STATUS_ORDERED else None, expires, cost, period, period,
                       pl[0], cost, name))
    for key, value in (params or {}).items():
        _insert(conn, "INSERT INTO itemparam (item, intname, value) VALUES (%s, %s, %s)",
                (item_id, key, value))
    return item_id


def prolong_service(conn: pymysql.connections.Connection, item_id: int, months: Optional[int] = None) -> int:
    """service.prolong: expiredate moves forward by ``months`` (default: the item's period)."""
    with conn.cursor() as cur:
        cur.execute("SELECT period, expiredate, opendate FROM item WHERE id = %s", (item_id,))
        row = cur.fetchone()
    if row is None:
        raise LookupError(f"item {item_id} does not exist")
    period, expires, opened = row
    base = expires if isinstance(expires, date) else (opened if isinstance(opened, date) else date.today())
    _update(conn, "item", item_id, {"expiredate": add_months(base, months or int(period or 1)),
                                    "status": STATUS_ACTIVE})
    return item_id


def set_service_status(conn: pymysql.connections.Connection, item_id: int, status: int,
                       suspended_by: Optional[str] = None) -> int:
    """A status change; a suspension sets the column of ``suspended_by`` (autosuspend,
    employeesuspend or abusesuspend; default by the item id), any other status clears them."""
    if status not in ALL_STATUSES:
        raise ValueError(f"status must be one of {ALL_STATUSES}")
    if suspended_by is not None and suspended_by not in SUSPEND_COLUMNS:
        raise ValueError(f"suspended_by must be one of {SUSPEND_COLUMNS}")
    flags = dict(zip(SUSPEND_COLUMNS, suspend_flags(item_id, status, suspended_by)))
    _update(conn, "item", item_id, {"status": status, **flags})
    return item_id


def set_service_cost(conn: pymysql.connections.Connection, item_id: int, cost: Optional[Decimal]) -> int:
    """item.cost changed (a tariff change, a discount; None: NULL)."""
    _update(conn, "item", item_id, {"cost": cost})
    return item_id


def set_service_name(conn: pymysql.connections.Connection, item_id: int, name: Optional[str]) -> int:
    """item.name changed (or cleared with None / "")."""
    _update(conn, "item", item_id, {"name": name})
    return item_id


def set_service_param(conn: pymysql.connections.Connection, item_id: int, intname: str, value: str) -> int:
    """service.postsetparam: replace (or add) one itemparam."""
    with conn.cursor() as cur:
        cur.execute("DELETE FROM itemparam WHERE item = %s AND intname = %s", (item_id, intname))
        cur.execute("INSERT INTO itemparam (item, intname, value) VALUES (%s, %s, %s)",
                    (item_id, intname, value))
    conn.commit()
    return item_id


class Sandbox:
    """Panel-like edits on one sandbox database over a lazily opened autocommit connection."""

    def __init__(self, settings: DbSettings, summary: Optional[SandboxSummary] = None) -> None:
        self.settings = settings
        self.summary = summary
        self._conn: Optional[pymysql.connections.Connection] = None

    @property
    def conn(self) -> pymysql.connections.Connection:
        if self._conn is None or not self._conn.open:
            self._conn = server_connection(self.settings, self.settings.database)
        return self._conn

    def close(self) -> None:
        if self._conn is not None and self._conn.open:
            self._conn.close()
        self._conn = None

    def add_client(self, **kw: Any) -> NewClient:
        return add_client(self.conn, **kw)

    def edit_client(self, account_id: int, **changes: Any) -> int:
        return edit_client(self.conn, account_id, **changes)

    def add_user(self, account_id: int, **kw: Any) -> int:
        return add_user(self.conn, account_id, **kw)

    def edit_user(self, user_id: int, **changes: Any) -> int:
        return edit_user(self.conn, user_id, **changes)

    def add_payer(self, account_id: int, **kw: Any) -> int:
        return add_payer(self.conn, account_id, **kw)

    def edit_payer(self, profile_id: int, **changes: Any) -> int:
        return edit_payer(self.conn, profile_id, **changes)

    def delete_payer(self, profile_id: int) -> None:
        delete_payer(self.conn, profile_id)

    def delete_client(self, account_id: int) -> None:
        delete_client(self.conn, account_id)

    def open_service(self, account_id: int, **kw: Any) -> int:
        return open_service(self.conn, account_id, **kw)

    def prolong_service(self, item_id: int, months: Optional[int] = None) -> int:
        return prolong_service(self.conn, item_id, months)

    def set_service_status(self, item_id: int, status: int, suspended_by: Optional[str] = None) -> int:
        return set_service_status(self.conn, item_id, status, suspended_by)

    def set_service_cost(self, item_id: int, cost: Optional[Decimal]) -> int:
        return set_service_cost(self.conn, item_id, cost)

    def set_service_param(self, item_id: int, intname: str, value: str) -> int:
        return set_service_param(self.conn, item_id, intname, value)

    def set_service_name(self, item_id: int, name: Optional[str]) -> int:
        return set_service_name(self.conn, item_id, name)

    def add_payment(self, account_id: int, amount: Decimal, **kw: Any) -> int:
        from .payments import add_payment

        return add_payment(self.conn, account_id, amount, **kw)

    def set_payment_status(self, payment_id: int, status: int) -> int:
        from .payments import set_payment_status

        return set_payment_status(self.conn, payment_id, status)

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Read-only helper for assertions in tests."""
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
