"""Built-in aggregations of execflow.core.resultsets.aggregations: folded, stored, reloaded.

Pure core, no cluster. Examples pin each function's rules (bool is no number, missing and
non-numeric values are skipped, nothing gives null, sums are exact); hypothesis then delivers
random items in any order with re-deliveries (dropped by uid, as the controller does), stores
the states as JSON and reloads them at a random point (an operator restart), and compares every
value with a from-scratch computation in exact rational arithmetic, bit for bit and type for type.
"""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execflow.api.result_set import Aggregation
from execflow.core.resultsets.aggregations import (
    compute,
    fold,
    fold_many,
    load_states,
    new_states,
    state_from_json,
    state_to_json,
    states_to_json,
    values,
)
from execflow.core.resultsets.items import Item

AGGREGATIONS = [
    Aggregation(name="total", function="sum", field="v"),
    Aggregation(name="mean", function="avg", field="v"),
    Aggregation(name="low", function="min", field="v"),
    Aggregation(name="high", function="max", field="v"),
    Aggregation(name="items", function="count"),
    Aggregation(name="with_v", function="count", field="v"),
    Aggregation(name="deep", function="sum", field="m.f1"),
    Aggregation(name="best", function="custom", expression="size(results)"),
]

MISSING = object()


def item(uid: str, value: Any = MISSING, **result: Any) -> Item:
    if value is not MISSING:
        result["v"] = value
    return Item(uid, f"task-{uid}", "Completed", "tool", (), "2024-05-01T00:00:00Z", result)


def aggregate(results: list[Any]) -> dict[str, Any]:
    return values(compute(AGGREGATIONS, [item(str(i), v) for i, v in enumerate(results)]))


def test_custom_aggregations_have_no_running_state() -> None:
    assert "best" not in new_states(AGGREGATIONS)


def test_nothing_sums_to_zero_and_has_no_average_minimum_or_maximum() -> None:
    got = aggregate([])

    assert got == {
        "total": 0,
        "mean": None,
        "low": None,
        "high": None,
        "items": 0,
        "with_v": 0,
        "deep": 0,
    }


def test_bools_strings_and_missing_values_are_skipped_and_null_counts_as_present() -> None:
    got = aggregate([True, "3", None, [1], {"a": 1}, MISSING, 2])

    assert got["total"] == 2
    assert got["low"] == got["high"] == 2
    assert got["mean"] == 2.0
    assert got["items"] == 7
    assert got["with_v"] == 6


def test_int_sums_stay_exact_ints_beyond_64_bits() -> None:
    got = aggregate([2**63 - 1, 2**63 - 1, 1])

    assert got["total"] == 2**64 - 1
    assert isinstance(got["total"], int)


def test_float_sums_round_once_from_the_exact_sum() -> None:
    got = aggregate([1e100, 1.0, -1e100, 0.1])

    assert got["total"] == 1.1
    assert got["mean"] == float((Fraction(1) + Fraction(0.1)) / 4)


def test_a_sum_beyond_the_range_of_a_double_is_null() -> None:
    got = aggregate([1.7e308, 1.7e308])

    assert got["total"] is None
    assert got["mean"] == 1.7e308


def test_ties_keep_an_int_before_a_float_and_zero_before_minus_zero() -> None:
    for order in ([1.0, 1], [1, 1.0]):
        got = aggregate(order)
        assert type(got["low"]) is int and type(got["high"]) is int
    for order in ([-0.0, 0.0], [0.0, -0.0]):
        got = aggregate(order)
        assert math.copysign(1.0, got["low"]) == 1.0


def test_a_nested_field_is_read_by_its_path() -> None:
    states = compute(AGGREGATIONS, [Item("u", "t", "Completed", "", (), "", {"m": {"f1": 0.5}})])

    assert values(states)["deep"] == 0.5


def test_states_survive_json_with_integral_floats_and_huge_ints_as_text() -> None:
    states = compute(AGGREGATIONS, [item("a", 2.0), item("b", 10**30)])
    stored = json.loads(json.dumps(states_to_json(states)))

    assert stored["low"]["value"] == "2.0"
    assert stored["high"]["value"] == str(10**30)
    reloaded = load_states(AGGREGATIONS, stored)
    assert reloaded.stale == ()
    assert values(reloaded.states) == values(states)
    assert type(values(reloaded.states)["low"]) is float


def test_missing_unreadable_or_respecified_states_are_stale() -> None:
    stored = states_to_json(compute(AGGREGATIONS, [item("a", 1)]))
    stored.pop("mean")
    stored["low"] = {"function": "min", "field": "v", "count": "x"}
    stored["high"]["field"] = "w"

    reloaded = load_states(AGGREGATIONS, stored)

    assert set(reloaded.stale) == {"mean", "low", "high"}
    assert values(reloaded.states)["mean"] is None
    assert values(reloaded.states)["total"] == 1


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"function": "custom", "field": None, "count": 0},
        {"function": "sum", "field": "v", "count": 1, "sum": "4", "exponent": 0, "float": False},
        {"function": "sum", "field": "v", "count": 1, "sum": "1", "exponent": -1, "float": False},
        {"function": "max", "field": "v", "count": 1, "value": "inf"},
        {"function": "count", "field": "v", "count": True},
    ],
)
def test_a_malformed_state_is_refused(data: Any) -> None:
    with pytest.raises(ValueError):
        state_from_json(data)


# --- incremental equals from scratch, whatever the order, duplicates and restarts ----------

NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(-10, 10, allow_nan=False).map(lambda x: round(x, 2)),
    st.sampled_from([0.0, -0.0, 0.1, 1e308, -1e308, 5e-324, 1.0, 1]),
)
VALUES = st.one_of(
    NUMBERS, NUMBERS, st.booleans(), st.none(), st.text(max_size=2), st.just(MISSING)
)


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[Item], list[int], int]:
    """Distinct items, the order they arrive in (indexes, re-deliveries included), and after
    how many arrivals the operator restarts."""
    results = draw(st.lists(VALUES, max_size=25))
    items = [item(f"u{index}", value) for index, value in enumerate(results)]
    order = draw(st.permutations(range(len(items))))
    repeats = draw(st.lists(st.integers(0, max(len(items) - 1, 0)), max_size=8)) if items else []
    sequence = list(order)
    for repeat in repeats:
        sequence.insert(draw(st.integers(0, len(sequence))), repeat)
    restart = draw(st.integers(0, len(sequence)))
    return items, sequence, restart


def exact_float(total: Fraction) -> float | None:
    try:
        return float(total) + 0.0
    except OverflowError:
        return None


def tie_rank(number: int | float) -> int:
    if isinstance(number, int):
        return 0
    return 2 if math.copysign(1.0, number) < 0 else 1


def reference(items: list[Item]) -> dict[str, Any]:
    """Everything from scratch, with exact rationals and Python's min and max."""
    present = [i.result["v"] for i in items if "v" in i.result]
    numbers = [
        v
        for v in present
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    ]
    exact = sum((Fraction(v) for v in numbers), Fraction(0))
    floats = any(isinstance(v, float) for v in numbers)
    return {
        "total": exact_float(exact) if floats else int(exact),
        "mean": exact_float(exact / len(numbers)) if numbers else None,
        "low": min(numbers, key=lambda v: (v, tie_rank(v))) if numbers else None,
        "high": max(numbers, key=lambda v: (v, -tie_rank(v))) if numbers else None,
        "items": len(items),
        "with_v": len(present),
        "deep": 0,
    }


def same(got: Any, expected: Any) -> bool:
    """Equal in value, JSON type and, for floats, sign and bits."""
    if type(got) is not type(expected):
        return False
    if isinstance(got, float):
        return got.hex() == expected.hex()
    return bool(got == expected)


@settings(max_examples=300, deadline=None)
@given(drawn=arrivals())
def test_incremental_values_equal_a_from_scratch_computation(
    drawn: tuple[list[Item], list[int], int],
) -> None:
    items, sequence, restart = drawn
    states = new_states(AGGREGATIONS)
    seen: set[str] = set()
    for position, index in enumerate(sequence):
        if position == restart:
            stored = json.loads(json.dumps(states_to_json(states)))
            reloaded = load_states(AGGREGATIONS, stored)
            assert reloaded.stale == ()
            states = reloaded.states
        candidate = items[index]
        if candidate.uid in seen:
            continue
        seen.add(candidate.uid)
        states = fold(states, candidate)

    got = values(states)
    expected = reference(items)
    for name, value in expected.items():
        assert same(got[name], value), (name, got[name], value)
    scratch = compute(AGGREGATIONS, items)
    assert states_to_json(states) == states_to_json(scratch)
    for state in states.values():
        assert len(json.dumps(state_to_json(state))) < 1200
    all_floats = [i.result["v"] for i in items if type(i.result.get("v")) is float]
    numbers = [i for i in items if type(i.result.get("v")) in (int, float)]
    if all_floats and len(all_floats) == len(numbers):
        try:
            fsum = math.fsum(all_floats)
        except OverflowError:
            return
        assert got["total"] == fsum


@settings(max_examples=300, deadline=None)
@given(drawn=arrivals(), cuts=st.lists(st.integers(0, 40), max_size=5))
def test_folding_segments_at_once_equals_folding_one_by_one(
    drawn: tuple[list[Item], list[int], int], cuts: list[int]
) -> None:
    items = drawn[0]
    bounds = sorted({0, len(items), *(min(cut, len(items)) for cut in cuts)})
    at_once = new_states(AGGREGATIONS)
    for start, end in itertools.pairwise(bounds):
        at_once = fold_many(at_once, items[start:end])
    one_by_one = new_states(AGGREGATIONS)
    for candidate in items:
        one_by_one = fold(one_by_one, candidate)

    assert states_to_json(at_once) == states_to_json(one_by_one)
