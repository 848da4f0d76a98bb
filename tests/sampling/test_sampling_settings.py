"""Settings validation and the exact sample-size formula."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from pydantic import ValidationError

from sampling import AlwaysRule, SamplingSettings, stratum_size


@pytest.mark.parametrize(
    ("n", "rate", "minimum", "k"),
    [
        (15, "0.2", 1, 3),
        (15, "0.20", 1, 3),
        (20, "0.35", 1, 7),
        # cases where binary floats overshoot a whole number, so float ceil is one too many
        (100, "0.07", 1, 7),  # 0.07 * 100 == 7.000000000000001
        (50, "0.14", 1, 7),
        (25, "0.28", 1, 7),
        (25, "0.56", 1, 14),
        (100, "0.55", 1, 55),
        (300, "0.17", 1, 51),
        (10, "0.3", 1, 3),
        (16, "0.2", 1, 4),  # 3.2 rounds up
        (6, "0.2", 1, 2),
        (1, "0.2", 1, 1),
        (1, "0.2", 0, 1),  # ceil(0.2) == 1 even with no minimum
        (10, "0.2", 0, 2),
        (3, "0.2", 5, 3),  # the minimum is capped at n
        (4, "0.2", 3, 3),
        (0, "0.2", 1, 0),  # an empty stratum has no sample
        (0, "1", 5, 0),
        (7, "1", 0, 7),
        (7, "1.00", 1, 7),
        (3, "0.5", 1, 2),
        (8, "0.125", 0, 1),
        (9, "0.125", 0, 2),
        (100_000, "0.2", 1, 20_000),
        (10**9, "0.000000001", 0, 1),
        # beyond the default Decimal context's 28 digits, which would round 1.0...01 to 1
        (10, "0.10000000000000000000000000001", 0, 2),
    ],
)
def test_stratum_size_is_exact(n: int, rate: str, minimum: int, k: int) -> None:
    assert stratum_size(n, Decimal(rate), minimum) == k


@pytest.mark.parametrize(("n", "rate", "k"), [(100, "0.07", 7), (25, "0.28", 7), (100, "0.55", 55)])
def test_floats_would_have_got_it_wrong(n: int, rate: str, k: int) -> None:
    """Why rates are Decimal: float arithmetic takes one claim too many here.

    (0.2 * 15 and 0.35 * 20 happen to be exact in binary floating point, so they are
    pinned above but could not catch a float implementation.)
    """
    assert math.ceil(float(rate) * n) == k + 1
    assert stratum_size(n, Decimal(rate), 1) == k


def test_stratum_size_refuses_floats_and_bad_values() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        stratum_size(15, 0.2, 1)  # type: ignore[arg-type]
    for bad in ("0", "-0.1", "1.01", "NaN", "Infinity"):
        with pytest.raises(ValueError, match="rate"):
            stratum_size(5, Decimal(bad), 1)
    with pytest.raises(ValueError, match="n must"):
        stratum_size(-1, Decimal("0.2"), 1)
    with pytest.raises(ValueError, match="min_per_stratum"):
        stratum_size(5, Decimal("0.2"), -1)


def test_defaults() -> None:
    s = SamplingSettings()
    assert s.rate == Decimal("0.20") and isinstance(s.rate, Decimal)
    assert s.min_per_stratum == 1
    assert s.strata == ("basis", "locality")
    assert s.ladder == (Decimal("0.20"), Decimal("0.50"), Decimal("1.00"))
    assert s.tolerance == 0
    assert s.always == (AlwaysRule(name="manual_override", column="manual_override", equals=True),)


def test_settings_are_frozen() -> None:
    s = SamplingSettings()
    with pytest.raises(ValidationError):
        s.rate = Decimal("0.5")  # type: ignore[misc]


def test_rates_from_text_and_floats_become_exact_decimals() -> None:
    """Configuration arrives as text (TOML, CLI); a float is read by its shortest repr."""
    assert SamplingSettings(rate="0.35").rate == Decimal("0.35")  # type: ignore[arg-type]
    assert SamplingSettings(rate=0.28).rate == Decimal("0.28")  # type: ignore[arg-type]
    assert stratum_size(25, SamplingSettings(rate=0.28).rate, 1) == 7  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": Decimal("0")}, "rate must be greater than 0"),
        ({"rate": Decimal("-0.2")}, "rate must be greater than 0"),
        ({"rate": Decimal("1.5")}, "at most 1"),
        ({"rate": "NaN"}, "finite"),
        ({"min_per_stratum": -1}, "greater than or equal to 0"),
        ({"tolerance": -1}, "greater than or equal to 0"),
        ({"ladder": ()}, "at least one step"),
        ({"ladder": (Decimal("0.5"), Decimal("0.2"), Decimal("1"))}, "strictly increasing"),
        ({"ladder": (Decimal("0.2"), Decimal("0.2"), Decimal("1"))}, "strictly increasing"),
        ({"ladder": (Decimal("0.2"), Decimal("0.5"))}, "end at 1"),
        ({"ladder": (Decimal("0"), Decimal("1"))}, "greater than 0"),
        ({"strata": ("basis", "basis")}, "distinct"),
        ({"strata": ("",)}, "non-empty"),
        (
            {
                "always": (
                    AlwaysRule(name="a", column="x"),
                    AlwaysRule(name="a", column="y"),
                )
            },
            "rule names must be distinct",
        ),
        ({"unknown_key": 1}, "Extra inputs"),
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SamplingSettings(**kwargs)  # type: ignore[arg-type]


def test_rule_names_are_plain_words() -> None:
    with pytest.raises(ValidationError, match="rule name"):
        AlwaysRule(name="manual override", column="manual_override")
    with pytest.raises(ValidationError, match="rule name"):
        AlwaysRule(name="", column="manual_override")
    with pytest.raises(ValidationError):
        AlwaysRule(name="x", column="")


def test_rate_off_the_ladder_escalates_to_the_next_step_above() -> None:
    s = SamplingSettings(rate=Decimal("0.3"))
    assert s.next_rate(Decimal("0.3")) == Decimal("0.50")
    assert s.next_rate(Decimal("0.20")) == Decimal("0.50")
    assert s.next_rate(Decimal("0.1")) == Decimal("0.20")
    assert s.next_rate(Decimal("0.5")) == Decimal("1.00")
    assert s.next_rate(Decimal("1")) is None


def test_settings_round_trip_through_json() -> None:
    """The batch stores its settings as JSON; reading them back gives the same settings."""
    s = SamplingSettings(
        rate=Decimal("0.35"),
        always=(
            AlwaysRule(name="manual_override", column="manual_override", equals=True),
            AlwaysRule(name="tier", column="tier", equals=2),
            AlwaysRule(name="flag", column="flag", equals="yes"),
        ),
    )
    back = SamplingSettings.model_validate_json(s.model_dump_json())
    assert back == s
    assert [type(r.equals) for r in back.always] == [bool, int, str]
    assert back.rate == Decimal("0.35") and isinstance(back.rate, Decimal)


@pytest.mark.parametrize(
    "settings",
    [
        {"rate": Decimal("0.3333333333")},
        {"ladder": (Decimal("0.20"), Decimal("0.123456789"), Decimal("1"))},
        {"always": ({"name": "x" * 96, "column": "manual_override"},)},
    ],
    ids=["rate", "ladder", "rule name"],
)
def test_settings_longer_than_the_batch_tables_store_are_refused(
    settings: dict[str, object],
) -> None:
    """Rates are stored as written in 8 characters and rule:<name> in 100."""
    with pytest.raises(ValidationError):
        SamplingSettings.model_validate(settings)


def test_settings_that_fit_are_accepted() -> None:
    s = SamplingSettings(rate=Decimal("0.333333"), always=(AlwaysRule(name="x" * 95, column="c"),))
    assert s.rate == Decimal("0.333333")
