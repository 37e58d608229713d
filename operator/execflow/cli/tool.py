"""`execflow tool call TOOL -p key=value ...`: run a Tool like a function.

The parameters are checked against the Tool's inputSchema here, before anything is created, so a
wrong call costs no Task. Then one Task is created (`generateName: TOOL-`, labelled
`execflow.dev/called-by: cli`). Without --wait its name is printed; with --wait the command
follows it to its end and prints its result as JSON, so a script can call a Tool as it would a
function: `rows=$(execflow tool call cleaner -p input=a.csv --wait | jq .rows)`. The exit code
says how it ended (see EXIT_CODES); progress goes to stderr, and only for a person (a terminal)
or with -v.

A `-p` value is JSON when it parses as JSON (`3` is a number, `true` a boolean, `[1,2]` a list),
else text; a parameter the schema types as a string keeps the text as written (`-p v=3.10` stays
"3.10"). `-p key=@FILE` takes the value from a file (`@@` escapes a leading @). Nested values
come whole from `--parameters-json` or `-f FILE` (JSON or YAML), which `-p` then overrides.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from execflow.api.durations import parse_duration
from execflow.api.task import Priority, TaskPhase, TaskStatus
from execflow.cli.common import FAILED, CommandError, Target, add_target, run, say
from execflow.core.tools import call_task, check_tool, parameter_problem
from execflow.kube.client import TASKS, TOOLS, Kube
from execflow.kube.errors import NotFoundError

CANCELLED = 3
GAVE_UP = 4
TIMED_OUT = 124
EXIT_CODES = {
    TaskPhase.COMPLETED: 0,
    TaskPhase.FAILED: FAILED,
    TaskPhase.CANCELLED: CANCELLED,
    TaskPhase.TIMEOUT: TIMED_OUT,
}
EPILOG = f"""\
exit codes:
  0    without --wait: the Task was created (its name is on stdout);
       with --wait: it Completed (its result is on stdout, as JSON)
  {FAILED}    it Failed (reason and message on stderr), or nothing was created: unknown
       tool, invalid parameters or flags, or the API server refused the Task
  2    no Kubernetes credentials
  {CANCELLED}    it was Cancelled
  {GAVE_UP}    --wait-timeout passed first (the Task keeps running; its name is on stderr)
  {TIMED_OUT}  it ran past its own timeout (phase Timeout)
  130  interrupted (the Task keeps running)
"""
FIRST_POLL = 0.2
LONGEST_POLL = 1.0


class ParameterError(CommandError):
    """The parameters as given cannot be read."""


def add_parser(commands: Any) -> None:
    tool = commands.add_parser("tool", help="use the registered Tools")
    actions = tool.add_subparsers(dest="action", required=True, metavar="ACTION")
    call = actions.add_parser(
        "call",
        help="run a Tool like a function: create a Task, optionally wait for its result",
        description="Run a Tool with parameters (checked against its inputSchema first).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    call.add_argument("tool", metavar="TOOL", help="the Tool")
    call.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter; VALUE is JSON when it parses as JSON (3, true, [1,2]), else text; "
        "@FILE reads it from a file (repeatable)",
    )
    whole = call.add_mutually_exclusive_group()
    whole.add_argument(
        "--parameters-json", default=None, metavar="JSON", help="all parameters as a JSON object"
    )
    whole.add_argument(
        "-f",
        "--parameters-file",
        default=None,
        metavar="FILE",
        help="all parameters from a JSON or YAML file (- : stdin); -p overrides single keys",
    )
    call.add_argument(
        "--priority", choices=[p.value for p in Priority], default=None, help="the Task's priority"
    )
    call.add_argument("--timeout", default=None, help="per attempt, e.g. 30s or 5m")
    call.add_argument("--queue", default=None, help="the scheduling queue")
    call.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help="a Task label"
    )
    call.add_argument(
        "--pod-annotation",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an annotation of the task's pods (spec.podTemplate.metadata.annotations)",
    )
    call.add_argument(
        "--wait", action="store_true", help="wait for the end and print the result as JSON"
    )
    call.add_argument(
        "--wait-timeout", default="10m", help="with --wait: give up after this long (10m)"
    )
    call.add_argument(
        "-v", "--verbose", action="store_true", help="progress on stderr even when not a terminal"
    )
    add_target(call)
    call.set_defaults(handler=_call)


# ----- parameters -------------------------------------------------------------------------------
def parse_value(text: str, schema: Mapping[str, Any] | None = None) -> Any:
    """A `-p` value: JSON when it parses as JSON, else the text. When the parameter's schema
    allows a string but not the parsed JSON's type, the text is kept (`3.10` for a version)."""
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        return text
    if isinstance(parsed, float) and not math.isfinite(parsed):
        return text  # NaN and Infinity are not JSON, whatever Python's parser accepts
    allowed = _types(schema or {})
    if isinstance(parsed, str) or not allowed or "string" not in allowed:
        return parsed
    kind = _json_type(parsed)
    if kind in allowed or (kind == "integer" and "number" in allowed):
        return parsed
    return text


def _types(schema: Mapping[str, Any]) -> set[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {str(kind) for kind in declared}
    return set()


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "string"


def parse_pairs(items: Sequence[str], flag: str) -> dict[str, str]:
    """`KEY=VALUE` texts (labels, annotations) as a mapping; the last of a key wins."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ParameterError(f"{flag} {item!r}: expected KEY=VALUE")
        pairs[key] = value
    return pairs


def parse_parameters(
    items: Sequence[str],
    properties: Mapping[str, Any],
    base: Mapping[str, Any] | None = None,
    read: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """The parameters from `-p KEY=VALUE` texts over `base` (from --parameters-json or -f),
    each value typed by `parse_value` with the schema of its key in `properties`."""
    parameters = dict(base or {})
    for key, given in parse_pairs(items, "-p").items():
        text = given
        if given.startswith("@@"):
            text = given[1:]
        elif given.startswith("@"):
            text = _read_value(given[1:], read or _read_file)
        schema = properties.get(key)
        parameters[key] = parse_value(text, schema if isinstance(schema, Mapping) else None)
    return parameters


def _read_value(path: str, read: Callable[[str], str]) -> str:
    """A value from a file; one trailing newline is the file's end, not part of the value."""
    text = read(path)
    return text[:-1] if text.endswith("\n") else text


def _read_file(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ParameterError(f"cannot read {path}: {error}") from error


def base_parameters(
    parameters_json: str | None,
    parameters_file: str | None,
    read: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """The parameters given whole: a JSON object, or a JSON or YAML file holding one."""
    if parameters_json is not None:
        where = "--parameters-json"
        try:
            loaded = json.loads(parameters_json)
        except ValueError as error:
            raise ParameterError(f"{where} is not JSON: {error}") from error
    elif parameters_file is not None:
        where = parameters_file
        try:
            loaded = yaml.safe_load((read or _read_file)(parameters_file))
        except yaml.YAMLError as error:
            raise ParameterError(f"{where} is neither JSON nor YAML: {error}") from error
    else:
        return {}
    if not isinstance(loaded, dict):
        raise ParameterError(f"{where} must hold an object of parameters, not {loaded!r}")
    try:
        json.dumps(loaded, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ParameterError(f"{where} holds a value JSON cannot carry ({error})") from error
    return loaded


def task_body(
    tool: str,
    parameters: Mapping[str, Any],
    *,
    labels: Mapping[str, str],
    pod_annotations: Mapping[str, str],
    priority: str | None = None,
    timeout: str | None = None,
    queue: str | None = None,
) -> dict[str, Any]:
    """The Task of one call of `tool`."""
    fields = {"priority": priority, "timeout": timeout, "queue": queue}
    return call_task(
        tool,
        parameters,
        called_by="cli",
        fields=fields,
        labels=labels,
        pod_annotations=pod_annotations,
    )


# ----- the call ---------------------------------------------------------------------------------
def _call(args: argparse.Namespace) -> int:
    return run(args, lambda kube, where: _run_call(kube, where, args))


def _seconds(text: str, flag: str) -> float:
    try:
        return parse_duration(text).total_seconds()
    except ValueError as error:
        raise ParameterError(f"{flag}: {error}") from error


async def _run_call(kube: Kube, target: Target, args: argparse.Namespace) -> int:
    namespace = target.namespace or "default"
    # Everything that needs no cluster is checked first.
    wait_seconds = _seconds(args.wait_timeout, "--wait-timeout")
    if args.timeout is not None:
        _seconds(args.timeout, "--timeout")
    labels = parse_pairs(args.label, "--label")
    annotations = parse_pairs(args.pod_annotation, "--pod-annotation")
    base = base_parameters(args.parameters_json, args.parameters_file)

    where = f"tool {namespace}/{args.tool}"
    try:
        tool = await kube.get(TOOLS, namespace, args.tool)
    except NotFoundError:
        raise CommandError(f"there is no {where}") from None
    check = check_tool(tool.get("spec") or {})
    if check.problem is not None or check.spec is None:
        problem = check.problem
        detail = f"{problem.reason}: {problem.message}" if problem else "its spec cannot be read"
        raise CommandError(f"{where} cannot be used: {detail}")
    schema = check.spec.input_schema
    properties = schema.get("properties")
    parameters = parse_parameters(
        args.param, properties if isinstance(properties, Mapping) else {}, base
    )
    problem_text = parameter_problem(schema, parameters)
    if problem_text is not None:
        raise CommandError(f"{where} refuses the call, no Task was created: {problem_text}")

    body = task_body(
        args.tool,
        parameters,
        labels=labels,
        pod_annotations=annotations,
        priority=args.priority,
        timeout=args.timeout,
        queue=args.queue,
    )
    created = await kube.create(TASKS, namespace, body)
    name = str(created["metadata"]["name"])
    if not args.wait:
        print(name, flush=True)
        return 0
    progress = say if args.verbose or sys.stderr.isatty() else None
    if progress:
        progress(f"task {namespace}/{name} created")
    status = await _wait(kube, namespace, name, wait_seconds, progress)
    if status is None:
        say(
            f"execflow: task {namespace}/{name} has not ended after {args.wait_timeout}; it keeps "
            f"running (see: kubectl get task {name} -n {namespace})"
        )
        return GAVE_UP
    return _report(namespace, name, status)


async def _wait(
    kube: Kube,
    namespace: str,
    name: str,
    seconds: float,
    progress: Callable[[str], None] | None,
) -> TaskStatus | None:
    """The Task's status once it is final; None when `seconds` pass first."""
    deadline = time.monotonic() + seconds
    delay = FIRST_POLL
    seen: tuple[TaskPhase, int, str] | None = None
    while True:
        raw = await kube.get(TASKS, namespace, name)
        status = TaskStatus.model_validate(raw.get("status") or {})
        state = (status.phase, status.attempts, status.reason)
        if progress and state != seen:
            progress(f"task {name}: {_describe(status)}")
        seen = state
        if status.phase.is_terminal:
            return status
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        await asyncio.sleep(min(delay, left))
        delay = min(LONGEST_POLL, delay * 1.5)


def _describe(status: TaskStatus) -> str:
    text = status.phase.value
    if status.attempts and status.phase is TaskPhase.RUNNING:
        text += f", attempt {status.attempts}"
    if status.reason:
        text += f" ({status.reason})"
    return text


def _report(namespace: str, name: str, status: TaskStatus) -> int:
    """Print the outcome of a final Task; return the exit code its phase means."""
    if status.phase is TaskPhase.COMPLETED:
        if status.result is None and status.result_ref is not None:
            say(
                f"execflow: the result of task {namespace}/{name} is stored outside the Task; "
                "this is where it is"
            )
            output: Any = status.result_ref.model_dump(
                mode="json", by_alias=True, exclude_none=True
            )
        else:
            output = status.result
        sys.stdout.write(json.dumps(output, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return 0
    reason = f" ({status.reason})" if status.reason else ""
    message = f": {status.message}" if status.message else ""
    code = f", exit code {status.exit_code}" if status.exit_code is not None else ""
    say(f"execflow: task {namespace}/{name} {status.phase.value}{reason}{message}{code}")
    return EXIT_CODES[status.phase]
