"""The services' errors: a failure the panel and the CLI can show, in Russian and English, with a hint.

:func:`translate` turns what the layers below raise (amoCRM, the settings, db.conf)
into one of them; the messages carry no secrets (the layers below never put any in).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ..errors import AmoError


class ServiceError(Exception):
    """A failure the panel can show in the admin's language.

    ``message_en`` is the whole English text (the command line and the logs show it);
    ``shown_en``, when given, is what an English page shows instead: the same without words
    that are not the module's own (amoCRM's answer, which may be in Russian).
    """

    code = "error"

    def __init__(self, message_ru: str, message_en: str, hint: str = "", code: Optional[str] = None,
                 shown_en: str = "") -> None:
        self.message_ru = message_ru
        self.message_en = message_en
        self.shown_en = shown_en or message_en
        self.hint = hint
        if code:
            self.code = code
        super().__init__(message_en)

    def message(self, lang: str = "en") -> str:
        return self.message_ru if lang == "ru" else self.shown_en


class NotAuthorized(ServiceError):
    code = "not_authorized"


class AmoUnavailable(ServiceError):
    code = "amocrm_unavailable"


class BadInput(ServiceError):
    code = "bad_input"


class DatabaseError(ServiceError):
    code = "database"


def translate(exc: BaseException) -> ServiceError:
    """The admin's words for a failure of the layers below (a ServiceError stays as it is).

    The Russian text is built from what the error carries (an amoCRM error's code and
    params, a config file's problem paths), never from its English message; the English
    text keeps the technical detail (statuses, X-Request-Id, amoCRM's own words).
    """
    from ..dbconf import DbConfigError
    from ..errors import AmoError
    from ..mgrctl import MgrctlError
    from ..rules.errors import ConfigError as RulesConfigError

    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, AmoError):
        return _amo(exc)
    text = str(exc)
    if isinstance(exc, RulesConfigError):
        return BadInput(f"Неверные настройки: {config_place(exc)}", "Bad settings: " + text)
    if isinstance(exc, DbConfigError):
        return DatabaseError("Не прочитаны параметры подключения к базе данных BILLmanager",
                             "Cannot read the database settings: " + text)
    if isinstance(exc, MgrctlError):
        return DatabaseError("BILLmanager не ответил на запрос модуля",
                             "BILLmanager's mgrctl failed: " + text)
    if _is_database_error(exc):
        return DatabaseError("База данных BILLmanager недоступна",
                             "The BILLmanager database is unavailable: " + text)
    return ServiceError("Внутренняя ошибка модуля; подробности записаны в журнал", "Error: " + text)


def _amo(exc: AmoError) -> ServiceError:
    from ..error_texts import render
    from ..errors import AuthorizationRefused, ConfigError, FixData, Reauthorize, RetryLater, Stop
    from ..logsetup import redact

    said = render(exc.code, exc.params, "ru")
    shown = redact(" ".join(p for p in (exc.message, exc.location()) if p))   # without amoCRM's words

    def words(head_ru: str, head_en: str) -> dict[str, str]:
        return {"message_ru": f"{head_ru}: {said}" if said else head_ru,
                "message_en": f"{head_en}: {exc}", "shown_en": f"{head_en}: {shown}"}

    if isinstance(exc, AuthorizationRefused) and exc.code.startswith("auth_long_lived"):
        return NotAuthorized(**words("amoCRM отклонил авторизацию", "amoCRM refused the authorization"),
                             hint="Создайте новый долгосрочный токен в amoCRM (вкладка «Ключи и доступы» "
                             "интеграции) и введите его в настройках модуля.")
    if isinstance(exc, AuthorizationRefused):
        return NotAuthorized(**words("amoCRM отклонил авторизацию", "amoCRM refused the authorization"),
                             hint="Получите новый код авторизации в amoCRM (он живёт 20 минут) и проверьте "
                             "ID интеграции, секретный ключ и адрес перенаправления.")
    if isinstance(exc, Reauthorize):
        return NotAuthorized(**words("Модуль не авторизован в amoCRM", "The module is not authorized"),
                             hint="Введите новый код авторизации (или долгосрочный токен) в настройках "
                             "модуля.")
    if isinstance(exc, Stop):
        stopped = words("amoCRM остановил обслуживание аккаунта", "amoCRM stopped serving the account")
        return AmoUnavailable(**stopped,
                              hint="Проверьте оплату аккаунта amoCRM или обратитесь в поддержку amoCRM.",
                              code="amocrm_stopped")
    if isinstance(exc, RetryLater):
        return AmoUnavailable(**words("amoCRM временно недоступен", "amoCRM is unavailable"),
                              hint="Повторите позже; очередь сохраняется.")
    if isinstance(exc, ConfigError):
        return BadInput(**words("Неверные настройки", "Bad settings"))
    if isinstance(exc, FixData):
        return BadInput(**words("amoCRM отклонил данные", "amoCRM refused the data"))
    return AmoUnavailable(**words("Ошибка amoCRM", "amoCRM error"))


def config_place(exc: BaseException) -> str:
    """Where a config file is wrong (the file and the dotted paths of its problems), without the
    English words of the problems themselves."""
    file = getattr(exc, "file", None) or "amocrm.conf"
    paths = [p.path for p in getattr(exc, "problems", ()) if p.path]
    return f"ошибка в файле {file}" + (f" ({', '.join(paths[:5])})" if paths else "")


def _is_database_error(exc: BaseException) -> bool:
    """A PyMySQL error (MySQL down, access refused, lost connection), told without importing the driver."""
    return type(exc).__module__.startswith("pymysql")
