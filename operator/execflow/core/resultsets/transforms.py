"""CEL for ResultSets: custom aggregations and transforms, compiled once, evaluated per item.

Expressions go through `core.expressions` (the same CEL as Workflows: compiled once and cached,
positions in errors, results made plain JSON), with two checks at compile time: an expression
reads only the names its kind provides, and calls only known functions (the CEL standard ones
and the opt-in `sum`, `min`, `max` and `bool`, so `results.map(r, r.result.score).max()` works);
a call of any other name is refused with its name and position.

Per-result expressions see `r`, one item record (`r.task`, `r.phase`, `r.source`, `r.tags`,
`r.completionTime`, `r.result`, `r.uid`):

- filter gives true or false: the items it keeps;
- map gives any JSON value per item;
- group gives a key per item; a key that is not a string becomes its JSON text (`1`, `true`,
  `null`, `["a"]`), since keys of JSON objects are strings;
- reduce sees `acc` as well, starting from the transform's `initial`, and gives the next `acc`.

Every number an expression sees (in results, `acc`, `initial`) is a CEL double, since JSON has
one number type and Kubernetes stores an integral float as an integer; so `r.result.score * 100.0`
works whether a score was written 1.0 or 1, and number literals should be written as doubles
(`100.0`, `0.5`). A list index or `size()` comparison takes `int(...)`.

Custom aggregations and custom transforms see `results`, the list of every item record. The
library evaluates a comprehension over a list in time that grows at least with the square of its
length and with the size of the values it builds (every step copies what was accumulated), so
these are allowed up to `MAX_WHOLE_LIST_RESULTS` results only; beyond, TooLargeError says the
limit and the count. The built-in aggregations and the per-result transforms have no such limit.

Failures at evaluation (a missing key, a wrong type) raise ExpressionFailedError naming the output,
the expression and the task of the item it failed on.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from execflow.api.result_set import Aggregation, AggregationFunction, Transform, TransformType
from execflow.core.expressions import Expression, ExpressionError, compile_expression
from execflow.core.resultsets.errors import (
    ExpressionFailedError,
    InvalidExpressionError,
    TooLargeError,
)

MAX_WHOLE_LIST_RESULTS = 250
"""Most results a whole-list expression (custom aggregation or transform) may read.

Measured through `evaluate_whole_list` (CPU time, best of five) over item records whose result
holds four fields: the slowest simple shapes, those building a list of whole items
(`results.filter(r, ...)` keeping every item, `results.map(r, r)`), took 0.16 to 0.18 s over 200
results, 0.18 to 0.23 s over 250 and 0.66 to 1.34 s over 500; `results.filter(...).size()` took
0.06 to 0.08 s over 250, and shapes building scalars (`results.map(r, r.result.score).max()`,
`.sum()`, `exists`) 0.01 to 0.03 s over 250. So 250 keeps every simple shape under half of half a
second for results of that size; the cost grows with the size of the items as well."""

MAX_WHOLE_LIST_BYTES = 256 * 1024
"""Most bytes of item records (as JSON) a whole-list expression may read: its cost grows with
the size of the values as well as their number (a 20-key item made `filter` 15 times slower
than a one-key item)."""

RESULT_NAMES: frozenset[str] = frozenset({"r"})
"""What a filter, map or group expression reads."""
REDUCE_NAMES: frozenset[str] = frozenset({"acc", "r"})
"""What a reduce expression reads."""
WHOLE_LIST_NAMES: frozenset[str] = frozenset({"results"})
"""What a custom aggregation or transform reads."""


Picker = dict[str, Any]
"""Which parts of a value to keep: a key maps to True (keep it whole) or to a deeper Picker."""


@dataclass(frozen=True)
class Program:
    """One compiled output: an aggregation or transform `name` of `kind` (a TransformType, or
    "aggregation" for a custom aggregation), its expression and where the spec holds it."""

    name: str
    kind: str
    where: str
    expression: Expression
    initial: Any = None

    def evaluate(self, scope: Mapping[str, Any], item: Mapping[str, Any] | None) -> Any:
        """The expression's value over `scope`; ExpressionFailedError names the task of `item`
        (None: the expression reads the whole list).

        Only the parts of each value the expression reads are handed to the library (it costs
        time in proportion to what it is given, and an expression usually reads one field of a
        result that may hold many), numbers made doubles on the way."""
        pickers = self._pickers
        try:
            return self.expression.evaluate(
                {name: _picked(value, pickers.get(name)) for name, value in scope.items()}
            )
        except ExpressionError:
            pass
        try:  # again with everything, so the explanation lists what the value really holds
            return self.expression.evaluate({name: doubles(v) for name, v in scope.items()})
        except ExpressionError as error:
            raise self.failed(error.reason, None if item is None else _task(item)) from error

    @functools.cached_property
    def _pickers(self) -> dict[str, Picker | None]:
        names = self.expression.names
        return {name: _picker(self.expression.paths_read(name)) for name in names}

    def failed(self, reason: str, task: str | None) -> ExpressionFailedError:
        on = "over the whole list" if task is None else f"on the item of task {task!r}"
        label = "aggregation" if self.kind == "aggregation" else f"{self.kind} transform"
        text = json.dumps(self.expression.text, ensure_ascii=False)
        return ExpressionFailedError(
            f"{label} {self.name!r} ({self.where}) failed {on}: {reason}, in expression {text}",
            where=self.where,
            expression=self.expression.text,
            task=task,
        )


@dataclass(frozen=True)
class Programs:
    """The compiled expressions of a spec: custom aggregations, then transforms, in spec order."""

    aggregations: tuple[Program, ...]
    transforms: tuple[Program, ...]


@dataclass(frozen=True)
class ItemOutputs:
    """What one item contributes to the per-result transforms: by transform name, whether a
    filter keeps it (`kept`), a map's value (`mapped`), a group's key (`groups`); and every reduce
    transform's next `acc` (`accumulators`)."""

    kept: dict[str, bool]
    mapped: dict[str, Any]
    groups: dict[str, str]
    accumulators: dict[str, Any]


def compile_programs(
    aggregations: Sequence[Aggregation], transforms: Sequence[Transform]
) -> Programs:
    """Every expression of the spec compiled; raises the first InvalidExpressionError."""
    programs, problems = _compile_all(aggregations, transforms)
    if problems:
        raise problems[0]
    return programs


def expression_problems(
    aggregations: Sequence[Aggregation], transforms: Sequence[Transform]
) -> list[InvalidExpressionError]:
    """Every expression of the spec that does not compile, in spec order (for admission)."""
    return _compile_all(aggregations, transforms)[1]


def initial_accumulators(programs: Programs) -> dict[str, Any]:
    """The `acc` of each reduce transform before any item: its `initial`."""
    return {
        program.name: program.initial
        for program in programs.transforms
        if program.kind == TransformType.REDUCE
    }


def item_outputs(
    programs: Programs, accumulators: Mapping[str, Any], record: Mapping[str, Any]
) -> ItemOutputs:
    """What the item `record` contributes to each per-result transforms, reduce transforms
    folding it into their `acc` from `accumulators`, which holds one for each of them (before
    the first item, `initial_accumulators`)."""
    outputs = ItemOutputs({}, {}, {}, {})
    scope = {"r": record}
    for program in programs.transforms:
        kind = program.kind
        if kind == "filter":
            outputs.kept[program.name] = _keeps(program, record)
        elif kind == "map":
            outputs.mapped[program.name] = program.evaluate(scope, record)
        elif kind == "group":
            outputs.groups[program.name] = group_key(program.evaluate(scope, record))
        elif kind == "reduce":
            folded = {"acc": accumulators[program.name], "r": record}
            outputs.accumulators[program.name] = program.evaluate(folded, record)
    return outputs


def transform_outputs(programs: Programs, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Every transform's output over `records`, from scratch: a filter the records it keeps, a
    map the list of its values, a group the records by key, a reduce its last `acc`, a custom
    transform its value (TooLargeError beyond `MAX_WHOLE_LIST_RESULTS` records)."""
    transforms = programs.transforms
    kept: dict[str, list[Any]] = {p.name: [] for p in transforms if p.kind == TransformType.FILTER}
    mapped: dict[str, list[Any]] = {p.name: [] for p in transforms if p.kind == TransformType.MAP}
    groups: dict[str, dict[str, list[Any]]] = {
        p.name: {} for p in transforms if p.kind == TransformType.GROUP
    }
    accumulators = initial_accumulators(programs)
    for record in records:
        contribution = item_outputs(programs, accumulators, record)
        for name, keep in contribution.kept.items():
            if keep:
                kept[name].append(record)
        for name, value in contribution.mapped.items():
            mapped[name].append(value)
        for name, key in contribution.groups.items():
            groups[name].setdefault(key, []).append(record)
        accumulators.update(contribution.accumulators)
    customs = {
        p.name: evaluate_whole_list(p, records)
        for p in transforms
        if p.kind == TransformType.CUSTOM
    }
    merged = {**kept, **mapped, **groups, **accumulators, **customs}
    return {program.name: merged[program.name] for program in transforms}


def custom_aggregation_values(
    programs: Programs, records: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Each custom aggregation's value over `records` (TooLargeError beyond
    `MAX_WHOLE_LIST_RESULTS` records)."""
    return {
        program.name: evaluate_whole_list(program, records) for program in programs.aggregations
    }


def evaluate_whole_list(program: Program, records: Sequence[Mapping[str, Any]]) -> Any:
    """A whole-list expression's value over `records`."""
    size = sum(len(json.dumps(record, separators=(",", ":"))) for record in records)
    if size > MAX_WHOLE_LIST_BYTES:
        label = "aggregation" if program.kind == "aggregation" else "transform"
        raise TooLargeError(
            f"{label} {program.name!r} ({program.where}) reads the whole list of results, and "
            f"they hold {size} bytes: more than the {MAX_WHOLE_LIST_BYTES} a whole-list "
            "expression may read; use built-in aggregations or per-result transforms, which "
            "have no limit",
            limit=MAX_WHOLE_LIST_BYTES,
            count=size,
        )
    if len(records) > MAX_WHOLE_LIST_RESULTS:
        label = "aggregation" if program.kind == "aggregation" else "transform"
        raise TooLargeError(
            f"{label} {program.name!r} ({program.where}) reads the whole list of results, and "
            f"there are {len(records)}: more than the {MAX_WHOLE_LIST_RESULTS} a whole-list "
            "expression may read; use built-in aggregations or per-result transforms, which "
            "have no limit",
            limit=MAX_WHOLE_LIST_RESULTS,
            count=len(records),
        )
    return program.evaluate({"results": list(records)}, None)


def doubles(value: Any) -> Any:
    """`value` with every number a float: JSON has one number type, and the API server stores
    an integral float as an integer (a result's 1.0 comes back as 1), so a result's numbers are
    CEL doubles whatever their spelling, and `r.result.score * 100.0` never meets an int."""
    kind = type(value)
    if kind is int:
        return float(value)
    if kind is dict:
        return {key: doubles(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [doubles(item) for item in value]
    return value


def _picker(paths: frozenset[tuple[str, ...]] | None) -> Picker | None:
    """The Picker of `paths` (None: keep the whole value)."""
    if paths is None:
        return None
    picker: Picker = {}
    for path in sorted(paths, key=len):
        node = picker
        for depth, key in enumerate(path):
            if node.get(key) is True:
                break
            if depth == len(path) - 1:
                node[key] = True
            else:
                node = node.setdefault(key, {})
    return picker


def _picked(value: Any, picker: Picker | None) -> Any:
    """The parts of `value` the picker keeps, as doubles (see `doubles`); a part that is not
    there is left out, so a missing key stays missing."""
    if picker is None or type(value) is not dict:
        return doubles(value)
    picked = {}
    for key, deeper in picker.items():
        if key in value:
            part = value[key]
            picked[key] = doubles(part) if deeper is True else _picked(part, deeper)
    return picked


def group_key(value: Any) -> str:
    """A group key as text: a string as it is, anything else as its compact JSON (an integral
    double as the integer it equals, as Kubernetes would store it: 1.0 gives "1")."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _keeps(program: Program, record: Mapping[str, Any]) -> bool:
    keep = program.evaluate({"r": record}, record)
    if not isinstance(keep, bool):
        shown = json.dumps(keep, ensure_ascii=False)
        raise program.failed(f"gives {shown}, not true or false", _task(record))
    return keep


def _task(record: Mapping[str, Any]) -> str:
    task = record.get("task")
    return task if isinstance(task, str) else "?"


def _compile_all(
    aggregations: Sequence[Aggregation], transforms: Sequence[Transform]
) -> tuple[Programs, list[InvalidExpressionError]]:
    customs: list[Program] = []
    compiled: list[Program] = []
    problems = []
    for index, aggregation in enumerate(aggregations):
        if aggregation.function is not AggregationFunction.CUSTOM:
            continue
        try:
            customs.append(_aggregation_program(index, aggregation))
        except InvalidExpressionError as problem:
            problems.append(problem)
    for index, transform in enumerate(transforms):
        try:
            compiled.append(_transform_program(index, transform))
        except InvalidExpressionError as problem:
            problems.append(problem)
    return Programs(tuple(customs), tuple(compiled)), problems


def _aggregation_program(index: int, aggregation: Aggregation) -> Program:
    where = f"spec.aggregations[{index}].expression"
    text = aggregation.expression or ""
    return Program(aggregation.name, "aggregation", where, _compile(text, WHOLE_LIST_NAMES, where))


def _transform_program(index: int, transform: Transform) -> Program:
    where = f"spec.transforms[{index}].expression"
    names: Set[str] = {
        TransformType.REDUCE: REDUCE_NAMES,
        TransformType.CUSTOM: WHOLE_LIST_NAMES,
    }.get(transform.type, RESULT_NAMES)
    expression = _compile(transform.expression, names, where)
    return Program(transform.name, transform.type.value, where, expression, transform.initial)


def _compile(text: str, names: Set[str], where: str) -> Expression:
    try:
        return compile_expression(text, names, known_functions_only=True)
    except ExpressionError as error:
        raise InvalidExpressionError(
            str(error.at(where)), where=where, expression=text, position=error.position
        ) from error
