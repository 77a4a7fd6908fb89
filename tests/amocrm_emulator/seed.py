"""A realistic fresh account: users, two pipelines, loss reasons and custom fields.

Ids look like real amoCRM ids (7-8 digits) so clients cannot get away with
assuming small numbers. Contacts carry more than 50 custom fields on purpose:
the catalog is paged by 50 and clients that read one page lose fields (#490).
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

ACCOUNT_ID = 30591685
ADMIN_USER_ID = 504141
MAIN_PIPELINE_ID = 3177727
SECOND_PIPELINE_ID = 3177730
WON_STATUS_ID = 142
LOST_STATUS_ID = 143

PHONE_ENUM_CODES = ["WORK", "WORKDD", "MOB", "FAX", "HOME", "OTHER"]
EMAIL_ENUM_CODES = ["WORK", "PRIV", "OTHER"]

FIRST_IDS = {
    "contacts": 12117001,
    "companies": 40401001,
    "leads": 10185151,
    "tag": 263801,
    "custom_field": 2929601,
    "enum": 546701,
    "note": 42709301,
    "task": 4745201,
}

# Task types of the account (GET /api/v4/account?with=task_types): the two predefined ones
# (1 "follow-up"/call, 2 meeting) and one made in the UI, so that clients do not assume 1 and 2
# are all there is.
CALL_TASK_TYPE = 1
TASK_TYPES: List[Dict[str, Any]] = [
    {"id": CALL_TASK_TYPE, "name": "Связаться", "color": None, "icon_id": None, "code": "FOLLOW_UP"},
    {"id": 2, "name": "Встреча", "color": None, "icon_id": None, "code": "MEETING"},
    {"id": 2945101, "name": "Написать письмо", "color": "#ffdc7f", "icon_id": 5, "code": None},
]
USERS_GROUPS: List[Dict[str, Any]] = [{"id": 0, "name": "Отдел продаж", "uuid": None}]

USERS: List[Tuple[int, str, str]] = [
    (ADMIN_USER_ID, "Администратор", "admin@example.com"),
    (504144, "Мария Менеджер", "maria@example.com"),
    (504147, "Пётр Продажи", "petr@example.com"),
]

LOSS_REASONS: List[Tuple[int, str]] = [(8210101, "Дорого"), (8210104, "Выбрали конкурента")]


def user_record(user_id: int, name: str, email: str) -> Dict[str, Any]:
    admin = user_id == ADMIN_USER_ID
    return {
        "id": user_id,
        "name": name,
        "email": email,
        "lang": "ru",
        "rights": {
            "leads": {"view": "A", "edit": "A", "add": "A", "delete": "A", "export": "A"},
            "contacts": {"view": "A", "edit": "A", "add": "A", "delete": "A", "export": "A"},
            "companies": {"view": "A", "edit": "A", "add": "A", "delete": "A", "export": "A"},
            "mail_access": True,
            "catalog_access": True,
            "is_admin": admin,
            "is_free": False,
            "is_active": True,
            "group_id": None,
            "role_id": None,
        },
    }


def pipelines() -> List[Dict[str, Any]]:
    """Two pipelines, each with its own unsorted status (type 1), working stages, 142 and 143."""
    spec = [
        (
            MAIN_PIPELINE_ID,
            "Воронка",
            True,
            32392153,
            [(32392156, "Первичный контакт"), (32392159, "Переговоры"), (32392162, "Принимают решение")],
        ),
        (
            SECOND_PIPELINE_ID,
            "Продажи VPS",
            False,
            32392165,
            [(32392168, "Новый заказ"), (32392171, "Оплачен")],
        ),
    ]
    result = []
    for sort, (pid, name, is_main, unsorted_id, working) in enumerate(spec, start=1):
        statuses = [_status(unsorted_id, "Неразобранное", 10, pid, 1, editable=False, color="#c1c1c1")]
        for index, (sid, sname) in enumerate(working, start=2):
            statuses.append(_status(sid, sname, index * 10, pid, 0, editable=True, color="#99ccff"))
        statuses.append(_status(WON_STATUS_ID, "Успешно реализовано", 10000, pid, 0, False, "#ccff66"))
        statuses.append(_status(LOST_STATUS_ID, "Закрыто и не реализовано", 11000, pid, 0, False, "#d5d8db"))
        result.append(
            {
                "id": pid,
                "name": name,
                "sort": sort,
                "is_main": is_main,
                "is_unsorted_on": True,
                "is_archive": False,
                "account_id": ACCOUNT_ID,
                "statuses": statuses,
            }
        )
    return result


def _status(
    sid: int, name: str, sort: int, pid: int, kind: int, editable: bool, color: str
) -> Dict[str, Any]:
    return {
        "id": sid,
        "name": name,
        "sort": sort,
        "is_editable": editable,
        "pipeline_id": pid,
        "color": color,
        "type": kind,
        "account_id": ACCOUNT_ID,
    }


# (name, type, code, enum values-or-(value, code) pairs)
FieldSpec = Tuple[str, str, Any, List[Any]]


def custom_field_specs() -> Dict[str, List[FieldSpec]]:
    contact: List[FieldSpec] = [
        ("Телефон", "multitext", "PHONE", [(c, c) for c in PHONE_ENUM_CODES]),
        ("Email", "multitext", "EMAIL", [(c, c) for c in EMAIL_ENUM_CODES]),
        ("Должность", "text", "POSITION", []),
        ("Мгн. сообщения", "multitext", "IM", [(c, c) for c in ("SKYPE", "ICQ", "JABBER", "OTHER")]),
    ]
    extra_types = ["text", "numeric", "select", "textarea", "url", "date", "checkbox", "multiselect"]
    for n in range(1, 61):
        ftype = extra_types[n % len(extra_types)]
        enums = [f"Вариант {k}" for k in (1, 2, 3)] if ftype in ("select", "multiselect") else []
        contact.append((f"Поле контакта {n}", ftype, None, enums))
    company: List[FieldSpec] = [
        ("Телефон", "multitext", "PHONE", [(c, c) for c in PHONE_ENUM_CODES]),
        ("Email", "multitext", "EMAIL", [(c, c) for c in EMAIL_ENUM_CODES]),
        ("Web", "url", "WEB", []),
        ("Адрес", "textarea", "ADDRESS", []),
        ("Реквизиты", "legal_entity", None, []),
    ]
    for n in range(1, 11):
        company.append((f"Поле компании {n}", "text", None, []))
    lead: List[FieldSpec] = [
        ("Источник", "select", None, ["Сайт", "Звонок", "Партнёр"]),
        ("Тариф", "text", None, []),
        ("Дата окончания", "date", None, []),
        ("Автопродление", "checkbox", None, []),
        ("Сумма в месяц", "numeric", None, []),
    ]
    return {"contacts": contact, "companies": company, "leads": lead}


LEGAL_ENTITY_KEYS = frozenset(
    {
        "name",
        "entity_type",
        "vat_id",
        "tax_registration_reason_code",
        "kpp",
        "address",
        "legal_address",
        "bank_code",
        "bank_account_number",
        "director",
        "external_uid",
        "registration_number",
        "correspondent_account",
        "bank_name",
    }
)
