"""Human units: reading and writing counts and FLOPs."""

import pytest

from bayescale.base.units import format_count, format_flops, format_plan, parse_plan, parse_quantity


@pytest.mark.parametrize("text, value", [
    ("70B", 70e9), ("70b", 70e9), ("1.4T", 1.4e12), ("500M", 5e8), ("1.5K", 1.5e3), ("2G", 2e9),
    ("1.2e24", 1.2e24), ("1.2E24 FLOP", 1.2e24), ("70e9", 70e9), (" 3 ", 3.0), ("1.4T tokens", 1.4e12),
    ("70B params", 70e9), (".5", 0.5), (1e24, 1e24),
])
def test_parse_quantity(text, value):
    assert parse_quantity(text) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("text", ["", "lots", "70X", "1e", "-5", "0", "nan", "inf", "1,000", True])
def test_parse_quantity_rejects(text):
    with pytest.raises(ValueError, match="budget"):
        parse_quantity(text, "budget")


@pytest.mark.parametrize("value", [1.0, 12.0, 5.2e5, 7e9, 70e9, 1.4e12, 3.3e13, 999e12])
def test_format_count_round_trips(value):
    assert parse_quantity(format_count(value)) == pytest.approx(value, rel=5e-3)


def test_formats():
    assert format_count(999.9e9) == "1T"
    assert format_count(float("nan")) == "nan"
    assert format_flops(1.2e24) == "1.2e24 FLOP"
    assert format_flops(5.876e23, digits=2) == "5.9e23 FLOP"
    assert parse_quantity(format_flops(3.14159e25)) == pytest.approx(3.14e25)
    assert format_plan(175e9, 3.5e12) == "175B params on 3.5T tokens"
    assert parse_plan("175B:3.5T") == (175e9, 3.5e12)
    with pytest.raises(ValueError, match="plan tokens"):
        parse_plan("70B:many")
