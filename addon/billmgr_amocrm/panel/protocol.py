"""Parse what the panel hands a ``type="xml"`` handler into a :class:`PanelRequest`.

Input (billmanager-plugin.md §3): ``PARAM_<name>`` per request parameter, ``AUTH_USER`` and
``AUTH_LEVEL`` for the acting user, the ``billmgrlang5=<project>:<lang>`` cookie, and the
current XML document on stdin. The document is untrusted bytes: it is size-capped, any
DOCTYPE (the door to XXE and entity bombs) is refused before parsing, and the parser itself
resolves no entities, loads no DTD and opens no network.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Mapping

from lxml import etree

MAX_DOC_BYTES = 1 << 20  # the panel's own skeleton docs are a few KB
MAX_PARAM_CHARS = 64 * 1024  # one request parameter (a textarea at most)
LANGS = ("ru", "en")
DEFAULT_LANG = "ru"
_DOCTYPE_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_HOST_RE = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?(?::\d{1,5})?$")
_LANG_COOKIE_RE = re.compile(r"(?:^|;\s*)billmgrlang5=(?:[^:;]*:)?([A-Za-z_-]+)")


class BadRequest(Exception):
    """The request cannot be served; ``code`` picks the localized message in ``i18n``."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(code if not detail else f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class PanelRequest:
    func: str
    params: Mapping[str, str]
    auth_user: str
    auth_level: int
    lang: str
    doc: etree._Element | None = field(default=None, compare=False)
    host: str = ""  # the panel's public host name (HTTP_HOST), when it is a plain host name

    def param(self, name: str, default: str = "") -> str:
        return self.params.get(name, default)

    @property
    def elid(self) -> str:
        return self.param("elid").strip()

    @property
    def elids(self) -> list[str]:
        """A group operation's ``elid`` ("a, b, c") as a list, blanks dropped."""
        return [part.strip() for part in self.elid.split(",") if part.strip()]

    @property
    def is_save(self) -> bool:
        """``sok`` set: the admin pressed OK (as opposed to opening the form)."""
        return bool(self.param("sok")) and not self.sv_field

    @property
    def sv_field(self) -> str:
        """Set when the panel asks for dependent values after a select changed (setvalues)."""
        return self.param("sv_field").strip()

    def label(self, name: str) -> str:
        """A field's caption as the admin sees it: the document's ``messages`` of this function,
        in the page's language (the descriptor's; the field's own name when there is none)."""
        if self.doc is not None:
            for messages in self.doc.findall("messages"):
                if messages.get("name") != self.func:
                    continue
                for msg in messages.findall("msg"):
                    if msg.get("name") == name and msg.text:
                        return msg.text
        return name


def safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=True,
    )


def parse_doc(data: bytes) -> etree._Element:
    """The stdin document, or :class:`BadRequest` for anything empty, oversized, malformed or with a DTD."""
    if not data.strip():
        raise BadRequest("bad_input", "empty document")
    if len(data) > MAX_DOC_BYTES:
        raise BadRequest("bad_input", f"document larger than {MAX_DOC_BYTES} bytes")
    if _DOCTYPE_RE.search(data):
        raise BadRequest("bad_input", "document type declarations are not accepted")
    try:
        root = etree.fromstring(data, safe_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise BadRequest("bad_input", f"not well-formed XML: {exc}") from None
    if root.tag != "doc":
        raise BadRequest("bad_input", f"root element is <{root.tag}>, expected <doc>")
    return root


def lang_of(environ: Mapping[str, str], params: Mapping[str, str]) -> str:
    """``PARAM_lang`` wins, then the ``billmgrlang5`` cookie, then Russian (the panel's default)."""
    candidates = [params.get("lang", "")]
    match = _LANG_COOKIE_RE.search(environ.get("HTTP_COOKIE", ""))
    if match:
        candidates.append(match.group(1))
    for value in candidates:
        value = value.strip().lower()[:2]
        if value in LANGS:
            return value
    return DEFAULT_LANG


def params_of(environ: Mapping[str, str]) -> dict[str, str]:
    params = {}
    for key, value in environ.items():
        if key.startswith("PARAM_") and len(key) > 6:
            if len(value) > MAX_PARAM_CHARS:
                raise BadRequest("bad_input", f"parameter {key[6:]} is too long")
            params[key[6:]] = value
    return params


def request_from_env(environ: Mapping[str, str] | None = None) -> PanelRequest:
    """Everything but the document; raises :class:`BadRequest` for an oversized parameter."""
    env = os.environ if environ is None else environ
    params = params_of(env)
    try:
        level = int(env.get("AUTH_LEVEL", "0").strip() or "0")
    except ValueError:
        level = 0
    func = (params.get("func") or env.get("ACTION_NAME", "")).strip()
    host = env.get("HTTP_HOST", "").strip().lower()
    return PanelRequest(
        func=func,
        params=params,
        auth_user=env.get("AUTH_USER", "").strip(),
        auth_level=level,
        lang=lang_of(env, params),
        host=host if _HOST_RE.match(host) else "",
    )


def with_doc(request: PanelRequest, stdin: bytes) -> PanelRequest:
    """The request with its parsed stdin document; raises :class:`BadRequest`."""
    return replace(request, doc=parse_doc(stdin))
