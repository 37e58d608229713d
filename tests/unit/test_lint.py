"""`execflow lint` without a cluster: the shipped examples pass, bad manifests fail at their line.

Bad documents are written into one multi-document file, each with a `# here` comment on the line
its error must be reported at, so line numbers are checked across documents. The verb itself is
run through `execflow.cli.main.main` for its output and exit codes (0 clean, 1 errors, 2 a file
that cannot be read or is not YAML). The webhook checks are the webhook's own: the lint's
message for a Workflow or ResultSet equals the refusal of `execflow.handlers.admission.admit`.
tests/integration/test_cli_lint.py compares the lint with the real API server.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from execflow.cli.main import main
from execflow.core.linting import Check, Problem, Severity, lint_text
from execflow.core.linting.rules import evaluate_rules
from execflow.handlers.admission import admit

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
MARK = "# here"

HEAD = "apiVersion: execflow.dev/v1alpha1\nkind: {kind}\nmetadata: {{name: {name}}}\n"


def document(kind: str, body: str, name: str = "bad") -> str:
    return HEAD.format(kind=kind, name=name) + body


def errors(text: str) -> list[Problem]:
    return [problem for problem in lint_text(text) if problem.severity is Severity.ERROR]


# (document, path, the start of the message, the check that finds it); the error is expected on
# the line marked `# here`, at the column of the last key before the mark.
BAD = [
    pytest.param(
        document(
            "Task",
            "spec:\n  container: {image: busybox}\n  retryPolicy:\n    maxRetries: three  # here\n",
        ),
        "spec.retryPolicy.maxRetries",
        'Invalid value: "string": spec.retryPolicy.maxRetries in body must be of type integer',
        Check.SCHEMA,
        id="wrong-type",
    ),
    pytest.param(
        document("Task", "spec:\n  container: {image: busybox}\n  priority: Urgent  # here\n"),
        "spec.priority",
        'Unsupported value: "Urgent": supported values: "Low", "Normal", "High", "Critical"',
        Check.SCHEMA,
        id="priority-enum",
    ),
    pytest.param(
        document(
            "Task",
            "spec:\n  container: {image: busybox}\n  retryPolicy:\n    maxRetries: 2\n"
            "    retryDelay: 1d  # here\n",
        ),
        "spec.retryPolicy.retryDelay",
        'Invalid value: "1d": must be a Go-style duration such as 500ms',
        Check.RULE,
        id="duration-rule",
    ),
    pytest.param(
        document(
            "Workflow",
            "spec:\n  steps:\n  - name: a\n    tasks:\n    - name: x  # here\n"
            "      container: {image: busybox}\n      dependencies: [{task: y}]\n"
            "    - name: y\n      container: {image: busybox}\n"
            "      dependencies: [{task: x}]\n",
        ),
        "spec.steps[0].tasks[0]",
        "tasks x, y of step a wait for each other in a cycle",
        Check.ADMISSION,
        id="task-cycle",
    ),
    pytest.param(
        document(
            "Workflow",
            "spec:\n  steps:  # here\n  - name: a\n    tasks: [{name: x, container: {image: b}}]\n"
            "  - name: b\n    dependsOn: [nowhere]\n"
            "    tasks: [{name: y, container: {image: b}}]\n",
        ),
        "spec.steps",
        "Invalid value: step 'b' depends on 'nowhere', which is not a step listed before it",
        Check.RULE,
        id="unknown-depends-on",
    ),
    pytest.param(
        document(
            "Workflow",
            "spec:\n  steps:\n  - name: a\n    tasks:\n    - name: x\n"
            "      container: {image: busybox}\n      when: steps.a.phase ==  # here\n",
        ),
        "spec.steps[0].tasks[0].when",
        "syntax error at line 1",
        Check.ADMISSION,
        id="when-syntax",
    ),
    pytest.param(
        document(
            "ResultSet",
            "spec:\n  source: {taskRefs: [a]}\n  aggregations:\n  - name: best\n"
            "    function: custom\n    expression: results.map(r, r.score).maxx()  # here\n",
        ),
        "spec.aggregations[0].expression",
        "calls unknown function 'maxx' at line 1, column 25; did you mean 'max'?",
        Check.ADMISSION,
        id="aggregation-expression",
    ),
    pytest.param(
        "apiVersion: execflow.dev/v1alpha1\nkind: Pipeline  # here\nmetadata: {name: p}\n",
        "kind",
        'no matches for kind "Pipeline" in version "execflow.dev/v1alpha1"',
        Check.KIND,
        id="unknown-kind",
    ),
]


def marked(text: str) -> tuple[int, int]:
    """The line of the `# here` mark in `text`, and the column of the last key before it."""
    for number, line in enumerate(text.splitlines(), start=1):
        if MARK in line:
            before = line[: line.index(MARK)]
            key = before[: before.index(":")].rstrip() if ":" in before else before.rstrip()
            column = len(key) - len(key.split(" ")[-1].lstrip("-{")) + 1
            return number, column
    raise AssertionError(f"no {MARK!r} in the document")


def combined(prefix: int) -> tuple[str, list[str]]:
    """Every bad document in one file, after `prefix` clean ones."""
    clean = [document("Tool", "spec: {image: busybox}\n", name=f"fine-{n}") for n in range(prefix)]
    texts = [*clean, *(str(case.values[0]) for case in BAD)]
    return "---\n".join(texts), texts


@pytest.mark.parametrize(("text", "path", "message", "check"), BAD)
def test_a_bad_document_gives_its_error_at_the_line_and_column_of_the_field(
    text: str, path: str, message: str, check: Check
) -> None:
    found = errors(text)

    line, column = marked(text)
    assert [(p.path, p.check) for p in found] == [(path, check)], found
    assert found[0].message.startswith(message), found[0].message
    assert (found[0].line, found[0].column) == (line, column)


def test_in_a_file_of_many_documents_each_error_is_at_its_own_line() -> None:
    text, parts = combined(prefix=2)

    found = errors(text)

    offset, expected = 0, []
    for part in parts:
        if MARK in part:
            line, column = marked(part)
            expected.append((offset + line, column))
        offset += part.count("\n") + 1
    assert [(p.line, p.column) for p in found] == expected
    assert [p.document for p in found] == list(range(2, 2 + len(BAD)))


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_example_lints_clean(path: Path) -> None:
    problems = lint_text(path.read_text(encoding="utf-8"))

    assert [p for p in problems if p.severity is not Severity.INFO] == []


def test_the_verb_passes_the_examples_with_exit_code_0(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lint", *map(str, EXAMPLES)])

    out, err = capsys.readouterr()
    assert code == 0
    assert out == ""
    assert f"0 errors, 0 warnings in {len(EXAMPLES)} files" in err


def test_the_verb_prints_file_line_column_and_exits_1_on_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, _ = combined(prefix=0)
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")

    code = main(["lint", str(bad)])

    out, err = capsys.readouterr()
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == len(BAD)
    first = errors(text)[0]
    assert lines[0] == (
        f"{bad}:{first.line}:{first.column}: error: Task/bad: spec.retryPolicy.maxRetries: "
        f"{first.message}"
    )
    assert f"{len(BAD)} errors, 0 warnings in 1 file" in err


def test_json_output_lists_every_problem_with_its_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "task.yaml"
    bad.write_text(str(BAD[1].values[0]), encoding="utf-8")

    code = main(["lint", "-o", "json", str(bad)])

    listed = json.loads(capsys.readouterr().out)
    assert code == 1
    assert listed == [
        {
            "file": str(bad),
            "severity": "error",
            "line": 6,
            "column": 3,
            "document": 0,
            "object": "Task/bad",
            "path": "spec.priority",
            "message": 'Unsupported value: "Urgent": supported values: "Low", "Normal", '
            '"High", "Critical"',
            "check": "schema",
        }
    ]


def test_stdin_is_read_for_a_dash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(str(BAD[2].values[0])))

    code = main(["lint", "-"])

    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("<stdin>:8:5: error: Task/bad: spec.retryPolicy.retryDelay: ")


def test_text_that_is_not_yaml_exits_2_with_the_line_of_the_yaml_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: Task\nspec:\n  tags: [a, b\n  priority: High\n", encoding="utf-8")

    code = main(["lint", str(broken), str(EXAMPLES[0])])

    out, err = capsys.readouterr()
    assert code == 2
    assert out.startswith(f"{broken}:4:11: error: not YAML: ")
    assert "1 file could not be read as YAML" in err


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lint", str(tmp_path / "absent.yaml")])

    assert code == 2
    assert "cannot read: No such file or directory" in capsys.readouterr().out


UNKNOWN_FIELD = document("Task", "spec:\n  container: {image: busybox}\n  retries: 3\n")


def test_an_unknown_field_is_a_warning_and_with_strict_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "task.yaml"
    manifest.write_text(UNKNOWN_FIELD, encoding="utf-8")

    lenient = main(["lint", str(manifest)])
    warned = capsys.readouterr().out
    strict = main(["lint", "--strict", str(manifest)])
    refused = capsys.readouterr().out

    assert (lenient, strict) == (0, 1)
    assert (
        warned == f'{manifest}:6:3: warning: Task/bad: spec.retries: unknown field "spec.retries"\n'
    )
    assert (
        refused == f'{manifest}:6:3: error: Task/bad: spec.retries: unknown field "spec.retries"\n'
    )


def test_other_kinds_are_skipped_and_said_so_only_when_verbose(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "mixed.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n"
        + document("Tool", "spec: {image: busybox}\n"),
        encoding="utf-8",
    )

    quiet = main(["lint", str(manifest)])
    said = capsys.readouterr().out
    verbose = main(["lint", "-v", str(manifest)])
    told = capsys.readouterr().out

    assert (quiet, verbose, said) == (0, 0, "")
    assert (
        f"{manifest}:1:1: info: ConfigMap/c: skipped: v1 ConfigMap is not an execflow kind" in told
    )


def test_a_key_given_twice_is_an_error_at_its_second_place() -> None:
    found = errors(document("Tool", "spec:\n  image: busybox\n  image: alpine\n"))

    assert [(p.line, p.column, p.path) for p in found] == [(6, 3, "spec.image")]
    assert "already defined at line 5" in found[0].message


def test_schema_defaults_are_applied_before_the_rules() -> None:
    # strategy defaults to Immediate, so a batch-less ResultSet passes; Batch needs a batch.
    plain = document("ResultSet", "spec:\n  source: {taskRefs: [a]}\n")
    batch = plain + "  strategy: Batch\n"

    assert errors(plain) == []
    assert [p.message for p in errors(batch)] == [
        "Invalid value: strategy Batch needs batch.size or batch.interval"
    ]


@pytest.mark.parametrize(
    ("zone", "refused"),
    [("Europe/Berlin", False), ("Etc/GMT+5", False), ("Mars/Olympus", True), ("Local", True)],
)
def test_time_zones_are_checked_as_the_api_server_checks_them(zone: str, refused: bool) -> None:
    text = document(
        "Task",
        "spec:\n  container: {image: busybox}\n  constraints:\n"
        f"    timeWindows: [{{start: '22:00', end: '06:00', timeZone: {zone}}}]\n",
    )

    assert bool(errors(text)) is refused


def test_a_generated_name_counts_towards_child_task_names() -> None:
    steps = "spec:\n  steps:\n  - name: a\n    tasks: [{name: t, container: {image: b}}]\n"
    text = "apiVersion: execflow.dev/v1alpha1\nkind: Workflow\nmetadata: {generateName: %s}\n"

    assert errors(text % "nightly-" + steps) == []
    assert [p.path for p in errors(text % ("w" * 57) + steps)] == ["spec.steps"]


def test_a_rule_the_library_cannot_evaluate_is_reported_not_skipped() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "string",
                "x-kubernetes-validations": [
                    {"rule": "isURL(self)", "message": "must be a URL"},
                    {"rule": "self == oldSelf", "message": "is immutable"},
                ],
            }
        },
    }

    found = evaluate_rules(schema, {"spec": "x"})

    assert [(f.severity, f.message) for f in found] == [
        (
            Severity.WARNING,
            "rule not checked offline: the CEL library lacks isURL(): must be a URL",
        ),
        (Severity.INFO, "rule applies to updates only, not checked: is immutable"),
    ]


def review(manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "1",
            "operation": "CREATE",
            "namespace": "default",
            "name": manifest["metadata"]["name"],
            "object": manifest,
        },
    }


WEBHOOK_CASES = [case for case in BAD if case.values[3] is Check.ADMISSION]


@pytest.mark.parametrize(
    "text", [case.values[0] for case in WEBHOOK_CASES], ids=[case.id for case in WEBHOOK_CASES]
)
def test_the_webhook_refuses_what_lint_reports_with_the_same_message(text: str) -> None:
    found = errors(text)

    _, reply = admit(review(yaml.safe_load(text)))

    assert reply["response"]["allowed"] is False
    assert found[0].message in reply["response"]["status"]["message"]
