"""Per-locale content: the reader's locale picks the closest variant of a message (`fr-CA`, then `fr`,
else the default), the message records which, and every variant is checked as the default is."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.compiler import load_file
from engine.errors import JourneyDefinitionError
from tests.engine.conftest import Simulate, event, profile

JOURNEY = """
id: reminder
category: transactional
trigger: {event: booked}
steps:
  - {id: remind, type: send, message: reminder, channels: [sms, push]}
messages:
  reminder:
    sms: {text: "Your visit is on {{ event.properties.starts_at | date('long') }}"}
    push: {title: Reminder, body: "See you soon"}
    locales:
      fr:
        sms: {text: "Votre rendez-vous est le {{ event.properties.starts_at | date('long') }}"}
      fr-BE:
        sms: {text: "Votre rendez-vous (Belgique)"}
      es:
        push: {title: Recordatorio, body: "Hasta pronto"}
"""


def _sent(simulate: Simulate, **locales: str | None) -> dict[str, tuple[str | None, str]]:
    people = [profile(user, "sms:transactional", locale=tag) for user, tag in locales.items()]
    result = simulate(JOURNEY.replace("[sms, push]", "[sms]"), [event("booked", user, starts_at="2026-03-12T15:30:00Z")
                                for user in locales], people)
    return {m["user_id"]: (m["locale"], m["content"]["text"]) for m in result["messages"]}


def test_the_closest_variant_is_sent_and_recorded(simulate: Simulate) -> None:
    """fr-CA has no variant of its own: it reads `fr`. fr-BE has one. de has none: the default."""
    got = _sent(simulate, ca="fr-CA", be="fr-BE", de="de-DE", none=None)
    assert got == {
        "ca": ("fr", "Votre rendez-vous est le 12 mars 2026"),
        "be": ("fr-BE", "Votre rendez-vous (Belgique)"),
        "de": (None, "Your visit is on 12. März 2026"),
        "none": (None, "Your visit is on March 12, 2026"),
    }


def test_a_variant_without_the_channel_falls_back_to_the_default_content(simulate: Simulate) -> None:
    """`es` gives only push: its sms is the default content, recorded as such; its push is Spanish."""
    people = [profile("es", "sms:transactional", locale="es-MX")]
    result = simulate(JOURNEY.replace("[sms, push]}", "[sms, push], strategy: all}"),
                      [event("booked", "es", starts_at="2026-03-12T15:30:00Z")], people)
    got = {m["channel"]: (m["locale"], m["content"]) for m in result["messages"]}
    assert got["push"] == ("es", {"title": "Recordatorio", "body": "Hasta pronto"})
    assert got["sms"][0] is None and got["sms"][1]["text"].startswith("Your visit is on")


@pytest.mark.parametrize(("variant", "expected"), [
    ("fr: {sms: {text: \"{{ event.properties.x \"}}",
     "test.yaml:12: message 'reminder': locales.fr.sms: template does not parse"),
    ("fr: {sms: {text: \"{{ shop.name }}\"}}",
     "test.yaml:12: message 'reminder': locales.fr.sms.text: unknown name 'shop'"),
    ("fr: {email: {subject: s, body: b}}", "locales.fr: email: a variant gives another language's content"),
    ("fr_FR: {sms: {text: hi}}", "unknown locale 'fr_FR' (did you mean 'fr-FR'?)"),
])
def test_every_variant_is_checked_like_the_default(tmp_path: Path, variant: str, expected: str) -> None:
    text = JOURNEY.split("    locales:")[0] + "    locales:\n      " + variant + "\n"
    (tmp_path / "test.yaml").write_text(text)
    with pytest.raises(JourneyDefinitionError) as caught:
        load_file(tmp_path / "test.yaml")
    assert expected in str(caught.value)


RICH = """
id: rich
category: transactional
trigger: {event: booked}
steps:
  - {id: tell, type: send, message: hi, channels: [rcs]}
messages:
  hi:
    rcs: {text: "Hi", carousel: {cards: [{title: One}, {title: Two}]}}
    locales:
      fr:
        rcs: {text: "Salut", carousel: {cards: [{title: Un}]}}
"""


def test_a_variants_rich_content_is_held_to_its_channels_limits_and_named_by_its_path(tmp_path: Path) -> None:
    """RBM's limits hold for a variant as for the default content, and the error names the variant."""
    (tmp_path / "rich.yaml").write_text(RICH)
    with pytest.raises(JourneyDefinitionError) as caught:
        load_file(tmp_path / "rich.yaml")
    assert "rich.yaml:12: message 'hi': locales.fr.rcs.carousel.cards: a carousel holds 2 to 10 cards (RBM), " \
           "this one 1" in str(caught.value)
