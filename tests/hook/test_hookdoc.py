"""The hook reads only the root document: its own <id> and <error> children (hookdoc.root_facts)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from billmgr_amocrm.hookdoc import root_facts

# After a wizard save BILLmanager nests a whole second <doc> inside the root one.
WIZARD = (b'<?xml version="1.0" encoding="UTF-8"?>\n<doc lang="ru" func="register">'
          b'<doc func="account.edit"><id>5</id><error type="value"><msg>inner</msg></error></doc>'
          b"<ok/><id>42</id></doc>\n")


@pytest.mark.parametrize(("doc", "expected"), [
    (b"<doc><ok/><id>42</id></doc>", ("42", False)),
    (WIZARD, ("42", False)),
    (b"<doc><doc><id>5</id></doc><ok/></doc>", ("", False)),                       # only a nested id
    (b'<doc><error type="value" object="email"><msg>bad</msg></error></doc>', ("", True)),
    (b"<doc>\n<error/>\n</doc>", ("", True)),
    (b"<doc><id>42</id><error/></doc>", ("42", True)),
    (b"<doc><errors_count>0</errors_count><ok/></doc>", ("", False)),
    (b"<doc><note><![CDATA[call me <error>now</error>]]></note><id>7</id></doc>", ("7", False)),
    (b"<doc><![CDATA[<error/><id>9</id>]]><ok/></doc>", ("", False)),
    (b"<doc><!-- <error/> <id>9</id> --><id>3</id></doc>", ("3", False)),
    (b'<doc note="a > b" x=\'<error/>\'><id>11</id></doc>', ("11", False)),
    (b'<doc><elem title="1 > 0"><error/></elem><id>12</id></doc>', ("12", False)),  # error one level down
    (b"<doc><?pi <error/> ?><id>13</id></doc>", ("13", False)),
    (b'<?xml version="1.0"?>\n<!-- <error/> -->\n<!DOCTYPE doc [<!ENTITY e "<error/>"> <!ELEMENT doc ANY>]>'
     b"<doc>&e;<id>14</id></doc>", ("14", False)),                      # the entity is never expanded
    (b"<doc><id> 15 </id></doc>", ("15", False)),
    (b"<doc><id>16</id ></doc>", ("16", False)),
    (b"<doc><id>x1</id><id>17</id></doc>", ("", False)),                  # the first id, not a number
    (b"<doc><id><b>18</b></id></doc>", ("", False)),
    (b"<doc><id>1</id><id>2</id></doc>", ("1", False)),
    (b"<doc/>", ("", False)),
    (b"", ("", False)),
    (b"not xml at all <error", ("", False)),
    (b"<doc><id>19</id><elem>" + b"x" * 100, ("19", False)),                        # cut off: what was seen
    (b'<doc a="never closed><error/></doc>', ("", False)),
    (b"<doc><![CDATA[never closed <error/>", ("", False)),
    (b"<!DOCTYPE never closed <doc><error/></doc>", ("", False)),
    (b"<doc>\xcf\xf0\xe8<error/>\xff</doc>", ("", True)),                          # not UTF-8: bytes are fine
])
def test_root_facts(doc: bytes, expected: tuple) -> None:
    assert root_facts(doc) == expected


# Random documents: elements named like the ones that matter, at any depth, with text, CDATA,
# comments and attributes that carry the tricky characters; lxml (entities and network off)
# says what the root's own children are.
NAMES = st.sampled_from(["id", "error", "doc", "elem", "errors", "msg", "ok"])
TEXT = st.sampled_from(["", "42", " 7 ", "x", "<error/>", "a > b", "]]", "&", "<id>1</id>"])


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    element = etree.Element(draw(NAMES) if depth else "doc")
    for name in draw(st.lists(st.sampled_from(["note", "title"]), max_size=2, unique=True)):
        element.set(name, draw(TEXT))
    element.text = draw(TEXT)
    if depth < 3:
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from(["element", "element", "cdata", "comment"]))
            if kind == "element":
                element.append(draw(trees(depth + 1)))
            elif kind == "comment":
                element.append(etree.Comment(draw(TEXT).replace("-", "") or "c"))
            else:
                child = etree.SubElement(element, "note")
                child.text = etree.CDATA(draw(TEXT).replace("]]>", ""))
    return element


@settings(max_examples=300, deadline=None)
@given(trees())
def test_root_facts_agree_with_an_xml_parser(tree: etree._Element) -> None:
    doc = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
    root = etree.fromstring(doc, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    first_id = root.find("id")
    wanted_id = ""
    if first_id is not None and len(first_id) == 0 and (first_id.text or "").strip().isdigit():
        wanted_id = (first_id.text or "").strip()
    assert root_facts(doc) == (wanted_id, root.find("error") is not None)
