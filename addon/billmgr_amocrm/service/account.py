"""Use cases of the amoCRM account: authorize, check the connection, the token state, the secret key.

The token state, the secret key and the account URL check read files only: they need no
database and no network, so the settings form stays usable while MySQL or amoCRM is down.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..amocrm.urls import parse_account_url
from ..boundaccount import account_key, bind_account, key_of_url
from ..domain import Kind
from ..exportrequest import request_export
from .app import paths_of, using
from .errors import BadInput, ServiceError, translate
from .results import AuthResult, ConnectionResult

if TYPE_CHECKING:
    from ..amocrm import TokenInfo, TokenStatus
    from ..bootstrap import App

log = logging.getLogger("billmgr_amocrm.service")

SAVE_AGAIN_RU = ("Код авторизации уже обменян, токены сохранены: сохраните настройки ещё раз с тем же "
                 "кодом (или повторите amocrm authorize), и настройка завершится.")
SAVE_AGAIN_EN = ("The authorization code was exchanged and the tokens are saved: save the settings "
                 "again with the same code (or run amocrm authorize again) to finish the set-up.")
# token states in which the module counts as authorized ("expired" refreshes by itself)
AUTHORIZED_STATES = ("ok", "expiring", "expired", "ending")


def authorize(url: str, client_id: str, client_secret: str, redirect_uri: str, code: str, *,
              app: Optional[App] = None) -> AuthResult:
    """Exchange the one-time code, store secret + tokens, create the marker fields, queue the first export.

    Everything local is checked first (:mod:`.preflight`: the form, the settings files, the
    directories written, the database): the code is spent only when nothing here can fail.
    What comes after the exchange can still fail (amoCRM busy); the error then says to save
    again with the same code, which finds its stored pair and finishes (``amocrm.authorize``)."""
    from ..bootstrap import authorize as amo_authorize
    from . import preflight

    preflight.check_form(url, client_id, client_secret, redirect_uri, code)
    paths = paths_of(app)
    return _set_up(app, url, lambda: amo_authorize(paths, url, client_id, client_secret, redirect_uri, code),
                   client_id=client_id, redirect_uri=redirect_uri, single_use=True)


def authorize_long_lived(url: str, token: str, *, client_id: str = "", redirect_uri: str = "",
                         app: Optional[App] = None) -> AuthResult:
    """Store a private integration's long-lived token (tried on the account first, the stored
    tokens untouched if it fails), then the same set-up as after a code exchange. Nothing
    single-use is spent, so a set-up stopped midway is finished by saving the token again.
    ``client_id``, ``redirect_uri``: kept in amocrm.conf when given (for a later switch back
    to the code), else the recorded ones stay."""
    from ..bootstrap import authorize_long_lived as store_token
    from . import preflight

    preflight.check_long_lived(url, token)
    paths = paths_of(app)
    return _set_up(app, url, lambda: store_token(paths, url, token), client_id=client_id,
                   redirect_uri=redirect_uri, single_use=False)


def _set_up(app: Optional[App], url: str, obtain: Callable[[], TokenInfo], *, client_id: str,
            redirect_uri: str, single_use: bool) -> AuthResult:
    """The settings files, the directories and the database checked, another account refused,
    then ``obtain`` (the tokens, stored) and what follows it. ``single_use``: ``obtain`` spends
    the one-time code, so a failure after it says that the same code finishes the set-up."""
    from . import preflight

    paths = paths_of(app)
    preflight.check_files(paths, code=single_use)
    built = app if app is not None else preflight.build_checked(paths, code=single_use)
    try:
        target = account_key(parse_account_url(url))
        previous = built.bound_account()
        _refuse_another_account(built, previous, target)
        try:
            meta = obtain()
        except Exception as exc:  # noqa: BLE001 - translated for the admin
            raise translate(exc) from exc
        if not single_use:
            client_id = client_id or built.config.auth.client_id
            redirect_uri = redirect_uri or built.config.auth.redirect_uri
        try:
            return _after_exchange(built, meta, client_id, redirect_uri,
                                   moved=previous is not None and previous != target)
        except Exception as exc:  # noqa: BLE001 - translated for the admin, with what to do
            error = translate(exc)
            raise (_unfinished(error) if single_use else error) from exc
    finally:
        if app is None:
            built.close()


def _refuse_another_account(app: App, bound: Optional[str], target: str) -> None:
    """Another account than the bindings' own: refused while there are bindings, before the
    code is spent (``boundaccount``), saying what they are and what the admin can do."""
    if bound is None or bound == target:
        return
    counts = app.store.link_counts()
    linked = sum(counts.values())
    if not linked:
        return
    what = ", ".join(f"{counts[k]} {k.value}" for k in counts if counts[k])
    raise BadInput(
        f"Модуль уже связан с аккаунтом amoCRM {bound} ({what}); эти связки относятся только к нему. "
        f"Авторизация в {target} отправила бы обновления сущностям, которых там нет, и создала бы "
        f"остальное заново. Чтобы остаться в {bound}, укажите его адрес. Чтобы перейти в {target}, "
        "удалите данные модуля (/usr/local/mgr5/lib/amocrm/amocrm-purge --yes), установите модуль "
        f"заново и авторизуйте его: в {bound} всё останется как есть. Код авторизации не использован.",
        f"The module is bound to amoCRM account {bound} ({what}); those bindings are ids in that "
        f"account only. Authorizing {target} would send updates to entities that are not there and "
        f"create the rest again. To stay with {bound}, enter its address. To move to {target}, remove "
        "the module's data (/usr/local/mgr5/lib/amocrm/amocrm-purge --yes), install the module again "
        f"and authorize it: {bound} keeps everything it has. The authorization code was not used.",
        code="another_account")


def _unfinished(error: ServiceError) -> ServiceError:
    """``error`` of a set-up that stopped after the code was exchanged: saying so, and that the
    same code finishes it (otherwise the admin would fetch a new code for nothing)."""
    return type(error)(_then(error.message_ru, SAVE_AGAIN_RU), _then(error.message_en, SAVE_AGAIN_EN),
                       error.hint, error.code, _then(error.shown_en, SAVE_AGAIN_EN))


def _then(sentence: str, more: str) -> str:
    sentence = sentence.rstrip()
    return f"{sentence}{'' if sentence.endswith(('.', '!', '?')) else '.'} {more}"


def _after_exchange(app: App, meta: TokenInfo, client_id: str, redirect_uri: str, *,
                    moved: bool = False) -> AuthResult:
    """Record the account, set the marker fields up, ask for the first export (the code is spent).

    ``moved``: the module had no bindings and now serves another account: the old account's
    field ids are forgotten (made anew in this one) and everything is exported to it."""
    from ..sync.adopt import kinds_to_adopt, request_adoption
    from ..sync.fields import secure_marker_fields
    from ..sync.match import request_matching

    with using(app) as live:
        _save_auth_settings(live, str(meta.base_url), client_id, redirect_uri, forget_field_ids=moved)
        bind_account(live.store, key_of_url(str(meta.base_url)))
        if moved:
            # nothing was exported to this account: the export is asked for below, or, if the
            # fields fail first, when the same code is saved again (the account is bound by then)
            live.store.export_forget()
        ids = live.ensure_marker_fields()
        secure_marker_fields(live.amo(), ids)   # fields known from before may still be editable by hand
        first = live.store.export_progress(Kind.CONTACT) is None
        if first:
            # marker fields this database did not make: amoCRM may hold what an earlier install made
            found = kinds_to_adopt(live.store, ids)
            if found:
                request_adoption(live.store, found)
                log.info("the marker fields of %s were already in amoCRM: what they mark is adopted "
                         "before the export", ", ".join(k.amo_entity for k in found))
            if live.config.sync.match_existing:
                request_matching(live.store)
            request_export(live.store)
        log.info("authorized in amoCRM %s; marker fields %s%s", meta.subdomain, ids,
                 "; initial export requested" if first else "")
        return AuthResult(subdomain=str(meta.subdomain), base_url=str(meta.base_url),
                          access_expires_at=meta.expires_at,
                          marker_field_ids={k.value: v for k, v in ids.items()}, export_requested=first)


def _save_auth_settings(app: App, base_url: str, client_id: str, redirect_uri: str, *,
                        forget_field_ids: bool = False) -> None:
    """Record the account in amocrm.conf: the address amoCRM answered on, normalized by the client;
    ``forget_field_ids``: the marker and url field ids are another account's, dropped.

    The one exception is the emulator's loopback address (tests and the demo opt in with
    ``BILLMGR_AMOCRM_ALLOW_LOOPBACK=1``), which amocrm.conf's validator does not accept: the
    previous URL is kept there, and a warning says so (token.json holds the real one).
    """
    from ..rules.config import ModuleConfig, rebuild
    from ..settings import Settings, update_config

    auth = {"url": base_url, "client_id": client_id.strip(), "redirect_uri": redirect_uri.strip()}
    loopback = parse_account_url(base_url).subdomain == "emulator"
    if loopback:
        log.warning("amocrm.conf keeps no loopback account URL (%s); token.json records it", base_url)

    def record(current: Settings) -> ModuleConfig:
        changes: dict[str, Any] = {"auth": dict(auth, url=current.config.auth.url) if loopback else auth}
        if forget_field_ids:
            sync = current.config.sync.model_dump(mode="json")
            sync["marker_field_ids"], sync["url_field_ids"] = {}, {}
            changes["sync"] = sync
            log.warning("the module moves to amoCRM account %s: the previous account's field ids are "
                        "dropped and everything is exported anew", base_url)
        return rebuild(current.config, changes)

    app.settings = update_config(app.paths, record)


def check_connection(*, app: Optional[App] = None) -> ConnectionResult:
    """A live call to amoCRM: who we are connected to, how fast, and the token state; the marker
    fields made API-only where they are not; then the rules against amoCRM's catalog read afresh
    (what they name that amoCRM no longer has)."""
    from ..sync.fields import secure_marker_fields
    from .catalog_health import catalog_health

    with using(app) as live:
        started = time.perf_counter()
        account = live.amo().account()
        latency = (time.perf_counter() - started) * 1000
        tokens = token_status(app=live)
        # a marker field people can edit in amoCRM is made API-only now, or reported
        problems = secure_marker_fields(live.amo(), live.marker_fields())
        return ConnectionResult(account_name=str(account.get("name", "")),
                                subdomain=str(account.get("subdomain", "")), token_state=tokens.state,
                                token_expires_at=tokens.access_expires_at, latency_ms=round(latency, 1),
                                rate_limit=float(live.config.sync.rate_limit),
                                marker_problems=tuple(problems), catalog=catalog_health(app=live),
                                token_kind=tokens.kind)


def token_status(*, app: Optional[App] = None) -> TokenStatus:
    """The token and stop state from the files only: no database, no network."""
    from ..bootstrap import token_status as status_of

    return status_of(paths_of(app))


def authorized(*, app: Optional[App] = None) -> bool:
    """Tokens exist and nothing asks for re-authorization (no network call)."""
    return token_status(app=app).state in AUTHORIZED_STATES


def secret_saved(*, app: Optional[App] = None) -> bool:
    """The integration's secret key is stored (its content is not read)."""
    from ..bootstrap import client_secret

    return client_secret(paths_of(app)).saved()


def stored_secret(*, app: Optional[App] = None) -> str:
    """The stored secret key, for an authorization that keeps it (the settings form's empty field)."""
    from ..bootstrap import client_secret

    try:
        return client_secret(paths_of(app)).read()
    except Exception as exc:  # noqa: BLE001 - translated for the admin
        raise translate(exc) from exc


def account_url(url: str) -> str:
    """The amoCRM account address, checked and normalized (``https://x.amocrm.ru``)."""
    from ..amocrm.urls import parse_account_url

    try:
        return parse_account_url(url).base_url
    except Exception as exc:  # noqa: BLE001 - translated for the admin
        raise translate(exc) from exc
