"""Kubernetes resource quantities ("500m", "2", "128Mi", "1e3") as numbers.

The scheduler counts CPU in millicores and memory in bytes; this is the one place that turns the
quantities users and nodes write into those numbers. It follows the suffixes of core/v1
resource.Quantity: binary (Ki..Ei), decimal (n, u, m, k, M..E) and exponents.
"""

import re
from decimal import Decimal, InvalidOperation

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:[eE](?P<exponent>[+-]?[0-9]+)|(?P<suffix>[A-Za-z]{0,2}))$"
)
"""A number, then either a decimal exponent (1e3) or a suffix (500m, 128Mi, 2E for exa)."""
_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def parse_quantity(value: int | float | str) -> Decimal:
    """The quantity as an exact decimal number of base units; ValueError when malformed."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.match(value.strip())
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    number, exponent, suffix = match.group("number", "exponent", "suffix")
    try:
        if exponent is not None:
            return Decimal(number) * Decimal(10) ** int(exponent)
        return Decimal(number) * _SUFFIXES[suffix]
    except KeyError:
        raise ValueError(f"unknown quantity suffix {suffix!r} in {value!r}") from None
    except InvalidOperation:
        raise ValueError(f"not a Kubernetes quantity: {value!r}") from None


def millicores(value: int | float | str) -> int:
    """A CPU quantity in millicores, rounded up as the API server rounds requests."""
    amount = parse_quantity(value) * 1000
    return int(amount.to_integral_value(rounding="ROUND_CEILING"))


def whole_units(value: int | float | str) -> int:
    """A quantity such as memory in whole base units (bytes), rounded up."""
    return int(parse_quantity(value).to_integral_value(rounding="ROUND_CEILING"))
