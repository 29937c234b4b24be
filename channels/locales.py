"""The locales a profile (or the policy's `default_locale`) may name: BCP 47 tags as CLDR spells
them, which Babel has the data for, so dates, numbers and currencies can be written in each."""

from __future__ import annotations

import functools

from babel.localedata import locale_identifiers


@functools.cache
def locales() -> frozenset[str]:
    """The BCP 47 tags a profile's `locale` may name: every locale CLDR (through Babel) has data for,
    so that dates, numbers and currencies can be formatted in it (the API's document lists the same)."""
    return frozenset(tag.replace("_", "-") for tag in locale_identifiers() if tag != "root")


def check_locale(value: str) -> str:
    """A BCP 47 tag CLDR knows, spelt as it spells it (`fr-CA`, `zh-Hant-TW`, `es-419`); raises
    ValueError saying what is wrong (without the field's name), with the spelling it may have meant."""
    if value in locales():
        return value
    spelt = {tag.casefold(): tag for tag in locales()}.get(value.replace("_", "-").casefold())
    hint = f" (did you mean {spelt!r}?)" if spelt else " (a BCP 47 tag such as 'en', 'fr-CA' or 'pt-BR')"
    raise ValueError(f"unknown locale {value!r}{hint}")
