"""Task throughput: execflow Tasks next to bare Jobs on the same cluster, in the same run.

Why this exists: a Task is a Job plus bookkeeping (a queue, status writes, Events). That bookkeeping
must not make execflow the bottleneck of a cluster, and absolute figures depend on the machine, so
the benchmark measures bare batch/v1 Jobs in the same run and reports Tasks relative to them. It is
a measurement, not a test: it asserts nothing and prints a table; the figures are also written as
JSON to benchmarks/results/task_throughput.json.

One run:

1. Jobs. N bare Jobs (backoffLimit 0, one pod `busybox true` with the simulation annotation
   `sim.execflow.dev/duration: 0s`) are created in a fresh namespace by a pool of client threads.
   The clock runs from the first create until a watch on the namespace has seen every Job with its
   Complete (or Failed) condition: jobs/s = N / elapsed.
2. Tasks. The operator is started (`execflow run --namespace <ns> --settings <file>`, the default
   queue's maxConcurrentTasks raised to at least N, so that the operator is measured and not the
   limit). N Tasks with the same container and annotation are created the same way in another fresh
   namespace; the clock stops when a watch has seen every Task in a terminal phase:
   tasks/s = N / elapsed, and the ratio tasks/s / jobs/s.
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
   Running -> Completed, and the order of its phases; any order but Queued > Running > Completed
   is reported.

The cluster: by default the project's local control plane (`execflow cluster up`, reused when it
runs and never stopped here); `--kubeconfig` points at any other cluster; `--cluster private`
starts a separate local control plane in a temporary directory for the run and removes it at the
end. The benchmark's operator watches only its own namespace (checked: it must report zero Tasks
when it has filled its store, although Tasks exist elsewhere), so it leaves other users of a
shared cluster alone. The reverse does not hold: an execflow operator that watches all namespaces
(an integration test run, a manual `execflow run`) also reconciles the benchmark's Tasks. The
cross-checks then disagree (attempts and transitions counted by the benchmark's operator against
Jobs and phase changes seen) and the run is flagged; use `--cluster private` for clean figures.

Run from the repository root with the project's virtualenv:

    .venv/bin/python benchmarks/task_throughput.py [--count 1000] [--cluster shared|private]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

from execflow.kube.crds import install_crds

ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = ROOT / "benchmarks" / "results" / "task_throughput.json"
GROUP, VERSION, PLURAL = "execflow.dev", "v1alpha1", "tasks"
TASK_LABEL = "execflow.dev/task"
ATTEMPT_LABEL = "execflow.dev/attempt"
DURATION_ANNOTATION = "sim.execflow.dev/duration"
TERMINAL_PHASES = frozenset({"Completed", "Failed", "Cancelled", "Timeout"})
OPERATOR_COMPONENTS = frozenset({"execflow", "kopf"})
RETRIABLE_STATUS = frozenset({429, 500, 502, 503, 504})


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[rank]


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def execflow_command() -> list[str]:
    """The `execflow` entry point of the interpreter running this script."""
    script = Path(sys.executable).parent / "execflow"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "execflow.cli.main"]


# ----- the cluster ------------------------------------------------------------------------------
class Cluster:
    """The cluster the benchmark runs on: shared local, private local, or a given kubeconfig."""

    def __init__(self, mode: str, kubeconfig: str | None) -> None:
        self.mode = "external" if kubeconfig else mode
        self.kubeconfig = Path(kubeconfig) if kubeconfig else None
        self.state_dir: Path | None = None

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.state_dir is not None:
            env["EXECFLOW_STATE_DIR"] = str(self.state_dir)
        return env

    def up(self) -> Path:
        if self.kubeconfig is not None:
            return self.kubeconfig
        if self.mode == "private":
            self.state_dir = Path(tempfile.mkdtemp(prefix="execflow-bench-cluster-"))
            say(f"starting a private local control plane in {self.state_dir}")
        # Progress goes to stderr (passed through); the kubeconfig path is stdout's last line.
        done = subprocess.run(
            [*execflow_command(), "cluster", "up"],
            env=self._env(),
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
        self.kubeconfig = Path(done.stdout.strip().splitlines()[-1])
        return self.kubeconfig

    def down(self) -> None:
        """Stop the cluster only when this run started it (private mode)."""
        if self.state_dir is None:
            return
        say("stopping the private control plane")
        subprocess.run(
            [*execflow_command(), "cluster", "down"],
            env=self._env(),
            stdout=subprocess.DEVNULL,
            check=False,
        )
        shutil.rmtree(self.state_dir, ignore_errors=True)


def api_client_for(kubeconfig: Path, pool_size: int) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


def raw(response: Any) -> Any:
    """JSON of a `_preload_content=False` reply (skips the slow model deserialisation)."""
    return json.loads(response.data)


def drain(response: Any) -> None:
    """Read a `_preload_content=False` reply to its end, so its connection can be reused."""
    response.read()
    response.release_conn()


def create_namespace(api: client.ApiClient, name: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name, "labels": {"execflow.dev/benchmark": "1"}}})
    # Pods are refused until the namespace's default ServiceAccount exists.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        accounts = raw(core.list_namespaced_service_account(name, _preload_content=False))
        if any(sa["metadata"]["name"] == "default" for sa in accounts["items"]):
            return
        time.sleep(0.2)
    raise RuntimeError(f"no default ServiceAccount in {name} after 60 s")


def delete_namespaces(api: client.ApiClient, names: list[str], timeout: float) -> None:
    core = client.CoreV1Api(api)
    for name in names:
        with contextlib.suppress(ApiException):
            core.delete_namespace(name, propagation_policy="Background")
    deadline = time.monotonic() + timeout
    remaining = list(names)
    while remaining and time.monotonic() < deadline:
        still = []
        for name in remaining:
            try:
                drain(core.read_namespace(name, _preload_content=False))
                still.append(name)
            except ApiException as error:
                if error.status != 404:
                    still.append(name)
        remaining = still
        if remaining:
            time.sleep(1)
    if remaining:
        say(f"namespaces still terminating (left to the cluster): {', '.join(remaining)}")


def count_tasks(api: client.ApiClient) -> int:
    """Tasks in the whole cluster."""
    custom = client.CustomObjectsApi(api)
    reply = raw(custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, _preload_content=False))
    return len(reply["items"])


# ----- watching ---------------------------------------------------------------------------------
class RawWatch(threading.Thread):
    """A watch from a known resourceVersion that hands each event (as JSON) to a callback.

    Raw JSON rather than client models: deserialising thousands of Jobs into models would cost the
    benchmark more CPU than the operator it measures. A watch that expires (410) is an error, not
    something to paper over, because lost events would falsify the counts.
    """

    def __init__(
        self,
        name: str,
        list_call: Callable[..., Any],
        resource_version: str,
        on_event: Callable[[str, dict[str, Any], float], None],
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.list_call = list_call
        self.resource_version = resource_version
        self.on_event = on_event
        self.error: BaseException | None = None
        self._stopping = threading.Event()
        self._response: Any = None

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                response = self.list_call(
                    watch=True,
                    resource_version=self.resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=30,
                    _preload_content=False,
                )
                self._response = response
                try:
                    for line in iter_resp_lines(response):
                        if not line:
                            continue
                        event = json.loads(line)
                        kind, body = event["type"], event["object"]
                        if kind == "ERROR":
                            raise RuntimeError(f"watch {self.name} ended: {body.get('message')}")
                        self.resource_version = body["metadata"]["resourceVersion"]
                        if kind != "BOOKMARK":
                            self.on_event(kind, body, time.monotonic())
                finally:
                    # Closed, not returned to the pool: it may have stopped mid-stream.
                    response.close()
                    response.release_conn()
        except Exception as error:  # reported by check(); a stopped watch is no error
            if not self._stopping.is_set():
                self.error = error

    def check(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"watch {self.name} failed: {self.error}") from self.error

    def stop(self) -> None:
        self._stopping.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()


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
def create_all(
    names: list[str], create: Callable[[str], None], threads: int
) -> tuple[float, float]:
    """Create every object from a thread pool; returns (start, end) on the monotonic clock."""

    def one(name: str) -> None:
        for attempt in range(6):
            try:
                create(name)
                return
            except ApiException as error:
                if error.status not in RETRIABLE_STATUS or attempt == 5:
                    raise
                time.sleep(0.2 * 2**attempt)

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


# ----- the operator -----------------------------------------------------------------------------
class OperatorProcess:
    """`execflow run` for one namespace, as a subprocess with its own log and metrics port."""

    def __init__(
        self, command: list[str], kubeconfig: Path, namespace: str, settings: Path, log: Path
    ) -> None:
        self.command = command
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.settings = settings
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> None:
        args = [
            *self.command,
            "run",
            "--settings",
            str(self.settings),
            "--namespace",
            self.namespace,
            "--metrics-port",
            str(self.port),
        ]
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig))
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the operator exited with {self.process.returncode}: {self.tail()}"
                )
            # Ready once it serves metrics and has filled its store (the "primed" log line).
            if "primed:" in self.log.read_text(errors="replace"):
                with contextlib.suppress(OSError):
                    self.metrics_text()
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the operator was not ready after {timeout:.0f} s: {self.tail()}")

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def primed_line(self) -> str:
        for line in self.log.read_text(errors="replace").splitlines():
            if "primed:" in line:
                return line.split("primed:", 1)[1].strip()
        return ""

    def primed_tasks(self) -> int | None:
        """The Tasks the operator read when it started ("primed: N tools, M tasks")."""
        match = re.search(r"(\d+) tasks", self.primed_line())
        return int(match[1]) if match else None

    def metrics_text(self) -> str:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            text: str = reply.read().decode()
            return text

    def counters(self) -> dict[str, float]:
        """execflow_task_attempts_total and execflow_task_transitions_total, summed."""
        totals: Counter[str] = Counter()
        for line in self.metrics_text().splitlines():
            for name in ("execflow_task_attempts_total", "execflow_task_transitions_total"):
                if line.startswith((name + " ", name + "{")):
                    totals[name] += float(line.rsplit(" ", 1)[1])
        return dict(totals)

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the operator process so far (Linux only)."""
        if self.process is None:
            return None
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            say("the operator did not stop within 30 s of SIGTERM; killing it")
            self.process.kill()
            self.process.wait(10)


# ----- API server request counters --------------------------------------------------------------
REQUEST_LINE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION"})
WATCHED_RESOURCES = {("execflow.dev", "tasks"), ("batch", "jobs"), ("", "events")}


def apiserver_requests(api: client.ApiClient) -> Counter[str]:
    """Mutating request counts for tasks, jobs and core events: `VERB group/resource[/sub]`."""
    response = api.call_api(
        "/metrics",
        "GET",
        auth_settings=["BearerToken"],
        _preload_content=False,
        _return_http_data_only=True,
    )
    counts: Counter[str] = Counter()
    for line in response.data.decode().splitlines():
        match = REQUEST_LINE.match(line)
        if match is None:
            continue
        labels = dict(LABEL.findall(match["labels"]))
        verb, group, resource = labels.get("verb"), labels.get("group", ""), labels.get("resource")
        if verb not in MUTATING or (group, resource) not in WATCHED_RESOURCES:
            continue
        subresource = labels.get("subresource", "")
        key = f"{verb} {group or 'core'}/{resource}" + (f"/{subresource}" if subresource else "")
        counts[key] += int(float(match["value"]))
    return counts


# ----- the phases -------------------------------------------------------------------------------
def rate(count: int, seconds: float | None) -> float | None:
    return count / seconds if seconds else None


def run_jobs(api: client.ApiClient, namespace: str, args: argparse.Namespace) -> dict[str, Any]:
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
    end = max(r.finished for r in observed.jobs.values() if r.finished is not None)
    failed = sum(1 for r in observed.jobs.values() if r.outcome == "Failed")
    run_times = [r.finished - r.added for r in observed.jobs.values() if r.finished and r.added]
    return {
        "namespace": namespace,
        "create_seconds": round(created - start, 3),
        "elapsed_seconds": round(end - start, 3),
        "per_second": round(args.count / (end - start), 2),
        "failed": failed,
        "added_to_finished_seconds": {
            "p50": _round(percentile(run_times, 50)),
            "p99": _round(percentile(run_times, 99)),
        },
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def run_tasks(
    api: client.ApiClient,
    namespace: str,
    operator: OperatorProcess,
    args: argparse.Namespace,
) -> dict[str, Any]:
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
        assert operator.process is not None
        if operator.process.poll() is not None:
            raise RuntimeError(f"the operator exited during the run: {operator.tail()}")

    operator_before = operator.counters()
    cpu_before = operator.cpu_seconds()
    requests_before = apiserver_requests(api)
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
    cpu_after = operator.cpu_seconds()
    operator_after = operator.counters()
    requests_after = apiserver_requests(api)

    records = list(observed.tasks.values())
    end = max(r.finished for r in records if r.finished is not None)
    outcomes = Counter(r.outcome for r in records if r.outcome)
    run_times = [r.finished - r.added for r in records if r.finished and r.added]
    watch_latency = [r.job_added - r.added for r in records if r.job_added and r.added]

    def stage(
        first: Callable[[TaskRecord], float | None], then: Callable[[TaskRecord], float | None]
    ) -> dict[str, float | None]:
        spans = [
            b - a for r in records if (a := first(r)) is not None and (b := then(r)) is not None
        ]
        return {"p50": _round(percentile(spans, 50)), "p99": _round(percentile(spans, 99))}

    stages = {
        "added_to_queued": stage(lambda r: r.added, lambda r: r.phase_seen.get("Queued")),
        "queued_to_job_added": stage(lambda r: r.phase_seen.get("Queued"), lambda r: r.job_added),
        "job_added_to_running": stage(lambda r: r.job_added, lambda r: r.phase_seen.get("Running")),
        "running_to_completed": stage(
            lambda r: r.phase_seen.get("Running"), lambda r: r.phase_seen.get("Completed")
        ),
    }

    # Timestamps as the API server recorded them (1 s resolution).
    tasks = raw(list_tasks(_preload_content=False))["items"]
    jobs = raw(list_jobs(_preload_content=False))["items"]
    first_job: dict[str, datetime.datetime] = {}
    for job in jobs:
        labels = job["metadata"].get("labels") or {}
        if labels.get(ATTEMPT_LABEL) == "1" and labels.get(TASK_LABEL):
            first_job[labels[TASK_LABEL]] = parse_time(job["metadata"]["creationTimestamp"])
    api_latency = [
        (
            first_job[t["metadata"]["name"]] - parse_time(t["metadata"]["creationTimestamp"])
        ).total_seconds()
        for t in tasks
        if t["metadata"]["name"] in first_job
    ]

    events = raw(core.list_namespaced_event(namespace, _preload_content=False))["items"]
    event_sources: Counter[str] = Counter()
    for event in events:
        component = (event.get("source") or {}).get("component") or event.get("reportingComponent")
        event_sources[str(component or "unknown")] += 1
    operator_events = sum(n for c, n in event_sources.items() if c in OPERATOR_COMPONENTS)

    status_writes = sum(r.modified for r in records)
    phase_changes = sum(r.phase_changes for r in records)
    observed_writes = observed.jobs_added + observed.jobs_deleted + status_writes + operator_events
    request_delta = {
        key: requests_after[key] - requests_before.get(key, 0)
        for key in sorted(requests_after)
        if requests_after[key] - requests_before.get(key, 0)
    }
    task_requests = sum(v for k, v in request_delta.items() if "execflow.dev/tasks" in k)
    job_requests = sum(
        v
        for k, v in request_delta.items()
        if k.startswith(("POST batch/jobs", "DELETE batch/jobs"))
    )
    # The benchmark's own creates are POST execflow.dev/tasks: not the operator's.
    operator_task_requests = task_requests - request_delta.get("POST execflow.dev/tasks", 0)
    attempts = operator_after.get("execflow_task_attempts_total", 0) - operator_before.get(
        "execflow_task_attempts_total", 0
    )
    transitions = operator_after.get("execflow_task_transitions_total", 0) - operator_before.get(
        "execflow_task_transitions_total", 0
    )

    notes = []
    if int(transitions) != phase_changes:
        notes.append(
            f"the operator counted {int(transitions)} phase transitions but the watch saw "
            f"{phase_changes} phase changes: it patched a phase the Task already had, or "
            "another execflow operator wrote to the namespace"
        )
    if int(attempts) != observed.jobs_added:
        notes.append(
            f"the operator counted {int(attempts)} attempts but {observed.jobs_added} Jobs were "
            "created in the namespace: another execflow operator created some"
        )
    sequences = Counter(" > ".join(r.phases) for r in records)
    usual = " > ".join(("Queued", "Running", "Completed"))
    unusual = {sequence: n for sequence, n in sequences.items() if sequence != usual}
    if unusual:
        examples = [name for name, r in observed.tasks.items() if " > ".join(r.phases) != usual]
        notes.append(
            f"phase sequences other than {usual}: {unusual} (e.g. {', '.join(examples[:3])})"
        )
    if sum(outcomes.values()) != outcomes.get("Completed", 0):
        notes.append(f"not every Task completed: {dict(outcomes)}")

    count = args.count
    return {
        "namespace": namespace,
        "create_seconds": round(created - start, 3),
        "elapsed_seconds": round(end - start, 3),
        "per_second": round(count / (end - start), 2),
        "outcomes": dict(outcomes),
        "added_to_finished_seconds": {
            "p50": _round(percentile(run_times, 50)),
            "p99": _round(percentile(run_times, 99)),
        },
        "stages_seconds": stages,
        "phase_sequences": dict(sequences),
        "task_to_job_latency": {
            "watch_seconds": {
                "p50": _round(percentile(watch_latency, 50)),
                "p99": _round(percentile(watch_latency, 99)),
                "max": _round(max(watch_latency, default=None)),
                "samples": len(watch_latency),
            },
            "api_timestamps_seconds": {
                "p50": percentile(api_latency, 50),
                "p99": percentile(api_latency, 99),
                "max": max(api_latency, default=None),
                "samples": len(api_latency),
                "resolution_seconds": 1,
            },
        },
        "writes": {
            "observed": {
                "job_creates": observed.jobs_added,
                "job_deletes": observed.jobs_deleted,
                "task_status_writes": status_writes,
                "events": operator_events,
                "total": observed_writes,
                "per_task": round(observed_writes / count, 3),
            },
            "apiserver_requests": {
                "delta": request_delta,
                "operator_task_requests": operator_task_requests,
                "operator_job_requests": job_requests,
                "per_task": round(
                    (operator_task_requests + job_requests + operator_events) / count, 3
                ),
                "scope": "private cluster"
                if args.cluster == "private" and not args.kubeconfig
                else "cluster-wide",
            },
            "event_sources": dict(event_sources),
        },
        "operator": {
            "attempts": int(attempts),
            "transitions": int(transitions),
            "phase_changes_seen": phase_changes,
            "cpu_seconds": _round(
                None if cpu_before is None or cpu_after is None else cpu_after - cpu_before, 2
            ),
            "primed": operator.primed_line(),
        },
        "settle_seconds": round(settled - finish, 2),
        "notes": notes,
    }


# ----- reporting --------------------------------------------------------------------------------
def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}{unit}" if abs(value) < 10 else f"{value:.1f}{unit}"
    return f"{value}{unit}"


def print_table(result: dict[str, Any]) -> None:
    jobs, tasks = result["jobs"], result["tasks"]
    latency = tasks["task_to_job_latency"]
    writes = tasks["writes"]
    rows = [
        ("", "bare Jobs", "Tasks"),
        ("created in", _fmt(jobs["create_seconds"], " s"), _fmt(tasks["create_seconds"], " s")),
        (
            "all finished after",
            _fmt(jobs["elapsed_seconds"], " s"),
            _fmt(tasks["elapsed_seconds"], " s"),
        ),
        ("throughput", _fmt(jobs["per_second"], " /s"), _fmt(tasks["per_second"], " /s")),
        (
            "ADDED -> finished p50",
            _fmt(jobs["added_to_finished_seconds"]["p50"], " s"),
            _fmt(tasks["added_to_finished_seconds"]["p50"], " s"),
        ),
        (
            "ADDED -> finished p99",
            _fmt(jobs["added_to_finished_seconds"]["p99"], " s"),
            _fmt(tasks["added_to_finished_seconds"]["p99"], " s"),
        ),
    ]
    width = max(len(r[0]) for r in rows) + 2
    environment = result["environment"]
    print(
        f"\nexecflow task throughput: N={result['count']}, cluster {result['cluster']}, "
        f"{environment['cpus']} CPUs, load average {environment['load_average_at_start'][0]} "
        f"at start, {environment['load_average_at_end'][0]} at end"
    )
    for label, left, right in rows:
        print(f"  {label:<{width}}{left:>12}{right:>12}")
    print(f"  {'ratio tasks/s / jobs/s':<{width}}{'':>12}{_fmt(result['ratio']):>12}")
    print("  Task stages seen on the watch:")
    for name, spans in tasks["stages_seconds"].items():
        label = name.replace("_to_", " -> ").replace("_", " ")
        print(
            f"    {label:<24} p50 {_fmt(spans['p50'], ' s'):>8}  p99 {_fmt(spans['p99'], ' s'):>8}"
        )
    watch, stamps = latency["watch_seconds"], latency["api_timestamps_seconds"]
    print(
        f"  Task -> Job latency (watch ADDED)       p50 {_fmt(watch['p50'], ' s')}, "
        f"p99 {_fmt(watch['p99'], ' s')}, max {_fmt(watch['max'], ' s')}"
    )
    print(
        f"  Task -> Job latency (creationTimestamp) p50 {_fmt(stamps['p50'])} s, "
        f"p99 {_fmt(stamps['p99'])} s, max {_fmt(stamps['max'])} s (1 s resolution)"
    )
    seen = writes["observed"]
    print(
        f"  operator writes per task (observed)    {seen['per_task']:.2f} = "
        f"job creates {seen['job_creates']} + job deletes {seen['job_deletes']} + "
        f"status writes {seen['task_status_writes']} + Events {seen['events']}, / {result['count']}"
    )
    counted = writes["apiserver_requests"]
    print(
        f"  operator write requests per task (API server, {counted['scope']}) "
        f"{counted['per_task']:.2f} = tasks {counted['operator_task_requests']} + "
        f"jobs {counted['operator_job_requests']} + Events {seen['events']}, / {result['count']}"
    )
    operator = tasks["operator"]
    print(
        f"  operator counters: attempts {operator['attempts']}, transitions "
        f"{operator['transitions']} (phase changes seen {operator['phase_changes_seen']}), "
        f"CPU {_fmt(operator['cpu_seconds'], ' s')}"
    )
    for note in tasks["notes"]:
        print(f"  NOTE: {note}")
    print(f"  written to {result['results_file']}")


def git_revision() -> str:
    try:
        described = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return described.stdout.strip()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="Jobs and Tasks each (1000)")
    parser.add_argument(
        "--cluster",
        choices=("shared", "private"),
        default="shared",
        help="shared: the local control plane (`execflow cluster up`, reused); private: a "
        "separate one for this run only (default shared)",
    )
    parser.add_argument("--kubeconfig", help="use this cluster instead of a local one")
    parser.add_argument("--threads", type=int, default=32, help="client create threads (32)")
    parser.add_argument("--duration", default="0s", help="simulated container run time (0s)")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds per phase (default 120 + 0.5 x N)"
    )
    parser.add_argument(
        "--operator-command",
        help="the command whose `run` subcommand starts the operator (default: the execflow "
        "entry point next to this interpreter)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="JSON results file")
    parser.add_argument(
        "--keep-namespaces", action="store_true", help="leave the benchmark namespaces behind"
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be positive")
    if args.timeout is None:
        args.timeout = 120 + 0.5 * args.count
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join([Path(sys.executable).name, *sys.argv])
    cluster = Cluster(args.cluster, args.kubeconfig)
    work = Path(tempfile.mkdtemp(prefix="execflow-bench-"))
    suffix = uuid.uuid4().hex[:6]
    jobs_ns, tasks_ns = f"bench-jobs-{suffix}", f"bench-tasks-{suffix}"
    namespaces: list[str] = []
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    operator: OperatorProcess | None = None
    api: client.ApiClient | None = None
    succeeded = False
    try:
        kubeconfig = cluster.up()
        api = api_client_for(kubeconfig, args.threads + 8)
        server = client.VersionApi(api).get_code().git_version
        install_crds(api)
        for name in (jobs_ns, tasks_ns):
            create_namespace(api, name)
            namespaces.append(name)

        jobs = run_jobs(api, jobs_ns, args)

        settings = work / "settings.yaml"
        limit = max(1000, args.count)
        settings.write_text(
            yaml.safe_dump(
                {
                    "queues": {
                        "default": {
                            "maxConcurrentTasks": limit,
                            "maxQueuedTasks": max(10000, args.count),
                        }
                    }
                }
            )
        )
        starter = shlex.split(args.operator_command) if args.operator_command else None
        operator = OperatorProcess(
            starter or execflow_command(), kubeconfig, tasks_ns, settings, work / "operator.log"
        )
        elsewhere = count_tasks(api)
        say(f"starting the operator for namespace {tasks_ns} ({elsewhere} Tasks elsewhere)")
        operator.start()
        primed = operator.primed_tasks()
        tasks = run_tasks(api, tasks_ns, operator, args)
        tasks["operator"]["tasks_elsewhere_at_start"] = elsewhere
        if primed:
            tasks["notes"].append(
                f"the operator took in {primed} Tasks when it started although its namespace was "
                "empty: --namespace did not confine it"
            )

        result = {
            "benchmark": "task_throughput",
            "command": command,
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "count": args.count,
            "duration": args.duration,
            "threads": args.threads,
            "cluster": cluster.mode,
            "environment": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "kubernetes": server,
                "revision": git_revision(),
                "load_average_at_start": load_at_start,
                "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            },
            "settings": {"maxConcurrentTasks": limit},
            "jobs": jobs,
            "tasks": tasks,
            "ratio": round(tasks["per_second"] / jobs["per_second"], 3),
            "results_file": str(args.output),
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        print_table(result)
        succeeded = True
        return 0
    finally:
        if operator is not None:
            operator.stop()
            if not succeeded:
                say(f"operator log kept: {operator.log}\n{operator.tail()}")
        # A private cluster goes as a whole; elsewhere the namespaces are removed one by one.
        if (
            api is not None
            and namespaces
            and cluster.state_dir is None
            and not args.keep_namespaces
        ):
            say(f"deleting namespaces {', '.join(namespaces)}")
            delete_namespaces(api, namespaces, timeout=180)
        if api is not None:
            api.close()
        cluster.down()
        if succeeded:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
