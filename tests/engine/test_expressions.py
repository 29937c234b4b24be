"""Templates: the direct fill-in of `{{ dotted.name }}` must agree with Jinja exactly."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from engine.errors import TemplateRenderError
from engine.expressions import Template, compile_tree, render_tree

JINJA = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
CONTEXT = {"event": {"properties": {"items": 3, "url": "https://x.test/c", "value": 19.5, "none": None}},
           "profile": {"attributes": {"first_name": "Zoë"}, "user_id": "u1"}}
NAMES = ["event.properties.url", "event.properties.value", "profile.attributes.first_name", "profile.user_id",
         "event.properties.none"]
literal = st.text(alphabet=string.ascii_letters + " ,.!:\n/€😀'\"", max_size=15)


@settings(max_examples=200)
@given(st.lists(st.tuples(literal, st.sampled_from(NAMES), st.sampled_from(["", " "])), min_size=1, max_size=4),
       literal)
def test_fill_in_matches_jinja(pieces: list[tuple[str, str, str]], tail: str) -> None:
    source = "".join(f"{text}{{{{{pad}{name}{pad}}}}}" for text, name, pad in pieces) + tail
    template = Template(source)
    assert template._parts is not None
    assert template.render(CONTEXT) == JINJA.from_string(source).render(CONTEXT)


def test_keys_win_over_dict_methods() -> None:
    """`properties.items` is the cart's item count, not dict.items."""
    assert Template("{{ event.properties.items }} items").render(CONTEXT) == "3 items"
    assert Template("{{ event.properties.items | string }} items").render(CONTEXT) == "3 items"


@pytest.mark.parametrize("source", ["Hi {{ profile.attributes.last_name }}",
                                    "Hi {{ profile.attributes.last_name | upper }}",
                                    "{{ nobody.here }}"])
def test_missing_variable_is_a_render_error(source: str) -> None:
    with pytest.raises(TemplateRenderError, match="template .* failed"):
        Template(source).render(CONTEXT)


def test_sandbox_blocks_private_attributes() -> None:
    with pytest.raises(TemplateRenderError):
        Template("{{ profile.__class__.__mro__ }}").render(CONTEXT)


HTML_CONTEXT = {"event": {"properties": {"note": "<script>alert(1)</script> & co", "n": 3}},
                "profile": {"attributes": {"name": "Tom & \"Jerry\" <b>"}}}


@pytest.mark.parametrize(("source", "expected"), [
    ("<p>{{ event.properties.note }}</p>", "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</p>"),
    ("<p>{{ profile.attributes.name }}</p>", "<p>Tom &amp; &#34;Jerry&#34; &lt;b&gt;</p>"),
    ("<p>{{ profile.attributes.name | upper }}</p>", "<p>TOM &amp; &#34;JERRY&#34; &lt;B&gt;</p>"),
    ("<p>{{ event.properties.n }} & more</p>", "<p>3 & more</p>"),
    ("<p>{{ event.properties.note | safe }}</p>", "<p><script>alert(1)</script> & co</p>"),
])
def test_html_templates_escape_what_they_insert(source: str, expected: str) -> None:
    """The fill-in fast path and the Jinja path escape alike; the template's own markup stays."""
    assert Template(source, html=True).render(HTML_CONTEXT) == expected
    jinja = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True, keep_trailing_newline=True)
    assert jinja.from_string(source).render(HTML_CONTEXT) == expected


def test_plain_templates_insert_values_as_they_are() -> None:
    source = "{{ event.properties.note }} / {{ profile.attributes.name }}"
    assert Template(source).render(HTML_CONTEXT) == "<script>alert(1)</script> & co / Tom & \"Jerry\" <b>"


def test_only_the_named_fields_of_a_tree_are_html() -> None:
    tree = compile_tree({"subject": "{{ event.properties.note }}", "html": "<i>{{ event.properties.note }}</i>"},
                        html=("html",))
    assert render_tree(tree, HTML_CONTEXT) == {
        "subject": "<script>alert(1)</script> & co",
        "html": "<i>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</i>",
    }
