"""The Workflow's admission rules in CEL: what the API server refuses before the operator sees it.

CRD validation rules have no variable binding and the chart supports API servers back to 1.29, so
the rules are built from a small set of helpers (bind a value once, find the first index where a
condition holds, build a message naming the offending step or task). Their cost, estimated by the
API server from the list limits in `api.workflow`, stays inside its per-rule and total budgets.
"""

import string

from pydantic.config import JsonDict

from execflow.api.workflow_limits import (
    CHILD_NAME_MESSAGE,
    DEPENDS_ON_MESSAGE,
    INDEX_SUFFIX,
    LABEL_MAX,
    STEP_NAMES_MESSAGE,
    TASK_NAMES_MESSAGE,
)

# CEL of the admission rules. CRD rules have no variable binding (cel.bind), so a comprehension over
# a one-element list computes a value once and names it. List extensions and two-variable
# comprehensions are left out as well, so the rules compile on every API server the chart supports.
#
# A message expression names the offending step or task by finding its index (`indexOf(true)` over
# a list of verdicts) and reading the name from the object: the cost estimate keeps the name's
# maxLength that way, while a string that went through filter() counts as unbounded, which the API
# server refuses to concatenate into a message.


def _let(name: str, value: str, body: str) -> str:
    """CEL: `body` with `name` bound to `value`, which is computed once."""
    return f"[{value}].map({name}, {body})[0]"


def _first(items: str, var: str, condition: str) -> str:
    """CEL: the index of the first of `items` for which `condition` on `var` holds."""
    return f"{items}.map({var}, {condition}).indexOf(true)"


def _say(template: str, **values: str) -> str:
    """CEL building a message: `template` with each `{name}` replaced by the CEL value `name`."""
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        if literal:
            # Double quotes: the messages hold single quotes, and never a double quote.
            parts.append(f'"{literal}"')
        if name is not None:
            parts.append(values[name])
    return " + ".join(parts)


def _rule(rule: str, message: str, message_expression: str, field_path: str) -> JsonDict:
    return {
        "rule": rule,
        "message": message,
        "messageExpression": message_expression,
        "fieldPath": field_path,
    }


def _guard(section: str, spec: str = "self") -> str:
    """CEL: a rule on `finally` holds when it is absent (the schema writes no defaults)."""
    return f"!has({spec}.finally) || " if section == "finally" else ""


def unique_step_names_rule(section: str) -> JsonDict:
    """Step names appear once in `section`, and finally steps reuse no name of `steps`."""
    unique = f"self.{section}.exists_one(p, p.name == s.name)"
    if section == "finally":
        unique += " && !self.steps.exists(p, p.name == s.name)"
    return _rule(
        rule=_guard(section) + f"self.{section}.all(s, {unique})",
        message=STEP_NAMES_MESSAGE,
        message_expression=_say(
            "step name '{name}' is used twice; " + STEP_NAMES_MESSAGE,
            name=f"self.{section}[{_first(f'self.{section}', 's', f'!({unique})')}].name",
        ),
        field_path=f".{section}",
    )


def _task_name_lists(section: str, marker: str) -> str:
    """CEL: per step of `section`, the marker joined to the step's name, then its task names.

    A marked name is no DNS label, so it never meets a task name. Comparing steps in the order of
    their marked names checks each pair once, which halves the cost, and the two markers keep the
    steps of `steps` and `finally` apart.
    """
    return f"self.{section}.map(s, ['{marker}' + s.name] + s.tasks.map(t, t.name))"


def unique_task_names_rule(section: str) -> JsonDict:
    """No step of `section` shares a task name with another step of it or of `steps`."""
    # What each step `a` of the section is compared with: (name, value, in the same section).
    pools = [("l", _task_name_lists("steps", "#"), section == "steps")]
    if section == "finally":
        pools.append(("f", _task_name_lists("finally", "%"), True))
    own = pools[-1][0]

    def clash(test: str) -> str:
        return " || ".join(
            f"{pool}.exists(b, {'a[0] < b[0] && ' if ordered else ''}{test})"
            for pool, _, ordered in pools
        )

    def bound(body: str) -> str:
        for name, value, _ in reversed(pools):
            body = _let(name, value, body)
        return body

    step = f"self.{section}[k]"
    return _rule(
        rule=_guard(section) + bound(f"!{own}.exists(a, {clash('sets.intersects(a, b)')})"),
        message=TASK_NAMES_MESSAGE,
        message_expression=bound(
            _let(
                "k",
                _first(own, "a", clash("sets.intersects(a, b)")),
                _let(
                    "a",
                    f"{own}[k]",
                    _say(
                        "task name '{name}' is used twice; " + TASK_NAMES_MESSAGE,
                        name=f"{step}.tasks[{_first(f'{step}.tasks', 't', clash('t.name in b'))}]"
                        ".name",
                    ),
                ),
            )
        ),
        field_path=f".{section}",
    )


def unique_in_step_rule() -> JsonDict:
    """On a step: its own tasks have distinct names (the rules on the spec compare steps)."""
    unique = "self.tasks.exists_one(u, u.name == t.name)"
    return _rule(
        rule=f"self.tasks.all(t, {unique})",
        message=TASK_NAMES_MESSAGE,
        message_expression=_say(
            "task name '{name}' is used twice in this step; " + TASK_NAMES_MESSAGE,
            name=f"self.tasks[{_first('self.tasks', 't', f'!{unique}')}].name",
        ),
        field_path=".tasks",
    )


def depends_on_rule(section: str) -> JsonDict:
    """Every dependsOn entry of a step of `section` names a step listed before that step."""
    names = "self.steps.map(p, p.name)"
    if section == "finally":
        names += " + self.finally.map(p, p.name)"
    # indexOf gives -1 for a name that is no step, and the step's own position for itself.
    earlier = _let("j", "n.indexOf(d)", "0 <= j && j < i")
    entries = f"s.dependsOn.all(d, {earlier})"
    valid = "!has(s.dependsOn) || " + _let("i", "n.indexOf(s.name)", entries)
    step = f"self.{section}[k]"
    bad_entry = _first(f"{step}.dependsOn", "d", f"!({earlier})")
    return _rule(
        rule=_guard(section) + _let("n", names, f"self.{section}.all(s, {valid})"),
        message=DEPENDS_ON_MESSAGE,
        message_expression=_let(
            "n",
            names,
            _let(
                "k",
                _first(f"self.{section}", "s", f"!({valid})"),
                _let(
                    "i",
                    f"n.indexOf({step}.name)",
                    _say(
                        "step '{step}' depends on '{entry}', which is not a step listed before "
                        "it; " + DEPENDS_ON_MESSAGE,
                        step=f"{step}.name",
                        entry=f"{step}.dependsOn[{bad_entry}]",
                    ),
                ),
            ),
        ),
        field_path=f".{section}",
    )


def child_names_rule(section: str) -> JsonDict:
    """At the root, where metadata.name is visible: each task's longest child name fits."""
    fits = (
        f"size(self.metadata.name) + size(t.name) + (has(t.forEach) ? {1 + INDEX_SUFFIX} : 1)"
        f" <= {LABEL_MAX}"
    )
    steps = f"self.spec.{section}"
    tasks = f"{steps}[k].tasks"
    return _rule(
        rule=_guard(section, "self.spec") + f"{steps}.all(s, s.tasks.all(t, {fits}))",
        message=CHILD_NAME_MESSAGE,
        message_expression=_let(
            "k",
            _first(steps, "s", f"s.tasks.exists(t, !({fits}))"),
            _say(
                f"task '{{name}}' gives child Task names over {LABEL_MAX} characters; "
                + CHILD_NAME_MESSAGE,
                name=f"{tasks}[{_first(tasks, 't', f'!({fits})')}].name",
            ),
        ),
        field_path=f".spec.{section}",
    )
