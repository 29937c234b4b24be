"""SMS encoding and segments: every shared vector, plus the billing invariants."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels import sms_encoding

VECTORS_FILE = Path(__file__).parent / "data" / "sms_vectors.jsonl"
VECTORS = [json.loads(line) for line in VECTORS_FILE.read_text("utf-8").splitlines() if line]
GSM_SAMPLE = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#%&'()*+,-./09:;<=>?¡AZÄÖÑÜ§¿azäöñüà^{}\\[~]|€"


def test_all_vectors_are_present() -> None:
    assert len(VECTORS) == 34


@pytest.mark.parametrize("vector", VECTORS, ids=[v["note"][:40] for v in VECTORS])
def test_vector(vector: dict[str, object]) -> None:
    result = sms_encoding(str(vector["text"]))
    assert (result.encoding, result.segments) == (vector["encoding"], vector["segments"])


@pytest.mark.parametrize(
    ("text", "units"),
    [("a" * 158 + "{", 160), ("€" * 81, 162), ("{}😀", 4), ("Hi 😀", 5), ("", 0)],
)
def test_units_count_escape_and_surrogate_pairs_twice(text: str, units: int) -> None:
    assert sms_encoding(text).units == units


def test_empty_text_is_one_gsm_segment() -> None:
    assert sms_encoding("") == sms_encoding("")
    assert (sms_encoding("").encoding, sms_encoding("").segments) == ("GSM-7", 1)


text_strategy = st.text(alphabet=st.sampled_from(GSM_SAMPLE), max_size=400) | st.text(max_size=300)


@given(text_strategy, st.characters())
def test_segments_never_decrease_when_a_character_is_appended(text: str, extra: str) -> None:
    assert sms_encoding(text + extra).segments >= sms_encoding(text).segments


@given(st.text(max_size=300))
def test_encoding_is_one_of_the_two_names(text: str) -> None:
    assert sms_encoding(text).encoding in {"GSM-7", "UCS-2"}
