"""Quantity parsing and canonical formatting, with cases ported from k8s.io/apimachinery
``pkg/api/resource/quantity_test.go`` (TestQuantityParse, TestQuantityString, TestQuantityParseEmit,
TestMilliNewSet, TestScaledValue, TestParseQuantity) plus the project's own examples."""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, localcontext

import pytest

from core.quantity import _parse, canonical_quantity, format_quantity, milli_value, parse_quantity

SI, BIN, EXP = "DecimalSI", "BinarySI", "DecimalExponent"
KI, MI, GI, TI, PI, EI = (1024**n for n in range(1, 7))


def dq(mantissa: int, exponent: int) -> Decimal:
    """Upstream's decQuantity(mantissa, exponent, _): mantissa * 10**exponent, exactly."""
    return Decimal(mantissa).scaleb(exponent)


def ceil_nano(value: Decimal) -> Decimal:
    """Reference rounding, independent of the module: up to the next nano, away from zero."""
    with localcontext() as ctx:
        ctx.prec = 400
        magnitude = abs(value).quantize(Decimal("1e-9"), rounding=ROUND_CEILING)
    return -magnitude if value < 0 else magnitude


# TestQuantityParse: (input, exact value, format the quantity keeps).
PARSE_CASES = [
    # zeros with every suffix
    ("0", dq(0, 0), SI),
    ("0n", dq(0, 0), SI),
    ("0u", dq(0, 0), SI),
    ("0m", dq(0, 0), SI),
    ("0Ki", dq(0, 0), BIN),
    ("0k", dq(0, 0), SI),
    ("0Mi", dq(0, 0), BIN),
    ("0M", dq(0, 0), SI),
    ("0Gi", dq(0, 0), BIN),
    ("0G", dq(0, 0), SI),
    ("0Ti", dq(0, 0), BIN),
    ("0T", dq(0, 0), SI),
    # a bare number
    ("1", dq(1, 0), SI),
    # binary suffixes
    ("1Ki", dq(KI, 0), BIN),
    ("8Ki", dq(8 * KI, 0), BIN),
    ("7Mi", dq(7 * MI, 0), BIN),
    ("6Gi", dq(6 * GI, 0), BIN),
    ("5Ti", dq(5 * TI, 0), BIN),
    ("4Pi", dq(4 * PI, 0), BIN),
    ("3Ei", dq(3 * EI, 0), BIN),
    ("10Ti", dq(10 * TI, 0), BIN),
    ("100Ti", dq(100 * TI, 0), BIN),
    # decimal suffixes
    ("5n", dq(5, -9), SI),
    ("4u", dq(4, -6), SI),
    ("3m", dq(3, -3), SI),
    ("9", dq(9, 0), SI),
    ("8k", dq(8, 3), SI),
    ("50k", dq(5, 4), SI),
    ("7M", dq(7, 6), SI),
    ("6G", dq(6, 9), SI),
    ("5T", dq(5, 12), SI),
    ("40T", dq(4, 13), SI),
    ("300T", dq(3, 14), SI),
    ("2P", dq(2, 15), SI),
    ("1E", dq(1, 18), SI),
    # decimal exponents
    ("1E-3", dq(1, -3), EXP),
    ("1e3", dq(1, 3), EXP),
    ("1E6", dq(1, 6), EXP),
    ("1e9", dq(1, 9), EXP),
    ("1E12", dq(1, 12), EXP),
    ("1e15", dq(1, 15), EXP),
    ("1E18", dq(1, 18), EXP),
    # nonstandard but parsable
    ("1e14", dq(1, 14), EXP),
    ("1e13", dq(1, 13), EXP),
    ("100.035k", dq(100035, 0), SI),
    # things that look like floating point
    ("0.001", dq(1, -3), SI),
    ("0.0005k", dq(5, -1), SI),
    ("0.005", dq(5, -3), SI),
    ("0.05", dq(5, -2), SI),
    ("0.5", dq(5, -1), SI),
    ("0.00050k", dq(5, -1), SI),
    ("0.00500", dq(5, -3), SI),
    ("0.05000", dq(5, -2), SI),
    ("0.50000", dq(5, -1), SI),
    ("0.5e0", dq(5, -1), EXP),
    ("0.5e-1", dq(5, -2), EXP),
    ("0.5e-2", dq(5, -3), EXP),
    ("10.035M", dq(10035, 3), SI),
    ("1.2e3", dq(12, 2), EXP),
    ("1.3E+6", dq(13, 5), EXP),
    ("1.40e9", dq(14, 8), EXP),
    ("1.53E12", dq(153, 10), EXP),
    ("1.6e15", dq(16, 14), EXP),
    ("1.7E18", dq(17, 17), EXP),
    ("9.01", dq(901, -2), SI),
    ("8.1k", dq(81, 2), SI),
    ("7.123456M", dq(7123456, 0), SI),
    ("6.987654321G", dq(6987654321, 0), SI),
    ("5.444T", dq(5444, 9), SI),
    ("40.1T", dq(401, 11), SI),
    ("300.2T", dq(3002, 11), SI),
    ("2.5P", dq(25, 14), SI),
    ("1.01E", dq(101, 16), SI),
    # things that round up to a nano or saturate at the int64 cap
    ("3.001n", dq(4, -9), SI),
    ("1.1E-9", dq(2, -9), EXP),
    ("0.0000000001", dq(1, -9), SI),
    ("0.0000000005", dq(1, -9), SI),
    ("0.00000000050", dq(1, -9), SI),
    ("0.5e-9", dq(1, -9), EXP),
    ("0.9n", dq(1, -9), SI),
    ("0.00000012345", dq(124, -9), SI),
    ("0.00000012354", dq(124, -9), SI),
    ("9Ei", dq(2**63 - 1, 0), BIN),
    ("9223372036854775807Ki", dq(2**63 - 1, 0), BIN),
    ("12E", dq(12, 18), SI),
    # fractional binary values
    ("100.035Ki", dq(10243584, -2), BIN),
    ("0.5Mi", dq(MI // 2, 0), BIN),
    ("0.05Gi", dq(536870912, -1), BIN),
    ("0.025Ti", dq(274877906944, -1), BIN),
    # "things written by trolls": rounds up and changes format; bare fractions; trailing dots
    ("0.000000000001Ki", dq(2, -9), SI),
    (".001", dq(1, -3), SI),
    (".0001k", dq(100, -3), SI),
    ("1.", dq(1, 0), SI),
    ("1.G", dq(1, 9), SI),
]


@pytest.mark.parametrize(("text", "value", "fmt"), PARSE_CASES)
def test_parse_table(text: str, value: Decimal, fmt: str) -> None:
    assert parse_quantity(text) == value
    assert _parse(text)[1] == fmt
    # an explicit '+' changes nothing; a '-' negates the value and keeps the format
    assert parse_quantity("+" + text) == value
    assert parse_quantity("-" + text) == -value
    assert _parse("-" + text)[1] == fmt


@pytest.mark.parametrize(
    "text",
    [
        # upstream's invalid list
        "1.1.M",
        "1+1.0M",
        "0.1mi",
        "0.1am",
        "aoeu",
        ".5i",
        "1i",
        "-3.01i",
        "-3.01e-",
        " 1",
        "1 ",
        # empty input
        "",
        # suffix letters upstream does not know or a bare exponent marker
        "1K",
        "1e",
        "1e+",
        "1ee3",
        "1Kii",
        # non-ASCII digits and other junk
        "\u0661",
        "1\n",
        "0x10",
        "1_000",
        "inf",
        "NaN",
        # no digit at all: upstream reads these as zero, we refuse them
        ".",
        "-",
        "+",
        "-.",
        "m",
        "Ki",
        "e3",
        # exponent beyond int64 (upstream's ParseInt fails too)
        "1e9223372036854775808",
        # magnitudes of 10**100 and more
        "1e100",
        "1" + "0" * 100,
        "0.1e101",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(text)


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        parse_quantity(1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # just below the magnitude bound
        ("9" * 100, Decimal("9" * 100)),
        # far below one nano still rounds up to one nano, cheaply
        ("1e-9223372036854775808", Decimal("1e-9")),
        ("-1e-4000000", Decimal("-1e-9")),
        # a long fraction: only whether its tail is non-zero matters
        ("1." + "0" * 5000 + "1", Decimal("1.000000001")),
        ("1." + "0" * 5000, Decimal(1)),
        ("0." + "9" * 5000, Decimal(1)),
        # a huge binary quantity saturates at the int64 cap, as upstream
        ("1" + "0" * 150 + "Ki", Decimal(2**63 - 1)),
        ("-" + "9" * 30 + "Ei", Decimal(-(2**63 - 1))),
        # leading zeros are only padding
        ("000012k", Decimal(12000)),
    ],
)
def test_parse_edges(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


# TestParseQuantity: values around the int64 limits keep every digit; "" means the input is canonical.
BIG_CASES = [
    ("-999999999999999999", "-999999999999999999", ""),
    ("999999999999999999", "999999999999999999", ""),
    ("-999999999999999999.0", "-999999999999999999", "-999999999999999999"),
    ("999999999999999999.0", "999999999999999999", "999999999999999999"),
    ("-999999999999999999.1", "-999999999999999999.1", "-999999999999999999100m"),
    ("999999999999999999.1", "999999999999999999.1", "999999999999999999100m"),
    ("-9999999999999999999", "-9999999999999999999", ""),
    ("9999999999999999999", "9999999999999999999", ""),
    ("-1E", "-1000000000000000000", ""),
    ("1E", "1000000000000000000", ""),
    ("-1000000000000000000", "-1000000000000000000", "-1E"),
    ("1000000000000000000", "1000000000000000000", "1E"),
    ("-9999999999999999999.0", "-9999999999999999999", "-9999999999999999999"),
    ("9999999999999999999.0", "9999999999999999999", "9999999999999999999"),
    ("-1.0E", "-1000000000000000000", "-1E"),
    ("1.0E", "1000000000000000000", "1E"),
    ("-1000000000000000000.0", "-1000000000000000000", "-1E"),
    ("1000000000000000000.0", "1000000000000000000", "1E"),
    ("-9999999999999999999000m", "-9999999999999999999", "-9999999999999999999"),
    ("9999999999999999999000m", "9999999999999999999", "9999999999999999999"),
    ("-9999999999999999999.1", "-9999999999999999999.1", "-9999999999999999999100m"),
    ("9999999999999999999.1", "9999999999999999999.1", "9999999999999999999100m"),
    ("-1.0000000000000000001E", "-1000000000000000000.1", "-1000000000000000000100m"),
    ("1.0000000000000000001E", "1000000000000000000.1", "1000000000000000000100m"),
    ("-1000000000000000000.1", "-1000000000000000000.1", "-1000000000000000000100m"),
    ("1000000000000000000.1", "1000000000000000000.1", "1000000000000000000100m"),
    ("-1.000000000000000001E", "-1000000000000000001", "-1000000000000000001"),
    ("1.000000000000000001E", "1000000000000000001", "1000000000000000001"),
    ("-1000000000000000001", "-1000000000000000001", ""),
    ("1000000000000000001", "1000000000000000001", ""),
    ("-10E", "-10000000000000000000", ""),
    ("10E", "10000000000000000000", ""),
    ("-10000000000000000000", "-10000000000000000000", "-10E"),
    ("10000000000000000000", "10000000000000000000", "10E"),
    ("-10.0E", "-10000000000000000000", "-10E"),
    ("10.0E", "10000000000000000000", "10E"),
    ("-10000000000000000000.0", "-10000000000000000000", "-10E"),
    ("10000000000000000000.0", "10000000000000000000", "10E"),
    ("-10000000000000000000000m", "-10000000000000000000", "-10E"),
    ("10000000000000000000000m", "10000000000000000000", "10E"),
    ("-10.0000000000000000001E", "-10000000000000000000.1", "-10000000000000000000100m"),
    ("10.0000000000000000001E", "10000000000000000000.1", "10000000000000000000100m"),
    ("-10000000000000000000.1", "-10000000000000000000.1", "-10000000000000000000100m"),
    ("10000000000000000000.1", "10000000000000000000.1", "10000000000000000000100m"),
    ("-10.000000000000000001E", "-10000000000000000001", "-10000000000000000001"),
    ("10.000000000000000001E", "10000000000000000001", "10000000000000000001"),
    ("-10000000000000000001", "-10000000000000000001", ""),
    ("10000000000000000001", "10000000000000000001", ""),
    ("-9223372036854775809", "-9223372036854775809", ""),
    ("9223372036854775806", "9223372036854775806", ""),
    ("-9223372036854775809.0", "-9223372036854775809", "-9223372036854775809"),
    ("9223372036854775806.0", "9223372036854775806", "9223372036854775806"),
    ("-9223372036854775809000m", "-9223372036854775809", "-9223372036854775809"),
    ("9223372036854775806000m", "9223372036854775806", "9223372036854775806"),
    ("-9223372036854775809.1", "-9223372036854775809.1", "-9223372036854775809100m"),
    ("9223372036854775806.1", "9223372036854775806.1", "9223372036854775806100m"),
    ("-9223372036854775808", "-9223372036854775808", ""),
    ("9223372036854775807", "9223372036854775807", ""),
    ("-9223372036854775808.0", "-9223372036854775808", "-9223372036854775808"),
    ("9223372036854775807.0", "9223372036854775807", "9223372036854775807"),
    ("-9223372036854775808000m", "-9223372036854775808", "-9223372036854775808"),
    ("9223372036854775807000m", "9223372036854775807", "9223372036854775807"),
    ("-9223372036854775808.1", "-9223372036854775808.1", "-9223372036854775808100m"),
    ("9223372036854775807.1", "9223372036854775807.1", "9223372036854775807100m"),
    ("-9223372036854775807", "-9223372036854775807", ""),
    ("9223372036854775808", "9223372036854775808", ""),
    ("-9223372036854775807.0", "-9223372036854775807", "-9223372036854775807"),
    ("9223372036854775808.0", "9223372036854775808", "9223372036854775808"),
    ("-9223372036854775807000m", "-9223372036854775807", "-9223372036854775807"),
    ("9223372036854775808000m", "9223372036854775808", "9223372036854775808"),
    ("-9223372036854775807.1", "-9223372036854775807.1", "-9223372036854775807100m"),
    ("9223372036854775808.1", "9223372036854775808.1", "9223372036854775808100m"),
]


@pytest.mark.parametrize(("text", "value", "canonical"), BIG_CASES)
def test_big_values_keep_every_digit(text: str, value: str, canonical: str) -> None:
    expected = canonical or text
    assert parse_quantity(text) == Decimal(value)
    assert canonical_quantity(text) == expected
    if not expected.startswith("-"):
        assert format_quantity(parse_quantity(text)) == expected
        assert format_quantity(Decimal(value)) == expected


# TestQuantityString: (value, format, canonical string, an alternate spelling of it or "").
STRING_CASES = [
    (dq(GI, 0), BIN, "1Gi", "1024Mi"),
    (dq(300 * MI, 0), BIN, "300Mi", "307200Ki"),
    (dq(6 * KI, 0), BIN, "6Ki", ""),
    (dq(1001 * GI, 0), BIN, "1001Gi", "1025024Mi"),
    (dq(TI, 0), BIN, "1Ti", "1024Gi"),
    # a small BinarySI value is written as DecimalSI
    (dq(5, 0), BIN, "5", "5000m"),
    (dq(500, -3), BIN, "500m", "0.5"),
    (dq(1, 9), SI, "1G", "1000M"),
    (dq(1000, 6), SI, "1G", "0.001T"),
    (dq(1000000, 3), SI, "1G", ""),
    (dq(1000000000, 0), SI, "1G", ""),
    (dq(1, -3), SI, "1m", "1000u"),
    (dq(80, -3), SI, "80m", ""),
    (dq(1080, -3), SI, "1080m", "1.08"),
    (dq(108, -2), SI, "1080m", "1080000000n"),
    (dq(10800, -4), SI, "1080m", ""),
    (dq(300, 6), SI, "300M", ""),
    (dq(1, 12), SI, "1T", ""),
    (dq(1234567, 6), SI, "1234567M", ""),
    (dq(1234567, -3), BIN, "1234567m", ""),
    (dq(3, 3), SI, "3k", ""),
    (dq(1025, 0), BIN, "1025", ""),
    (dq(0, 0), SI, "0", ""),
    (dq(0, 0), BIN, "0", ""),
    (dq(1, 9), EXP, "1e9", ".001e12"),
    (dq(1, -3), EXP, "1e-3", "0.001e0"),
    (dq(1, -9), EXP, "1e-9", "1000e-12"),
    (dq(80, -3), EXP, "80e-3", ""),
    (dq(300, 6), EXP, "300e6", ""),
    (dq(1, 12), EXP, "1e12", ""),
    (dq(1, 3), EXP, "1e3", ""),
    (dq(3, 3), EXP, "3e3", ""),
    (dq(0, 0), EXP, "0", "00"),
    (dq(1, -9), SI, "1n", ""),
    (dq(80, -9), SI, "80n", ""),
    (dq(1080, -9), SI, "1080n", ""),
    (dq(108, -8), SI, "1080n", ""),
    (dq(10800, -10), SI, "1080n", ""),
    (dq(1, -6), SI, "1u", ""),
    (dq(80, -6), SI, "80u", ""),
    (dq(1080, -6), SI, "1080u", ""),
]


@pytest.mark.parametrize(("value", "fmt", "expected", "alternate"), STRING_CASES)
def test_canonical_string(value: Decimal, fmt: str, expected: str, alternate: str) -> None:
    # the canonical form parses back to the same value and format, and is its own canonical form
    assert parse_quantity(expected) == value
    assert canonical_quantity(expected) == expected
    if value:
        assert canonical_quantity("-" + expected) == "-" + expected
    if alternate:
        assert parse_quantity(alternate) == value
        assert canonical_quantity(alternate) == expected
    if fmt == SI:
        assert format_quantity(value) == expected


# TestQuantityParseEmit: parsed text and its canonical re-emission (also negated).
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1Ki", "1Ki"),
        ("1Mi", "1Mi"),
        ("1Gi", "1Gi"),
        ("1024Mi", "1Gi"),
        ("1000M", "1G"),
        (".001Ki", "1024m"),
        (".000001Ki", "1024u"),
        (".000000001Ki", "1024n"),
        (".000000000001Ki", "2n"),
    ],
)
def test_parse_emit(text: str, expected: str) -> None:
    assert canonical_quantity(text) == expected
    assert canonical_quantity("-" + text) == "-" + expected


# TestMilliNewSet (DecimalSI rows, and BinarySI rows that fall back to DecimalSI): milli-units,
# their canonical string, and MilliValue() of that string giving the milli-units back.
@pytest.mark.parametrize(
    ("millis", "expected"),
    [
        (1, "1m"),
        (1000, "1"),
        (1234000, "1234"),
        (1024, "1024m"),
        (1024 * 1024, "1048576m"),
    ],
)
def test_milli_round_trip(millis: int, expected: str) -> None:
    assert format_quantity(dq(millis, -3)) == expected
    assert milli_value(expected) == millis


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        # TestScaledValue, to Milli: 1n, 1u, 1m and 1 of NewScaledQuantity(1, scale)
        ("1n", 1),
        ("1u", 1),
        ("1m", 1),
        ("1", 1000),
        # ceil(q * 1000)
        ("1500m", 1500),
        ("1001u", 2),
        ("300000001n", 301),
        ("0", 0),
        ("2Ki", 2048000),
        ("1e3", 1000000),
        ("9223372036854775807", 9223372036854775807000),
        # negatives round away from zero, like upstream's int64 path
        ("-1n", -1),
        ("-1500m", -1500),
        ("-1001u", -2),
    ],
)
def test_milli_value(text: str, millis: int) -> None:
    assert milli_value(text) == millis


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # the project's reference examples
        (1.5, "1500m"),
        (1.08, "1080m"),
        (1e9, "1G"),
        (3000, "3k"),
        (0.08, "80m"),
        (1e-9, "1n"),
        (1234567e6, "1234567M"),
        (1e-10, "1n"),
        # zero in every type, negative zero included
        (0, "0"),
        (0.0, "0"),
        (-0.0, "0"),
        (Decimal("-0"), "0"),
        (Decimal("0E-30"), "0"),
        # floats go through their shortest repr, not their binary expansion
        (0.1, "100m"),
        (2.675, "2675m"),
        (1 / 3, "333333334n"),
        # float noise above a nano is kept (and rounds up): 0.1 + 0.2 is 0.30000000000000004
        (0.1 + 0.2, "300000001n"),
        (7.0, "7"),
        (12.0, "12"),
        (1e21, "1000E"),
        # ints and Decimals are exact
        (1000, "1k"),
        (1001, "1001"),
        (2**63, "9223372036854775808"),
        (10**24, "1000000E"),
        (Decimal("1.5"), "1500m"),
        (Decimal("0.0000000001"), "1n"),
        (Decimal("1.0000000001"), "1000000001n"),
        (Decimal("2.50E+3"), "2500"),
        (Decimal("1E+3"), "1k"),
    ],
)
def test_format_quantity(value: float | int | Decimal, expected: str) -> None:
    assert format_quantity(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
        -1,
        -1.5,
        -1e-12,
        Decimal("-0.000000000001"),
        # beyond the magnitude bound
        1e100,
        10**100,
        Decimal("1e400"),
    ],
)
def test_format_rejects(value: float | int | Decimal) -> None:
    with pytest.raises(ValueError, match="cannot format"):
        format_quantity(value)


@pytest.mark.parametrize("value", [True, "1.5", None])
def test_format_rejects_non_numbers(value: object) -> None:
    with pytest.raises(TypeError):
        format_quantity(value)  # type: ignore[arg-type]


_CANONICAL_SHAPE = re.compile(r"0|[1-9][0-9]*([numkMGTPE]?)")


def _check_canonical(text: str, value: Decimal) -> None:
    """The canonical DecimalSI rules, checked without the module's own emitter."""
    shape = _CANONICAL_SHAPE.fullmatch(text)
    assert shape is not None, text
    assert parse_quantity(text) == ceil_nano(value), text
    mantissa = text.rstrip("numkMGTPE")
    if shape.group(1) != "E" and text != "0":
        # a mantissa ending in 000 would fit the next larger suffix
        assert not mantissa.endswith("000"), text
    assert canonical_quantity(text) == text
    assert format_quantity(parse_quantity(text)) == text


def test_round_trip_over_a_grid_of_decimals() -> None:
    # Mantissas with and without trailing zeros at every exponent from below a nano to beyond E.
    for mantissa in [*range(0, 1100), 1234567, 999999999, 1000000001, 10**18 + 1]:
        for exponent in range(-12, 22):
            value = dq(mantissa, exponent)
            _check_canonical(format_quantity(value), value)


def test_round_trip_over_floats() -> None:
    for i in range(0, 20000, 7):
        for scale in (1e-12, 1e-6, 1e-3, 0.01, 1.0, 1e3, 1e15):
            number = i * scale
            _check_canonical(format_quantity(number), Decimal(repr(number)))


def test_milli_value_matches_ceiling_over_a_grid() -> None:
    for mantissa in range(0, 3000, 7):
        for exponent in range(-11, 4):
            value = dq(mantissa, exponent)
            text = format_quantity(value)
            with localcontext() as ctx:
                ctx.prec = 100
                expected = int((ceil_nano(value) * 1000).to_integral_value(rounding=ROUND_CEILING))
            assert milli_value(text) == expected, text
