"""Russian and English text the handler builds at run time (errors, states, computed captions).

Static labels, hints and column titles live in the descriptor's ``<lang>`` blocks; this
module holds only what the handler itself writes. Every key has both languages
(``tests/panel`` checks it), and each text is wholly in its language: a field is named by
its label (``PanelRequest.label``), and a value that carries technical English (``detail``)
goes only into the English text (the action log keeps it for every page).
"""

from __future__ import annotations

from typing import Any, Mapping

MESSAGES: Mapping[str, Mapping[str, str]] = {
    # request / dispatch ---------------------------------------------------------------
    "access_denied": {
        "ru": "Доступ запрещён: функции интеграции с amoCRM доступны только администраторам.",
        "en": "Access denied: the amoCRM integration functions are for administrators only.",
    },
    "bad_input": {
        "ru": "Некорректный запрос: панель передала документ, который модуль не может принять.",
        "en": "Bad request: the panel passed a document the module cannot accept ({detail}).",
    },
    "unknown_func": {
        "ru": "Неизвестная функция модуля amoCRM: {func}.",
        "en": "Unknown amoCRM module function: {func}.",
    },
    "internal_error": {
        "ru": "Внутренняя ошибка модуля amoCRM. Подробности записаны в var/amocrm_action.log.",
        "en": "Internal error in the amoCRM module. Details are in var/amocrm_action.log.",
    },
    "component_missing": {
        "ru": "Компонент модуля не установлен ({module}). Переустановите модуль: sbin/amocrm-install.",
        "en": "A module component is not installed ({module}: {detail}). Reinstall the module: "
        "sbin/amocrm-install.",
    },
    "config_error": {
        "ru": "Файл настроек amoCRM содержит ошибку: {place}. Исправьте файл или удалите ошибочное правило.",
        "en": "The amoCRM configuration has an error: {detail}. Fix the file or delete the broken rule.",
    },
    "settings_changed": {
        "ru": "Настройки изменились с тех пор, как вы их открыли (их сохранил кто-то другой); ничего не "
              "записано. Откройте форму заново и повторите изменение.",
        "en": "The settings changed since you opened them (someone else saved them); nothing was written. "
              "Reload the form and make the change again.",
    },
    "no_selection": {
        "ru": "Не выбрано ни одной записи.",
        "en": "No records selected.",
    },
    "bad_elid": {
        "ru": "Некорректный идентификатор записи: {value}.",
        "en": "Invalid record id: {value}.",
    },
    # settings form ---------------------------------------------------------------------
    "required": {
        "ru": "Заполните поле «{field}».",
        "en": 'Fill in the "{field}" field.',
    },
    "url_invalid": {
        "ru": "URL интеграции должен иметь вид https://{{компания}}.amocrm.ru (также amocrm.com или "
        "kommo.com), без пути и параметров.",
        "en": "The integration URL must look like https://{{company}}.amocrm.ru (or amocrm.com, kommo.com), "
        "with no path or parameters.",
    },
    "redirect_invalid": {
        "ru": "Перенаправление должно быть публичным адресом BILLmanager вида https://{{адрес}}/billmgr и "
        "совпадать с полем «Ссылка для перенаправления» в amoCRM.",
        "en": "The redirect URL must be BILLmanager's public address, https://{{host}}/billmgr, exactly as "
        'in the "Redirect URI" field of the amoCRM integration.',
    },
    "client_id_invalid": {
        "ru": "ID интеграции должен быть скопирован из amoCRM без пробелов (вкладка «Ключи и доступы»).",
        "en": 'Copy the integration ID from amoCRM without spaces (the "Keys and scopes" tab).',
    },
    "code_required": {
        "ru": "Вставьте новый код авторизации из amoCRM (вкладка «Ключи и доступы»): код одноразовый и "
        "действует 20 минут.",
        "en": 'Paste a fresh authorization code from amoCRM (the "Keys and scopes" tab): a code works '
        "once and only for 20 minutes.",
    },
    "code_and_token": {
        "ru": "Заполните что-то одно: код авторизации или долгосрочный токен.",
        "en": "Fill in one of them: the authorization code or the long-lived token.",
    },
    "secret_required": {
        "ru": "Введите секретный ключ интеграции из amoCRM: сохранённого ключа нет.",
        "en": "Enter the integration's secret key from amoCRM: no key is stored yet.",
    },
    "secret_saved": {
        "ru": "сохранён — оставьте пустым, чтобы не менять",
        "en": "saved — leave empty to keep it",
    },
    "secret_missing": {"ru": "секретный ключ из amoCRM", "en": "secret key from amoCRM"},
    "billmgr_url_invalid": {
        "ru": "Адрес BILLmanager должен быть публичным адресом вида https://billing.example.com "
        "(или https://billing.example.com/billmgr), без логина, параметров и якоря; оставьте поле "
        "пустым, чтобы не давать ссылок.",
        "en": "The BILLmanager address must be its public address, like https://billing.example.com "
        "(or https://billing.example.com/billmgr), with no login, parameters or fragment; leave it "
        "empty for no links.",
    },
    "settings_unchanged": {
        "ru": "Настройки не изменились, авторизация действует.",
        "en": "Nothing changed; the authorization is still valid.",
    },
    # status and check --------------------------------------------------------------------
    "auth_ok": {"ru": "авторизован", "en": "authorized"},
    "auth_none": {"ru": "не настроена", "en": "not configured"},
    "auth_reauthorize": {
        "ru": "требуется повторная авторизация: введите новый код или долгосрочный токен в настройках "
        "интеграции",
        "en": "re-authorization needed: enter a new code or long-lived token in the integration settings",
    },
    "auth_ending": {
        "ru": "авторизован, но срок долгосрочного токена скоро закончится: создайте новый в amoCRM и "
        "введите его в настройках интеграции",
        "en": "authorized, but the long-lived token ends soon: make a new one in amoCRM and enter it in "
        "the integration settings",
    },
    "auth_blocked": {"ru": "заблокирован amoCRM (403)", "en": "blocked by amoCRM (403)"},
    "auth_unpaid": {"ru": "аккаунт amoCRM не оплачен (402)", "en": "the amoCRM account is not paid (402)"},
    "never": {"ru": "никогда", "en": "never"},
    "none": {"ru": "нет", "en": "none"},
    "seconds_ago": {"ru": "{value} с назад", "en": "{value} s ago"},
    "export_done": {"ru": "завершена", "en": "finished"},
    "export_not_started": {"ru": "не начиналась", "en": "not started"},
    "export_requested": {"ru": "запрошена, ждёт обработчика очереди (amocrm_task)",
                         "en": "requested, waiting for the worker (amocrm_task)"},
    "export_adopting": {
        "ru": "сначала связываются записи, которые уже есть в amoCRM с меткой модуля: {kinds}",
        "en": "first binding what amoCRM already holds with the module's marker: {kinds}",
    },
    "export_matching": {
        "ru": "сначала клиенты связываются с контактами, которые уже есть в amoCRM "
              "(тот же e-mail или телефон)",
        "en": "first binding clients to the contacts already in amoCRM (same e-mail or phone)",
    },
    "export_progress": {"ru": "{kind}: {done} из {total}", "en": "{kind}: {done} of {total}"},
    "check_ok": {
        "ru": "Связь с amoCRM есть: аккаунт «{account}» ({subdomain}), ответ за {latency} мс, "
        "токен действует до {expires}.",
        "en": 'amoCRM is reachable: account "{account}" ({subdomain}), answered in {latency} ms, the token '
        "is valid until {expires}.",
    },
    "catalog_ok": {
        "ru": "В amoCRM есть всё, что называют правила (проверено {when}).",
        "en": "amoCRM has everything the rules name (checked {when}).",
    },
    "catalog_unknown": {
        "ru": "Ещё не проверялось: нажмите «Проверить соединение».",
        "en": "Not checked yet: press Check connection.",
    },
    "catalog_problems": {
        "ru": "В amoCRM нет того, что называют правила ({count}, проверено {when}); пока это не "
        "исправлено, затронутые записи не будут приняты:",
        "en": "amoCRM lacks what the rules name ({count}, checked {when}); until it is fixed, the "
        "records it touches will be refused:",
    },
    # daily counts (status view) ---------------------------------------------------------
    "daily_line": {
        "ru": "{day}: контактов {contact}, компаний {company}, сделок {lead}, примечаний {note}, "
        "задач {task}, ошибок {failed}",
        "en": "{day}: contacts {contact}, companies {company}, leads {lead}, notes {note}, tasks {task}, "
        "failures {failed}",
    },
    "daily_none": {"ru": "За последние {days} дней модуль ничего не отправлял.",
                   "en": "The module sent nothing in the last {days} days."},
    # bindings -----------------------------------------------------------------------------
    "kind_contact": {"ru": "Контакт (клиент)", "en": "Contact (client)"},
    "kind_company": {"ru": "Компания (плательщик)", "en": "Company (payer)"},
    "kind_lead": {"ru": "Сделка (услуга)", "en": "Lead (service)"},
    "state_synced": {"ru": "синхронизировано", "en": "synced"},
    "state_queued": {"ru": "в очереди", "en": "queued"},
    "state_failed": {"ru": "ошибка: {reason}", "en": "failed: {reason}"},
    "state_any": {"ru": "любое", "en": "any"},
    "kind_any": {"ru": "все", "en": "all"},
    "queued_n": {"ru": "Поставлено в очередь: {count}.", "en": "Queued: {count}."},
    # rule editors ----------------------------------------------------------------------------
    "rule_not_found": {
        "ru": "Правило {id} не найдено: возможно, его уже удалили. Обновите список.",
        "en": "Rule {id} was not found: it may have been deleted already. Refresh the list.",
    },
    "unknown_choice": {
        "ru": "Поле «{field}»: значение «{value}» отсутствует в списке. Выберите значение из списка.",
        "en": '"{field}": "{value}" is not one of the choices. Pick a value from the list.',
    },
    "argument_required": {
        "ru": "Поле «{field}»: проверка «{validator}» требует значение для сравнения.",
        "en": '"{field}": the "{validator}" check needs a value to compare with.',
    },
    "argument_invalid": {
        "ru": "Поле «{field}»: значение не подходит для проверки «{validator}». Исправьте значение.",
        "en": '"{field}": the value does not suit the "{validator}" check ({detail}). Fix the value.',
    },
    "condition_incomplete": {
        "ru": "Заполните и «{value}», и «{validator}» (или очистите оба).",
        "en": 'Fill in both "{value}" and "{validator}" (or clear both).',
    },
    "catalog_unavailable": {
        "ru": "Не удалось получить справочники amoCRM ({detail}). Списки полей, воронок и пользователей "
        "неполны; проверьте соединение кнопкой «Проверить соединение».",
        "en": "Could not load amoCRM catalogs ({detail}). Field, pipeline and user lists are incomplete; "
        'use "Check connection".',
    },
    "catalog_issue": {"ru": "Поле «{field}»: {detail}.", "en": '"{field}": {detail}.'},
    "choose": {"ru": "— выберите —", "en": "— choose —"},
    "no_conditions": {"ru": "всегда", "en": "always"},
    "default_pipeline": {"ru": "по умолчанию amoCRM", "en": "amoCRM default"},
    # pipelines list ---------------------------------------------------------------------------
    "and_join": {"ru": " и ", "en": " and "},
    "not_in_amocrm": {"ru": "{id} (нет в amoCRM)", "en": "{id} (not found in amoCRM)"},
    "activities_text": {
        "ru": "примечания о платежах: {notes_done} добавлено, {notes_pending} ждут отправки, "
        "{notes_unlinked} ждут своего контакта или сделки в amoCRM, "
        "{notes_failed} с ошибкой; задачи о продлении: {tasks_open} открыто, {tasks_completed} закрыто, "
        "{tasks_failed} с ошибкой",
        "en": "payment notes: {notes_done} made, {notes_pending} to send, {notes_unlinked} waiting for "
        "their contact or lead in amoCRM, {notes_failed} failed; "
        "renewal tasks: {tasks_open} open, {tasks_completed} completed, {tasks_failed} failed",
    },
    # renewal task rules ------------------------------------------------------------------------
    "days_before_invalid": {
        "ru": "«{field}» — целое число дней от 0 до 365.",
        "en": '"{field}" is a whole number of days from 0 to 365.',
    },
    "placeholder_unknown": {
        "ru": "«{field}»: неизвестная подстановка «{name}». Допустимы: {known}; чтобы написать фигурную "
        "скобку, удвойте её.",
        "en": '"{field}": unknown placeholder "{name}". Known: {known}; double a curly brace to write one.',
    },
    "renewal_text_default": {
        "ru": "Продлить {service_name} ({domain}) до {expiredate}: {price}",
        "en": "Renew {service_name} ({domain}) by {expiredate}: {price}",
    },
    # sync settings ------------------------------------------------------------------------------
    "user_not_set": {
        "ru": "не задан (выбирает amoCRM)",
        "en": "not set (amoCRM decides)",
    },
    "user_inactive": {
        "ru": "{name} (#{id}, отключён в amoCRM)",
        "en": "{name} (#{id}, deactivated in amoCRM)",
    },
    "user_missing": {"ru": "#{id} (нет в amoCRM)", "en": "#{id} (not found in amoCRM)"},
    "user_unknown": {
        "ru": "#{id} (список пользователей amoCRM недоступен)",
        "en": "#{id} (the amoCRM user list is unavailable)",
    },
    "rate_limit_invalid": {
        "ru": "«{field}» — число больше 0 и не больше 7 (amoCRM допускает 7 запросов в секунду), "
        "например 5 или 2.5.",
        "en": '"{field}" is a number above 0 and at most 7 (amoCRM allows 7 requests per second), '
        "e.g. 5 or 2.5.",
    },
    "batch_size_invalid": {
        "ru": "«{field}» — целое число от 1 до 250 (рекомендуется 50).",
        "en": '"{field}" is a whole number from 1 to 250 (50 is recommended).',
    },
    "user_needs_catalog": {
        "ru": "Поле «{field}»: не удалось проверить пользователя amoCRM, список пользователей недоступен "
        "({detail}). Оставьте прежнего ответственного или повторите, когда amoCRM будет доступен.",
        "en": '"{field}": could not check the amoCRM user, the user list is unavailable ({detail}). Keep the '
        "current responsible user or try again when amoCRM is reachable.",
    },
    # next steps for the facade's errors, by ServiceError.code (see service_hint) --------------------
    "service_hint_not_authorized": {
        "ru": "Получите в amoCRM новый код авторизации (он действует 20 минут) и введите его в настройках "
        "интеграции; проверьте ID интеграции, секретный ключ и адрес перенаправления.",
        "en": "Get a fresh authorization code in amoCRM (it is valid for 20 minutes) and enter it in the "
        "integration settings; check the integration ID, secret key and redirect URL.",
    },
    "service_hint_amocrm_unavailable": {
        "ru": "Повторите позже: очередь сохраняет все изменения и отправит их, когда amoCRM ответит. "
        "Состояние связи покажет кнопка «Проверить соединение».",
        "en": "Try again later: the queue keeps every change and sends it once amoCRM answers. "
        '"Check connection" shows the state of the link.',
    },
    "service_hint_amocrm_stopped": {
        "ru": "Проверьте оплату аккаунта amoCRM или обратитесь в поддержку amoCRM.",
        "en": "Check that the amoCRM account is paid, or contact amoCRM support.",
    },
    "service_hint_bad_input": {
        "ru": "Исправьте значение, названное в сообщении (в настройках, правилах модуля или данных "
        "BILLmanager), и повторите.",
        "en": "Fix the value the message names (in the settings, the module's rules or the BILLmanager "
        "data), then try again.",
    },
    "service_hint_database": {
        "ru": "Проверьте, что MySQL запущен и файл etc/billmgr.conf.d/db.conf читается, затем повторите.",
        "en": "Check that MySQL is running and etc/billmgr.conf.d/db.conf is readable, then try again.",
    },
    "service_hint_error": {
        "ru": "Повторите действие; если ошибка повторяется, проверьте связь кнопкой «Проверить соединение».",
        "en": 'Try again; if the error persists, use "Check connection".',
    },
}


def t(key: str, lang: str, **values: Any) -> str:
    """The message in ``lang`` (Russian when that language is missing), formatted with ``values``."""
    entry = MESSAGES.get(key)
    if entry is None:
        return key
    text = entry.get(lang) or entry["ru"]
    return text.format(**values) if values else text.replace("{{", "{").replace("}}", "}")


def service_hint(code: str, lang: str, own_hint: str = "") -> str:
    """What to do next after a facade error with ``ServiceError.code`` ``code``.

    The facade writes its (more specific) ``hint`` in Russian only: a Russian page prefers it,
    an English page gets the hint mapped from the code. An unknown code has no English hint.
    """
    if lang == "ru" and own_hint:
        return own_hint
    entry = MESSAGES.get(f"service_hint_{code}")
    if entry is None:
        return own_hint if lang == "ru" else ""
    return entry.get(lang) or entry["ru"]
