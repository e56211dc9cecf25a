"""Ad copy: every variant returned passes every rule (a property over random briefs, written by
the tiny model), what fails is reported with its reasons, and briefs that could never pass are
refused up front."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roost.ads.config import AdsConfig
from roost.ads.creative import MAX_CHARS, Brief, CreativeWriter, assemble, detect_language, validate

CLAIMS = AdsConfig().blocked_claims
URL = "https://stride.example/spring"


def brief(**fields: object) -> Brief:
    return Brief(**{"product": "Stride shoes", "landing_url": URL, **fields})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Stride shoes for your morning run, light and quick " + "x" * 250 + f" {URL}", "length"),
        ("Stride shoes for your morning run, light and quick", "destination"),
        (f"Stride shoes: guaranteed to make you faster on the road {URL}", "blocked claim: 'guaranteed'"),
        (f"Stride shoes: our Guarantees make you faster on the road {URL}", "blocked claim: 'guarantee'"),
        (f"Stride shoes, the cheap way to run further every day {URL}", "banned term: 'cheap'"),
        (f"Stride shoes for your morning run, see www.other.example {URL}", "links"),
        (f"Stride shoes for your morning run, ask @someone about it {URL}", "accounts"),
        (f"Zapatillas Stride para correr cada mañana por el parque {URL}", "language"),
    ],
)
def test_validate_names_what_breaks_the_rules(text: str, reason: str) -> None:
    reasons = validate(text, brief(banned=["cheap"]), CLAIMS)
    assert any(r.startswith(reason) for r in reasons), reasons


def test_a_good_ad_passes() -> None:
    text = f"Stride shoes: light, quick and ready for your morning run in the park. #running {URL}"
    assert validate(text, brief(banned=["cheap"], must_include=["#running"]), CLAIMS) == []
    assert detect_language(text)[0] == "en"


def test_assemble_fits_the_rules_by_construction() -> None:
    b = brief(must_include=["spring sale", "SPRING20"], handle="@stride")
    text = assemble("the best shoes for long runs " * 20, b)
    assert len(text) <= MAX_CHARS
    assert text.startswith("Stride shoes the best") and text.endswith(f"spring sale SPRING20 @stride {URL}")
    already = assemble("big spring sale on now", b)  # a term the body has is not repeated
    assert already.count("spring sale") == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"must_include": ["risk-free trial"]}, "forbidden term 'risk-free'"),
        ({"product": "Miracle shoes"}, "forbidden term 'miracle'"),
        ({"banned": ["stride"]}, "forbidden term 'stride'"),
        ({"landing_url": "", "handle": ""}, "where it leads"),
        ({"landing_url": "https://cure.example/x"}, "forbidden term 'cure'"),
        ({"product": "x" * 120, "must_include": ["y" * 60, "z" * 60]}, "no room"),
        ({"language": "English"}, "ISO 639-1"),
    ],
)
def test_briefs_that_could_never_pass_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        brief(**fields).check(CLAIMS)


def test_the_model_writes_variants_that_pass(tiny_engine) -> None:
    writer = CreativeWriter(tiny_engine, AdsConfig())
    result = writer.write(brief(audience="runners", must_include=["spring sale"], n=3))
    assert len(result.variants) == 3 and result.shortfall is None
    for variant in result.variants:
        assert variant.passed and validate(variant.text, brief(must_include=["spring sale"]), CLAIMS) == []
        assert variant.score is not None and variant.score < 0
    ranks = [v.rank for v in result.variants]
    assert ranks == sorted(ranks, reverse=True)


def test_a_shortfall_is_reported_with_the_reasons(tiny_engine) -> None:
    writer = CreativeWriter(tiny_engine, AdsConfig(creative_rounds=2))
    result = writer.write(brief(language="de", n=2))  # the tiny model knows no German
    assert result.variants == []
    assert result.shortfall.startswith("only 0 of 2 variants passed") and "language" in result.shortfall
    assert result.rejected and all(any(r.startswith("language") for r in v.reasons) for v in result.rejected)


WORDS = ["the cat", "pizza", "the fence", "a song", "robot", "rain", "match", "keys", "garden", "bus"]


@st.composite
def briefs(draw: st.DrawFn) -> Brief:
    destination = draw(st.sampled_from(["url", "handle", "both"]))
    return Brief(
        product=draw(st.sampled_from(["Stride shoes", "Kestrel laptop", "Tastebud kits", "Orbit buds"])),
        audience=draw(st.sampled_from(["", "runners", "students", "cooks at home"])),
        tone=draw(st.sampled_from(["friendly", "bold", "calm"])),
        must_include=draw(
            st.lists(
                st.sampled_from(["spring sale", "SPRING20", "#new", "free returns"]), max_size=2, unique=True
            )
        ),
        banned=draw(
            st.lists(st.sampled_from(WORDS), max_size=4, unique=True)
        ),  # what the model likes to write
        landing_url=URL if destination != "handle" else "",
        handle="@stride" if destination != "url" else "",
        language=draw(st.sampled_from(["en", "en", "en", "es"])),
        n=draw(st.integers(min_value=1, max_value=3)),
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(b=briefs())
def test_every_returned_variant_passes_every_rule(tiny_engine, b: Brief) -> None:
    writer = CreativeWriter(
        tiny_engine, AdsConfig(creative_max_tokens=24, creative_rounds=2, creative_oversample=2)
    )
    result = writer.write(b)
    assert len(result.variants) <= b.n
    assert len({v.text for v in result.variants}) == len(result.variants)
    if len(result.variants) < b.n:
        assert result.shortfall and result.rejected
    for variant in result.variants:
        text = variant.text
        assert validate(text, b, CLAIMS) == []
        # and, checked here without roost's matchers:
        assert len(text) <= 280
        assert (b.landing_url and b.landing_url in text) or (b.handle and b.handle in text)
        assert all(term.casefold() in text.casefold() for term in b.must_include)
        for word in [*b.banned, *CLAIMS]:
            assert not re.search(rf"(?<!\w){re.escape(word.casefold())}(?!\w)", text.casefold()), word
        assert detect_language(text)[0] == b.language
