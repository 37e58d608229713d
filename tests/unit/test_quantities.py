"""Kubernetes quantities in execflow.api.quantities, against the Kubernetes client's parser.

The client's `parse_quantity` is the oracle: every quantity the API server admits must parse to
the same number (hypothesis draws numbers, exponents and every suffix), and malformed text must
be refused with a ValueError, never with another exception.
"""

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes.utils import parse_quantity as oracle

from execflow.api.quantities import millicores, parse_quantity, whole_units

SUFFIXES = ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]

numbers = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False).map(str)


@given(numbers, st.sampled_from(SUFFIXES), st.sampled_from(["", "+"]))
def test_suffixed_quantities_match_the_kubernetes_parser(
    number: str, suffix: str, sign: str
) -> None:
    text = f"{sign}{number}{suffix}"

    assert parse_quantity(text) == oracle(text)


@given(st.integers(0, 10**6), st.integers(-9, 18), st.sampled_from(["e", "E"]))
def test_exponents_match_the_kubernetes_parser(number: int, exponent: int, letter: str) -> None:
    text = f"{number}{letter}{exponent}"

    assert parse_quantity(text) == oracle(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1Ei", Decimal(2**60)), ("2E", Decimal(2 * 10**18)), ("500m", Decimal("0.5"))],
)
def test_exa_suffixes_are_not_taken_for_exponents(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@given(st.text(max_size=8))
def test_malformed_text_is_refused_with_a_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_quantity(text)


def test_cpu_rounds_up_to_millicores_and_memory_to_bytes() -> None:
    assert (millicores("1.0001"), millicores(2), whole_units("1.5")) == (1001, 2000, 2)
