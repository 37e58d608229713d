"""`execflow lint FILE...`: manifests checked offline, as the API server and the operator would.

No cluster and no kubeconfig: every execflow object in the files is checked against the CRD
schema and CEL rules the API server applies, the kind's model and, for Workflows and ResultSets,
the operator's admission webhook (`execflow.core.linting`). One line per problem on stdout,

    FILE:LINE:COL: error: Kind/name: spec.path: message

(`warning:` for what the API server accepts but changes, such as an unknown field it drops, or
what could not be checked offline), a summary on stderr. `-o json` prints the problems as one
JSON list instead; `-v` adds skipped documents and rules that apply to updates only; `--strict`
makes unknown fields errors, as `kubectl apply` (field validation Strict) does. `-` reads stdin.

Exit code: 0 without errors, 1 with any error, 2 when a file cannot be read or is not YAML.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from execflow.cli.common import say
from execflow.core.linting import Problem, Severity, YamlError, lint_text

CLEAN = 0
INVALID = 1
UNREADABLE = 2
STDIN = "-"
STDIN_NAME = "<stdin>"


def add_parser(commands: Any) -> None:
    lint = commands.add_parser(
        "lint",
        help="check manifests offline against the CRD schemas, CEL rules and admission checks",
        description=(
            "Check execflow manifests without a cluster: the CRD schema and CEL rules the API "
            "server applies, the kind's model, and for Workflows and ResultSets the operator's "
            "admission webhook. Exit code 0: no errors, 1: errors, 2: a file is unreadable or "
            "not YAML."
        ),
    )
    lint.add_argument("files", nargs="+", metavar="FILE", help="YAML files; - reads stdin")
    lint.add_argument(
        "-o", "--output", choices=("text", "json"), default="text", help="output format"
    )
    lint.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also list skipped documents and rules that apply to updates only",
    )
    lint.add_argument(
        "--strict",
        action="store_true",
        help="unknown fields are errors, as with kubectl apply (default: warnings, as the API "
        "server's default field validation)",
    )
    lint.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    files: Sequence[str] = args.files
    found: list[tuple[str, Problem]] = []
    unreadable: list[dict[str, Any]] = []
    for name in files:
        shown = STDIN_NAME if name == STDIN else name
        try:
            text = _read(name)
        except (OSError, UnicodeDecodeError) as failure:
            unreadable.append(_entry(shown, None, None, f"cannot read: {_reason(failure)}"))
            continue
        try:
            problems = lint_text(text, strict=args.strict)
        except YamlError as failure:
            where = failure.position
            unreadable.append(_entry(shown, where.line, where.column, f"not YAML: {failure}"))
            continue
        found.extend(
            (shown, problem)
            for problem in problems
            if args.verbose or problem.severity is not Severity.INFO
        )
    _print(found, unreadable, args.output)
    errors = sum(1 for _, problem in found if problem.severity is Severity.ERROR)
    warnings = sum(1 for _, problem in found if problem.severity is Severity.WARNING)
    say(_summary(len(files), errors, warnings, len(unreadable)))
    if unreadable:
        return UNREADABLE
    return INVALID if errors else CLEAN


def _read(name: str) -> str:
    if name == STDIN:
        return sys.stdin.read()
    with open(name, encoding="utf-8") as handle:
        return handle.read()


def _reason(failure: Exception) -> str:
    if isinstance(failure, OSError) and failure.strerror:
        return failure.strerror
    if isinstance(failure, UnicodeDecodeError):
        return "not UTF-8 text"
    return str(failure)


def _entry(file: str, line: int | None, column: int | None, message: str) -> dict[str, Any]:
    return {
        "file": file,
        "severity": Severity.ERROR.value,
        "line": line,
        "column": column,
        "document": None,
        "object": "",
        "path": "",
        "message": message,
        "check": "yaml",
    }


def _print(found: list[tuple[str, Problem]], unreadable: list[dict[str, Any]], form: str) -> None:
    if form == "json":
        listed = [*unreadable, *({"file": file, **p.as_dict()} for file, p in found)]
        sys.stdout.write(json.dumps(listed, indent=2, ensure_ascii=False) + "\n")
        return
    for entry in unreadable:
        where = ":".join(
            str(part) for part in (entry["file"], entry["line"], entry["column"]) if part
        )
        print(f"{where}: error: {entry['message']}")
    for file, problem in found:
        print(f"{file}:{problem.line}:{problem.column}: {problem.severity}: {problem.describe()}")


def _summary(files: int, errors: int, warnings: int, unreadable: int) -> str:
    def count(number: int, noun: str) -> str:
        return f"{number} {noun}{'' if number == 1 else 's'}"

    text = f"execflow lint: {count(errors, 'error')}, {count(warnings, 'warning')}"
    text += f" in {count(files, 'file')}"
    if unreadable:
        text += f"; {count(unreadable, 'file')} could not be read as YAML"
    return text
