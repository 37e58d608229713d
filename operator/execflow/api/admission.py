"""Admission rules that travel with a type from the pydantic models into the CRD schema.

A value format (a duration, a quantity, a time of day) is enforced twice: by the API server when
an object is written, and by pydantic when the operator parses it. The API server answers an
OpenAPI `pattern` with the regular expression itself, which tells a user nothing, so formats are
declared here as CEL rules with a message that names the expected form in words. An
`AdmissionRule` sits in `Annotated[...]` beside the pydantic validator that checks the same form in
Python, so both enforcers live on one type and cannot drift apart.
"""

import re
from dataclasses import dataclass
from typing import Any

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

VALIDATIONS = "x-kubernetes-validations"
"""The CRD schema extension that carries CEL rules."""

_CEL_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CEL_RESERVED = frozenset(
    {
        "as",
        "break",
        "const",
        "continue",
        "else",
        "false",
        "for",
        "function",
        "if",
        "import",
        "in",
        "let",
        "loop",
        "namespace",
        "null",
        "package",
        "return",
        "true",
        "var",
        "void",
        "while",
    }
)


@dataclass(frozen=True)
class AdmissionRule:
    """A CEL rule the API server checks on the annotated value, and the message it answers with.

    The API server prefixes the message with the field's path, so the message starts with what the
    value must be ("must be a Go-style duration such as 30s"), never with the field's name.
    """

    rule: str
    message: str

    def to_crd(self) -> dict[str, str]:
        """The rule as one entry of x-kubernetes-validations."""
        return {"rule": self.rule, "message": self.message}

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """Add this rule to the annotated type's schema, after any rules it already carries."""
        schema: dict[str, Any] = dict(handler(core_schema))
        schema[VALIDATIONS] = [*schema.get(VALIDATIONS, []), self.to_crd()]
        return schema


def cel_string(text: str) -> str:
    """`text` as a CEL string literal, so a Python constant can be embedded in a rule verbatim."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def matches(pattern: str) -> str:
    """A CEL condition: `self` fully matches `pattern` (RE2 syntax, anchored by the caller)."""
    return f"self.matches({cel_string(pattern)})"


def cel_field(name: str) -> str:
    """`name` as a CEL field selector; refuses names that would need Kubernetes' CEL escaping."""
    if _CEL_IDENTIFIER.fullmatch(name) is None or name in _CEL_RESERVED:
        raise ValueError(f"{name!r} cannot be selected in a CEL rule without escaping")
    return name
