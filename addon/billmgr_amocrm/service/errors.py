"""The services' errors: a failure the panel and the CLI can show, in Russian and English, with a hint.

:func:`translate` turns what the layers below raise (amoCRM, the settings, db.conf)
into one of them; the messages carry no secrets (the layers below never put any in).
"""

from __future__ import annotations

from typing import Optional


class ServiceError(Exception):
    """A failure the panel can show in the admin's language."""

    code = "error"

    def __init__(self, message_ru: str, message_en: str, hint: str = "", code: Optional[str] = None) -> None:
        self.message_ru = message_ru
        self.message_en = message_en
        self.hint = hint
        if code:
            self.code = code
        super().__init__(message_en)

    def message(self, lang: str = "en") -> str:
        return self.message_ru if lang == "ru" else self.message_en


class NotAuthorized(ServiceError):
    code = "not_authorized"


class AmoUnavailable(ServiceError):
    code = "amocrm_unavailable"


class BadInput(ServiceError):
    code = "bad_input"


class DatabaseError(ServiceError):
    code = "database"


def translate(exc: BaseException) -> ServiceError:
    """The admin's words for a failure of the layers below (a ServiceError stays as it is)."""
    from ..dbconf import DbConfigError
    from ..errors import (
        AmoError,
        AuthorizationRefused,
        ConfigError,
        FixData,
        Reauthorize,
        RetryLater,
        Stop,
    )
    from ..rules.errors import ConfigError as RulesConfigError

    if isinstance(exc, ServiceError):
        return exc
    text = str(exc)
    if isinstance(exc, AuthorizationRefused):
        return NotAuthorized("amoCRM отклонил авторизацию: " + text,
                             "amoCRM refused the authorization: " + text,
                             "Получите новый код авторизации в amoCRM (он живёт 20 минут) и проверьте ID "
                             "интеграции, секретный ключ и адрес перенаправления.")
    if isinstance(exc, Reauthorize):
        return NotAuthorized("Модуль не авторизован в amoCRM: " + text,
                             "The module is not authorized: " + text,
                             "Введите новый код авторизации в настройках модуля.")
    if isinstance(exc, Stop):
        return AmoUnavailable("amoCRM остановил обслуживание аккаунта: " + text,
                              "amoCRM stopped serving the account: " + text,
                              "Проверьте оплату аккаунта amoCRM или обратитесь в поддержку amoCRM.",
                              code="amocrm_stopped")
    if isinstance(exc, RetryLater):
        return AmoUnavailable("amoCRM временно недоступен: " + text, "amoCRM is unavailable: " + text,
                              "Повторите позже; очередь сохраняется.")
    if isinstance(exc, (ConfigError, RulesConfigError)):
        return BadInput("Неверные настройки: " + text, "Bad settings: " + text)
    if isinstance(exc, FixData):
        return BadInput("amoCRM отклонил данные: " + text, "amoCRM refused the data: " + text)
    if isinstance(exc, AmoError):
        return AmoUnavailable("Ошибка amoCRM: " + text, "amoCRM error: " + text)
    if isinstance(exc, DbConfigError):
        return DatabaseError("Не прочитан db.conf: " + text, "Cannot read db.conf: " + text)
    return ServiceError("Ошибка: " + text, "Error: " + text)
