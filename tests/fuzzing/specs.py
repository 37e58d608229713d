"""Task specs a user could write, generated to fuzz the API server and the operator together.

The promise under test: every Task spec is either refused at admission with a message naming the
field, or reaches a phase with a reason. The space of what a user can write is the Task CRD's own
openAPIV3Schema, so one share of the specs comes straight from it (hypothesis-jsonschema). Nearly
all of those are refused at admission (a random string is no duration), which tests the CRD but
hardly the operator, so the other shares start from a runnable spec: `plausible` specs add fields
with values a user would write, including ones that can never run (a missing Tool, an unknown
queue, a request no node fits, a label the Job API refuses, a dependency on itself), and `mutated`
specs replace one or two fields of a plausible spec with a value drawn from that field's schema.

Names are part of a spec (a dependency may name another generated Task), so each spec comes with
the name it must be created under.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as fixed_seed
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from tests.fuzzing.schema import INT64_MAX, INT64_MIN, json_schema, task_spec_crd_schema

T = TypeVar("T")

SIMULATION_PREFIX: Final = "sim.execflow.dev/"
MIX: Final = (("schema", 0.3), ("plausible", 0.4), ("mutated", 0.3))
"""Origin of the specs and the share of each in a run."""

MISSING_TOOL: Final = "fuzz-missing-tool"
MISSING_TASK: Final = "fuzz-missing-task"
TOOLS: Final[Mapping[str, Mapping[str, Any]]] = {
    "fuzz-echo": {"image": "example.invalid/echo:1"},
    "fuzz-strict": {
        "image": "example.invalid/strict:1",
        "inputSchema": {
            "type": "object",
            "required": ["input"],
            "properties": {"input": {"type": "string"}},
            "additionalProperties": False,
        },
        "defaults": {"timeout": "5m", "retryPolicy": {"maxRetries": 1}},
    },
    "fuzz-odd-defaults": {"image": "example.invalid/odd:1", "defaults": {"timeout": "soon"}},
}
"""Tools the plausible specs refer to; create them in the namespace before the Tasks."""


@dataclass(frozen=True)
class GeneratedSpec:
    """One Task to create: its name, its spec and which share of the mix it comes from."""

    name: str
    origin: str
    spec: dict[str, Any]


@dataclass(frozen=True)
class _Peer:
    """A dependency on another generated Task, `offset` places away (0: itself); the name is
    known only once the specs are in their final order."""

    offset: int


def task_name(prefix: str, index: int) -> str:
    return f"{prefix}-{index:05d}"


# ----- plausible values -------------------------------------------------------------------------
DURATIONS: Final = (
    "0",
    "0s",
    "0.1ns",
    "1ms",
    "100ms",
    "1s",
    "2s",
    "30s",
    "5m",
    "1h30m",
    "1000000h",
    "99999999999999999999h",
)
TIME_ZONES: Final = ("UTC", "Europe/Berlin", "Etc/GMT+5", "America/Argentina/Salta", "Asia/Tokyo")
RESOURCE_NAMES: Final = (
    "cpu",
    "memory",
    "ephemeral-storage",
    "nvidia.com/gpu",
    "example.com/widget",
)
ENV_VARS: Final = (
    {"name": "MODE", "value": "fast"},
    {"name": "EMPTY"},
    {"name": "A=B", "value": "x"},
    {"name": "FROM", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k"}}},
    {"name": "BOTH", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "ODD", "valueFrom": {"noSuchSource": {}}},
)


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_of_day(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%H:%M")


def _plausible_fields(
    queues: Sequence[str], now: datetime.datetime
) -> dict[str, st.SearchStrategy[Any]]:
    """For each optional Task field, values a user would write; a share of them valid to the
    API server but impossible to run, which is what the operator must answer with a reason."""
    duration = st.sampled_from(DURATIONS)
    # Once true, suspend and cancel decide the outcome before any other field does: mostly
    # false, so that the rest of the spec is exercised.
    rarely_true = st.sampled_from([False, False, False, True])
    short_text = st.text(alphabet="abcxyz-_.019", min_size=1, max_size=8)
    quantity = st.sampled_from(
        ["0", "100m", "500m", "0.5", "1", "2", "1000", "1e3", "128Mi", "1Gi", "1Ti", "2E", "1Ei"]
    )
    amount = quantity | st.integers(-1, 64)
    resource_map = st.fixed_dictionaries(
        {},
        optional={name: amount for name in RESOURCE_NAMES},
    )
    dependency = st.fixed_dictionaries(
        {"task": st.builds(_Peer, st.integers(-3, 3)) | st.just(MISSING_TASK)},
        optional={
            "type": st.sampled_from(
                ["FinishToStart", "StartToStart", "FinishToFinish", "StartToFinish"]
            ),
            "condition": st.sampled_from(["Succeeded", "Failed", "Any"]),
        },
    )
    hour = datetime.timedelta(hours=1)
    window = st.fixed_dictionaries(
        {
            "start": st.sampled_from(
                ["00:00", "12:00", _time_of_day(now + 2 * hour), _time_of_day(now - hour)]
            ),
            "end": st.sampled_from(
                ["23:59", "12:00", _time_of_day(now + 3 * hour), _time_of_day(now + hour)]
            ),
        },
        optional={"timeZone": st.sampled_from(TIME_ZONES)},
    )
    pod_spec = st.fixed_dictionaries(
        {},
        optional={
            "serviceAccountName": st.sampled_from(["", "default", "missing-sa"]),
            "nodeSelector": st.sampled_from([{}, {"disk": "ssd"}, {"bad key!": "x"}]),
            "tolerations": st.sampled_from(
                [
                    [],
                    [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
                    [{"key": "k", "operator": "Sideways"}],
                ]
            ),
            "affinity": st.sampled_from(
                [
                    {},
                    {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": []
                            }
                        }
                    },
                ]
            ),
            "priorityClassName": st.sampled_from(["", "missing-class"]),
            "imagePullSecrets": st.sampled_from([[], [{"name": "missing-secret"}]]),
        },
    )
    pod_metadata = st.fixed_dictionaries(
        {},
        optional={
            "labels": st.sampled_from(
                [{}, {"tier": "batch"}, {"tier": "not valid!"}, {"execflow.dev/task": "other"}]
            ),
            "annotations": st.sampled_from([{}, {"team": "ml"}, {"note": "{{ parameters.x }}"}]),
        },
    )
    return {
        "parameters": st.sampled_from(
            [
                {"input": "raw.csv"},
                {"input": "a", "n": [1]},
                {},
                {"input": 3},
                {"other": True},
            ]
        ),
        "queue": st.just("default") | st.sampled_from([*queues, "no-such-queue"]),
        "priority": st.sampled_from(["Low", "Normal", "High", "Critical"]),
        "timeout": duration,
        "retryPolicy": st.fixed_dictionaries(
            {},
            optional={
                "maxRetries": st.integers(0, 3),
                "retryDelay": duration,
                "backoffMultiplier": st.sampled_from([1, 1.5, 2, 10, 1e308]),
                "maxRetryDelay": duration,
                "retryOn": st.fixed_dictionaries(
                    {},
                    optional={
                        "exitCodes": st.lists(st.sampled_from([0, 1, 137, 255]), max_size=2),
                        "reasons": st.lists(
                            st.sampled_from(["Error", "OOMKilled", "DeadlineExceeded"]),
                            max_size=2,
                        ),
                    },
                ),
            },
        ),
        "dependencies": st.lists(dependency, min_size=1, max_size=2),
        "constraints": st.fixed_dictionaries(
            {},
            optional={
                "deadline": st.sampled_from(
                    [
                        _rfc3339(now - hour),
                        _rfc3339(now + datetime.timedelta(seconds=20)),
                        _rfc3339(now + 24 * hour),
                        "2999-12-31T23:59:59Z",
                    ]
                ),
                "timeWindows": st.lists(window, max_size=2),
                "exclusive": st.booleans(),
                "mutex": st.sampled_from(["gpu-0", "m"]),
            },
        ),
        "estimatedDuration": duration,
        "resources": st.fixed_dictionaries(
            {}, optional={"requests": resource_map, "limits": resource_map}
        ),
        "cache": st.fixed_dictionaries({}, optional={"enabled": st.booleans(), "ttl": duration}),
        "tags": st.lists(short_text, max_size=3),
        "suspend": rarely_true,
        "cancel": rarely_true,
        "podTemplate": st.fixed_dictionaries(
            {}, optional={"metadata": pod_metadata, "spec": pod_spec}
        ),
    }


def _runnable() -> st.SearchStrategy[dict[str, Any]]:
    """The smallest specs that can run: an inline container, or a Tool (present or not)."""
    container = st.fixed_dictionaries(
        {"image": st.sampled_from(["example.invalid/fuzz:1", "busybox"])},
        optional={
            "command": st.sampled_from([[], ["sh", "-c"], ["true"]]),
            "args": st.sampled_from(
                [
                    [],
                    ["--fast"],
                    ["{{ parameters.input }}"],
                    ["{{ parameters.missing }}"],
                    ["{{ broken"],
                ]
            ),
            "env": st.lists(st.sampled_from(ENV_VARS), max_size=2),
        },
    )
    tool = st.sampled_from(["fuzz-echo", *TOOLS, MISSING_TOOL])
    return st.fixed_dictionaries({"container": container}) | st.fixed_dictionaries(
        {"toolRef": st.fixed_dictionaries({"name": tool})}
    )


def plausible_specs(
    queues: Sequence[str], now: datetime.datetime
) -> st.SearchStrategy[dict[str, Any]]:
    """A runnable spec plus any of the optional fields, with plausible values."""
    fields = _plausible_fields(queues, now)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        spec = draw(_runnable())
        spec.update(draw(st.fixed_dictionaries({}, optional=fields)))
        return spec

    return build()


def mutated_specs(
    schema: Mapping[str, Any], queues: Sequence[str], now: datetime.datetime
) -> st.SearchStrategy[dict[str, Any]]:
    """A plausible spec with one or two fields drawn from their schema instead."""
    plausible = plausible_specs(queues, now)
    properties: Mapping[str, Any] = schema["properties"]
    by_field = {name: from_schema(child) for name, child in properties.items()}

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        spec = draw(plausible)
        for name in draw(st.lists(st.sampled_from(sorted(by_field)), min_size=1, max_size=2)):
            spec[name] = draw(by_field[name])
        return spec

    return build()


# ----- harvesting -------------------------------------------------------------------------------
def harvest(strategy: st.SearchStrategy[T], count: int, seed: int) -> list[T]:
    """count examples of strategy, reproducible from seed. Hypothesis' own engine draws them
    (strategies are not meant to be sampled outside a test); a round that stops short, as it may
    once it thinks the space explored, is topped up with the next seed."""
    found: list[T] = []
    round_seed = seed
    while len(found) < count:
        wanted = count - len(found)

        @fixed_seed(round_seed)
        @settings(
            max_examples=wanted,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def collect(value: T) -> None:
            found.append(value)

        before = len(found)
        collect()
        if len(found) == before:
            raise RuntimeError(f"the strategy produced no examples with seed {round_seed}")
        round_seed += 1
    return found[:count]


def _within_int64(value: Any) -> Any:
    """value with every integer clamped to int64 (a copy: sampled values are shared between
    examples, so nothing drawn is changed in place)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return min(max(value, INT64_MIN), INT64_MAX)
    if isinstance(value, dict):
        return {key: _within_int64(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_within_int64(item) for item in value]
    return value


def _resolve(spec: dict[str, Any], index: int, count: int, prefix: str) -> dict[str, Any]:
    """The spec as it is sent: integers within int64 (the API server refuses larger ones before
    execflow sees anything), peers named, and simulation annotations left out (they choose how
    the fake pod ends, which is the test's business, not the generator's)."""
    resolved: dict[str, Any] = _within_int64(spec)
    dependencies = resolved.get("dependencies")
    if isinstance(dependencies, list):
        for dependency in dependencies:
            if isinstance(dependency, dict) and isinstance(dependency.get("task"), _Peer):
                peer = dependency["task"]
                dependency["task"] = task_name(prefix, (index + peer.offset) % count)
    template = resolved.get("podTemplate")
    metadata = template.get("metadata") if isinstance(template, dict) else None
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if isinstance(annotations, dict):
        for key in [k for k in annotations if k.startswith(SIMULATION_PREFIX)]:
            del annotations[key]
    return resolved


def generate_specs(
    count: int,
    *,
    seed: int = 0,
    queues: Sequence[str] = ("default",),
    now: datetime.datetime | None = None,
    prefix: str = "fuzz",
) -> list[GeneratedSpec]:
    """count Task specs in the shares of MIX, shuffled, each with its name (prefix-00000, ...).

    queues are the queue names the operator knows (plausible specs also name an unknown one);
    now anchors deadlines and time windows relative to the run.
    """
    moment = now or datetime.datetime.now(datetime.UTC)
    crd_schema = task_spec_crd_schema()
    schema = json_schema(crd_schema)
    strategies: dict[str, st.SearchStrategy[Any]] = {
        "schema": from_schema(schema),
        "plausible": plausible_specs(queues, moment),
        "mutated": mutated_specs(schema, queues, moment),
    }
    shares = [(origin, round(count * share)) for origin, share in MIX[:-1]]
    # Rounding may miss the total by one or two: the last share absorbs the difference.
    shares.append((MIX[-1][0], count - sum(n for _, n in shares)))
    drawn: list[tuple[str, dict[str, Any]]] = []
    for offset, (origin, share) in enumerate(shares):
        drawn += [
            (origin, spec) for spec in harvest(strategies[origin], share, seed * 1000 + offset)
        ]
    random.Random(seed).shuffle(drawn)
    return [
        GeneratedSpec(task_name(prefix, index), origin, _resolve(spec, index, count, prefix))
        for index, (origin, spec) in enumerate(drawn)
    ]
