"""Workflow orchestration cost on a real cluster: first-Job latency, step overhead, writes, memory.

Why this exists: a Workflow adds a layer between the user and the Jobs (the workflow controller
creates child Tasks, the Task controller creates their Jobs). That layer must add little time
where a user waits (the first Job of a new workflow; the hand-over from one step to the next) and
few API writes per child Task. It is a measurement, not a test: it asserts nothing, prints a table
and writes benchmarks/results/workflow.json.

Three runs, one after the other, by one operator watching only the benchmark's namespace:

1. Idle start: `--samples` one-task workflows, created one at a time on an otherwise idle
   operator. For each: the wall time from the create call to a watch seeing the child's Job
   ADDED (the workflow's first Job). p50/p99.
2. A chain: `--chain` tasks in Sequential steps of at most 20 tasks (the steps follow each other,
   so every task waits for the one before it). For each hand-over: the time from a watch seeing
   the previous child Completed to it seeing the next child's Job ADDED; hand-overs between steps
   and inside a step are reported apart. p50/p99.
3. A fan-out: one task over `--fan-out` items. Wall time from the create call to the workflow
   Completed, and the API writes the workflow layer made per child Task, counted from the
   watches: child Task creates (ADDED), workflow status writes (MODIFIED), child spec patches and
   deletes (none expected here). The Task's own writes (its status, its Job) are the Task
   controller's and are measured by task_throughput.py. The API server's request counters for
   workflows cross-check the status writes (exact only on a private cluster).

The operator's peak resident memory (VmHWM) is read from /proc at the end.

Run from the repository root with the project's virtualenv:

    .venv/bin/python benchmarks/workflow.py [--fan-out 1000] [--chain 100] [--cluster private]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from execflow.devcluster import harness
from task_throughput import (
    GROUP,
    NAMESPACE_LABELS,
    TASK_LABEL,
    Latency,
    apiserver_requests,
    list_resource_version,
    operator_settings,
    say,
    wait_listed,
)
from watching import RawWatch

ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = ROOT / "benchmarks" / "results" / "workflow.json"
VERSION = "v1alpha1"
WORKFLOW_LABEL = "execflow.dev/workflow"
TERMINAL = frozenset({"Completed", "Failed", "Cancelled", "Timeout"})
STEP_SIZE = 20
"""Most tasks in one step (the Workflow CRD's limit)."""


# ----- what the watches see ---------------------------------------------------------------------
@dataclass
class Seen:
    """Times (monotonic) and counts from the watches, written by their threads under the lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    job_added: dict[str, float] = field(default_factory=dict)
    """Child Task name → when its first Job was seen."""
    task_added: dict[str, float] = field(default_factory=dict)
    task_completed: dict[str, float] = field(default_factory=dict)
    task_modified_spec: Counter[str] = field(default_factory=Counter)
    task_deleted: int = 0
    workflow_phase: dict[str, str] = field(default_factory=dict)
    workflow_done: dict[str, float] = field(default_factory=dict)
    workflow_modified: Counter[str] = field(default_factory=Counter)
    _specs: dict[str, str] = field(default_factory=dict)

    def on_job(self, kind: str, job: dict[str, Any], at: float) -> None:
        task = (job["metadata"].get("labels") or {}).get(TASK_LABEL)
        if kind == "ADDED" and task:
            with self.lock:
                self.job_added.setdefault(task, at)

    def on_task(self, kind: str, task: dict[str, Any], at: float) -> None:
        name = task["metadata"]["name"]
        spec = json.dumps(task.get("spec"), sort_keys=True)
        with self.lock:
            if kind == "ADDED":
                self.task_added.setdefault(name, at)
            elif kind == "DELETED":
                self.task_deleted += 1
            elif kind == "MODIFIED" and self._specs.get(name) not in (None, spec):
                self.task_modified_spec[name] += 1
            self._specs[name] = spec
            if (task.get("status") or {}).get("phase") == "Completed":
                self.task_completed.setdefault(name, at)

    def on_workflow(self, kind: str, workflow: dict[str, Any], at: float) -> None:
        name = workflow["metadata"]["name"]
        phase = (workflow.get("status") or {}).get("phase") or ""
        with self.lock:
            if kind == "MODIFIED":
                self.workflow_modified[name] += 1
            self.workflow_phase[name] = phase
            if phase in TERMINAL:
                self.workflow_done.setdefault(name, at)


def wait(condition: Callable[[], bool], timeout: float, what: str, watches: list[RawWatch]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for watch in watches:
            watch.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.005)


# ----- workflows --------------------------------------------------------------------------------
def task(name: str, duration: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "container": {"image": "busybox", "command": ["true"]},
        "podTemplate": {"metadata": {"annotations": {"sim.execflow.dev/duration": duration}}},
        **extra,
    }


def workflow(name: str, steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"steps": steps, **spec},
    }


def chain_steps(length: int, duration: str) -> list[dict[str, Any]]:
    steps = []
    for first in range(0, length, STEP_SIZE):
        links = [task(f"link-{i}", duration) for i in range(first, min(first + STEP_SIZE, length))]
        steps.append({"name": f"part-{first // STEP_SIZE}", "tasks": links})
    return steps


# ----- the report -------------------------------------------------------------------------------
@dataclass(frozen=True)
class IdleStart:
    samples: int
    create_to_first_job_ms: Latency
    """A one-task workflow: create call → its child's Job seen."""
    bare_task_to_job_ms: Latency
    """The same for a bare Task (create call → its Job seen): the Task layer's share."""
    admission_ms: Latency
    """Where the workflow's time goes, 1: the create call itself (schema, CEL rules, webhook)."""
    stored_to_child_ms: Latency
    """2: the create call returned → the child Task seen (the workflow controller's share)."""
    child_to_job_ms: Latency
    """3: the child Task seen → its Job seen (the Task controller's share)."""


@dataclass(frozen=True)
class Chain:
    tasks: int
    steps: int
    elapsed_seconds: float
    between_steps_ms: Latency
    inside_a_step_ms: Latency


@dataclass(frozen=True)
class FanOut:
    items: int
    elapsed_seconds: float
    children_per_second: float
    child_creates: int
    status_writes: int
    child_patches: int
    child_deletes: int
    writes_per_child: float
    status_patches_requested: int | None
    """PATCH workflows/status the API server counted over the run (cluster-wide)."""
    status_bytes: int


@dataclass(frozen=True)
class Report:
    benchmark: str
    command: str
    time: str
    environment: dict[str, Any]
    idle: IdleStart
    chain: Chain
    fan_out: FanOut
    operator_peak_rss_mib: float | None
    targets: dict[str, str]


def ms(values: list[float]) -> Latency:
    return Latency.of([v * 1000 for v in values])


def peak_rss_mib(operator: harness.OperatorProcess) -> float | None:
    pid = operator.pid
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


# ----- the runs ---------------------------------------------------------------------------------
class Bench:
    def __init__(self, api: client.ApiClient, namespace: str, args: argparse.Namespace) -> None:
        self.api = api
        self.namespace = namespace
        self.args = args
        self.custom = client.CustomObjectsApi(api)
        self.seen = Seen()
        batch = client.BatchV1Api(api)

        def lister(plural: str) -> Callable[..., Any]:
            return lambda **kw: self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, **kw
            )

        def jobs(**kw: Any) -> Any:
            return batch.list_namespaced_job(namespace, label_selector=TASK_LABEL, **kw)

        self.watches = [
            RawWatch(name, call, list_resource_version(call), handler)
            for name, call, handler in (
                ("jobs", jobs, self.seen.on_job),
                ("tasks", lister("tasks"), self.seen.on_task),
                ("workflows", lister("workflows"), self.seen.on_workflow),
            )
        ]
        for watch in self.watches:
            watch.start()

    def stop(self) -> None:
        for watch in self.watches:
            watch.stop()

    def create(self, body: dict[str, Any]) -> float:
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "workflows", body
        )
        return time.monotonic()

    def finished(self, name: str, timeout: float) -> float:
        wait(lambda: name in self.seen.workflow_done, timeout, f"workflow {name}", self.watches)
        phase = self.seen.workflow_phase[name]
        if phase != "Completed":
            raise RuntimeError(f"workflow {name} ended {phase}")
        return self.seen.workflow_done[name]

    def idle(self) -> IdleStart:
        workflows, tasks = [], []
        admission, to_child, to_job = [], [], []
        for i in range(self.args.samples):
            name = f"idle-{i}"
            started = time.monotonic()
            stored = self.create(workflow(name, [{"name": "s", "tasks": [task("t", "0s")]}]))
            job = self.first_job(f"{name}-t")
            child = self.seen.task_added[f"{name}-t"]
            workflows.append(job - started)
            admission.append(stored - started)
            to_child.append(child - stored)
            to_job.append(job - child)
            self.finished(name, 60)
            bare = {k: v for k, v in task(f"bare-{i}", "0s").items() if k != "name"}
            started = time.monotonic()
            self.custom.create_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                "tasks",
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "Task",
                    "metadata": {"name": f"bare-{i}"},
                    "spec": bare,
                },
            )
            tasks.append(self.first_job(f"bare-{i}") - started)
        return IdleStart(
            self.args.samples, ms(workflows), ms(tasks), ms(admission), ms(to_child), ms(to_job)
        )

    def first_job(self, task_name: str) -> float:
        wait(lambda: task_name in self.seen.job_added, 60, f"the Job of {task_name}", self.watches)
        return self.seen.job_added[task_name]

    def chain(self) -> Chain:
        length = self.args.chain
        steps = chain_steps(length, self.args.duration)
        started = self.create(workflow("chain", steps))
        done = self.finished("chain", 120 + 2 * length)
        between, inside = [], []
        for i in range(1, length):
            previous, current = f"chain-link-{i - 1}", f"chain-link-{i}"
            gap = self.seen.job_added[current] - self.seen.task_completed[previous]
            (between if i % STEP_SIZE == 0 else inside).append(gap)
        return Chain(length, len(steps), round(done - started, 2), ms(between), ms(inside))

    def fan_out(self) -> FanOut:
        items = self.args.fan_out
        before = apiserver_requests(self.api)
        body = workflow(
            "fan",
            [{"name": "s", "tasks": [task("item", self.args.duration, forEach="variables.items")]}],
            variables={"items": list(range(items))},
        )
        started = self.create(body)
        done = self.finished("fan", 120 + items)
        time.sleep(3)  # late progress writes (coalesced every 2 s) still count
        after = apiserver_requests(self.api)
        with self.seen.lock:
            children = [n for n in self.seen.task_added if n.startswith("fan-item-")]
            creates = len(children)
            writes = self.seen.workflow_modified["fan"]
            patches = sum(self.seen.task_modified_spec[n] for n in children)
            deletes = self.seen.task_deleted
        status = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "workflows", "fan"
        )["status"]
        key = f"PATCH {GROUP}/workflows/status"
        requested = after[key] - before[key] if key in after else None
        elapsed = done - started
        return FanOut(
            items=items,
            elapsed_seconds=round(elapsed, 2),
            children_per_second=round(items / elapsed, 1),
            child_creates=creates,
            status_writes=writes,
            child_patches=patches,
            child_deletes=deletes,
            writes_per_child=round((creates + writes + patches + deletes) / items, 3),
            status_patches_requested=requested,
            status_bytes=len(json.dumps(status)),
        )


def measure(api: client.ApiClient, cluster: harness.Cluster, args: argparse.Namespace) -> Report:
    namespace = harness.create_namespace(api, "bench-workflows", labels=NAMESPACE_LABELS)
    limit = max(1000, args.fan_out)
    operator = harness.OperatorProcess(
        cluster.kubeconfig,
        Path(tempfile.mkdtemp(prefix="execflow-bench-")),
        operator_settings(limit, max(10000, args.fan_out)),
        namespaces=[namespace],
        options=["--webhook-port", "0"] if args.no_webhook else [],
    )
    bench: Bench | None = None
    try:
        operator.start(timeout=120)
        wait_listed(operator, timeout=120)
        bench = Bench(api, namespace, args)
        say(f"idle start: {args.samples} one-task workflows")
        idle = bench.idle()
        say(f"chain: {args.chain} tasks in Sequential steps")
        chain = bench.chain()
        say(f"fan-out: {args.fan_out} items")
        fan_out = bench.fan_out()
        rss = peak_rss_mib(operator)
    finally:
        if bench is not None:
            bench.stop()
        operator.stop()
        if cluster.mode != "private":
            harness.delete_namespace(api, namespace)
    shutil.rmtree(operator.directory, ignore_errors=True)
    return Report(
        benchmark="workflow",
        command=" ".join([Path(sys.executable).name, *sys.argv]),
        time=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        environment={
            "cluster": cluster.mode,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kubernetes": client.VersionApi(api).get_code().git_version,
            "revision": harness.revision(ROOT),
            "duration": args.duration,
            "webhook": not args.no_webhook,
        },
        idle=idle,
        chain=chain,
        fan_out=fan_out,
        operator_peak_rss_mib=rss,
        targets={
            "first Job p50": "<= 50 ms",
            "step overhead p50": "<= 100 ms",
            "writes per child": "<= 2 beyond the Task's own",
        },
    )


def print_table(report: Report, written_to: Path) -> None:
    idle, chain, fan = report.idle, report.chain, report.fan_out

    def spread(latency: Latency) -> str:
        return f"p50 {latency.p50} ms, p99 {latency.p99} ms, max {latency.max} ms"

    rows = [
        (
            "workflow created -> first Job",
            f"{spread(idle.create_to_first_job_ms)} (target p50 <= 50)",
        ),
        (
            "  of which: create call (admission)",
            spread(idle.admission_ms),
        ),
        ("  of which: stored -> child Task", spread(idle.stored_to_child_ms)),
        ("  of which: child Task -> its Job", spread(idle.child_to_job_ms)),
        ("bare Task created -> its Job", spread(idle.bare_task_to_job_ms)),
        ("step hand-over (between steps)", f"{spread(chain.between_steps_ms)} (target <= 100)"),
        ("task hand-over (inside a step)", spread(chain.inside_a_step_ms)),
        (f"chain of {chain.tasks} tasks", f"{chain.elapsed_seconds} s"),
        (
            f"fan-out of {fan.items}",
            f"{fan.elapsed_seconds} s ({fan.children_per_second} children/s)",
        ),
        (
            "writes per child (workflow layer)",
            f"{fan.writes_per_child} = ({fan.child_creates} creates + {fan.status_writes} status "
            f"writes + {fan.child_patches} patches + {fan.child_deletes} deletes) / {fan.items} "
            "(target <= 2)",
        ),
        ("status PATCH requests (API server)", str(fan.status_patches_requested)),
        ("status size", f"{fan.status_bytes / 1024:.1f} KiB"),
        ("operator peak RSS", f"{report.operator_peak_rss_mib} MiB"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"workflow benchmark ({report.environment['cluster']} cluster)")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    print(f"  written to {written_to}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20, help="idle one-task workflows (20)")
    parser.add_argument("--chain", type=int, default=100, help="tasks in the chain (100)")
    parser.add_argument("--fan-out", type=int, default=1000, help="fan-out items (1000)")
    parser.add_argument("--duration", default="0s", help="simulated container run time (0s)")
    parser.add_argument(
        "--no-webhook",
        action="store_true",
        help="run the operator without its admission webhook (shows the webhook's share)",
    )
    harness.add_cluster_options(parser)
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="JSON results file")
    args = parser.parse_args(argv)
    if min(args.samples, args.chain, args.fan_out) < 2:
        parser.error("--samples, --chain and --fan-out must be at least 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with harness.cluster_from_options(args, say) as cluster:
        api = harness.connect(cluster.kubeconfig, with_crds=True)
        try:
            report = measure(api, cluster, args)
        finally:
            api.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print_table(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
