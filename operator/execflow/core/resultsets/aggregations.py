"""The built-in aggregations (sum, avg, min, max, count), folded in one item at a time.

A ResultSet never re-reads its items to update an aggregation: each has a running state, kept in
`status.accumulators` and reloaded after an operator restart, into which a new item is folded.
The values must not depend on the order items arrive in, nor on where a restart fell, so:

- sums are exact. The state holds the exact sum of every number seen as `mantissa * 2**exponent`
  (every double is an integer times a power of two, every int one with exponent 0), normalised
  so that the mantissa is odd. Exact addition is associative, so the state itself, not only the
  value, is the same for every order. The value is an int when only ints were seen, else the
  double nearest to the exact sum (the single rounding `math.fsum` also achieves), and the average
  the double nearest to the exact sum divided by the count. A float sum beyond the range of a
  double has no JSON value: null. A zero sum is 0.0, never -0.0.
- min and max keep the extreme; between equal numbers they keep an int before a float, and 0.0
  before -0.0, so ties do not depend on the order either.
- the mantissa and the extreme are kept as decimal text, so a state passes unchanged through the
  API server, which turns integral floats into ints and cannot hold ints beyond 64 bits.

A state is small whatever the number of items: the mantissa has at most the span of the
exponents seen (at most 2,098 bits for doubles) plus 53 bits plus the bits of the count.

What counts as a number: an int or a float; a bool is not a number. Items whose field is missing
or not a number are skipped. `count` counts items, or with a field the items whose field is
present (null included). avg, min and max over no numbers are null.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from execflow.api.result_set import Aggregation, AggregationFunction
from execflow.core.resultsets.items import MISSING, Item, field_value

BUILT_IN = frozenset(
    {
        AggregationFunction.SUM,
        AggregationFunction.AVG,
        AggregationFunction.MIN,
        AggregationFunction.MAX,
        AggregationFunction.COUNT,
    }
)
"""The functions folded here; `custom` is an expression over the whole list (see transforms)."""

_SUMS = frozenset({AggregationFunction.SUM, AggregationFunction.AVG})
_EXTREMES = frozenset({AggregationFunction.MIN, AggregationFunction.MAX})

Number = int | float


@dataclass(frozen=True)
class RunningState:
    """The running state of one built-in aggregation over the items folded so far.

    `count` is the numbers folded (for count: the items counted); sum and avg keep the exact sum
    `mantissa * 2**exponent` and whether a float was among the numbers; min and max keep
    `extreme`. `function` and `field` tell whether the state belongs to an aggregation as it is
    now specified.
    """

    function: AggregationFunction
    field: str | None
    count: int = 0
    mantissa: int = 0
    exponent: int = 0
    floats: bool = False
    extreme: Number | None = None


@dataclass(frozen=True)
class LoadedStates:
    """States read back from status: `stale` names the aggregations whose stored state was
    missing, unreadable or for another function or field; they start empty here, and the caller
    recomputes them from the stored items unless there are none."""

    states: dict[str, RunningState]
    stale: tuple[str, ...]


def new_states(aggregations: Sequence[Aggregation]) -> dict[str, RunningState]:
    """An empty state for each built-in aggregation, by name."""
    return {
        aggregation.name: RunningState(aggregation.function, aggregation.field)
        for aggregation in aggregations
        if aggregation.function in BUILT_IN
    }


def fold(states: Mapping[str, RunningState], item: Item) -> dict[str, RunningState]:
    """The states with `item` folded into each. The caller folds every item once (it drops
    duplicates by uid)."""
    return {name: fold_one(state, item) for name, state in states.items()}


def fold_many(states: Mapping[str, RunningState], items: Iterable[Item]) -> dict[str, RunningState]:
    """The states with every item of `items` folded in: the same states as folding them one by
    one, computed per aggregation in one pass (a segment at a time, as the operator counts)."""
    batch = list(items)
    fields = {state.field for state in states.values()}
    read = {path: [field_value(item.result, path) for item in batch] for path in fields}
    return {name: _fold_batch(state, read[state.field]) for name, state in states.items()}


def _fold_batch(state: RunningState, values: Sequence[Any]) -> RunningState:
    if state.function is AggregationFunction.COUNT:
        counted = len(values) if state.field is None else sum(v is not MISSING for v in values)
        return replace(state, count=state.count + counted)
    numbers = [number for value in values if (number := _number(value)) is not None]
    if not numbers:
        return state
    if state.function in _SUMS:
        mantissa, exponent = _exact_sum(numbers)
        mantissa, exponent = _add(state.mantissa, state.exponent, mantissa, exponent)
        floats = state.floats or any(isinstance(number, float) for number in numbers)
        return replace(
            state,
            count=state.count + len(numbers),
            mantissa=mantissa,
            exponent=exponent,
            floats=floats,
        )
    pick = min if state.function is AggregationFunction.MIN else max
    extreme = pick(numbers)
    extreme = min((n for n in numbers if n == extreme), key=_tie_rank)
    best = extreme if _better(extreme, state.extreme, state.function) else state.extreme
    return replace(state, count=state.count + len(numbers), extreme=best)


def _exact_sum(numbers: Sequence[Number]) -> tuple[int, int]:
    """The exact sum of `numbers` as a normalised (mantissa, exponent): a float's denominator
    is a power of two, so every term is an integer over the largest one."""
    ratios = [
        (number, 1) if isinstance(number, int) else number.as_integer_ratio() for number in numbers
    ]
    largest = max(denominator for _, denominator in ratios)
    total = sum(numerator * (largest // denominator) for numerator, denominator in ratios)
    return _normal(total, 1 - largest.bit_length())


def compute(aggregations: Sequence[Aggregation], items: Iterable[Item]) -> dict[str, RunningState]:
    """The states of `aggregations` over `items`, from scratch."""
    states = new_states(aggregations)
    for item in items:
        states = fold(states, item)
    return states


def fold_one(state: RunningState, item: Item) -> RunningState:
    """`state` with `item` folded in."""
    value = field_value(item.result, state.field)
    if state.function is AggregationFunction.COUNT:
        counted = state.field is None or value is not MISSING
        return replace(state, count=state.count + 1) if counted else state
    number = _number(value)
    if number is None:
        return state
    if state.function in _SUMS:
        mantissa, exponent = _exact(number)
        mantissa, exponent = _add(state.mantissa, state.exponent, mantissa, exponent)
        return replace(
            state,
            count=state.count + 1,
            mantissa=mantissa,
            exponent=exponent,
            floats=state.floats or isinstance(number, float),
        )
    if _better(number, state.extreme, state.function):
        return replace(state, count=state.count + 1, extreme=number)
    return replace(state, count=state.count + 1)


def values(states: Mapping[str, RunningState]) -> dict[str, Any]:
    """The user-facing value of each state (status.aggregations)."""
    return {name: value(state) for name, state in states.items()}


def value(state: RunningState) -> Any:
    """The user-facing value of one state: a JSON number or null."""
    if state.function is AggregationFunction.COUNT:
        return state.count
    if state.function in _EXTREMES:
        return state.extreme
    if state.function is AggregationFunction.AVG:
        if state.count == 0:
            return None
        return _to_float(state.mantissa, state.exponent, state.count)
    if not state.floats:
        return state.mantissa << state.exponent
    return _to_float(state.mantissa, state.exponent, 1)


def state_to_json(state: RunningState) -> dict[str, Any]:
    """`state` as JSON for status.accumulators (numbers that must stay exact as text). Absent
    values are left out rather than null: a status is written as a merge patch, where null
    deletes."""
    data: dict[str, Any] = {"function": state.function.value, "count": state.count}
    if state.field is not None:
        data["field"] = state.field
    if state.function in _SUMS:
        data.update(sum=str(state.mantissa), exponent=state.exponent, float=state.floats)
    elif state.function in _EXTREMES and state.extreme is not None:
        data["value"] = repr(state.extreme)
    return data


def state_from_json(data: Any) -> RunningState:
    """The state `state_to_json` wrote; raises ValueError when `data` is not one."""
    try:
        return _state_from_json(data)
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a running state: {error}") from None


def _state_from_json(data: Any) -> RunningState:
    if not isinstance(data, Mapping):
        raise ValueError("a state is a JSON object")
    function = AggregationFunction(data["function"])
    field, count = data.get("field"), data["count"]
    if function not in BUILT_IN or not (field is None or isinstance(field, str)):
        raise ValueError("a state names a built-in function and a field")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError("a state's count is a non-negative int")
    state = RunningState(function, field, count)
    if function in _SUMS:
        mantissa, exponent, floats = int(data["sum"]), data["exponent"], data["float"]
        if not _is_int(exponent) or not isinstance(floats, bool):
            raise ValueError("a sum state has an int exponent and a bool float")
        if (mantissa, exponent) != _normal(mantissa, exponent) or (exponent < 0 and not floats):
            raise ValueError("a sum state is normalised, and fractional only with floats")
        return replace(state, mantissa=mantissa, exponent=exponent, floats=floats)
    if function in _EXTREMES and data.get("value") is not None:
        return replace(state, extreme=_parse_number(data["value"]))
    return state


def states_to_json(states: Mapping[str, RunningState]) -> dict[str, Any]:
    """Every state as JSON, by name."""
    return {name: state_to_json(state) for name, state in states.items()}


def load_states(aggregations: Sequence[Aggregation], stored: Mapping[str, Any]) -> LoadedStates:
    """The states of `aggregations` from what `states_to_json` stored (see LoadedStates)."""
    states = new_states(aggregations)
    stale = []
    for name, fresh in states.items():
        try:
            state = state_from_json(stored.get(name))
        except ValueError:
            stale.append(name)
            continue
        if (state.function, state.field) != (fresh.function, fresh.field):
            stale.append(name)
            continue
        states[name] = state
    return LoadedStates(states, tuple(stale))


def _number(value: Any) -> Number | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def _exact(number: Number) -> tuple[int, int]:
    """`number` as (mantissa, exponent) with number == mantissa * 2**exponent, normalised."""
    if isinstance(number, int):
        return _normal(number, 0)
    numerator, denominator = number.as_integer_ratio()
    return _normal(numerator, 1 - denominator.bit_length())


def _add(mantissa: int, exponent: int, other: int, other_exponent: int) -> tuple[int, int]:
    low = min(exponent, other_exponent)
    total = (mantissa << (exponent - low)) + (other << (other_exponent - low))
    return _normal(total, low)


def _normal(mantissa: int, exponent: int) -> tuple[int, int]:
    """The same number with an odd mantissa (zero as 0 * 2**0)."""
    if mantissa == 0:
        return 0, 0
    shift = (mantissa & -mantissa).bit_length() - 1
    return mantissa >> shift, exponent + shift


def _to_float(mantissa: int, exponent: int, divisor: int) -> float | None:
    """The double nearest to `mantissa * 2**exponent / divisor` (Python's int division rounds
    correctly), or None beyond the range of a double."""
    try:
        if exponent >= 0:
            return (mantissa << exponent) / divisor + 0.0
        return mantissa / (divisor << -exponent) + 0.0
    except OverflowError:
        return None


def _better(candidate: Number, current: Number | None, function: AggregationFunction) -> bool:
    """Whether `candidate` replaces `current` as the extreme; ties go to the lower tie rank."""
    if current is None:
        return True
    if candidate != current:
        return candidate < current if function is AggregationFunction.MIN else candidate > current
    return _tie_rank(candidate) < _tie_rank(current)


def _tie_rank(number: Number) -> int:
    if isinstance(number, int):
        return 0
    return 2 if math.copysign(1.0, number) < 0 else 1


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_number(text: Any) -> Number:
    if not isinstance(text, str):
        raise ValueError("an extreme is kept as text")
    try:
        return int(text)
    except ValueError:
        number = float(text)
    if not math.isfinite(number):
        raise ValueError("an extreme is finite")
    return number
