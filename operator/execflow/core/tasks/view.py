"""Snapshot → view: everything the lifecycle needs to know about one Task, decided from plain data.

The controller gathers a `TaskSnapshot` from its stores (the Task's body, its Tool, its Jobs with
their pods, lookups of other Tasks of the namespace) without interpreting any of it. `build_view`
interprets: it resolves the Tool and its defaults, checks the name, the spec, the time zones, the
parameters and the args templates, judges dependencies (cycles included), finds a cached result,
and reads the attempts from the Jobs. The result is a `TaskView` in which every reason a Task
cannot run or cannot start yet is already a `Verdict` with a reason word and a message.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from execflow.api.durations import parse_duration
from execflow.api.reasons import Reason
from execflow.api.task import (
    TaskPhase,
    TaskSpec,
    TaskStatus,
)
from execflow.api.tool import ToolSpec
from execflow.core import dependencies as deps
from execflow.core.task_spec import SpecError, effective_spec
from execflow.core.tasks.attempts import (
    Attempt,
    AttemptState,
    JobObservation,
    attempt_of,
    stopped_attempt,
)
from execflow.core.tasks.cache import CachedResult, cache_key, newest_cached
from execflow.core.tasks.predecessors import dependency_graph, judge_dependencies, raw_dependencies
from execflow.core.tasks.resources import requests_of
from execflow.core.templating import TemplateError, render_args
from execflow.core.tools import check_tool, parameter_problem

MAX_NAME = 63
"""Task names label their Jobs and pods, and a label value has at most 63 characters."""

Body = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A reason word and a message for users."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class TaskSettings:
    """Operator-wide settings the lifecycle needs."""

    pod_create_timeout: datetime.timedelta = datetime.timedelta(minutes=2)
    default_cache_ttl: datetime.timedelta = datetime.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class ToolSnapshot:
    """The Tool a Task references, as stored; `spec` None when no Tool has that name."""

    name: str
    spec: Body | None


@dataclass(frozen=True, slots=True)
class SpecCheck:
    """What a Task's spec and its Tool make of each other: a pure function of the two, so a
    controller may keep it while neither changes (the Task's generation, the Tool's version)."""

    spec: TaskSpec | None = None
    tool: ToolSpec | None = None
    failure: Verdict | None = None
    waiting: Verdict | None = None


@dataclass(frozen=True)
class TaskSnapshot:
    """One Task and what surrounds it, as the stores hold it at one instant."""

    namespace: str
    name: str
    generation: int
    created_at: datetime.datetime | None
    spec: Body
    status: Body
    tool: ToolSnapshot | None = None
    jobs: Sequence[JobObservation] = ()
    previous_jobs: Sequence[str] = ()
    """Jobs labelled with this Task's name but owned by another object (an earlier Task)."""
    task_named: Callable[[str], Body | None] = field(default=lambda _name: None)
    """Another Task of the namespace by name, for dependencies."""
    completed_with_key: Callable[[str], Sequence[Body]] = field(default=lambda _key: ())
    """Completed Tasks of the namespace whose status.cacheKey is the given key."""
    checked: SpecCheck | None = None
    """`check_spec(spec, tool)`, when the caller has it already."""
    parsed_status: TaskStatus | None = None
    """`status` read into its model, when the caller has it already."""


@dataclass(frozen=True)
class TaskView:
    name: str
    generation: int
    status: TaskStatus
    spec: TaskSpec | None = None
    tool: ToolSpec | None = None
    attempts: tuple[Attempt, ...] = ()
    failure: Verdict | None = None
    """The Task can never run as it is."""
    waiting: Verdict | None = None
    """The Task cannot start yet (no Tool, a dependency, an earlier Task's Job still there)."""
    finish_wait: Verdict | None = None
    """A *ToFinish dependency holds the completion of a successful attempt."""
    cached: CachedResult | None = None
    cache_key: str | None = None
    created_at: datetime.datetime | None = None
    stop_jobs: tuple[Attempt, ...] = ()
    """Attempts judged failed by the operator whose Jobs must still be marked and stopped."""

    @property
    def latest(self) -> Attempt | None:
        return max(self.attempts, key=lambda attempt: attempt.number, default=None)

    @property
    def active(self) -> tuple[Attempt, ...]:
        return tuple(attempt for attempt in self.attempts if attempt.active)


def read_status(raw: Body) -> TaskStatus:
    try:
        return TaskStatus.model_validate(raw)
    except ValidationError:
        # A status the operator cannot read (written by hand?) is rebuilt from the Jobs.
        return TaskStatus()


def _lenient_spec(raw: Body) -> TaskSpec | None:
    try:
        return TaskSpec.model_validate(raw)
    except ValidationError:
        return None


def _time_zone_problem(spec: TaskSpec) -> str | None:
    for index, window in enumerate(spec.constraints.time_windows):
        try:
            zoneinfo.ZoneInfo(window.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return (
                f"spec.constraints.timeWindows[{index}].timeZone: unknown time zone "
                f"{window.time_zone!r}; use an IANA name such as UTC or Europe/Berlin"
            )
    return None


def _attempts(
    snapshot: TaskSnapshot, settings: TaskSettings, now: datetime.datetime
) -> tuple[tuple[Attempt, ...], tuple[Attempt, ...]]:
    """The attempts, and those among them the operator must stop as failed (pod never created)."""
    attempts: list[Attempt] = []
    to_stop: list[Attempt] = []
    for observation in snapshot.jobs:
        if observation.job["metadata"].get("deletionTimestamp"):
            continue
        attempt = attempt_of(observation, now)
        problem = attempt.problem
        if (
            attempt.state is AttemptState.PENDING
            and problem is not None
            and problem.reason == Reason.POD_CREATE_FAILED
            and attempt.created_at is not None
        ):
            give_up_at = attempt.created_at + settings.pod_create_timeout
            if now >= give_up_at:
                attempt = stopped_attempt(attempt, now)
                to_stop.append(attempt)
            else:
                attempt = replace(attempt, recheck_at=give_up_at)
        attempts.append(attempt)
    return tuple(attempts), tuple(to_stop)


def _resolve_tool_spec(
    tool: ToolSnapshot | None,
) -> tuple[ToolSpec | None, Mapping[str, Any], Verdict | None, Verdict | None]:
    """The Tool's spec and defaults; a failure verdict (unusable) or a waiting one (missing)."""
    if tool is None:
        return None, {}, None, None
    if tool.spec is None:
        message = f"Tool {tool.name!r} does not exist (yet); the task starts once it does"
        return None, {}, None, Verdict(Reason.TOOL_NOT_FOUND, message)
    check = check_tool(tool.spec)
    if check.problem is not None or check.spec is None:
        problem = check.problem
        detail = problem.message if problem is not None else "unreadable"
        return None, {}, Verdict(Reason.INVALID_TOOL, f"Tool {tool.name!r}: {detail}"), None
    return check.spec, check.spec.defaults, None, None


def _spec_failure(spec: TaskSpec, tool: ToolSpec | None) -> Verdict | None:
    zone = _time_zone_problem(spec)
    if zone is not None:
        return Verdict(Reason.INVALID_SPEC, zone)
    try:
        requests_of(spec, tool)
    except ValueError as error:
        return Verdict(Reason.INVALID_SPEC, str(error))
    if tool is not None:
        problem = parameter_problem(tool.input_schema, spec.parameters)
        if problem is not None:
            return Verdict(Reason.INVALID_PARAMETERS, problem)
    container = tool or spec.container
    if container is not None:
        try:
            render_args(list(container.args), spec.parameters)
        except TemplateError as error:
            return Verdict(Reason.INVALID_PARAMETERS, str(error))
    return None


def build_view(
    snapshot: TaskSnapshot, now: datetime.datetime, settings: TaskSettings | None = None
) -> TaskView:
    settings = settings or TaskSettings()
    attempts, to_stop = _attempts(snapshot, settings, now)
    view = TaskView(
        name=snapshot.name,
        generation=snapshot.generation,
        status=snapshot.parsed_status or read_status(snapshot.status),
        attempts=attempts,
        created_at=snapshot.created_at,
        stop_jobs=to_stop,
    )
    for stage in _STAGES:
        view = stage(view, snapshot, settings, now)
        if view.failure is not None or view.waiting is not None:
            break
    return view


Stage = Callable[[TaskView, TaskSnapshot, TaskSettings, datetime.datetime], TaskView]


def _check_name(
    view: TaskView, snapshot: TaskSnapshot, _settings: TaskSettings, _now: datetime.datetime
) -> TaskView:
    if len(snapshot.name) <= MAX_NAME:
        return view
    message = (
        f"task names label their Jobs and pods, so they may have at most {MAX_NAME} "
        f"characters; this one has {len(snapshot.name)}"
    )
    return replace(view, failure=Verdict(Reason.INVALID_NAME, message))


def _check_cycle(
    view: TaskView, snapshot: TaskSnapshot, _settings: TaskSettings, _now: datetime.datetime
) -> TaskView:
    """A dependency cycle can never be resolved: reported before anything that might be."""
    own = raw_dependencies({"spec": snapshot.spec})
    if not own:
        return view
    graph = dependency_graph(snapshot.name, own, snapshot.task_named)
    if snapshot.name not in deps.tasks_on_cycles(graph):
        return view
    message = "the task's dependencies form a cycle, so it can never start or finish"
    return replace(view, failure=Verdict(Reason.DEPENDENCY_CYCLE, message))


def check_spec(raw: Body, tool: ToolSnapshot | None) -> SpecCheck:
    """The Tool, its defaults under the Task's spec, and whether the result can run."""
    tool_spec, defaults, unusable, missing = _resolve_tool_spec(tool)
    if unusable is not None:
        return SpecCheck(failure=unusable)
    if missing is not None:
        return SpecCheck(spec=_lenient_spec(raw), waiting=missing)
    try:
        spec = effective_spec(raw, defaults)
    except SpecError as error:
        return SpecCheck(failure=Verdict(Reason.INVALID_SPEC, str(error)))
    return SpecCheck(spec=spec, tool=tool_spec, failure=_spec_failure(spec, tool_spec))


def _check_spec(
    view: TaskView, snapshot: TaskSnapshot, _settings: TaskSettings, _now: datetime.datetime
) -> TaskView:
    checked = snapshot.checked or check_spec(snapshot.spec, snapshot.tool)
    return replace(
        view,
        spec=checked.spec,
        tool=checked.tool,
        failure=checked.failure,
        waiting=checked.waiting,
    )


def _check_dependencies(
    view: TaskView, snapshot: TaskSnapshot, _settings: TaskSettings, _now: datetime.datetime
) -> TaskView:
    spec = view.spec
    if spec is None or not spec.dependencies:
        return view
    judged = judge_dependencies(snapshot.name, spec, view.attempts, snapshot.task_named)
    if judged is None or judged.readiness is deps.Readiness.READY:
        return view
    verdict = Verdict(judged.reason, judged.message)
    if judged.readiness is deps.Readiness.FAIL:
        return replace(view, failure=verdict)
    latest = view.latest
    if latest is not None and latest.state is AttemptState.SUCCEEDED:
        return replace(view, finish_wait=verdict)
    return replace(view, waiting=verdict)


def _check_previous_jobs(
    view: TaskView, snapshot: TaskSnapshot, _settings: TaskSettings, _now: datetime.datetime
) -> TaskView:
    if not snapshot.previous_jobs or view.attempts:
        return view
    names = ", ".join(sorted(snapshot.previous_jobs))
    message = (
        f"Job {names} of an earlier Task named {snapshot.name} still exists; the first "
        "attempt starts once it is deleted (the garbage collector does that shortly)"
    )
    return replace(view, waiting=Verdict(Reason.PREVIOUS_JOB_EXISTS, message))


def _find_cached(
    view: TaskView, snapshot: TaskSnapshot, settings: TaskSettings, now: datetime.datetime
) -> TaskView:
    spec = view.spec
    if spec is None or not spec.cache.enabled:
        return view
    key = cache_key(spec, view.tool)
    view = replace(view, cache_key=key)
    if key is None or view.attempts or view.status.phase is TaskPhase.COMPLETED:
        return view
    ttl = parse_duration(spec.cache.ttl) if spec.cache.ttl else settings.default_cache_ttl
    candidates = snapshot.completed_with_key(key)
    return replace(view, cached=newest_cached(snapshot.name, candidates, ttl, now))


_STAGES: tuple[Stage, ...] = (
    _check_name,
    _check_cycle,
    _check_spec,
    _check_dependencies,
    _check_previous_jobs,
    _find_cached,
)
"""In this order; a stage that finds the Task cannot run (failure) or must wait ends the view."""
