"""Partials and layouts from the `templates/` folder beside the journeys: included and wrapped as
written, HTML kept escaped, every name checked by `journey validate` at its file:line, and the
files a journey uses kept with its version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from channels import Profile, load_policy
from engine.cli import app
from engine.compiler import load_file, load_text
from engine.partials import TemplateSource
from engine.simulator import parse_events, simulate
from tests.engine.conftest import event, profile

JOURNEY = """\
id: receipts
category: transactional
trigger: {event: paid}
steps:
  - {id: tell, type: send, message: receipt, channels: [sms, email], strategy: all}
messages:
  receipt:
    sms: {text: "Paid {{ event.properties.total }}. {% include 'footer.sms' %}"}
    email:
      subject: Your receipt
      body: "Paid {{ event.properties.total }}"
      html: "<p>Paid {{ event.properties.total }} for {{ event.properties.item }}</p>"
      layout: base.html
"""
FILES = {
    "footer.sms": "Questions? Reply HELP, {{ profile.attributes.name }}",
    "base.html": "<html><body>{{ content }}{% include 'parts/signature.html' %}</body></html>",
    "parts/signature.html": "<footer>Sent to {{ profile.email }}</footer>",
}


def _folder(tmp_path: Path, journey: str = JOURNEY, **files: str) -> Path:
    for name, text in {**FILES, **files}.items():
        path = tmp_path / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (tmp_path / "receipts.yaml").write_text(journey, encoding="utf-8")
    return tmp_path / "receipts.yaml"


def _sent(path: Path) -> dict[str, dict[str, str]]:
    journey = load_file(path)
    people = [Profile.from_dict(profile("u1", "sms:transactional", attributes={"name": "Ada"},
                                        email="ada@example.com"))]
    events = parse_events([("e", event("paid", "u1", total="$5", item="<b>tea</b>"))])
    result = simulate(journey, events, people, load_policy())
    return {m["channel"]: m["content"] for m in result["messages"]}


def test_a_partial_is_included_and_a_layout_wraps_the_email_escaped(tmp_path: Path) -> None:
    sent = _sent(_folder(tmp_path))
    assert sent["sms"]["text"] == "Paid $5. Questions? Reply HELP, Ada"
    assert sent["email"]["html"] == ("<html><body><p>Paid $5 for &lt;b&gt;tea&lt;/b&gt;</p>"
                                     "<footer>Sent to ada@example.com</footer></body></html>")
    assert sent["email"]["body"] == "Paid $5" and "layout" not in sent["email"]


def test_a_layout_wraps_the_plain_body_escaped_when_there_is_no_html(tmp_path: Path) -> None:
    html = '      html: "<p>Paid {{ event.properties.total }} for {{ event.properties.item }}</p>"\n'
    journey = JOURNEY.replace(html, "").replace('body: "Paid {{ event.properties.total }}"',
                                          'body: "Paid for {{ event.properties.item }}"')
    sent = _sent(_folder(tmp_path, journey))
    assert sent["email"]["html"].startswith("<html><body>Paid for &lt;b&gt;tea&lt;/b&gt;<footer>")


@pytest.mark.parametrize(("change", "files", "expected"), [
    (("'footer.sms'", "'footr.sms'"), {}, "receipts.yaml:8: message 'receipt': sms.text: unknown template "
                                          "'footr.sms' in {templates}/; did you mean 'footer.sms'?"),
    (("layout: base.html", "layout: bse.html"), {}, "receipts.yaml:13: message 'receipt': email.layout: unknown "
                                                     "template 'bse.html'"),
    (("'footer.sms'", "profile.attributes.footer"), {}, "receipts.yaml:8: message 'receipt': sms.text: a template "
                                                         "is named by a quoted name"),
    ((), {"footer.sms": "Hi\n{{ profile.name "}, "{templates}/footer.sms:2: template does not parse"),
    ((), {"footer.sms": "Hi {{ shop.name }}"}, "{templates}/footer.sms:1: unknown name 'shop'; a template reads "
                                               "event, profile, journey"),
    ((), {"footer.sms": "{{ content }}"}, "{templates}/footer.sms:1: unknown name 'content'"),
    ((), {"parts/signature.html": "\n{% include 'base.html' %}"},
     "{templates}/parts/signature.html:2: template 'base.html' includes itself: base.html -> "
     "parts/signature.html -> base.html"),
])
def test_journey_validate_names_what_is_wrong_at_its_file_and_line(
        tmp_path: Path, change: tuple[str, str], files: dict[str, str], expected: str) -> None:
    path = _folder(tmp_path, JOURNEY.replace(*change) if change else JOURNEY, **files)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code != 0
    assert expected.format(templates=tmp_path / "templates") in result.output, result.output


def test_a_folder_of_journeys_does_not_read_its_templates_as_journeys(tmp_path: Path) -> None:
    _folder(tmp_path, **{"snippet.yaml": "not: a journey"})
    result = CliRunner().invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 0, result.output


def test_the_templates_a_journey_uses_are_part_of_its_version_and_kept_with_it(tmp_path: Path) -> None:
    path = _folder(tmp_path)
    first = load_file(path)
    assert dict(first.partials) == FILES
    (tmp_path / "templates" / "unused.sms").write_text("never read")
    assert load_file(path).version == first.version
    (tmp_path / "templates" / "footer.sms").write_text("New footer")
    edited = load_file(path)
    assert edited.version != first.version
    kept = load_text(first.text, str(path), TemplateSource(kept=json.loads(json.dumps(dict(first.partials)))))
    assert kept.version == first.version
    people = [Profile.from_dict(profile("u1", "sms:transactional", attributes={"name": "Ada"}))]
    result = simulate(kept, parse_events([("e", event("paid", "u1", total="$5", item="tea"))]), people,
                      load_policy())
    assert result["messages"][0]["content"]["text"] == "Paid $5. Questions? Reply HELP, Ada"
