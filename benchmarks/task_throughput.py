"""Task throughput: execflow Tasks next to bare Jobs on the same cluster, in the same run.

Why this exists: a Task is a Job plus bookkeeping (a queue, status writes, Events). That bookkeeping
must not make execflow the bottleneck of a cluster, and absolute figures depend on the machine, so
the benchmark measures bare batch/v1 Jobs in the same run and reports Tasks relative to them. It is
a measurement, not a test: it asserts nothing. The figures form a typed report, one frozen
dataclass per part (the two runs, latencies, phase timings, API writes with their cross-checks,
the operator, the environment), printed as a table and written as JSON to
benchmarks/results/task_throughput.json.

One run:

1. Jobs. N bare Jobs (backoffLimit 0, one pod `busybox true` with the simulation annotation
   `sim.execflow.dev/duration: 0s`) are created in a fresh namespace by a pool of client threads.
   The clock runs from the first create until a watch on the namespace has seen every Job with its
   Complete (or Failed) condition: jobs/s = N / elapsed.
   Then, unless --no-kueue, the same N Jobs through Kueue (a widely used batch queue; built from
   its Go module on first use and run next to the cluster, see benchmarks/kueue_peer.py): created
   suspended with its queue-name label into a ClusterQueue large enough for all of them, so
   Kueue admits each as fast as it can; jobs/s the same way, and its ratio to bare Jobs.
2. Tasks. The operator is started (`execflow run --namespace <ns> --settings <file>`, the default
   queue's maxConcurrentTasks raised to at least N, so that the operator is measured and not the
   limit) and counts as ready once it serves metrics and has filled its store. N Tasks with the
   same container and annotation are created the same way in another fresh namespace; the clock
   stops when a watch has seen every Task in a terminal phase: tasks/s = N / elapsed, and the
   ratio tasks/s / jobs/s.
3. Task -> Job latency, two ways:
   a. from the API after the run: Task creationTimestamp -> its first Job's creationTimestamp.
      Those timestamps have 1 s resolution, so these percentiles are whole seconds;
   b. from the watches: the wall time between a Task's ADDED event and its first Job's ADDED
      event (both arrive through the same kind of watch, so the delivery delay mostly cancels).
4. The operator's API writes per Task, counted from outside, in the Task namespace only:
   - Job creates: Jobs seen ADDED there (the operator creates every Job in that namespace);
   - Job deletes: Jobs seen DELETED before clean-up;
   - status writes: Task MODIFIED events, i.e. changes of metadata.resourceVersion. After the
     benchmark's own create, every change is a write by an operator (kopf's watch-only handlers
     write neither finalizers nor annotations). A patch that changes nothing leaves no trace on a
     watch, hence the request counts below;
   - Events: core/v1 Events in the namespace whose source or reportingComponent is execflow or
     kopf. They are created with generateName, so each one is one create.
   Cross-checks, all taken as deltas over phase 2: the operator's own counters
   (execflow_task_attempts_total, execflow_task_transitions_total) and the API server's
   apiserver_request_total for mutating requests on tasks, jobs and events (read from
   https://<api server>/metrics with the admin kubeconfig). The API server counts every request,
   no-op patches and conflicts included, but cluster-wide: they are exact only when nothing else
   uses the cluster (`--cluster private`). Core Events posts also include the Job controller's,
   so the request-based figure takes Events from the namespace listing as well.
5. Where the time goes: the Task watch records when each phase first appeared, which splits a
   Task's life into ADDED -> Queued, Queued -> Job ADDED, Job ADDED -> Running and
   Running -> Completed, and the order of its phases; any order but Running > Completed (started
   at once) or Queued > Running > Completed (waited for a slot) is reported.

The cluster (chosen by execflow.devcluster.harness): by default the project's local control plane
(as `execflow cluster up`: brought up, or reused when it runs, and never stopped here);
`--kubeconfig` points at any other cluster; `--cluster private` starts a separate local control
plane in a temporary directory for the run and removes it at the end. The benchmark's operator
watches only its own namespace (checked: it must report zero Tasks when it has filled its store,
although Tasks exist elsewhere), so it leaves other users of a shared cluster alone. The reverse
does not hold: an execflow operator that watches all namespaces (an integration test run, a manual
`execflow run`) also reconciles the benchmark's Tasks. The cross-checks then disagree (attempts and
transitions counted by the benchmark's operator against Jobs and phase changes seen) and the run is
flagged; use `--cluster private` for clean figures.

Run from the repository root with the project's virtualenv:

    .venv/bin/python benchmarks/task_throughput.py [--count 1000] [--cluster shared|private]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from execflow.devcluster import harness
from node_health import NodeHealth, NodeHealthRecorder
from watching import RawWatch

ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = ROOT / "benchmarks" / "results" / "task_throughput.json"
GROUP, VERSION, PLURAL = "execflow.dev", "v1alpha1", "tasks"
TASK_LABEL = "execflow.dev/task"
ATTEMPT_LABEL = "execflow.dev/attempt"
DURATION_ANNOTATION = "sim.execflow.dev/duration"
NAMESPACE_LABELS = {"execflow.dev/benchmark": "1"}
TERMINAL_PHASES = frozenset({"Completed", "Failed", "Cancelled", "Timeout"})
USUAL_PHASES = frozenset({"Running > Completed", "Queued > Running > Completed"})
"""A Task that starts at once is never written Queued; one that waits for a slot is."""
OPERATOR_COMPONENTS = frozenset({"execflow", "kopf"})
RETRIABLE_STATUS = frozenset({429, 500, 502, 503, 504})
ATTEMPTS_METRIC = "execflow_task_attempts_total"
RECONCILES_METRIC = "execflow_reconciles_total"
TRANSITIONS_METRIC = "execflow_task_transitions_total"
# Logged once the operator's caches hold everything it watches: "listed 0 tools, 0 tasks, ...".
LISTED = re.compile(r"listed (\d+) tools, (\d+) tasks.*")
T = TypeVar("T")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[rank]


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def raw(response: Any) -> Any:
    """JSON of a `_preload_content=False` reply (skips the slow model deserialisation)."""
    return json.loads(response.data)


def drain(response: Any) -> None:
    """Read a `_preload_content=False` reply to its end, so its connection can be reused."""
    response.read()
    response.release_conn()


def count_tasks(api: client.ApiClient) -> int:
    """Tasks in the whole cluster."""
    custom = client.CustomObjectsApi(api)
    reply = raw(custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, _preload_content=False))
    return len(reply["items"])


# ----- watching ---------------------------------------------------------------------------------
def list_resource_version(list_call: Callable[..., Any]) -> str:
    version: str = raw(list_call(limit=1, _preload_content=False))["metadata"]["resourceVersion"]
    return version


def job_outcome(job: dict[str, Any]) -> str:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return str(condition["type"])
    return ""


@dataclass
class JobRecord:
    added: float | None = None
    finished: float | None = None
    outcome: str = ""


@dataclass
class TaskRecord:
    added: float | None = None
    finished: float | None = None
    phase: str | None = None
    outcome: str = ""
    modified: int = 0
    phase_changes: int = 0
    job_added: float | None = None
    phase_seen: dict[str, float] = field(default_factory=dict)  # first time each phase was seen
    phases: list[str] = field(default_factory=list)  # every phase in the order seen


@dataclass
class Observations:
    """Everything the watches saw, guarded by one lock (the watch threads write, main reads)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    finished: int = 0
    jobs_added: int = 0
    jobs_deleted: int = 0

    def on_bare_job(self, kind: str, job: dict[str, Any], at: float) -> None:
        with self.lock:
            record = self.jobs.setdefault(job["metadata"]["name"], JobRecord())
            if kind == "ADDED" and record.added is None:
                record.added = at
            outcome = job_outcome(job)
            if outcome and record.finished is None:
                record.finished, record.outcome = at, outcome
                self.finished += 1

    def on_task(self, kind: str, task: dict[str, Any], at: float) -> None:
        with self.lock:
            record = self.tasks.setdefault(task["metadata"]["name"], TaskRecord())
            if kind == "ADDED" and record.added is None:
                record.added = at
            elif kind == "MODIFIED":
                record.modified += 1
            phase = (task.get("status") or {}).get("phase")
            if phase and phase != record.phase:
                record.phase_changes += 1
                record.phase_seen.setdefault(phase, at)
                record.phases.append(phase)
            record.phase = phase
            if phase in TERMINAL_PHASES and record.finished is None:
                record.finished, record.outcome = at, str(phase)
                self.finished += 1

    def on_task_job(self, kind: str, job: dict[str, Any], at: float) -> None:
        with self.lock:
            if kind == "ADDED":
                self.jobs_added += 1
                owner = (job["metadata"].get("labels") or {}).get(TASK_LABEL)
                if owner:
                    record = self.tasks.setdefault(owner, TaskRecord())
                    if record.job_added is None:
                        record.job_added = at
            elif kind == "DELETED":
                self.jobs_deleted += 1

    def activity(self) -> tuple[int, int, int]:
        with self.lock:
            modified = sum(r.modified for r in self.tasks.values())
            return modified, self.jobs_added, self.jobs_deleted


# ----- creating ---------------------------------------------------------------------------------
def retried(call: Callable[[], T]) -> T:
    """`call()`, tried again after a growing pause while the API server answers 429 or 5xx (six
    tries at most)."""
    for attempt in range(5):
        try:
            return call()
        except ApiException as error:
            if error.status not in RETRIABLE_STATUS:
                raise
            time.sleep(0.2 * 2**attempt)
    return call()


def create_all(
    names: list[str], create: Callable[[str], None], threads: int
) -> tuple[float, float]:
    """Create every object from a thread pool; returns (start, end) on the monotonic clock."""

    def one(name: str) -> None:
        retried(lambda: create(name))

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="create") as pool:
        for future in as_completed([pool.submit(one, name) for name in names]):
            future.result()
    return start, time.monotonic()


def wait_until_finished(
    label: str,
    observed: Observations,
    total: int,
    *,
    created_at: float,
    timeout: float,
    watches: list[RawWatch],
    on_tick: Callable[[], None] | None = None,
) -> None:
    deadline = created_at + timeout
    last_report = time.monotonic()
    while True:
        for watch in watches:
            watch.check()
        if on_tick is not None:
            on_tick()
        with observed.lock:
            finished = observed.finished
        if finished >= total:
            return
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"{label}: only {finished}/{total} finished after {timeout:.0f} s")
        if now - last_report >= 5:
            say(f"  {label}: {finished}/{total} finished after {now - created_at:.0f} s")
            last_report = now
        time.sleep(0.05)


def wait_quiet(observed: Observations, quiet: float, limit: float) -> None:
    """Wait until the watches saw no write for `quiet` seconds (late status writes, Events)."""
    end = time.monotonic() + limit
    last = observed.activity()
    still_since = time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.25)
        now = observed.activity()
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            return


# ----- manifests --------------------------------------------------------------------------------
def bare_job(name: str, duration: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": {DURATION_ANNOTATION: duration}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox", "command": ["true"]}],
                },
            },
        },
    }


def zero_task(name: str, duration: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Task",
        "metadata": {"name": name},
        "spec": {
            "container": {"image": "busybox", "command": ["true"]},
            "podTemplate": {"metadata": {"annotations": {DURATION_ANNOTATION: duration}}},
        },
    }


# ----- API server request counters --------------------------------------------------------------
REQUEST_LINE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION"})
WATCHED_RESOURCES = {
    ("execflow.dev", "tasks"),
    ("execflow.dev", "workflows"),
    ("batch", "jobs"),
    ("", "events"),
}


def request_totals(api: client.ApiClient) -> list[tuple[dict[str, str], float]]:
    """The API server's apiserver_request_total samples from its /metrics: (labels, value)."""
    response = api.call_api(
        "/metrics",
        "GET",
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
    )
    totals = []
    for line in response.data.decode().splitlines():
        match = REQUEST_LINE.match(line)
        if match is not None:
            totals.append((dict(LABEL.findall(match["labels"])), float(match["value"])))
    return totals


def apiserver_requests(api: client.ApiClient) -> Counter[str]:
    """Mutating request counts for tasks, workflows, jobs and core events:
    `VERB group/resource[/sub]`."""
    counts: Counter[str] = Counter()
    for labels, value in request_totals(api):
        verb, group, resource = labels.get("verb"), labels.get("group", ""), labels.get("resource")
        if verb not in MUTATING or (group, resource) not in WATCHED_RESOURCES:
            continue
        subresource = labels.get("subresource", "")
        key = f"{verb} {group or 'core'}/{resource}" + (f"/{subresource}" if subresource else "")
        counts[key] += int(value)
    return counts


# ----- the report -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Percentiles:
    p50: float | None
    p99: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles:
        return cls(_round(percentile(values, 50)), _round(percentile(values, 99)))


@dataclass(frozen=True)
class Latency:
    p50: float | None
    p99: float | None
    max: float | None
    samples: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Latency:
        spread = Percentiles.of(values)
        return cls(spread.p50, spread.p99, _round(max(values, default=None)), len(values))


@dataclass(frozen=True)
class Run:
    """N objects (the bare Jobs, or the Tasks) from the first create until the watch has seen the
    last one finish; outcomes by Job condition or Task phase."""

    namespace: str
    create_seconds: float
    elapsed_seconds: float
    per_second: float
    outcomes: dict[str, int]
    added_to_finished_seconds: Percentiles


@dataclass(frozen=True)
class TaskToJobLatency:
    """Task created -> its first Job created: between the two watch ADDED events, and between
    the two creationTimestamps (whole seconds)."""

    watch_seconds: Latency
    api_timestamps_seconds: Latency


@dataclass(frozen=True)
class PhaseTimings:
    """Where a Task's time goes, from when the watch first saw each phase; the phase sequences
    seen, and a few Tasks whose sequence was not the usual one."""

    added_to_queued: Percentiles
    queued_to_job_added: Percentiles
    job_added_to_running: Percentiles
    running_to_completed: Percentiles
    sequences: dict[str, int]
    unusual_examples: tuple[str, ...]


@dataclass(frozen=True)
class ObservedWrites:
    """The operator's writes as the watches and the Event listing of the Task namespace saw them."""

    job_creates: int
    job_deletes: int
    task_status_writes: int
    events: int
    total: int
    per_task: float


@dataclass(frozen=True)
class RequestedWrites:
    """The same from the API server's request counters: exact on a private cluster only."""

    scope: str
    delta: dict[str, int]
    operator_task_requests: int
    operator_job_requests: int
    events: int
    per_task: float


@dataclass(frozen=True)
class CrossChecks:
    """The operator's own counters: attempts must equal the Job creates, transitions the phase
    changes the watch saw."""

    attempts: int
    transitions: int
    phase_changes_seen: int


@dataclass(frozen=True)
class Writes:
    """API writes per Task with their cross-checks, counted after the writes went quiet."""

    observed: ObservedWrites
    requests: RequestedWrites
    cross_checks: CrossChecks
    event_sources: dict[str, int]
    settle_seconds: float


@dataclass(frozen=True)
class OperatorFigures:
    max_concurrent_tasks: int
    cpu_seconds: float | None
    cpu_ms_per_task: float | None
    """Target: at most 5."""
    task_reconciles_per_task: float
    peak_rss_mb: float | None
    listed_at_start: str
    tasks_elsewhere_at_start: int


@dataclass(frozen=True)
class Environment:
    cluster: str
    cpus: int | None
    python: str
    kubernetes: str
    revision: str
    load_average_at_start: tuple[float, ...]
    load_average_at_end: tuple[float, ...]

    @classmethod
    def at_end(
        cls, cluster: str, kubernetes: str, load_average_at_start: tuple[float, ...]
    ) -> Environment:
        """Where a run ran, read as it ends (this checkout's revision, the load average now)."""
        return cls(
            cluster=cluster,
            cpus=os.cpu_count(),
            python=platform.python_version(),
            kubernetes=kubernetes,
            revision=harness.revision(ROOT),
            load_average_at_start=load_average_at_start,
            load_average_at_end=harness.load_average(),
        )


@dataclass(frozen=True)
class Report:
    benchmark: str
    command: str
    time: str
    count: int
    duration: str
    threads: int
    environment: Environment
    jobs: Run
    tasks: Run
    ratio: float
    kueue: Any
    """The same Jobs admitted through Kueue (kueue_peer.KueueRun), None with --no-kueue."""
    kueue_ratio: float | None
    latency: TaskToJobLatency
    phases: PhaseTimings
    writes: Writes
    operator: OperatorFigures
    nodes: NodeHealth
    notes: tuple[str, ...]


def findings(
    tasks: Run, phases: PhaseTimings, writes: Writes, tasks_listed_at_start: int
) -> tuple[str, ...]:
    """What makes the figures suspect: disagreeing cross-checks, odd phase orders, failures."""
    notes = []
    checks, jobs_created = writes.cross_checks, writes.observed.job_creates
    if checks.transitions != checks.phase_changes_seen:
        notes.append(
            f"the operator counted {checks.transitions} phase transitions but the watch saw "
            f"{checks.phase_changes_seen} phase changes: it patched a phase the Task already had, "
            "or another execflow operator wrote to the namespace"
        )
    if checks.attempts != jobs_created:
        notes.append(
            f"the operator counted {checks.attempts} attempts but {jobs_created} Jobs were "
            "created in the namespace: another execflow operator created some"
        )
    unusual = {s: n for s, n in phases.sequences.items() if s not in USUAL_PHASES}
    if unusual:
        notes.append(
            f"phase sequences other than {' or '.join(sorted(USUAL_PHASES))}: {unusual} "
            f"(e.g. {', '.join(phases.unusual_examples)})"
        )
    if sum(tasks.outcomes.values()) != tasks.outcomes.get("Completed", 0):
        notes.append(f"not every Task completed: {tasks.outcomes}")
    if tasks_listed_at_start:
        notes.append(
            f"the operator took in {tasks_listed_at_start} Tasks when it started although its "
            "namespace was empty: --namespace did not confine it"
        )
    return tuple(notes)


# ----- the phases -------------------------------------------------------------------------------
def summarize_run(
    namespace: str,
    start: float,
    created: float,
    records: Sequence[JobRecord | TaskRecord],
    count: int,
) -> Run:
    end = max(r.finished for r in records if r.finished is not None)
    return Run(
        namespace=namespace,
        create_seconds=round(created - start, 3),
        elapsed_seconds=round(end - start, 3),
        per_second=round(count / (end - start), 2),
        outcomes=dict(Counter(r.outcome for r in records if r.outcome)),
        added_to_finished_seconds=Percentiles.of(
            [r.finished - r.added for r in records if r.finished and r.added]
        ),
    )


def run_jobs(api: client.ApiClient, namespace: str, args: argparse.Namespace) -> Run:
    batch = client.BatchV1Api(api)
    names = [f"job-{index:05d}" for index in range(args.count)]
    observed = Observations()

    def list_jobs(**kwargs: Any) -> Any:
        return batch.list_namespaced_job(namespace, **kwargs)

    watch = RawWatch("jobs", list_jobs, list_resource_version(list_jobs), observed.on_bare_job)
    watch.start()

    def create(name: str) -> None:
        drain(
            batch.create_namespaced_job(
                namespace, bare_job(name, args.duration), _preload_content=False
            )
        )

    say(f"phase 1: creating {args.count} bare Jobs in {namespace}")
    try:
        start, created = create_all(names, create, args.threads)
        say(f"  created in {created - start:.1f} s")
        wait_until_finished(
            "Jobs", observed, args.count, created_at=start, timeout=args.timeout, watches=[watch]
        )
    finally:
        watch.stop()
    return summarize_run(namespace, start, created, list(observed.jobs.values()), args.count)


@dataclass(frozen=True)
class Snapshot:
    """Counters read before and after the Task run: the figures are their differences."""

    cpu_seconds: float | None
    attempts: float
    transitions: float
    reconciles: float
    requests: Counter[str]

    @classmethod
    def take(cls, api: client.ApiClient, operator: harness.OperatorProcess) -> Snapshot:
        return cls(
            cpu_seconds=operator.cpu_seconds(),
            attempts=operator.metric(ATTEMPTS_METRIC) or 0.0,
            transitions=operator.metric(TRANSITIONS_METRIC) or 0.0,
            reconciles=operator.metric(RECONCILES_METRIC, controller="tasks") or 0.0,
            requests=apiserver_requests(api),
        )


@dataclass(frozen=True)
class TaskMeasurements:
    run: Run
    latency: TaskToJobLatency
    phases: PhaseTimings
    writes: Writes
    cpu_seconds: float | None
    reconciles: int


def task_to_job_latency(
    records: Iterable[TaskRecord], tasks: list[dict[str, Any]], jobs: list[dict[str, Any]]
) -> TaskToJobLatency:
    first_job: dict[str, datetime.datetime] = {}
    for job in jobs:
        labels = job["metadata"].get("labels") or {}
        if labels.get(ATTEMPT_LABEL) == "1" and labels.get(TASK_LABEL):
            first_job[labels[TASK_LABEL]] = parse_time(job["metadata"]["creationTimestamp"])
    stamps = [
        (
            first_job[t["metadata"]["name"]] - parse_time(t["metadata"]["creationTimestamp"])
        ).total_seconds()
        for t in tasks
        if t["metadata"]["name"] in first_job
    ]
    seen = [r.job_added - r.added for r in records if r.job_added and r.added]
    return TaskToJobLatency(
        watch_seconds=Latency.of(seen), api_timestamps_seconds=Latency.of(stamps)
    )


def phase_timings(tasks: dict[str, TaskRecord]) -> PhaseTimings:
    records = list(tasks.values())

    def stage(
        first: Callable[[TaskRecord], float | None], then: Callable[[TaskRecord], float | None]
    ) -> Percentiles:
        return Percentiles.of(
            [b - a for r in records if (a := first(r)) is not None and (b := then(r)) is not None]
        )

    return PhaseTimings(
        added_to_queued=stage(lambda r: r.added, lambda r: r.phase_seen.get("Queued")),
        queued_to_job_added=stage(lambda r: r.phase_seen.get("Queued"), lambda r: r.job_added),
        job_added_to_running=stage(lambda r: r.job_added, lambda r: r.phase_seen.get("Running")),
        running_to_completed=stage(
            lambda r: r.phase_seen.get("Running"), lambda r: r.phase_seen.get("Completed")
        ),
        sequences=dict(Counter(" > ".join(r.phases) for r in records)),
        unusual_examples=tuple(
            name for name, r in tasks.items() if " > ".join(r.phases) not in USUAL_PHASES
        )[:3],
    )


def count_writes(
    observed: Observations,
    events: list[dict[str, Any]],
    before: Snapshot,
    after: Snapshot,
    *,
    count: int,
    scope: str,
    settle_seconds: float,
) -> Writes:
    sources: Counter[str] = Counter()
    for event in events:
        component = (event.get("source") or {}).get("component") or event.get("reportingComponent")
        sources[str(component or "unknown")] += 1
    operator_events = sum(n for c, n in sources.items() if c in OPERATOR_COMPONENTS)
    status_writes = sum(r.modified for r in observed.tasks.values())
    total = observed.jobs_added + observed.jobs_deleted + status_writes + operator_events
    delta = {
        key: after.requests[key] - before.requests[key]
        for key in sorted(after.requests)
        if after.requests[key] - before.requests[key]
    }
    task_requests = sum(v for k, v in delta.items() if "execflow.dev/tasks" in k)
    job_requests = sum(
        v for k, v in delta.items() if k.startswith(("POST batch/jobs", "DELETE batch/jobs"))
    )
    # The benchmark's own creates are POST execflow.dev/tasks: not the operator's.
    operator_task_requests = task_requests - delta.get("POST execflow.dev/tasks", 0)
    return Writes(
        observed=ObservedWrites(
            job_creates=observed.jobs_added,
            job_deletes=observed.jobs_deleted,
            task_status_writes=status_writes,
            events=operator_events,
            total=total,
            per_task=round(total / count, 3),
        ),
        # Core Events posts include the Job controller's: Events come from the listing here too.
        requests=RequestedWrites(
            scope=scope,
            delta=delta,
            operator_task_requests=operator_task_requests,
            operator_job_requests=job_requests,
            events=operator_events,
            per_task=round((operator_task_requests + job_requests + operator_events) / count, 3),
        ),
        cross_checks=CrossChecks(
            attempts=int(after.attempts - before.attempts),
            transitions=int(after.transitions - before.transitions),
            phase_changes_seen=sum(r.phase_changes for r in observed.tasks.values()),
        ),
        event_sources=dict(sources),
        settle_seconds=round(settle_seconds, 2),
    )


def run_tasks(
    api: client.ApiClient,
    namespace: str,
    operator: harness.OperatorProcess,
    args: argparse.Namespace,
    scope: str,
) -> TaskMeasurements:
    custom = client.CustomObjectsApi(api)
    batch = client.BatchV1Api(api)
    core = client.CoreV1Api(api)
    names = [f"task-{index:05d}" for index in range(args.count)]
    observed = Observations()

    def list_tasks(**kwargs: Any) -> Any:
        return custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, **kwargs)

    def list_jobs(**kwargs: Any) -> Any:
        return batch.list_namespaced_job(namespace, **kwargs)

    watches = [
        RawWatch("tasks", list_tasks, list_resource_version(list_tasks), observed.on_task),
        RawWatch("task-jobs", list_jobs, list_resource_version(list_jobs), observed.on_task_job),
    ]
    for watch in watches:
        watch.start()

    def create(name: str) -> None:
        response = custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            zero_task(name, args.duration),
            _preload_content=False,
        )
        drain(response)

    def operator_alive() -> None:
        if not operator.running:
            raise RuntimeError(f"the operator exited during the run; log: {operator.log_path}")

    before = Snapshot.take(api, operator)
    say(f"phase 2: creating {args.count} Tasks in {namespace}")
    try:
        start, created = create_all(names, create, args.threads)
        say(f"  created in {created - start:.1f} s")
        wait_until_finished(
            "Tasks",
            observed,
            args.count,
            created_at=start,
            timeout=args.timeout,
            watches=watches,
            on_tick=operator_alive,
        )
        finish = time.monotonic()
        wait_quiet(observed, quiet=3, limit=30)
    finally:
        for watch in watches:
            watch.stop()
    settled = time.monotonic()
    after = Snapshot.take(api, operator)
    # Timestamps as the API server recorded them (1 s resolution).
    tasks = raw(list_tasks(_preload_content=False))["items"]
    jobs = raw(list_jobs(_preload_content=False))["items"]
    events = raw(core.list_namespaced_event(namespace, _preload_content=False))["items"]
    return TaskMeasurements(
        run=summarize_run(namespace, start, created, list(observed.tasks.values()), args.count),
        latency=task_to_job_latency(observed.tasks.values(), tasks, jobs),
        phases=phase_timings(observed.tasks),
        writes=count_writes(
            observed,
            events,
            before,
            after,
            count=args.count,
            scope=scope,
            settle_seconds=settled - finish,
        ),
        cpu_seconds=None
        if before.cpu_seconds is None or after.cpu_seconds is None
        else round(after.cpu_seconds - before.cpu_seconds, 2),
        reconciles=int(after.reconciles - before.reconciles),
    )


# ----- the operator -----------------------------------------------------------------------------
def operator_settings(max_concurrent: int, max_queued: int) -> str:
    return yaml.safe_dump(
        {
            "queues": {
                "default": {"maxConcurrentTasks": max_concurrent, "maxQueuedTasks": max_queued}
            }
        }
    )


def wait_listed(operator: harness.OperatorProcess, timeout: float) -> re.Match[str]:
    """The operator's "listed N tools, M tasks, ..." log line, once its caches are filled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not operator.running:
            raise RuntimeError(f"the operator exited while starting; log: {operator.log_path}")
        if listed := LISTED.search(operator.log_text()):
            return listed
        time.sleep(0.2)
    raise RuntimeError(
        f"the operator did not fill its caches within {timeout:.0f} s; log: {operator.log_path}"
    )


# ----- one run ----------------------------------------------------------------------------------


def run_through_kueue(
    api: client.ApiClient, cluster: harness.Cluster, namespaces: list[str], args: Any
) -> Any:
    """The same N Jobs admitted by Kueue (built from its Go module and run next to the cluster;
    the first run builds it, which takes minutes). Kueue stops before the Task phase."""
    from execflow.devcluster import kueue
    from kueue_peer import kueue_running, run_kueue_jobs  # it imports this module

    namespace = harness.create_namespace(api, "bench-kueue", labels=NAMESPACE_LABELS)
    namespaces.append(namespace)
    with kueue_running(cluster.kubeconfig, api, say) as process:
        run = run_kueue_jobs(
            api,
            namespace,
            args.count,
            args.threads,
            args.duration,
            timeout=args.timeout,
            process=process,
        )
        if cluster.mode != "private":
            kueue.remove_queues(api, namespace)
    return run


def measure(
    api: client.ApiClient,
    cluster: harness.Cluster,
    args: argparse.Namespace,
    load_at_start: tuple[float, ...],
) -> Report:
    """Both phases on cluster. The benchmark's namespaces are removed afterwards unless the
    cluster is private (it goes as a whole) or --keep-namespaces; the operator's folder (settings
    and log) is kept when the run fails."""
    server = client.VersionApi(api).get_code().git_version
    namespaces: list[str] = []
    operator: harness.OperatorProcess | None = None
    succeeded = False
    recorder = NodeHealthRecorder(api)
    try:
        for stem in ("bench-jobs", "bench-tasks"):
            namespaces.append(harness.create_namespace(api, stem, labels=NAMESPACE_LABELS))
        jobs_ns, tasks_ns = namespaces
        recorder.start()
        jobs = run_jobs(api, jobs_ns, args)
        kueue_jobs = None if args.no_kueue else run_through_kueue(api, cluster, namespaces, args)

        # The default queue holds and runs all N at once: the operator is measured, not a limit.
        limit = max(1000, args.count)
        operator = harness.OperatorProcess(
            cluster.kubeconfig,
            Path(tempfile.mkdtemp(prefix="execflow-bench-")),
            operator_settings(limit, max(10000, args.count)),
            namespaces=[tasks_ns],
            command=shlex.split(args.operator_command)
            if args.operator_command
            else harness.OPERATOR_COMMAND,
        )
        elsewhere = count_tasks(api)
        say(f"starting the operator for namespace {tasks_ns} ({elsewhere} Tasks elsewhere)")
        operator.start(timeout=120)
        listed = wait_listed(operator, timeout=120)
        scope = "private cluster" if cluster.mode == "private" else "cluster-wide"
        tasks = run_tasks(api, tasks_ns, operator, args, scope)
        nodes = recorder.stop()
        peak_rss = operator.peak_rss_bytes()

        report = Report(
            benchmark="task_throughput",
            command=" ".join([Path(sys.executable).name, *sys.argv]),
            time=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            count=args.count,
            duration=args.duration,
            threads=args.threads,
            environment=Environment.at_end(cluster.mode, server, load_at_start),
            jobs=jobs,
            tasks=tasks.run,
            ratio=round(tasks.run.per_second / jobs.per_second, 3),
            kueue=kueue_jobs,
            kueue_ratio=None
            if kueue_jobs is None
            else round(kueue_jobs.run.per_second / jobs.per_second, 3),
            latency=tasks.latency,
            phases=tasks.phases,
            writes=tasks.writes,
            operator=OperatorFigures(
                max_concurrent_tasks=limit,
                cpu_seconds=tasks.cpu_seconds,
                cpu_ms_per_task=None
                if tasks.cpu_seconds is None
                else round(tasks.cpu_seconds * 1000 / args.count, 2),
                task_reconciles_per_task=round(tasks.reconciles / args.count, 2),
                peak_rss_mb=None if peak_rss is None else round(peak_rss / 2**20, 1),
                listed_at_start=listed[0],
                tasks_elsewhere_at_start=elsewhere,
            ),
            nodes=nodes,
            notes=(
                *findings(tasks.run, tasks.phases, tasks.writes, int(listed[2])),
                *([nodes.flag] if nodes.flag else []),
            ),
        )
        succeeded = True
        return report
    finally:
        recorder.stop()
        if operator is not None:
            operator.stop()
            if succeeded:
                shutil.rmtree(operator.directory, ignore_errors=True)
            else:
                tail = "\n".join(operator.log_text().splitlines()[-20:])
                say(f"operator log kept: {operator.log_path}\n{tail}")
        if namespaces and cluster.mode != "private" and not args.keep_namespaces:
            say(f"deleting namespaces {', '.join(namespaces)}")
            for name in namespaces:
                harness.delete_namespace(api, name)
            remaining = harness.wait_namespaces_gone(api, namespaces, timeout=180)
            if remaining:
                say(f"namespaces still terminating (left to the cluster): {', '.join(remaining)}")


# ----- reporting --------------------------------------------------------------------------------
def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}{unit}" if abs(value) < 10 else f"{value:.1f}{unit}"
    return f"{value}{unit}"


def print_table(report: Report, written_to: Path) -> None:
    jobs, tasks = report.jobs, report.tasks
    rows = [
        ("", "bare Jobs", "Tasks"),
        ("created in", _fmt(jobs.create_seconds, " s"), _fmt(tasks.create_seconds, " s")),
        ("all finished after", _fmt(jobs.elapsed_seconds, " s"), _fmt(tasks.elapsed_seconds, " s")),
        ("throughput", _fmt(jobs.per_second, " /s"), _fmt(tasks.per_second, " /s")),
        (
            "ADDED -> finished p50",
            _fmt(jobs.added_to_finished_seconds.p50, " s"),
            _fmt(tasks.added_to_finished_seconds.p50, " s"),
        ),
        (
            "ADDED -> finished p99",
            _fmt(jobs.added_to_finished_seconds.p99, " s"),
            _fmt(tasks.added_to_finished_seconds.p99, " s"),
        ),
    ]
    width = max(len(r[0]) for r in rows) + 2
    environment = report.environment
    print(
        f"\nexecflow task throughput: N={report.count}, cluster {environment.cluster}, "
        f"{environment.cpus} CPUs, load average {environment.load_average_at_start[0]} "
        f"at start, {environment.load_average_at_end[0]} at end"
    )
    for label, left, right in rows:
        print(f"  {label:<{width}}{left:>12}{right:>12}")
    print(f"  {'ratio tasks/s / jobs/s':<{width}}{'':>12}{_fmt(report.ratio):>12}")
    if report.kueue is not None:
        peer = report.kueue
        print(
            f"  the same Jobs through Kueue {peer.kueue_version}: {_fmt(peer.run.per_second)} /s "
            f"(ratio to bare Jobs {_fmt(report.kueue_ratio)}), created -> admitted "
            f"p50 {_fmt(peer.added_to_admitted_seconds.p50, ' s')}"
        )
    print("  Task stages seen on the watch:")
    phases = report.phases
    for name, spans in (
        ("added -> queued", phases.added_to_queued),
        ("queued -> job added", phases.queued_to_job_added),
        ("job added -> running", phases.job_added_to_running),
        ("running -> completed", phases.running_to_completed),
    ):
        print(f"    {name:<24} p50 {_fmt(spans.p50, ' s'):>8}  p99 {_fmt(spans.p99, ' s'):>8}")
    watch, stamps = report.latency.watch_seconds, report.latency.api_timestamps_seconds
    print(
        f"  Task -> Job latency (watch ADDED)       p50 {_fmt(watch.p50, ' s')}, "
        f"p99 {_fmt(watch.p99, ' s')}, max {_fmt(watch.max, ' s')}"
    )
    print(
        f"  Task -> Job latency (creationTimestamp) p50 {_fmt(stamps.p50)} s, "
        f"p99 {_fmt(stamps.p99)} s, max {_fmt(stamps.max)} s (1 s resolution)"
    )
    seen, counted = report.writes.observed, report.writes.requests
    print(
        f"  operator writes per task (observed)    {seen.per_task:.2f} = "
        f"job creates {seen.job_creates} + job deletes {seen.job_deletes} + "
        f"status writes {seen.task_status_writes} + Events {seen.events}, / {report.count}"
    )
    print(
        f"  operator write requests per task (API server, {counted.scope}) "
        f"{counted.per_task:.2f} = tasks {counted.operator_task_requests} + "
        f"jobs {counted.operator_job_requests} + Events {counted.events}, / {report.count}"
    )
    checks = report.writes.cross_checks
    print(
        f"  operator counters: attempts {checks.attempts}, transitions {checks.transitions} "
        f"(phase changes seen {checks.phase_changes_seen}), "
        f"CPU {_fmt(report.operator.cpu_seconds, ' s')}"
    )
    figures = report.operator
    print(
        f"  operator CPU per task {_fmt(figures.cpu_ms_per_task, ' ms')} (target <= 5), "
        f"Task reconciles per task {figures.task_reconciles_per_task:.2f}, "
        f"peak RSS {_fmt(figures.peak_rss_mb, ' MB')}"
    )
    health = report.nodes
    print(
        f"  nodes: {health.not_ready_transitions} Ready -> NotReady changes "
        f"({', '.join(health.nodes_ever_not_ready) or 'none NotReady'}); Events from the "
        f"node controller {health.node_controller_events}, taint eviction "
        f"{health.taint_eviction_events}"
    )
    for note in report.notes:
        print(f"  NOTE: {note}")
    print(f"  written to {written_to}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="Jobs and Tasks each (1000)")
    harness.add_cluster_options(parser)
    parser.add_argument("--threads", type=int, default=32, help="client create threads (32)")
    parser.add_argument("--duration", default="0s", help="simulated container run time (0s)")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds per phase (default 120 + 0.5 x N)"
    )
    parser.add_argument(
        "--operator-command",
        help="the command whose `run` subcommand starts the operator (default: this "
        "interpreter with `-m execflow.cli.main`)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="JSON results file")
    parser.add_argument(
        "--keep-namespaces", action="store_true", help="leave the benchmark namespaces behind"
    )
    parser.add_argument(
        "--no-kueue", action="store_true", help="skip the run of the same Jobs through Kueue"
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be positive")
    if args.timeout is None:
        args.timeout = 120 + 0.5 * args.count
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Before a private cluster starts: the load the machine had without this run.
    load_at_start = harness.load_average()
    with harness.cluster_from_options(args, say) as cluster:
        api = harness.connect(cluster.kubeconfig, pool_size=args.threads + 8, with_crds=True)
        try:
            report = measure(api, cluster, args, load_at_start)
        finally:
            api.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print_table(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
