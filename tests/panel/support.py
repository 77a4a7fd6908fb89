"""Helpers for the panel tests: run ``addon/amocrm_ui`` as the panel does and compare its output.

``ui(func, params, lang=..., auth_level=...)`` sends the skeleton document the panel would build
from the descriptor (that function's ``<metadata>``, its ``<messages>`` in the admin's language and
the ``<tparams>`` echo) and returns the parsed answer. ``golden(name, doc)`` compares a normalised
answer with ``tests/panel/golden/<name>.xml``; ``UPDATE_GOLDEN=1`` rewrites the file instead.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Dict, Mapping, Optional, Union

from lxml import etree

from tests.harness import HandlerRun, run_addon

REPO = Path(__file__).resolve().parents[2]
DESCRIPTOR = REPO / "xml" / "billmgr_mod_amocrm.xml"
GOLDEN = Path(__file__).resolve().parent / "golden"
# The executable says "#!/usr/bin/env python3": put the project's interpreter first on PATH,
# as the installer's shebang rewrite does on a host.
VENV_BIN = str(Path(sys.executable).parent)


def safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=True)


def descriptor() -> etree._Element:
    return etree.parse(str(DESCRIPTOR), safe_parser()).getroot()


def skeleton(func: str, lang: str = "ru", params: Optional[Mapping[str, str]] = None) -> bytes:
    """The document the panel hands a ``type="xml"`` function handler."""
    root = descriptor()
    doc = etree.Element("doc", lang=lang, func=func, binary="/billmgr")
    for meta in root.findall("metadata"):
        if meta.get("name") == func:
            doc.append(meta)
    for block in root.findall("lang"):
        if block.get("name") != lang:
            continue
        for messages in block.findall("messages"):
            if messages.get("name") == func:
                doc.append(messages)
    tparams = etree.SubElement(doc, "tparams")
    for name, value in {"func": func, **(params or {})}.items():
        etree.SubElement(tparams, name).text = value
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


def run_ui(
    params: Mapping[str, str],
    stdin: Union[bytes, str],
    *,
    env: Optional[Mapping[str, str]] = None,
    **kwargs: object,
) -> HandlerRun:
    extra: Dict[str, str] = {"PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", "")}
    extra.update(env or {})
    return run_addon("amocrm_ui", params, stdin, extra=extra, **kwargs)  # type: ignore[arg-type]


def ui(
    func: str,
    params: Optional[Mapping[str, str]] = None,
    *,
    lang: str = "ru",
    auth_level: int = 30,
    env: Optional[Mapping[str, str]] = None,
) -> etree._Element:
    """Call one function through the real executable; the answer must be a well-formed ``<doc>``."""
    params = dict(params or {})
    run = run_ui(
        {"func": func, **params},
        skeleton(func, lang, params),
        env=env,
        auth_level=auth_level,
        lang=lang,
        auth_user="admin",
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    doc = etree.fromstring(run.stdout, safe_parser())
    assert doc.tag == "doc"
    return doc


def error_of(doc: etree._Element) -> Optional[etree._Element]:
    return doc.find("error")


def error_text(doc: etree._Element) -> str:
    err = doc.find("error")
    assert err is not None, etree.tostring(doc, encoding="unicode")
    return err.findtext("msg") or ""


def assert_ok(doc: etree._Element) -> None:
    assert doc.find("error") is None, etree.tostring(doc, encoding="unicode")
    assert doc.find("ok") is not None, etree.tostring(doc, encoding="unicode")


def slist(doc: etree._Element, name: str) -> Dict[str, str]:
    node = next((s for s in doc.findall("slist") if s.get("name") == name), None)
    assert node is not None, f"no slist {name}"
    return {v.get("key") or "": v.text or "" for v in node.findall("val")}


_VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "<TIME>"),
    (re.compile(r"(\d+) (с назад|s ago)"), r"<N> \2"),
    (re.compile(r"http://127\.0\.0\.1:\d+"), "<EMULATOR>"),
    (re.compile(r"ответ за \d+ мс|answered in \d+ ms"), "<LATENCY>"),
]


def normalise(doc: etree._Element, volatile_tags: tuple = ()) -> str:
    """Pretty XML with times, ages, ports and listed elements' texts replaced by placeholders."""
    doc = etree.fromstring(etree.tostring(doc), safe_parser())
    _drop_echo(doc)
    # the version of amocrm.conf a form was opened from: a hash of the test's file
    for tag in (*volatile_tags, "conf_version"):
        for node in doc.iter(tag):
            node.text = f"<{tag.upper()}>"
    text = etree.tostring(doc, encoding="unicode", pretty_print=True)
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def _drop_echo(doc: etree._Element) -> None:
    """Remove what the handler merely echoed from the skeleton (metadata, unchanged messages),
    so a golden file shows the handler's own output and survives wording changes in the descriptor."""
    sent = etree.fromstring(skeleton(doc.get("func") or "", doc.get("lang") or "ru"), safe_parser())
    original = {(m.getparent().get("name"), m.get("name")): m.text for m in sent.iter("msg")}
    for meta in doc.findall("metadata"):
        doc.remove(meta)
    for messages in doc.findall("messages"):
        for msg in messages.findall("msg"):
            if original.get((messages.get("name"), msg.get("name"))) == msg.text:
                messages.remove(msg)
        if len(messages) == 0:
            doc.remove(messages)


def golden(name: str, doc: etree._Element, volatile_tags: tuple = ()) -> None:
    path = GOLDEN / f"{name}.xml"
    text = normalise(doc, volatile_tags)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"golden file {path.name} is missing; run the test with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"output differs from golden/{path.name}"
