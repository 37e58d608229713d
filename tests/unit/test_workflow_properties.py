"""Properties of the workflow planner over random workflows, random outcomes and random timing.

Hypothesis draws workflows of steps (every mode, onError policy, `dependsOn` shape, fan-out,
`when`, task dependencies of every type and condition across steps, parallelism limits, finally
steps), then drives them with children ending in a random order and with random outcomes. Whatever
it draws: no child starts before what it waits for allows, no child is created twice, limits hold,
the workflow ends, and a resume re-runs exactly the tasks that had not completed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execflow.core.workflows.units import FAILED, STEP_LABEL, TASK_LABEL, TERMINAL
from execflow.core.workflows.view import RESUME_ANNOTATION
from tests.unit.workflow_simulation import Outcome, Simulation

ROUNDS = 300
ENDED = ("Completed", "Failed", "Cancelled", "Timeout")
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@dataclass(frozen=True)
class Shape:
    spec: dict[str, Any]
    depends_on: dict[str, list[str]]
    """Every step's effective dependsOn."""
    step_of: dict[str, str]
    """Task name → step name."""
    modes: dict[str, str]


@st.composite
def workflows(draw: st.DrawFn) -> Shape:
    flags = {f"f{i}": draw(st.booleans()) for i in range(3)}
    steps: list[dict[str, Any]] = []
    depends_on: dict[str, list[str]] = {}
    step_of: dict[str, str] = {}
    modes: dict[str, str] = {}
    for s in range(draw(st.integers(1, 4))):
        name = f"s{s}"
        mode = draw(st.sampled_from(["Sequential", "Parallel", "Hybrid", "Conditional"]))
        step: dict[str, Any] = {"name": name, "executionMode": mode, "tasks": []}
        earlier = [x["name"] for x in steps]
        if s > 0 and draw(st.booleans()):
            step["dependsOn"] = draw(st.lists(st.sampled_from(earlier), unique=True))
        depends_on[name] = step.get("dependsOn", [earlier[-1]] if earlier else [])
        policy = draw(st.sampled_from(["Stop", "Continue", "Retry"]))
        step["onError"] = policy
        if policy == "Retry":
            step["maxRetries"] = draw(st.integers(0, 2))
        if draw(st.booleans()):
            step["parallelism"] = draw(st.integers(1, 2))
        if draw(st.integers(0, 5)) == 0:
            step["when"] = draw(st.sampled_from(["true", "false", "variables.f0"]))
        for t in range(draw(st.integers(1, 4))):
            step["tasks"].append(_task(draw, f"s{s}t{t}", step_of, mode, flags))
            step_of[f"s{s}t{t}"] = name
        steps.append(step)
        modes[name] = mode
    spec: dict[str, Any] = {"variables": flags, "steps": steps}
    if draw(st.booleans()):
        spec["parallelism"] = draw(st.integers(1, 4))
    if draw(st.booleans()):
        spec["finally"] = [
            {
                "name": "cleanup",
                "tasks": [
                    {
                        "name": "fin",
                        "container": {"image": "busybox"},
                        "parameters": {"outcome": "{{ workflow.status }}"},
                    }
                ],
            }
        ]
        step_of["fin"] = "cleanup"
        depends_on["cleanup"] = []
        modes["cleanup"] = "Sequential"
    return Shape(spec, depends_on, step_of, modes)


def _task(
    draw: st.DrawFn, name: str, step_of: Mapping[str, str], mode: str, flags: Mapping[str, bool]
) -> dict[str, Any]:
    task: dict[str, Any] = {"name": name, "container": {"image": "busybox"}}
    if draw(st.integers(0, 3)) == 0:
        size = draw(st.integers(0, 3))
        task["forEach"] = "[" + ", ".join(str(i * 10) for i in range(size)) + "]"
        if draw(st.booleans()):
            task["when"] = "index != 1"
    if mode == "Conditional" and draw(st.booleans()):
        task["when"] = draw(st.sampled_from(sorted(f"variables.{f}" for f in flags)))
    elif "when" not in task and draw(st.integers(0, 6)) == 0:
        task["when"] = "false"
    candidates = sorted(step_of)
    if candidates and draw(st.integers(0, 2)) == 0:
        read = draw(st.lists(st.sampled_from(candidates), unique=True, max_size=2))
        task["parameters"] = {
            f"r{i}": f"{{{{ steps.{step_of[other]}.tasks['{other}'] }}}}"
            for i, other in enumerate(read)
        }
    if candidates and draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(candidates), unique=True, max_size=2))
        task["dependencies"] = [
            {
                "task": other,
                "type": draw(
                    st.sampled_from(
                        ["FinishToStart", "FinishToStart", "StartToStart", "FinishToFinish"]
                    )
                ),
                "condition": draw(st.sampled_from(["Succeeded", "Failed", "Any"])),
            }
            for other in chosen
        ]
    return task


@dataclass(frozen=True)
class Seen:
    """A child as it was when a pass began."""

    task: str
    step: str
    phase: str


class Checked(Simulation):
    """A simulation that checks the planner's invariants at every pass."""

    shape: Shape

    def seen(self) -> dict[str, Seen]:
        return {
            name: Seen(
                body["metadata"]["labels"][TASK_LABEL],
                body["metadata"]["labels"][STEP_LABEL],
                str(body["status"].get("phase") or "Pending"),
            )
            for name, body in self.children.items()
        }

    def checked_step(self) -> None:
        before = self.seen()
        decision = self.step()
        created_now: list[str] = []
        for creation in decision.creations:
            self._check_creation(creation.name, creation.body, before, created_now)
            created_now.append(creation.body["metadata"]["labels"][TASK_LABEL])
        active = [
            n for n, body in self.children.items() if body["status"].get("phase") not in ENDED
        ]
        limit = self.spec.get("parallelism") or 0
        assert not limit or len(active) <= limit, (active, limit)
        for step in self.spec["steps"] + self.spec.get("finally", []):
            step_limit = step.get("parallelism") or 0
            mine = [
                n
                for n in active
                if self.children[n]["metadata"]["labels"][STEP_LABEL] == step["name"]
            ]
            assert not step_limit or len(mine) <= step_limit, (step["name"], mine)

    def _check_creation(
        self, name: str, body: Mapping[str, Any], before: Mapping[str, Seen], created_now: list[str]
    ) -> None:
        labels = body["metadata"]["labels"]
        task, step = labels[TASK_LABEL], labels[STEP_LABEL]
        shape = self.shape
        # The steps it depends on had ended: none of their children was still running.
        for other in shape.depends_on[step]:
            running = [n for n, s in before.items() if s.step == other and s.phase not in ENDED]
            assert not running, f"{name} created while {other} still ran {running}"
        # Finally steps start once every child of the main steps has ended.
        if step == "cleanup":
            running = [n for n, s in before.items() if s.step != "cleanup" and s.phase not in ENDED]
            assert not running, f"finally started while {running} ran"
        # Sequential: no other task of the step still runs.
        if shape.modes[step] == "Sequential":
            running = [
                n
                for n, s in before.items()
                if s.step == step and s.task != task and s.phase not in ENDED
            ]
            assert not running, f"{name} started beside {running} in a Sequential step"
        # What its templates read had ended, and it was rendered into the child.
        for key, value in (body["spec"].get("parameters") or {}).items():
            if key == "outcome":
                continue
            entries = value if isinstance(value, list) else [value]
            assert all(e["phase"] in (*ENDED, "Skipped") for e in entries), (name, value)
        spec = _task_spec(self.spec, task)
        for dependency in spec.get("dependencies", []):
            self._check_dependency(name, dependency, before, created_now)

    def _check_dependency(
        self,
        name: str,
        dependency: Mapping[str, Any],
        before: Mapping[str, Seen],
        created_now: list[str],
    ) -> None:
        other = dependency["task"]
        children = [s for s in before.values() if s.task == other]
        kind = dependency.get("type", "FinishToStart")
        if kind == "FinishToStart":
            assert all(s.phase in ENDED for s in children), f"{name} started before {other} ended"
            condition = dependency.get("condition", "Succeeded")
            failed = any(s.phase in FAILED for s in children)
            if condition == "Succeeded":
                assert not failed, f"{name} started though {other} failed"
            if condition == "Failed":
                assert failed, f"{name} started though {other} did not fail"
        elif kind == "StartToStart":
            assert children or other in created_now, f"{name} started before {other} started"


def _task_spec(spec: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    for step in spec["steps"] + spec.get("finally", []):
        for task in step["tasks"]:
            if task["name"] == name:
                return task
    raise KeyError(name)


def drive(sim: Checked, data: st.DataObject, fail: bool) -> str:
    """Run to the end with children ending in random subsets with random outcomes."""

    def outcome(_name: str, _body: Mapping[str, Any]) -> Outcome:
        if fail and data.draw(st.integers(0, 3), label="fails") == 0:
            return ("Failed", None)
        return ("Completed", {"ok": True})

    for _ in range(ROUNDS):
        sim.checked_step()
        if sim.phase in ENDED:
            return sim.phase
        running = [n for n, b in sim.children.items() if b["status"].get("phase") not in ENDED]
        chosen = (
            set(data.draw(st.sets(st.sampled_from(running)), label="ends")) if running else set()
        )
        if running and not chosen:
            chosen = {running[0]}
        sim.finish(outcome, only=chosen.__contains__)
    return sim.phase


def runs_by_name(sim: Simulation) -> dict[str, list[str]]:
    runs: dict[str, list[str]] = {}
    for plan in sim.plans:
        for creation in plan.creations:
            runs.setdefault(creation.name, []).append(
                creation.body["metadata"]["labels"]["execflow.dev/run"]
            )
    return runs


@PROPERTY_SETTINGS
@given(shape=workflows(), data=st.data())
def test_random_workflows_respect_dependencies_and_end(shape: Shape, data: st.DataObject) -> None:
    sim = Checked(shape.spec)
    sim.shape = shape
    phase = drive(sim, data, fail=True)
    assert phase in ("Completed", "Failed"), (phase, sim.status.get("message"))
    assert sim.status["reason"] != "Stuck", sim.status["message"]
    # A name is created again only for a new run (a step retry), never twice in one run.
    for name, runs in runs_by_name(sim).items():
        assert len(runs) == len(set(runs)), (name, runs)
    # Once ended, nothing more happens.
    decision = sim.step()
    assert decision.creations == () and decision.deletions == () and decision.patches == ()
    # Every unit's phase is final, and progress counts them all.
    units = [u for s in sim.status["steps"] for u in s["tasks"]]
    assert all(u["phase"] in (*ENDED, "Skipped", "Pending") for u in units)
    assert not [u for u in units if u.get("reason") == "ExpressionError"], sim.status["steps"]
    finished = sum(1 for u in units if u["phase"] in (*ENDED, "Skipped"))
    assert sim.status["progress"] == f"{finished}/{len(units)}"
    if "finally" in shape.spec:
        assert "wf-fin" in sim.children
        assert sim.children["wf-fin"]["spec"]["parameters"]["outcome"] in ("Completed", "Failed")
    if phase == "Completed":
        assert all(u["phase"] in ("Completed", "Skipped") or _tolerated(shape, u) for u in units)


def _tolerated(shape: Shape, unit: Mapping[str, Any]) -> bool:
    step = shape.step_of[unit["name"]]
    spec = next(s for s in shape.spec["steps"] if s["name"] == step)
    return bool(spec.get("onError") == "Continue")


@PROPERTY_SETTINGS
@given(shape=workflows(), data=st.data())
def test_a_resume_reruns_exactly_what_did_not_complete(shape: Shape, data: st.DataObject) -> None:
    sim = Checked(shape.spec)
    sim.shape = shape
    if drive(sim, data, fail=True) != "Failed":
        return
    completed = {n for n, b in sim.children.items() if b["status"].get("phase") == "Completed"}
    unfinished = {
        n: b["metadata"]["labels"][TASK_LABEL]
        for n, b in sim.children.items()
        if b["status"].get("phase") != "Completed"
    }
    first_run = len(sim.created)
    sim.annotations[RESUME_ANNOTATION] = "resume-1"
    assert drive(sim, data, fail=False) == "Completed", sim.status.get("message")
    assert sim.status["resumes"] == 1
    again = set(sim.created[first_run:])
    assert not again & completed, f"Completed children ran again: {again & completed}"
    expected = {n for n, task in unfinished.items() if not _waits_for_a_failure(shape, task)}
    assert expected <= again, f"not run again: {expected - again}"
    for step in sim.status["steps"]:
        for unit in step["tasks"]:
            assert unit["phase"] in ("Completed", "Skipped"), unit
            assert unit.get("reason") != "NotRun", unit


def _waits_for_a_failure(shape: Shape, task: str) -> bool:
    """A task that ran because another failed may rightly be skipped once that one succeeds,
    and so may what waits for it."""
    excused: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name in shape.step_of:
            if name in excused or name == "fin":
                continue
            dependencies = _task_spec(shape.spec, name).get("dependencies", [])
            if any(d.get("condition") == "Failed" or d["task"] in excused for d in dependencies):
                excused.add(name)
                changed = True
    return task in excused


def test_terminal_phases_are_the_ones_children_end_in() -> None:
    assert set(ENDED) == TERMINAL


@PROPERTY_SETTINGS
@given(shape=workflows(), data=st.data())
def test_suspend_starts_nothing_and_cancel_ends_cancelled(
    shape: Shape, data: st.DataObject
) -> None:
    sim = Checked(shape.spec)
    sim.shape = shape
    pause_at = data.draw(st.integers(0, 4), label="pause at")
    cancel_at = data.draw(st.integers(pause_at + 1, pause_at + 4), label="cancel at")
    main = {t["name"] for s in shape.spec["steps"] for t in s["tasks"]}
    ended_round = None
    for round_ in range(ROUNDS):
        if round_ == pause_at:
            sim.spec = {**sim.spec, "suspend": True}
        if round_ == cancel_at:
            sim.spec = {**sim.spec, "suspend": False, "cancel": True}
        before = set(sim.children)
        decision = sim.step()
        if sim.phase in ENDED:
            ended_round = round_
            break
        if pause_at <= round_ < cancel_at:
            assert decision.creations == (), "a child started while the workflow was paused"
            assert sim.phase == "Paused"
            assert all(b["spec"].get("suspend") for b in sim.children.values() if not b["status"])
        if round_ >= cancel_at:
            started = {c.body["metadata"]["labels"][TASK_LABEL] for c in decision.creations}
            assert not started & main, f"{started & main} started after cancel"
            assert all(
                b["spec"].get("cancel")
                for n, b in sim.children.items()
                if n in before and not b["status"] and b["metadata"]["labels"][TASK_LABEL] in main
            )
        sim.finish(lambda _n, _b: ("Completed", {"ok": True}))
    assert ended_round is not None, "the workflow did not end"
    assert sim.phase == ("Cancelled" if ended_round >= cancel_at else "Completed")
