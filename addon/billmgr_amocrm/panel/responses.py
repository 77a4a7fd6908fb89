"""Build the documents the handler prints, with lxml only (never string concatenation).

A ``type="xml"`` handler's output replaces the panel's document (billmanager-plugin.md §3), so
form and list answers are the incoming document (its ``metadata``, ``messages`` and ``tparams``)
with the data added: top-level elements named after fields, ``<slist>`` options, ``<elem>`` rows
and the paging elements.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence, Tuple

from lxml import etree

from .protocol import PanelRequest

Options = Sequence[Tuple[str, str]]
# Elements a previous answer may have left in the document; never echoed back.
_ANSWER_TAGS = ("ok", "error", "elem", "slist", "p_elems", "p_num", "p_cnt", "p_sort", "p_order")
# Request parameters whose values must never travel back to the browser (the panel echoes the
# request in <tparams>; an error answer built on that document would otherwise return them).
SECRET_FIELDS = frozenset(
    {"client_secret", "code", "secret", "password", "passwd", "token", "access_token", "refresh_token",
     "long_lived_token"}
)


def base_doc(request: PanelRequest | None) -> etree._Element:
    """A copy of the incoming document without answer elements, or a bare ``<doc>``."""
    if request is None or request.doc is None:
        doc = etree.Element("doc")
    else:
        doc = copy.deepcopy(request.doc)
        for child in list(doc):
            if child.tag in _ANSWER_TAGS or child.tag in SECRET_FIELDS:
                doc.remove(child)
        for tparams in doc.findall("tparams"):
            for param in list(tparams):
                if param.tag in SECRET_FIELDS:
                    tparams.remove(param)
    if request is not None:
        doc.set("lang", request.lang)
        if request.func:
            doc.set("func", request.func)
    return doc


def serialize(doc: etree._Element) -> bytes:
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _text(parent: etree._Element, tag: str, value: object, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, tag)
    for name, attr in attrs.items():
        node.set(name, attr)
    node.text = _clean(value)
    return node


def _clean(value: object) -> str:
    """XML 1.0 cannot carry most control characters; drop them rather than emit a broken doc."""
    text = "" if value is None else str(value)
    return "".join(ch for ch in text if ch in "\t\n\r" or ord(ch) >= 0x20 and ch not in "\ufffe\uffff")


def ok(request: PanelRequest | None = None, *, redirect_type: str = "", target: str = "") -> bytes:
    """``<doc><ok/></doc>``; with ``redirect_type`` (form|list|url) the panel opens ``target`` next."""
    doc = etree.Element("doc")
    if request is not None:
        doc.set("lang", request.lang)
    node = etree.SubElement(doc, "ok")
    if redirect_type:
        node.set("type", redirect_type)
        node.text = _clean(target)
    return serialize(doc)


def error(
    request: PanelRequest | None, message: str, *, kind: str = "value", obj: str = "", value: str = ""
) -> bytes:
    """The incoming document plus ``<error>``: the panel shows ``message`` over the form."""
    doc = base_doc(request)
    node = etree.SubElement(doc, "error", type=kind, report="no")
    if obj:
        node.set("object", obj)
    if request is not None:
        node.set("lang", request.lang)
    if obj:
        _text(node, "param", obj, name="object")
    if value:
        _text(node, "param", value, name="value")
    _text(node, "msg", message)
    return serialize(doc)


def set_message(doc: etree._Element, func: str, name: str, text: str) -> None:
    """Override one ``<messages name=func><msg name=...>`` text in the outgoing document."""
    messages = doc.find(f"messages[@name='{func}']") if "'" not in func else None
    if messages is None:
        messages = etree.SubElement(doc, "messages", name=func)
    for msg in messages.findall("msg"):
        if msg.get("name") == name:
            msg.text = _clean(text)
            return
    _text(messages, "msg", text, name=name)


def add_values(doc: etree._Element, values: Mapping[str, object]) -> None:
    for name, value in values.items():
        for old in doc.findall(name):
            doc.remove(old)
        _text(doc, name, value)


def add_slist(doc: etree._Element, name: str, options: Options) -> None:
    node = etree.SubElement(doc, "slist", name=name)
    for key, label in options:
        _text(node, "val", label, key=_clean(key))


def form(
    request: PanelRequest,
    values: Mapping[str, object],
    slists: Mapping[str, Options] | None = None,
    messages: Mapping[str, str] | None = None,
) -> bytes:
    """Form data: one element per field, ``<slist>`` per select, optional message overrides."""
    doc = base_doc(request)
    add_values(doc, values)
    for name, options in (slists or {}).items():
        add_slist(doc, name, options)
    for name, text in (messages or {}).items():
        set_message(doc, request.func, name, text)
    return serialize(doc)


@dataclass(frozen=True)
class Page:
    """Paging and sorting as the panel sends them (``p_num`` from 1, ``p_cnt`` rows per page)."""

    num: int
    cnt: int
    sort: str = ""
    order: str = "asc"

    @property
    def offset(self) -> int:
        return (self.num - 1) * self.cnt

    @property
    def descending(self) -> bool:
        return self.order == "desc"


def page_of(
    request: PanelRequest, sortable: Iterable[str], default_sort: str, default_cnt: int = 100
) -> Page:
    """Paging from the request, clamped: unknown sort columns fall back to ``default_sort``."""

    def number(name: str, default: int, low: int, high: int) -> int:
        raw = request.param(name).strip()
        value = int(raw) if raw.isdigit() else default
        return max(low, min(high, value))

    sort = request.param("p_sort").strip()
    order = request.param("p_order").strip().lower()
    return Page(
        num=number("p_num", 1, 1, 10**7),
        cnt=number("p_cnt", default_cnt, 1, 1000),
        sort=sort if sort in set(sortable) else default_sort,
        order="desc" if order == "desc" else "asc",
    )


def list_(
    request: PanelRequest,
    rows: Iterable[Mapping[str, object]],
    *,
    total: int,
    page: Page | None = None,
    messages: Mapping[str, str] | None = None,
) -> bytes:
    """List data: ``<elem>`` per row (children named after columns) and the paging elements."""
    doc = base_doc(request)
    for row in rows:
        elem = etree.SubElement(doc, "elem")
        for name, value in row.items():
            if value is not None and value != "":
                _text(elem, name, value)
    _text(doc, "p_elems", total)
    if page is not None:
        _text(doc, "p_num", page.num)
        _text(doc, "p_cnt", page.cnt)
        if page.sort:
            _text(doc, "p_sort", page.sort)
            _text(doc, "p_order", page.order)
    for name, text in (messages or {}).items():
        set_message(doc, request.func, name, text)
    return serialize(doc)


class PanelError(Exception):
    """A failure the admin should read: shown as ``<error>`` in their language, logged as the result.

    ``detail``: what only the log gets (the technical English text behind a message written
    for the admin, e.g. amoCRM's status and X-Request-Id); never shown in the panel.
    """

    def __init__(self, message: str, *, obj: str = "", kind: str = "value", value: str = "",
                 detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.obj = obj
        self.kind = kind
        self.value = value
        self.detail = detail


@dataclass(frozen=True)
class Reply:
    """What a function answered, plus what the action log records about it."""

    body: bytes
    result: str = "ok"
    changed: Tuple[str, ...] = ()
