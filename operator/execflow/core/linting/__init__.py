"""Offline validation of execflow manifests: what the API server and the operator would refuse.

`lint_text` reads YAML (any number of documents) and checks every execflow object in it against
the same CRD schema and CEL rules the API server applies (generated from the models by
`execflow.api.crdgen`), the kind's pydantic model, and, for Workflows and ResultSets, the
operator's admission webhook (`execflow.core.admission`). Each problem is placed at the line
and column of the field it is about. No cluster is needed; what cannot be checked offline is
said, never skipped silently (see `execflow.core.linting.rules`).

Documents of other API groups are skipped (an `info` problem, shown on request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from execflow.core.linting.checks import check_object
from execflow.core.linting.documents import Document, Position, YamlError, load
from execflow.core.linting.findings import Check, Finding, Severity
from execflow.core.linting.paths import render

__all__ = ["Check", "Position", "Problem", "Severity", "YamlError", "lint_text"]


@dataclass(frozen=True)
class Problem:
    """One problem, placed in the file: `subject` is Kind/name, `path` the field path."""

    severity: Severity
    line: int
    column: int
    document: int
    subject: str
    path: str
    message: str
    check: Check

    def describe(self) -> str:
        """`Kind/name: spec.path: message`, leaving out what is empty."""
        return ": ".join(part for part in (self.subject, self.path, self.message) if part)

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "line": self.line,
            "column": self.column,
            "document": self.document,
            "object": self.subject,
            "path": self.path,
            "message": self.message,
            "check": self.check.value,
        }


def lint_text(text: str, *, strict: bool = False) -> list[Problem]:
    """Every problem of every document in `text`, in file order; raises YamlError when the text
    is not YAML. With `strict`, unknown fields are errors (kubectl's default), else warnings (the
    API server's default when a client does not ask)."""
    problems: list[Problem] = []
    for document in load(text):
        checked = check_object(document.value, strict=strict)
        findings = [
            *(
                Finding(
                    Severity.ERROR,
                    Check.YAML,
                    duplicate.path,
                    f"key {duplicate.path[-1]!r} is already defined at line "
                    f"{duplicate.first.line} (kubectl refuses a key given twice)",
                )
                for duplicate in document.duplicates
            ),
            *checked.findings,
        ]
        problems.extend(_placed(document, checked.subject, finding) for finding in findings)
    return sorted(problems, key=lambda p: (p.line, p.column))


def _placed(document: Document, subject: str, finding: Finding) -> Problem:
    position = document.position(finding.path)
    for duplicate in document.duplicates:
        if duplicate.path == finding.path:
            position = duplicate.position
    return Problem(
        severity=finding.severity,
        line=position.line,
        column=position.column,
        document=document.index,
        subject=subject,
        path=render(finding.path),
        message=finding.message,
        check=finding.check,
    )
