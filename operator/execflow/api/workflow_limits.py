"""Limits and messages of the Workflow kind, shared by its models and its admission rules.

The list limits are what the API server's CEL cost budget allows for the admission rules (see the
comment below); the messages are the same at admission and when the operator parses a body.
"""

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
NAME_MESSAGE = (
    "must be lower-case letters, digits and '-', starting and ending with a letter or digit "
    "(it goes into child Task names and labels)"
)
LABEL_MAX = 63
"""Child Task names are label values (execflow.dev/task on their Jobs and pods)."""
FAN_OUT_MAX = 10_000
"""Items a `forEach` may produce; the index suffix `-<n>` of a child name has at most 4 digits."""
INDEX_SUFFIX = len(f"-{FAN_OUT_MAX - 1}")

# The list limits are what the API server's CEL cost budget allows, measured on the real server.
# It estimates every rule's worst case from the limits and refuses the CRD when one rule, times
# how often it runs, exceeds 10M or all rules together exceed 100M; at admission it stops any one
# evaluation past 1M. Each workflow task carries the Task's format rules, the dearest being the
# time-zone check of up to 32 time windows (about 8,500 per task), so `steps` may hold about 1,170
# tasks in all, and `finally` as many again. The task-name check across steps is quadratic and
# stays under 1M per evaluation up to about 1,300 tasks. 50 steps of 20 tasks (and 10 finally
# steps of 20) leave a margin on both.
STEPS_MAX = 50
"""Most steps in `steps`."""
FINALLY_MAX = 10
"""Most steps in `finally`."""
TASKS_PER_STEP_MAX = 20
"""Most tasks in one step; a fan-out (`forEach`) counts once however many items it produces."""
DEPENDS_ON_MAX = STEPS_MAX + FINALLY_MAX - 1
"""Enough for a step to depend on every step listed before it."""

TASK_NAMES_MESSAGE = "task names must be unique across steps and finally, as each names child Tasks"
STEP_NAMES_MESSAGE = "step names must be unique across steps and finally"
DEPENDS_ON_MESSAGE = (
    "each dependsOn entry must name a step listed before the step, so steps cannot form a cycle"
)
MAX_RETRIES_MESSAGE = "maxRetries is only for onError: Retry"
CHILD_NAME_MESSAGE = (
    f"child Task names <workflow>-<task>, and <workflow>-<task>-<index> up to index "
    f"{FAN_OUT_MAX - 1} with forEach, must fit the {LABEL_MAX} characters of a label value: "
    "shorten metadata.name or the task name"
)
