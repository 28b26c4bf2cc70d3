"""``resource.Quantity`` as the API server reads and writes it (k8s.io/apimachinery
pkg/api/resource/quantity.go): parsed when the body is decoded (a bad one is the decode
error), and written back in canonical form, so ``0.5`` is stored and returned as ``500m``,
``1024Mi`` as ``1Gi`` and ``1000`` as ``1k``, while a value already canonical keeps its own
spelling (``ParseQuantity`` keeps the string then).

The rules followed, from ``ParseQuantity`` and ``CanonicalizeBytes``:

- the suffix decides the format: ``Ki``..``Ei`` binary, ``e<n>``/``E<n>`` decimal exponent,
  ``n u m "" k M G T P E`` decimal SI;
- values keep at most nano precision (a finer value is rounded up, away from zero) and are capped
  at 2^63-1;
- canonical decimal: trailing zeros of the mantissa move into the exponent, then the exponent is
  lowered to a multiple of 3 (``1500`` stays ``1500``, ``1000`` becomes ``1k``, ``0.5`` ``500m``);
- canonical binary: values of magnitude below 1024, or not whole, are written as decimal SI;
  others as the largest power of 1024 that divides them (``1.5Gi`` is ``1536Mi``);
- the string is kept as given when the fast path of ``ParseQuantity`` finds it canonical:
  decimal with a scale that is a multiple of 3, digits not ending in ``000`` and not starting
  with ``0``; binary with an exponent that is a multiple of 10 and a value not divisible by 8.
"""

from __future__ import annotations

import re
from decimal import ROUND_UP, Decimal, localcontext

__all__ = ["QuantityError", "canonical", "FORMAT_WRONG"]

FORMAT_WRONG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_NUMERIC = "unable to parse numeric part of quantity"
_SUFFIX = "unable to parse quantity's suffix"

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DEC_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BIN_SUFFIX = {v: k for k, v in _BINARY.items()}
_NUMBER = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?")
_EXPONENT = re.compile(r"[eE][-+]?[0-9]+")
_MAX = Decimal(2**63 - 1)
_MAX_INT64_FACTORS = 18


class QuantityError(ValueError):
    """The API server's ParseQuantity error text."""


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) of a suffix, as quantitySuffixer.interpret."""
    if suffix in _DECIMAL:
        return 10, _DECIMAL[suffix], "DecimalSI"
    if suffix in _BINARY:
        return 2, _BINARY[suffix], "BinarySI"
    if _EXPONENT.fullmatch(suffix):
        return 10, int(suffix[1:]), "DecimalExponent"
    raise QuantityError(_SUFFIX)


def _split(text: str) -> tuple[bool, str, str, str]:
    """parseQuantityString: (positive, whole digits, fraction digits, suffix)."""
    m = _NUMBER.match(text)
    assert m is not None
    sign, num, denom = m.group(1), m.group(2), m.group(3) or ""
    suffix = text[m.end():]
    if suffix and not re.fullmatch(r"[eEinumkKMGTP]*[-+]?[0-9]*", suffix):
        raise QuantityError(FORMAT_WRONG)
    return sign != "-", num.lstrip("0") or "0", denom, suffix


def canonical(value: object) -> str:
    """The string the API server stores and returns for a Quantity given as ``value`` (the JSON
    string's content, or a JSON number's text); QuantityError with the server's words."""
    with localcontext() as ctx:
        ctx.prec = 200
        return _canonical(value)


def _canonical(value: object) -> str:
    text = value if isinstance(value, str) else _number_text(value)
    text = text.strip()
    if not text:
        raise QuantityError(FORMAT_WRONG)
    if text == "0":
        return "0"
    positive, num, denom, suffix = _split(text)
    base, exponent, fmt = _interpret(suffix)
    if fmt in ("DecimalSI", "DecimalExponent"):
        precision = _MAX_INT64_FACTORS - (len(num) + len(denom))
        scale = exponent
    elif exponent >= 0 and not denom:
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1
        scale = 0
    else:
        precision, scale = -1, 0
    if precision >= 0:
        scale -= len(denom)
        if scale >= -9:
            shifted = num + denom
            digits = int(shifted)
            mantissa = digits << exponent if fmt == "BinarySI" else digits
            if mantissa <= 2**63 - 1:
                if fmt == "BinarySI":
                    if exponent % 10 == 0 and digits & 0x07 != 0:
                        return text
                elif scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0":
                    return text
                amount = Decimal(mantissa if positive else -mantissa).scaleb(scale)
                return _format(amount, fmt)
    amount = Decimal(f"{num}.{denom or '0'}") * (Decimal(2) ** exponent if base == 2 else Decimal(10) ** exponent)
    amount = min(amount.quantize(Decimal("1e-9"), rounding=ROUND_UP), _MAX)  # nano precision, away from 0
    if fmt == "BinarySI" and 0 < amount < 1:
        fmt = "DecimalSI"
    return _format(amount if positive else -amount, fmt)


def _number_text(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise QuantityError(FORMAT_WRONG)
    return repr(value) if isinstance(value, float) else str(value)


def _format(amount: Decimal, fmt: str) -> str:
    """CanonicalizeBytes of a value in ``fmt``."""
    if amount == 0:
        return "0"
    if fmt == "BinarySI":
        if -1024 < amount < 1024 or amount != amount.to_integral_value():
            fmt = "DecimalSI"
        else:
            whole, power = int(amount), 0
            while whole % 1024 == 0 and power < 60:
                whole //= 1024
                power += 10
            return f"{whole}{_BIN_SUFFIX.get(power, '')}"
    sign, digits, exp = amount.normalize().as_tuple()
    mantissa = int("".join(map(str, digits))) if digits else 0
    exponent = int(exp)
    while exponent % 3:
        mantissa *= 10
        exponent -= 1
    number = f"{'-' if sign else ''}{mantissa}"
    if fmt == "DecimalExponent":
        return number if exponent == 0 else f"{number}e{exponent}"
    suffix = _DEC_SUFFIX.get(exponent)
    return number + (suffix if suffix is not None else f"e{exponent}")
