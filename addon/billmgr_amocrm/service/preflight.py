"""What ``authorize`` checks on this host before it spends the one-time code (or stores a
long-lived token: the same checks, and the messages then do not speak of a code).

The code lives 20 minutes and works once: a failure after amoCRM exchanged it makes the
admin mint a new one in amoCRM. So everything that can be checked locally is checked
first, each failure saying what to fix, and nothing is written until all of it holds:

1. the form: account URL, integration ID, secret key, code, redirect URL;
2. the settings files: presets.default, presets.custom and amocrm.conf load and are valid;
3. the directories the module writes on authorization: ``etc/amocrm`` (secret key, token
   files, amocrm.conf) and ``var/amocrm`` (locks, shared state; created if missing) are
   directories only root may change, and they can be written (a probe file is created and
   removed);
4. the database: db.conf is readable, MySQL answers, the module's tables are migrated
   (the caller builds the application for that: ``bootstrap.build``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BadInput, ServiceError

if TYPE_CHECKING:
    from ..amocrm.authorization import AuthForm
    from ..bootstrap import App
    from ..paths import HostPaths


def check_form(url: str, client_id: str, client_secret: str, redirect_uri: str, code: str) -> AuthForm:
    """Step 1: the form's values; BadInput says which one is wrong."""
    from ..amocrm.authorization import check_form as check
    from ..errors import ConfigError

    try:
        return check(url, client_id, client_secret, redirect_uri, code)
    except ConfigError as exc:
        raise BadInput(f"Авторизация не начата: {exc}", f"Nothing was authorized: {exc}") from None


def check_long_lived(url: str, token: str) -> None:
    """Step 1 for a long-lived token: the account URL and the token's shape and end date."""
    import time

    from ..amocrm.longlived import check_long_lived_form
    from ..error_texts import render
    from ..errors import ConfigError

    try:
        check_long_lived_form(url, token, now=time.time())
    except ConfigError as exc:
        raise BadInput(f"Авторизация не начата: {render(exc.code, exc.params, 'ru') or exc}",
                       f"Nothing was authorized: {exc}", code=exc.code) from None


def _not_started(lang: str, code: bool) -> str:
    """How each refusal begins: nothing was done, and (for a code) the code is still good."""
    if lang == "ru":
        return "Авторизация не начата, код не использован" if code else "Авторизация не начата"
    return "Nothing was authorized and the code is unused" if code else "Nothing was authorized"


def check_files(paths: HostPaths, *, code: bool = True) -> None:
    """Steps 2 and 3: the settings files and the directories the authorization writes.
    ``code``: the authorization spends a one-time code (the messages say it is still unused)."""
    from .. import settings
    from ..rules.errors import ConfigError

    try:
        settings.load(paths)
    except ConfigError as exc:
        raise BadInput(
            f"{_not_started('ru', code)}: файл настроек не загружается: {exc}. "
            f"{_how_to_fix(exc, paths, 'ru', code)}",
            f"{_not_started('en', code)}: a settings file does not load: {exc}. "
            f"{_how_to_fix(exc, paths, 'en', code)}") from None
    for directory in (paths.amocrm_etc, paths.state_dir):
        _check_directory(directory, code)


def build_checked(paths: HostPaths, *, code: bool = True) -> App:
    """Step 4: the application for this host (db.conf, MySQL, migrations, settings)."""
    from ..bootstrap import build
    from .errors import translate

    try:
        return build(paths)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not ready": worded for the admin
        error = translate(exc)
        raise type(error)(f"{_not_started('ru', code)}: {error.message('ru')}",
                          f"{_not_started('en', code)}: {error.message('en')}",
                          error.hint, code=error.code) from exc


def _how_to_fix(exc: Exception, paths: HostPaths, lang: str, code: bool) -> str:
    if str(paths.presets_default) in str(exc) and "file not found" in str(exc):
        return ("Восстановите presets.default: переустановите модуль (sbin/amocrm-install)."
                if lang == "ru" else "Restore presets.default: reinstall the module (sbin/amocrm-install).")
    if lang == "ru":
        return "Исправьте названное место в файле и повторите авторизацию" + (
            " тем же кодом." if code else ".")
    return "Fix the place named in the file and authorize again" + (" with the same code." if code else ".")


def _check_directory(directory: Path, code: bool) -> None:
    if not directory.exists():
        try:
            directory.mkdir(mode=0o700, parents=True)   # as the first write would
        except OSError as exc:
            raise _unsafe(directory, f"cannot be created ({exc.strerror})", f"не создаётся ({exc.strerror})",
                          f"mkdir -m 700 -p {directory}", code) from None
    info = directory.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise _unsafe(directory, "is not a directory", "не каталог",
                      f"move it away, then: mkdir -m 700 {directory}", code)
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        mode = f"{stat.S_IMODE(info.st_mode):04o}"
        raise _unsafe(directory, f"can be changed by other users (mode {mode})",
                      f"могут менять другие пользователи (права {mode})", f"chmod 700 {directory}", code)
    probe = directory / f".authorize-check.{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise _unsafe(directory, f"cannot be written ({exc.strerror})",
                      f"недоступен для записи ({exc.strerror})",
                      f"make it writable by root (chown root {directory}; a read-only or full "
                      "file system?)", code) from None


def _unsafe(directory: Path, what_en: str, what_ru: str, fix: str, code: bool) -> ServiceError:
    return ServiceError(
        f"{_not_started('ru', code)}: каталог {directory} {what_ru}; исправьте: {fix}",
        f"{_not_started('en', code)}: {directory} {what_en}; fix: {fix}",
        code="host_setup")
