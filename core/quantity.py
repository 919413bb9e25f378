"""Kubernetes ``resource.Quantity``: parse any form, emit the canonical DecimalSI string.

The HPA reads external metric values as Quantities and sums their ``MilliValue()``; the API server and
kubectl compare them as strings after canonicalization. Both sides of this module follow
k8s.io/apimachinery ``pkg/api/resource``: values are exact decimals rounded *up* (away from zero) to
nano precision, and the canonical form has an integer mantissa with the largest SI suffix whose
exponent is a multiple of three.

Deliberate differences from upstream, each for input upstream mishandles:

* A number with no digit at all (``"."``, ``"-"``, ``"m"``, ``"Ki"``) is an error here; upstream reads it
  as zero, which would silently turn a garbled metric into "no load".
* Magnitudes of ``10**100`` and beyond are an error (BinarySI ones are capped as upstream caps them),
  so a hostile exponent cannot make us build a gigantic integer; upstream truncates exponents to 32 bits.
* DecimalSI values of ``1e21`` and more are emitted as ``"1000E"``-style strings; upstream drops the
  suffix there and emits a wrong number.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

__all__ = ["canonical_quantity", "format_quantity", "milli_value", "parse_quantity"]

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

_DECIMAL_SUFFIXES = {"": 0, "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_SUFFIX_OF_EXPONENT = {exp: suffix for suffix, exp in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIX_OF_POWER = {power // 10: suffix for suffix, power in _BINARY_SUFFIXES.items()}

# Same shape as upstream's scanner: sign, digits, optional fraction, then a run of suffix letters
# with an optional signed integer (the exponent of the e/E form). [0-9], not \d: no Unicode digits.
_SHAPE = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?([eEinumkKMGTP]*[+-]?[0-9]*)")
_EXPONENT = re.compile(r"[+-]?[0-9]{1,19}")

_NANOS_PER_UNIT = 10**9
_MAX_INTEGER_DIGITS = 100
# Digits kept before the rest of a long mantissa is folded into a sticky "was non-zero" bit.
# It must exceed _MAX_INTEGER_DIGITS + 9 + 19 (2**60 < 10**19) for the round-up to stay exact.
_KEPT_DIGITS = 200
# Upstream caps BinarySI quantities at the largest int64.
_BINARY_CAP_NANOS = (2**63 - 1) * _NANOS_PER_UNIT
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _pow10(exponent: int) -> int:
    """10**exponent for exponent >= 0, typed as int (a variable power of an int is Any to mypy)."""
    return int(10**exponent)


def _ceil_nanos(digits: str, power2: int, exp10: int) -> int:
    """ceil(int(digits) * 2**power2 * 10**exp10 * 1e9) for a non-zero ``digits`` without leading zeros."""
    if len(digits) > _KEPT_DIGITS:
        sticky = digits[_KEPT_DIGITS:].strip("0") != ""
        exp10 += len(digits) - _KEPT_DIGITS
        digits = digits[:_KEPT_DIGITS]
    else:
        sticky = False
    shift = exp10 + 9
    if shift >= 0:
        # The caller bounded len(digits) + exp10, so this power is small. Digits are only dropped
        # from long fractions, which never land here.
        return (int(digits) << power2) * _pow10(shift)
    if -shift > len(digits) + 19:
        return 1  # below one nano even after the binary factor: rounds up to the smallest unit
    quotient, remainder = divmod(int(digits) << power2, _pow10(-shift))
    return quotient + (1 if remainder or sticky else 0)


def _parse(text: str) -> tuple[int, str]:
    """(value in nanos, rounded up away from zero; format the text was written in)."""
    if not isinstance(text, str):
        raise TypeError(f"a quantity is a string, not {type(text).__name__}")
    shape = _SHAPE.fullmatch(text)
    if shape is None:
        raise ValueError(f"invalid quantity {text!r}: expected a number with an optional suffix")
    sign, whole, fraction, suffix = shape.groups()
    fraction = fraction or ""
    if not whole and not fraction:
        raise ValueError(f"invalid quantity {text!r}: no digits")
    power2 = 0
    if suffix in _DECIMAL_SUFFIXES:
        exp10, fmt = _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    elif suffix in _BINARY_SUFFIXES:
        exp10, power2, fmt = 0, _BINARY_SUFFIXES[suffix], BINARY_SI
    elif len(suffix) > 1 and suffix[0] in "eE" and _EXPONENT.fullmatch(suffix[1:]):
        exp10, fmt = int(suffix[1:]), DECIMAL_EXPONENT
        if not _INT64_MIN <= exp10 <= _INT64_MAX:
            raise ValueError(f"invalid quantity {text!r}: exponent out of range")
    else:
        raise ValueError(f"invalid quantity {text!r}: unknown suffix {suffix!r}")

    digits = (whole + fraction).lstrip("0")
    if not digits:
        return 0, fmt
    exp10 -= len(fraction)
    if len(digits) + exp10 > _MAX_INTEGER_DIGITS:
        if fmt != BINARY_SI:
            raise ValueError(f"invalid quantity {text!r}: magnitude of 10**{_MAX_INTEGER_DIGITS} or more")
        nanos = _BINARY_CAP_NANOS
    else:
        nanos = _ceil_nanos(digits, power2, exp10)
    if fmt == BINARY_SI:
        nanos = min(nanos, _BINARY_CAP_NANOS)
        if nanos < _NANOS_PER_UNIT:
            fmt = DECIMAL_SI  # upstream: a fraction below one is never written with a binary suffix
    return (-nanos if sign == "-" else nanos), fmt


def _nanos_to_decimal(nanos: int) -> Decimal:
    magnitude = str(abs(nanos))
    stripped = magnitude.rstrip("0")
    zeros = min(len(magnitude) - len(stripped), 9)
    kept = magnitude[: len(magnitude) - zeros] if nanos else "0"
    # Built from a tuple so no context precision (28 digits by default) can round it.
    return Decimal((1 if nanos < 0 else 0, tuple(int(c) for c in kept), zeros - 9 if nanos else 0))


def _mantissa_exponent(magnitude: int) -> tuple[int, int]:
    """Integer mantissa and base-10 exponent (a multiple of 3) of a non-zero nano count."""
    text = str(magnitude)
    stripped = text.rstrip("0")
    exponent = len(text) - len(stripped) - 9
    mantissa = int(stripped)
    drop = exponent % 3  # Python's % is non-negative: always move down to a multiple of 3
    return mantissa * _pow10(drop), exponent - drop


def _emit_decimal_si(nanos: int) -> str:
    if nanos == 0:
        return "0"
    mantissa, exponent = _mantissa_exponent(abs(nanos))
    if exponent > 18:
        mantissa, exponent = mantissa * _pow10(exponent - 18), 18
    return f"{'-' if nanos < 0 else ''}{mantissa}{_SUFFIX_OF_EXPONENT[exponent]}"


def _emit(nanos: int, fmt: str) -> str:
    if nanos == 0:
        return "0"
    if fmt == BINARY_SI:
        magnitude = abs(nanos)
        # Below 1024, or not a whole number, upstream falls back to DecimalSI so nothing is rounded.
        if magnitude < 1024 * _NANOS_PER_UNIT or magnitude % _NANOS_PER_UNIT:
            return _emit_decimal_si(nanos)
        units, power = magnitude // _NANOS_PER_UNIT, 0
        while units % 1024 == 0:
            units //= 1024
            power += 1
        return f"{'-' if nanos < 0 else ''}{units}{_BINARY_SUFFIX_OF_POWER.get(power, '')}"
    if fmt == DECIMAL_EXPONENT:
        mantissa, exponent = _mantissa_exponent(abs(nanos))
        suffix = f"e{exponent}" if exponent else ""
        return f"{'-' if nanos < 0 else ''}{mantissa}{suffix}"
    return _emit_decimal_si(nanos)


def parse_quantity(text: str) -> Decimal:
    """The exact value of a Kubernetes quantity string, rounded up (away from zero) to nano precision.

    Accepts DecimalSI (``1500m``, ``3k``), BinarySI (``1Ki`` .. ``1Ei``, capped at 2**63-1 as upstream)
    and DecimalExponent (``1.5e3``) forms, signs included; raises ValueError on anything else.
    """
    return _nanos_to_decimal(_parse(text)[0])


def canonical_quantity(text: str) -> str:
    """What ``ParseQuantity(text).String()`` gives: the canonical string in the format ``text`` used."""
    nanos, fmt = _parse(text)
    return _emit(nanos, fmt)


def milli_value(text: str) -> int:
    """``Quantity.MilliValue()``: the value in thousandths, rounded up (negatives away from zero)."""
    nanos = _parse(text)[0]
    thousandths = -(-abs(nanos) // 10**6)
    return -thousandths if nanos < 0 else thousandths


def format_quantity(value: float | int | Decimal) -> str:
    """The canonical DecimalSI string of a metric value, as Kubernetes' Quantity.String() writes it.

    A float is read through its shortest repr (1.08 is 1.08, not its binary expansion), then the value
    is rounded up to nano precision like ParseQuantity would: 1.5 -> "1500m", 1e9 -> "1G", 1e-10 -> "1n".
    """
    # NaN, infinities and negatives raise: an HPA summing them would scale on garbage or below zero.
    if isinstance(value, bool):
        raise TypeError("a quantity value must be a number, not a bool")
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"cannot format {value!r} as a quantity: not a finite number")
        exact = Decimal(repr(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot format {value!r} as a quantity: not a finite number")
        exact = value
    elif isinstance(value, int):
        exact = Decimal(value)
    else:
        raise TypeError(f"a quantity value must be an int, float or Decimal, not {type(value).__name__}")
    if exact < 0:
        raise ValueError(f"cannot format {value!r} as a quantity: negative")
    _, digit_tuple, exponent = exact.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    if not digits:
        return "0"
    if len(digits) + exponent > _MAX_INTEGER_DIGITS:
        raise ValueError(
            f"cannot format {value!r} as a quantity: magnitude of 10**{_MAX_INTEGER_DIGITS} or more"
        )
    return _emit_decimal_si(_ceil_nanos(digits, 0, exponent))
