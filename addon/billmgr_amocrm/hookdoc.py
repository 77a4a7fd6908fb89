"""What the event hook reads from the panel's result document: the root's own ``<id>`` and ``<error>``.

BILLmanager hands an ``after`` handler the function's result document. Only the ROOT
element's direct children count:

* ``<error>`` as a child of the root means the function failed and nothing was saved;
* ``<id>`` as a child of the root carries the id of an object a create made.

Anything deeper is not ours to read: after a wizard save BILLmanager nests a whole second
``<doc>`` (with its own ``<id>`` and maybe an ``<error>``) inside the root one, and a
client's note may contain the text ``<error`` inside CDATA, a comment or an attribute.

A small scanner over the bytes, not an XML library: the hook runs on every save in the
panel and ``xml.etree`` (pyexpat) costs more than the whole hook. It skips the XML
declaration, processing instructions, comments, CDATA sections and a DOCTYPE without
reading them (no entity is ever expanded, no DTD followed), honours quoted attribute
values (which may hold ``>``), and tracks only the nesting depth. It never raises on bad
input: a document it cannot read is "no id, no error", like a document without them.
"""

from __future__ import annotations

MAX_ID_DIGITS = 20
_NAME_END = b" \t\r\n/>"
_END_TAG_FOLLOWS = (b">", b" ", b"\t", b"\r", b"\n")
_NOTHING = ("", False)


def root_facts(doc: bytes) -> tuple[str, bool]:
    """``(id, failed)``: the text of the root's own ``<id>`` if a number; whether it has an ``<error>``."""
    at = _root_start(doc)
    if at < 0:
        return _NOTHING
    _name, pos, empty = _start_tag(doc, at)
    if pos < 0 or empty:
        return _NOTHING
    found_id = ""
    failed = False
    id_seen = False  # the first <id> child decides, even when it holds no number
    depth = 1
    while True:
        lt = doc.find(b"<", pos)
        if lt < 0:
            break  # cut off (the hook inspects the first megabyte): what was seen stands
        mark = doc[lt + 1:lt + 2]
        if mark == b"/":
            gt = doc.find(b">", lt)
            depth -= 1
            if gt < 0 or depth == 0:
                break
            pos = gt + 1
            continue
        if mark in (b"!", b"?"):
            pos = _skip_special(doc, lt)
            if pos < 0:
                break
            continue
        name, pos, empty = _start_tag(doc, lt)
        if pos < 0:
            break
        if depth == 1:
            if name == b"error":
                failed = True
            elif name == b"id" and not id_seen:
                id_seen = True
                found_id = "" if empty else _number_text(doc, pos)
        if not empty:
            depth += 1
    return found_id, failed


def _root_start(doc: bytes) -> int:
    """Where the root element's start tag begins, past the prolog; -1 when there is none."""
    pos = 0
    while True:
        lt = doc.find(b"<", pos)
        if lt < 0:
            return -1
        if doc[lt + 1:lt + 2] not in (b"!", b"?"):
            return lt
        pos = _skip_special(doc, lt)
        if pos < 0:
            return -1


def _skip_special(doc: bytes, lt: int) -> int:
    """The end of a comment, CDATA section, processing instruction or declaration at ``lt``; -1 if cut off."""
    if doc.startswith(b"<!--", lt):
        end = doc.find(b"-->", lt + 4)
        return end + 3 if end >= 0 else -1
    if doc.startswith(b"<![CDATA[", lt):
        end = doc.find(b"]]>", lt + 9)
        return end + 3 if end >= 0 else -1
    if doc.startswith(b"<?", lt):
        end = doc.find(b"?>", lt + 2)
        return end + 2 if end >= 0 else -1
    return _skip_declaration(doc, lt + 2)


def _skip_declaration(doc: bytes, pos: int) -> int:
    """Past ``<!DOCTYPE ...>`` (an internal subset ``[...]`` and quoted strings included), unread."""
    quote = 0
    brackets = 0
    for i in range(pos, len(doc)):
        byte = doc[i]
        if quote:
            if byte == quote:
                quote = 0
        elif byte in (0x22, 0x27):  # " '
            quote = byte
        elif byte == 0x5B:  # [
            brackets += 1
        elif byte == 0x5D:  # ]
            brackets -= 1
        elif byte == 0x3E and brackets <= 0:  # >
            return i + 1
    return -1


def _start_tag(doc: bytes, lt: int) -> tuple[bytes, int, bool]:
    """``(name, position after the tag, self-closing)`` of the start tag at ``lt``; position -1 if cut off."""
    end = lt + 1
    size = len(doc)
    while end < size and doc[end] not in _NAME_END:
        end += 1
    name = doc[lt + 1:end]
    pos = end
    while True:
        gt = doc.find(b">", pos)
        if gt < 0:
            return name, -1, False
        quote = _first_quote(doc, pos, gt)
        if quote < 0:
            return name, gt + 1, doc[gt - 1:gt] == b"/"
        close = doc.find(doc[quote:quote + 1], quote + 1)
        if close < 0:
            return name, -1, False
        pos = close + 1


def _first_quote(doc: bytes, start: int, stop: int) -> int:
    double = doc.find(b'"', start, stop)
    single = doc.find(b"'", start, stop)
    if double < 0:
        return single
    if single < 0:
        return double
    return min(double, single)


def _number_text(doc: bytes, pos: int) -> str:
    """The text of ``<id>`` starting at ``pos`` when it is plain digits up to ``</id>``, else ''."""
    lt = doc.find(b"<", pos, pos + MAX_ID_DIGITS + 64)
    if lt < 0 or not doc.startswith(b"</id", lt) or doc[lt + 4:lt + 5] not in _END_TAG_FOLLOWS:
        return ""
    value = doc[pos:lt].strip()
    return value.decode("ascii") if value.isdigit() and len(value) <= MAX_ID_DIGITS else ""
