"""Escaping for stanzas written as text: what an XML parser reads back is the value given."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from component.xml_text import attr, text

#: Characters XML 1.0 allows (the gateway strips the others before it escapes: xml_safe)
XML_CHARS = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters=[chr(c) for c in range(32) if chr(c) not in "\t\n\r"]
    + ["\ufffe", "\uffff"],
)
#: Values with the escaped characters in them, often
VALUES = st.text(st.one_of(st.sampled_from("&<>\"\n\r\t'x"), XML_CHARS), max_size=40)


@given(VALUES, VALUES)
def test_a_parser_reads_back_the_value_written(attribute: str, data: str) -> None:
    element = ET.fromstring(f"<a v={attr(attribute)}>{text(data)}</a>")
    assert element.get("v") == attribute
    assert (element.text or "") == data.replace("\r\n", "\n").replace("\r", "\n")


def test_values_with_nothing_to_escape_are_written_as_they_are() -> None:
    assert attr("alice@example.org/phone") == '"alice@example.org/phone"'
    assert text("post 42") == "post 42"


def test_markup_and_attribute_white_space_are_escaped() -> None:
    assert attr('a"b<c>&\n\r\t') == '"a&quot;b&lt;c&gt;&amp;&#10;&#13;&#9;"'
    assert text("<b>&</b>") == "&lt;b&gt;&amp;&lt;/b&gt;"
