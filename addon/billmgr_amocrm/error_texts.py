"""The words for every error the amoCRM client raises, in Russian and English, by error code.

An ``AmoError`` carries a ``code`` and plain ``params`` (ids, URLs, paths, numbers), never
prose to be translated: its English message (for logs and the command line) is rendered
from this catalog when it is raised, and the panel renders the same code in the admin's
language (``describe``). A Russian text names amoCRM's entities in Russian and leaves out
what only an engineer reads (HTTP methods, exception names, amoCRM's own English words);
those stay in the English message and the logs.

Standard library only: ``errors`` imports it, and the hook's import budget stays untouched
(the hook imports neither).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

# Placeholders: {url} {path} {status} {example} {entity} {count} ... Every code has both languages.
TEXTS: Mapping[str, Mapping[str, str]] = {
    # the account URL (amocrm/urls.py) ----------------------------------------------------------
    "url_empty": {"ru": "адрес аккаунта amoCRM не указан; введите его в виде {example}",
                  "en": "the amoCRM account URL is empty; enter it like {example}"},
    "url_bad_port": {"ru": "в адресе {url} неверный порт; введите адрес в виде {example}",
                     "en": "{url} has an invalid port; enter it like {example}"},
    "url_credentials": {"ru": "адрес {url} не должен содержать имя пользователя или пароль",
                        "en": "{url} must not contain a user name or password"},
    "url_has_path": {"ru": "{url}: нужен только адрес аккаунта, без пути, например {example}",
                     "en": "{url} must be just the account address, without a path; like {example}"},
    "url_not_https": {"ru": "адрес {url} должен начинаться с https://, например {example}",
                      "en": "{url} must start with https://; like {example}"},
    "url_has_port": {"ru": "в адресе {url} не нужен порт; например {example}",
                     "en": "{url} must not name a port; like {example}"},
    "url_amocrm_site": {"ru": "{url} — сайт amoCRM, а не аккаунт; укажите адрес своего аккаунта, например "
                              "{example}",
                        "en": "{url} is the amoCRM site, not an account; use your account address like "
                              "{example}"},
    "url_bad_subdomain": {"ru": "{url} — не адрес аккаунта amoCRM; например {example}",
                          "en": "{url} is not an amoCRM account address; like {example}"},
    "url_foreign_host": {"ru": "{url} — не аккаунт amoCRM: адрес должен оканчиваться на {domains}; например "
                               "{example}",
                         "en": "{url} is not an amoCRM account: the host must end with {domains}; like "
                               "{example}"},
    # the authorization form's values (amocrm/authorization.py) --------------------------------
    "client_id_empty": {"ru": "не указан ID интеграции", "en": "the integration ID is empty"},
    "client_id_spaces": {"ru": "в ID интеграции есть пробелы; скопируйте его из настроек интеграции заново",
                         "en": "the integration ID contains spaces; copy it again from the integration "
                               "settings"},
    "secret_empty": {"ru": "не указан секретный ключ", "en": "the secret key is empty"},
    "secret_spaces": {"ru": "в секретном ключе есть пробелы; скопируйте его из настроек интеграции заново",
                      "en": "the secret key contains spaces; copy it again from the integration settings"},
    "code_empty": {"ru": "не указан код авторизации", "en": "the authorization code is empty"},
    "code_spaces": {"ru": "в коде авторизации есть пробелы; скопируйте его из настроек интеграции заново",
                    "en": "the authorization code contains spaces; copy it again from the integration "
                          "settings"},
    "code_is_token": {"ru": "в поле кода вставлен токен доступа, а не одноразовый код; долгосрочный токен "
                            "вставьте в поле «Долгосрочный токен», а код оставьте пустым",
                      "en": "an access token was pasted as the code, not a one-time code; paste a long-lived "
                            "token into the Long-lived token field and leave the code empty"},
    "redirect_not_url": {"ru": "адрес перенаправления должен быть полным адресом, указанным в интеграции, "
                               "например https://billing.example.com/billmgr",
                         "en": "the redirect URL must be the full address set in the integration, like "
                               "https://billing.example.com/billmgr"},
    # the token endpoint (amocrm/oauth.py) ------------------------------------------------------
    "auth_bad_client": {"ru": "amoCRM не принял ключи интеграции ({status}): проверьте ID интеграции, "
                              "секретный ключ и то, что адрес перенаправления точно совпадает с указанным "
                              "в интеграции",
                        "en": "amoCRM refused the integration keys ({status}, invalid client): check the "
                              "integration ID, the secret key, and that the redirect URL matches the "
                              "integration settings exactly"},
    "auth_bad_code": {"ru": "amoCRM не принял код авторизации ({status}): код истёк (он действует 20 минут) "
                            "или уже использован; скопируйте новый код в настройках интеграции",
                      "en": "amoCRM refused the authorization code ({status}): it is expired (codes live 20 "
                            "minutes) or already used; copy a fresh code from the integration settings"},
    "auth_revoked": {"ru": "amoCRM не принял токен обновления (он отозван, истёк или уже использован): "
                           "авторизуйте модуль заново в панели (приватной интеграции подойдёт долгосрочный "
                           "токен: его не нужно обновлять)",
                     "en": "amoCRM refused the refresh token (revoked, expired or already used): authorize "
                           "the module again in the panel (a private integration can use a long-lived "
                           "token, which needs no refresh)"},
    "auth_refused": {"ru": "amoCRM отклонил запрос токена ({status})",
                     "en": "amoCRM refused the token request ({status})"},
    # the long-lived token (amocrm/longlived.py, credentials.py) ---------------------------------
    "long_lived_empty": {"ru": "не указан долгосрочный токен", "en": "the long-lived token is empty"},
    "long_lived_not_token": {"ru": "это не долгосрочный токен amoCRM; скопируйте его заново в amoCRM "
                                   "(Настройки, Интеграции, ваша интеграция, Ключи и доступы)",
                             "en": "this is not an amoCRM long-lived token; copy it again in amoCRM "
                                   "(Settings, Integrations, your integration, Keys and scopes)"},
    "long_lived_is_code": {"ru": "это одноразовый код авторизации, а не долгосрочный токен; вставьте его в "
                                 "поле «Код авторизации»",
                           "en": "this is a one-time authorization code, not a long-lived token; paste it "
                                 "into the Authorization code field"},
    "long_lived_ended": {"ru": "срок действия долгосрочного токена закончился {until}; создайте новый в "
                               "amoCRM (Ключи и доступы интеграции)",
                         "en": "the long-lived token ended on {until}; make a new one in amoCRM (the "
                               "integration's Keys and scopes)"},
    "long_lived_other_account": {"ru": "долгосрочный токен выдан для аккаунта amoCRM {account}, а не для "
                                       "{url}; укажите адрес этого аккаунта или токен из {url}",
                                 "en": "the long-lived token is for amoCRM account {account}, not {url}; "
                                       "enter that account's address, or a token made in {url}"},
    "auth_long_lived_bad": {"ru": "{url} не принял долгосрочный токен (401): он отозван, закончился или "
                                  "создан в другом аккаунте; создайте новый в интеграции этого аккаунта. "
                                  "Сохранённые токены не изменены",
                            "en": "{url} refused the long-lived token (401): it was revoked, has ended, or "
                                  "was made in another account; make a new one in this account's "
                                  "integration. The stored tokens are unchanged"},
    "auth_long_lived_refused": {"ru": "amoCRM больше не принимает долгосрочный токен (он отозван или его "
                                      "срок, {until}, закончился): создайте новый в amoCRM (Ключи и доступы "
                                      "интеграции) и введите его в настройках модуля",
                                "en": "amoCRM no longer accepts the long-lived token (revoked, or its end "
                                      "date {until} has passed): make a new one in amoCRM (the integration's "
                                      "Keys and scopes) and enter it in the module settings"},
    "not_amocrm_status": {"ru": "{url} ответил {status} на запрос токена: это не похоже на аккаунт amoCRM",
                          "en": "{url} answered {status} at the token endpoint: it does not look like an "
                                "amoCRM account"},
    "not_amocrm_answer": {"ru": "{url} не вернул токены amoCRM: это не похоже на аккаунт amoCRM",
                          "en": "{url} did not answer with amoCRM tokens: it does not look like an amoCRM "
                                "account"},
    "unreachable_account": {"ru": "не удаётся связаться с {url}; проверьте адрес аккаунта и сеть этого "
                                  "сервера",
                            "en": "cannot reach {url}: {reason}; check the account URL and this server's "
                                  "network"},
    "code_exchange_lost": {"ru": "ответ на обмен кода потерялся; повторите, а если amoCRM ответит, что код "
                                 "уже использован, скопируйте новый",
                           "en": "the answer to the code exchange was lost; try again, and if amoCRM then "
                                 "says the code was used, copy a fresh one"},
    "refresh_lost": {"ru": "ответ на обновление токена потерялся; если токен обновления уже израсходован, "
                           "следующая попытка попросит авторизовать модуль заново",
                     "en": "the answer to a token refresh was lost; the refresh token may be spent (if so, "
                           "the next attempt asks for re-authorization)"},
    # the key and token files (amocrm/credentials.py, tokens.py) ------------------------------
    "secret_file_missing": {"ru": "нет файла {path}: введите секретный ключ интеграции и авторизуйте модуль "
                                  "заново",
                            "en": "{path} is missing: enter the integration's secret key and authorize "
                                  "again"},
    "secret_file_empty": {"ru": "файл {path} пуст: введите секретный ключ интеграции и авторизуйте модуль "
                                "заново",
                          "en": "{path} is empty: enter the integration's secret key and authorize again"},
    "file_insecure": {"ru": "файл {path} доступен не только владельцу (права {mode}); оставьте права на "
                            "чтение и запись только владельцу (600)",
                      "en": "{path} has mode {mode}; run: chmod 600 {path}"},
    "tokens_insecure": {"ru": "файл {path} доступен не только владельцу (права {mode}); оставьте права на "
                              "чтение и запись только владельцу (600), а если его могли прочитать другие, "
                              "авторизуйте модуль заново",
                        "en": "{path} has mode {mode}; run: chmod 600 {path}; if anyone else could have "
                              "read it, also authorize the module again"},
    "tokens_damaged": {"ru": "файл {path} повреждён; авторизуйте модуль заново",
                       "en": "{path} is damaged ({count} problems); authorize the module again"},
    "tokens_empty": {"ru": "файлы токенов в {path} пусты; авторизуйте модуль заново",
                     "en": "the token files in {path} are empty; authorize the module again"},
    "token_refresh_slow": {"ru": "обновление токена не закончилось за {seconds} с; оно продолжается в "
                                 "отдельном процессе, повторите позже",
                           "en": "the token refresh did not finish within {seconds} s; it goes on in its own "
                                 "process: try again later"},
    "code_exchange_slow": {"ru": "обмен кода авторизации не закончился за {seconds} с; он продолжается "
                                 "в отдельном процессе: через минуту сохраните настройки ещё раз с тем "
                                 "же кодом",
                           "en": "the code exchange did not finish within {seconds} s; it goes on in its "
                                 "own process: save the settings again with the same code in a minute"},
    "code_exchange_failed": {"ru": "процесс обмена кода завершился без токенов (код {status}); подробности "
                                   "в журнале модуля; сохраните настройки ещё раз с тем же кодом, а если "
                                   "amoCRM ответит, что код использован, скопируйте новый",
                             "en": "the code exchange process ended without tokens (exit {status}); details "
                                   "in the module's log; save the settings again with the same code, and if "
                                   "amoCRM then says the code was used, copy a fresh one"},
    "token_refresh_failed": {"ru": "процесс обновления токена завершился без результата (код {status}); "
                                   "подробности в журнале модуля",
                             "en": "the token refresh process ended without a result (exit {status}); "
                                   "details in the module's log"},
    "token_lock_busy": {"ru": "токены сейчас обновляет другой процесс; повторите позже",
                        "en": "{holder} holds {path} (token refresh): not ours after {seconds} s"},
    "not_authorized": {"ru": "модуль ещё не авторизован: введите одноразовый код (или долгосрочный токен) в "
                             "настройках модуля",
                       "en": "the module is not authorized in amoCRM yet: enter the one-time code (or a "
                             "long-lived token) in the module settings"},
    "tokens_not_bound_account": {"ru": "токены этого сервера выданы для аккаунта amoCRM {stored}, а связки "
                                       "модуля (общие для всех серверов этой базы) принадлежат {bound}: "
                                       "авторизуйте этот сервер в {bound}",
                                 "en": "this host's tokens are for amoCRM account {stored}, but the module's "
                                       "bindings (shared by every host on this database) belong to {bound}: "
                                       "authorize this host for {bound}"},
    "tokens_other_account": {"ru": "сохранённые токены выданы для {stored}, а модуль настроен на "
                                   "{configured}: авторизуйте модуль заново",
                             "en": "the stored tokens belong to {stored}, but the module is configured for "
                                   "{configured}: authorize again"},
    "token_rejected": {"ru": "amoCRM не принял только что обновлённый токен (401): авторизуйте модуль заново",
                       "en": "amoCRM refused a freshly refreshed token (401): authorize the module again"},
    "reauth_required": {"ru": "модуль нужно заново авторизовать в панели",
                        "en": "the module needs to be authorized again in the panel: {reason}"},
    # stops and transport (amocrm/circuit.py, transport.py) ----------------------------------
    "stopped_blocked": {"ru": "amoCRM закрыл доступ к API для этого аккаунта (403); запросы не отправляются, "
                              "следующая проверка после {next_probe}; попросите поддержку amoCRM снять "
                              "блокировку",
                        "en": "amoCRM blocked API access for this account (403); ask amoCRM support to "
                              "unblock it; no requests are sent, next probe after {next_probe}"},
    "stopped_unpaid": {"ru": "аккаунт amoCRM не оплачен (402); запросы не отправляются, следующая проверка "
                             "после {next_probe}",
                       "en": "the amoCRM account is not paid (402); pay the subscription; no requests are "
                             "sent, next probe after {next_probe}"},
    "blocked": {"ru": "amoCRM отказал в доступе (403): аккаунт, возможно, заблокирован для работы через API; "
                      "запросы остановлены и проверяются каждые 15 минут",
                "en": "amoCRM refused access (403): the account may be blocked for API use; all traffic "
                      "stops and is probed every 15 minutes"},
    "unpaid": {"ru": "аккаунт amoCRM не оплачен (402); запросы остановлены до оплаты",
               "en": "the amoCRM account is not paid (402); traffic stops until it is"},
    "tls_failure": {"ru": "не удалось установить защищённое соединение с amoCRM; проверьте сертификаты "
                          "центров сертификации на сервере",
                    "en": "TLS failure talking to amoCRM ({kind}); check the host's CA certificates"},
    "write_lost": {"ru": "ответ amoCRM на запись потерялся; возможно, запись выполнена",
                   "en": "the answer to a write was lost ({kind}); it may have been applied"},
    "write_status_unknown": {"ru": "amoCRM ответил {status} на запись; возможно, запись выполнена",
                             "en": "amoCRM answered {status} to a write; it may have been applied"},
    "unreachable": {"ru": "amoCRM недоступен или отвечает слишком медленно (попыток: {attempts})",
                    "en": "amoCRM is unreachable or too slow ({kind}) after {attempts} attempts"},
    "rate_limited": {"ru": "amoCRM продолжает отвечать 429: превышен лимит запросов",
                     "en": "amoCRM keeps answering 429 Too Many Requests"},
    "server_error": {"ru": "ошибка сервера amoCRM после {attempts} попыток",
                     "en": "amoCRM server error after {attempts} attempts"},
    "redirected": {"ru": "amoCRM ответил перенаправлением ({status}); перенаправления не выполняются, "
                         "поэтому ничего не отправлено: проверьте адрес аккаунта в настройках интеграции, "
                         "записи остаются в очереди",
                   "en": "amoCRM answered {status} (a redirect); redirects are not followed, so nothing "
                         "was sent there: check the account URL in the integration settings; the records "
                         "stay queued"},
    "redirected_to": {"ru": "amoCRM ответил перенаправлением ({status}) на {target}; перенаправления не "
                            "выполняются, поэтому ничего не отправлено: проверьте адрес аккаунта в "
                            "настройках интеграции, записи остаются в очереди",
                      "en": "amoCRM answered {status} (a redirect to {target}); redirects are not followed, "
                            "so nothing was sent there: check the account URL in the integration settings; "
                            "the records stay queued"},
    # API calls (amocrm/api.py) -----------------------------------------------------------------
    "read_refused": {"ru": "amoCRM отказал в чтении {path} ({status})",
                     "en": "amoCRM refused to read {path} ({status})"},
    "too_many_pages": {"ru": "{path}: больше {pages} страниц; чтение остановлено",
                       "en": "{path}: more than {pages} pages; refusing to scan further"},
    "write_refused": {"ru": "amoCRM отказал в записи: {entity} ({status})",
                      "en": "amoCRM refused {method} {entity} ({status})"},
    "ids_missing": {"ru": "amoCRM принял {entity}, но не вернул номера для {count} записей",
                    "en": "amoCRM accepted {entity} but did not return ids for {count} items"},
    "fields_refused": {"ru": "amoCRM отказался создать поля: {entity} ({status})",
                       "en": "amoCRM refused to create {entity} custom fields ({status})"},
    "fields_change_refused": {"ru": "amoCRM отказался изменить поля: {entity} ({status})",
                              "en": "amoCRM refused to change {entity} custom fields ({status})"},
    "link_refused": {"ru": "amoCRM отказался связать {entity} ({status})",
                     "en": "amoCRM refused to link {entity} ({status})"},
    "unlink_refused": {"ru": "amoCRM отказался разорвать связи {entity} ({status})",
                       "en": "amoCRM refused to unlink {entity} ({status})"},
    "no_account": {"ru": "amoCRM не вернул сведений об аккаунте",
                   "en": "amoCRM returned no account information"},
}

# amoCRM's collections as a Russian sentence names them (an {entity} parameter).
ENTITIES_RU = {"contacts": "контакты", "companies": "компании", "leads": "сделки", "customers": "покупатели",
               "tasks": "задачи", "notes": "примечания"}


class _Params(Dict[str, Any]):
    """Format values: a missing one reads as "?" (a message must render whatever it was given)."""

    def __missing__(self, key: str) -> str:
        return "?"


def render(code: str, params: Mapping[str, Any], lang: str) -> str:
    """The text of ``code`` in ``lang`` (English when the language is missing); "" for an unknown code."""
    entry = TEXTS.get(code)
    if entry is None:
        return ""
    values = _Params(params)
    if lang == "ru" and isinstance(values.get("entity"), str):
        values["entity"] = ENTITIES_RU.get(values["entity"], values["entity"])
    return (entry.get(lang) or entry["en"]).format_map(values)
