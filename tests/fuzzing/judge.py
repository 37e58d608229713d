"""What the API server and the operator make of generated Task specs, one verdict per spec.

Each spec is created as a Task in one namespace (Tools the specs may name first); then the judge
watches the Tasks until every admitted one has a phase and a reason and nothing has changed for a
while, or until a deadline. Every spec ends in one category:

- `refused`: the API server answered 4xx at admission with a message that names a field
  (`spec.`...), which is what `kubectl apply` shows a user;
- `unclear`: refused, but the message names no field;
- `ended`: a terminal phase (Completed, Failed, Cancelled, Timeout) with a reason;
- `waiting`: any other phase with a reason (Queued/Unschedulable, Pending/ToolNotFound, Paused/
  Suspended, ...; Running too, counted apart, since no generated spec runs for long);
- `stuck`: no phase or no reason at the end (silence, the one thing a user must never see), or
  reason OperatorError (the operator saying it cannot reconcile the Task: a bug);
- `error`: the API server failed (5xx) even after retries, so nothing can be said of the spec.

The operator's log is read from where it stood at the start: every line with "Traceback" is a
crash. The integration test asserts on the verdict; the benchmark reports it.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.fuzzing.specs import TOOLS, GeneratedSpec

GROUP: Final = "execflow.dev"
VERSION: Final = "v1alpha1"
TERMINAL_PHASES: Final = frozenset({"Completed", "Failed", "Cancelled", "Timeout"})
OPERATOR_ERROR: Final = "OperatorError"
CATEGORIES: Final = ("refused", "unclear", "ended", "waiting", "stuck", "error")
RETRIED_STATUS: Final = frozenset({429, 500, 502, 503, 504})
CREATE_ATTEMPTS: Final = 6
FIELD_PATH: Final = re.compile(r"\bspec(?:\.[A-Za-z0-9_-]+|\[[^\]]*\])+")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Outcome:
    """What became of one spec. message is the API server's refusal or the Task's
    status.message."""

    name: str
    origin: str
    spec: dict[str, Any]
    category: str
    phase: str = ""
    reason: str = ""
    message: str = ""
    status_code: int | None = None


@dataclass(frozen=True)
class Verdict:
    """Every spec's outcome, the operator's crashes and how the run went."""

    outcomes: tuple[Outcome, ...]
    crashes: tuple[str, ...]
    error_lines: tuple[str, ...]
    settled: bool
    create_seconds: float
    settle_seconds: float
    log_lines: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Operator log lines naming each stuck Task."""

    def count(self, category: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.category == category)

    def of(self, category: str) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.category == category]

    @property
    def running(self) -> int:
        return sum(1 for o in self.outcomes if o.category == "waiting" and o.phase == "Running")

    def counts(self) -> dict[str, int]:
        counts = {"tried": len(self.outcomes)}
        counts.update({category: self.count(category) for category in CATEGORIES})
        counts["running"] = self.running
        counts["crashes"] = len(self.crashes)
        return counts

    def reasons(self) -> Counter[str]:
        """phase/reason of every admitted Task."""
        return Counter(
            f"{o.phase or '-'}/{o.reason or '-'}"
            for o in self.outcomes
            if o.category in ("ended", "waiting", "stuck")
        )

    def refused_fields(self) -> Counter[str]:
        """The fields refusals name (each field once per refusal), list indexes and map keys
        folded, so `spec.tags[2]` counts as `spec.tags[]`."""
        fields: Counter[str] = Counter()
        for outcome in self.of("refused"):
            named = {
                re.sub(r"\[[^\]]*\]", "[]", path).rstrip(".")
                for path in FIELD_PATH.findall(outcome.message)
            }
            fields.update(named)
        return fields

    def by_origin(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for outcome in self.outcomes:
            row = table.setdefault(outcome.origin, dict.fromkeys(CATEGORIES, 0))
            row[outcome.category] += 1
        return table

    def problems(self) -> list[Outcome]:
        """The outcomes that break the promise: silence, unclear refusals, server errors."""
        return [o for o in self.outcomes if o.category in ("stuck", "unclear", "error")]

    def describe(self, limit: int = 20) -> str:
        """The problems and crashes as text, for an assertion message or a report."""
        lines = [f"counts: {self.counts()}"]
        for outcome in self.problems()[:limit]:
            lines.append(
                f"{outcome.category} {outcome.name} ({outcome.origin}) phase={outcome.phase!r} "
                f"reason={outcome.reason!r} message={outcome.message[:300]!r}"
            )
            lines.append(f"  spec: {json.dumps(outcome.spec)[:600]}")
            lines.extend(f"  log: {line[:300]}" for line in self.log_lines.get(outcome.name, ()))
        for crash in self.crashes[:limit]:
            lines.append("crash:\n" + crash)
        return "\n".join(lines)


# ----- creating ---------------------------------------------------------------------------------
def _refusal(error: ApiException) -> str:
    """The message the API server gave (what kubectl shows), else the raw body."""
    body = error.body.decode(errors="replace") if isinstance(error.body, bytes) else error.body
    try:
        message = json.loads(body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or body or error.reason or "")


def _create_object(
    custom: client.CustomObjectsApi, namespace: str, plural: str, body: dict[str, Any]
) -> None:
    """Create one object; an overloaded or failing API server (429, 5xx) is retried with
    backoff, every other answer is the caller's."""
    for attempt in range(CREATE_ATTEMPTS):
        try:
            response = custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, body, _preload_content=False
            )
            response.read()
            response.release_conn()
            return
        except ApiException as error:
            if error.status not in RETRIED_STATUS or attempt == CREATE_ATTEMPTS - 1:
                raise
        time.sleep(0.2 * 2**attempt)


def create_tools(api: client.ApiClient, namespace: str) -> None:
    """The Tools the generated specs may name; a refusal here is a broken setup, so it raises."""
    custom = client.CustomObjectsApi(api)
    for name, spec in TOOLS.items():
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Tool",
            "metadata": {"name": name},
            "spec": spec,
        }
        _create_object(custom, namespace, "tools", body)


def _create(custom: client.CustomObjectsApi, namespace: str, item: GeneratedSpec) -> Outcome | None:
    """None when admitted; otherwise the spec's final outcome."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Task",
        "metadata": {"name": item.name, "labels": {"execflow.dev/fuzz": item.origin}},
        "spec": item.spec,
    }
    try:
        _create_object(custom, namespace, "tasks", body)
    except ApiException as error:
        message = _refusal(error)
        if error.status in RETRIED_STATUS or not 400 <= error.status < 500:
            category = "error"
        else:
            category = "refused" if "spec." in message else "unclear"
        return Outcome(
            item.name, item.origin, item.spec, category, message=message, status_code=error.status
        )
    return None


def create_all(
    api: client.ApiClient,
    namespace: str,
    specs: Sequence[GeneratedSpec],
    threads: int,
    progress: Progress,
) -> dict[str, Outcome]:
    """Create every spec from a thread pool; the outcomes of those not admitted, by name."""
    custom = client.CustomObjectsApi(api)
    refused: dict[str, Outcome] = {}
    done = 0
    lock = threading.Lock()
    last_report = time.monotonic()

    def one(item: GeneratedSpec) -> None:
        nonlocal done, last_report
        outcome = _create(custom, namespace, item)
        with lock:
            if outcome is not None:
                refused[item.name] = outcome
            done += 1
            if time.monotonic() - last_report >= 10:
                last_report = time.monotonic()
                progress(f"  created {done}/{len(specs)} ({len(refused)} refused)")

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fuzz-create") as pool:
        for future in [pool.submit(one, item) for item in specs]:
            future.result()
    return refused


# ----- watching ---------------------------------------------------------------------------------
def _statuses(api: client.ApiClient, namespace: str) -> dict[str, tuple[str, str, str]]:
    """name -> (phase, reason, message) of every Task in the namespace."""
    response = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "tasks", _preload_content=False
    )
    items = json.loads(response.data)["items"]
    statuses = {}
    for task in items:
        status = task.get("status") or {}
        statuses[task["metadata"]["name"]] = (
            str(status.get("phase") or ""),
            str(status.get("reason") or ""),
            str(status.get("message") or ""),
        )
    return statuses


def _answered(phase: str, reason: str) -> bool:
    return bool(phase and reason)


def wait_settled(
    api: client.ApiClient,
    namespace: str,
    names: Iterable[str],
    *,
    timeout: float,
    quiet: float,
    poll: float,
    progress: Progress,
) -> tuple[dict[str, tuple[str, str, str]], bool]:
    """Poll the Tasks until all are terminal, or all have a phase and a reason and none has
    changed for quiet seconds; at the latest until timeout. Returns the last statuses and
    whether they had settled (False: the deadline ended the wait)."""
    wanted = set(names)
    start = time.monotonic()
    last_change = start
    last_report = start
    previous: dict[str, tuple[str, str]] = {}
    while True:
        seen = _statuses(api, namespace)
        statuses = {name: seen.get(name, ("", "", "")) for name in wanted}
        current = {name: (phase, reason) for name, (phase, reason, _) in statuses.items()}
        now = time.monotonic()
        if current != previous:
            previous, last_change = current, now
        answered = sum(1 for phase, reason in current.values() if _answered(phase, reason))
        terminal = sum(1 for phase, _ in current.values() if phase in TERMINAL_PHASES)
        if terminal == len(wanted):
            return statuses, True
        if answered == len(wanted) and now - last_change >= quiet:
            return statuses, True
        if now - start >= timeout:
            return statuses, False
        if now - last_report >= 10:
            last_report = now
            progress(
                f"  after {now - start:.0f} s: {terminal} terminal, {answered}/{len(wanted)} "
                "with a phase and a reason"
            )
        time.sleep(poll)


# ----- the operator's log -----------------------------------------------------------------------
def tracebacks(log: str) -> list[str]:
    """Each traceback in log, from its "Traceback" line to the exception line that ends it,
    after the log record just before it (which names what failed)."""
    lines = log.splitlines()
    found = []
    for index, line in enumerate(lines):
        if "Traceback" not in line:
            continue
        block = [lines[index - 1], line] if index > 0 else [line]
        for following in lines[index + 1 : index + 80]:
            block.append(following)
            if following and not following[0].isspace():
                break
        found.append("\n".join(block))
    return found


def error_records(log: str) -> list[str]:
    """Log records at level ERROR or CRITICAL (the operator logs `time LEVEL logger: message`)."""
    return [line for line in log.splitlines() if " ERROR " in line or " CRITICAL " in line]


# ----- the verdict ------------------------------------------------------------------------------
def judge(
    api: client.ApiClient,
    namespace: str,
    specs: Sequence[GeneratedSpec],
    *,
    operator_log: Callable[[], str],
    threads: int = 8,
    timeout: float = 120,
    quiet: float = 15,
    poll: float = 1,
    progress: Progress = lambda _message: None,
) -> Verdict:
    """Create specs as Tasks in namespace and judge each; see the module docstring.

    operator_log returns the operator's whole log so far; only what it logs from now on counts.
    timeout bounds the wait after the last create, quiet is how long nothing may change before
    the Tasks count as settled, poll how often they are listed (a list of thousands of Tasks is
    no small request).
    """
    log_start = len(operator_log())
    create_tools(api, namespace)
    progress(f"creating {len(specs)} Tasks in {namespace} with {threads} threads")
    started = time.monotonic()
    refused = create_all(api, namespace, specs, threads, progress)
    created = time.monotonic()
    admitted = [item for item in specs if item.name not in refused]
    progress(
        f"  {len(specs)} tried in {created - started:.1f} s: {len(refused)} refused, "
        f"{len(admitted)} admitted; waiting for their phases"
    )
    statuses, settled = wait_settled(
        api,
        namespace,
        [item.name for item in admitted],
        timeout=timeout,
        quiet=quiet,
        poll=poll,
        progress=progress,
    )
    settle_seconds = time.monotonic() - created
    outcomes = []
    for item in specs:
        if item.name in refused:
            outcomes.append(refused[item.name])
            continue
        phase, reason, message = statuses[item.name]
        if not _answered(phase, reason) or reason == OPERATOR_ERROR:
            category = "stuck"
        elif phase in TERMINAL_PHASES:
            category = "ended"
        else:
            category = "waiting"
        outcomes.append(
            Outcome(item.name, item.origin, item.spec, category, phase, reason, message)
        )
    log = operator_log()[log_start:]
    stuck_names = {o.name for o in outcomes if o.category == "stuck"}
    log_lines = {
        name: tuple(line for line in log.splitlines() if name in line)[:10] for name in stuck_names
    }
    return Verdict(
        outcomes=tuple(outcomes),
        crashes=tuple(tracebacks(log)),
        error_lines=tuple(error_records(log)),
        settled=settled,
        create_seconds=round(created - started, 2),
        settle_seconds=round(settle_seconds, 2),
        log_lines=log_lines,
    )
