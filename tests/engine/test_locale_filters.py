"""Dates, numbers and money in the recipient's language and zone: what the filters print, and that
they hold to a render's budget like every other filter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from channels import load_policy
from engine.errors import TemplateRenderError
from engine.expressions import Expression, Template, instant
from engine.sandbox import RECIPIENT, Recipient

AT = "2026-03-12T15:30:00Z"
NBSP = "\u00a0"
NNBSP = "\u202f"


def render(source: str, locale: str = "en-US", zone: str = "UTC", **properties: Any) -> str:
    context = {"event": {"properties": {"at": AT, **properties}}, "profile": {},
               RECIPIENT: Recipient(locale, ZoneInfo(zone))}
    return Template(source).render(context)


def test_an_appointment_reads_in_the_persons_language_and_zone() -> None:
    en = "{{ event.properties.at | datetime(\"EEEE, MMMM d 'at' h:mm a\") }}"
    fr = "{{ event.properties.at | datetime(\"EEEE d MMMM 'à' HH:mm\") }}"
    assert render(en, "en-US", "America/Chicago") == "Thursday, March 12 at 10:30 AM"
    assert render(fr, "fr-FR", "Europe/Paris") == "jeudi 12 mars à 16:30"


def test_now_reads_in_the_persons_language_and_zone() -> None:
    """`now` is a timestamp like any other to these filters: the day it is where the reader lives."""
    source = '{{ now | datetime("EEEE d MMMM HH:mm") }}'
    context = {"now": instant(datetime(2026, 3, 12, 23, 30, tzinfo=UTC)),
               RECIPIENT: Recipient("fr-FR", ZoneInfo("Europe/Paris"))}
    assert Template(source).render(context) == "vendredi 13 mars 00:30"


def test_money_is_written_as_the_reader_writes_it() -> None:
    """CLDR puts a no-break space before the euro sign in German."""
    assert render('{{ 1234.5 | currency("EUR") }}', "de-DE") == f"1.234,50{NBSP}€"
    assert render('{{ 1234.5 | currency("EUR") }}', "en-US") == "€1,234.50"
    assert render('{{ event.properties.total | currency("USD") }}', "en-US", total="19.9") == "$19.90"


@pytest.mark.parametrize(("source", "locale", "expected"), [
    ("{{ event.properties.at | date }}", "en-US", "Mar 12, 2026"),
    ('{{ event.properties.at | date("full") }}', "fr-FR", "jeudi 12 mars 2026"),
    ('{{ "2026-03-12" | date("long") }}', "de-DE", "12. März 2026"),
    ("{{ event.properties.at | time }}", "fr-FR", "16:30"),
    ('{{ event.properties.at | datetime("short") }}', "en-GB", "12/03/2026, 15:30"),
    ('{{ 1234567.891 | number }}', "en-US", "1,234,567.891"),
    ('{{ 1234567.891 | number }}', "fr-FR", f"1{NNBSP}234{NNBSP}567,891"),
    ('{{ 3 | number("000") }}', "en-US", "003"),
    ('{{ 0.256 | percent }}', "en-US", "26%"),
    ('{{ 0.256 | percent }}', "fr-FR", f"26{NBSP}%"),
    ('{{ 7200 | timedelta }}', "es-ES", "2 horas"),
    ('{{ 90 | timedelta(add_direction=true) }}', "en-US", "in 2 minutes"),
])
def test_each_filter_formats_in_the_locale(source: str, locale: str, expected: str) -> None:
    zone = "Europe/Paris" if locale == "fr-FR" else "UTC"
    assert render(source, locale, zone) == expected


def test_in_tz_keeps_the_zone_it_was_given() -> None:
    """A time passed through `in_tz("Asia/Tokyo")` is shown in Tokyo, whoever reads it; without a zone,
    in the reader's."""
    assert render('{{ event.properties.at | in_tz("Asia/Tokyo") | time("HH:mm") }}', "en-US",
                  "America/Chicago") == "00:30"
    assert render("{{ (event.properties.at | in_tz).hour }}", "en-US", "America/Chicago") == "10"
    with pytest.raises(TemplateRenderError, match="unknown IANA time zone 'Mars/Base'"):
        render('{{ event.properties.at | in_tz("Mars/Base") }}')


def test_a_day_without_a_time_is_that_day_everywhere() -> None:
    """`2026-03-12` is the 12th in Chicago too, not the evening of the 11th."""
    assert render('{{ "2026-03-12" | date("d MMMM") }}', "en-US", "America/Chicago") == "12 March"


def test_without_a_recipient_formats_in_the_default() -> None:
    """An expression evaluated outside a send (a bare test) formats in `en` and UTC."""
    assert Expression('event.at | time("HH:mm")')({"event": {"at": AT}}) == "15:30"


def test_the_shipped_policy_defaults_to_english() -> None:
    assert load_policy().default_locale == "en"


@pytest.mark.parametrize(("source", "error"), [
    ('{{ 1 | currency("EURO") }}', "'EURO' is not an ISO 4217 currency code"),
    ('{{ "lots" | number }}', "'lots' is not a number"),
    ('{{ true | number }}', "True is not a number"),
    ('{{ "nan" | number }}', "is not a finite number"),
    ('{{ event.properties.at | datetime(5) }}', "the format is a style"),
    ('{{ "soon" | datetime }}', "Invalid isoformat"),
    ('{{ 5 | timedelta(granularity="fortnight") }}', "granularity 'fortnight'"),
])
def test_bad_input_is_a_template_error_naming_the_filter(source: str, error: str) -> None:
    with pytest.raises(TemplateRenderError, match=error):
        render(source)


@pytest.mark.parametrize(("source", "limit"), [
    ('{{ event.properties.at | datetime("EEEE" * 100) }}', "pattern of 400 characters is over the limit of 200"),
    ('{{ "1e99999" | number }}', "more than 4,300 digits"),
    ('{{ ("9" * 5000) | currency("EUR") }}', "over the limit of 4,300 digits"),
    ("{% for i in range(99999) %}{{ 1 | number('0' * 199) }}{% endfor %}", "characters built in one render"),
    ("{% for i in range(99999) %}{{ event.properties.at | datetime('full') }}{% endfor %}",
     "output went over the limit of 1,000,000 characters"),
])
def test_formatting_stays_within_the_render_budget(source: str, limit: str) -> None:
    """A huge pattern or number is refused before Babel formats it, and the output of a loop of
    formats is charged like any other."""
    with pytest.raises(TemplateRenderError, match=limit):
        render(source)
