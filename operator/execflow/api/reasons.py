"""Every reason word the operator writes into a status, an Event or a condition.

A reason is one CamelCase word that tools and people can match on (`status.reason`, a condition's
`reason`, an Event's `reason`), so the words are part of the API: they are listed here once and
written from here only. The one exception is how a container ended: when an attempt fails, the
reason the kubelet gave (`Error`, `OOMKilled`, `ContainerCannotRun`, ...) is passed through as the
Task's reason, since the operator cannot know every word a runtime may use; the common ones are
listed below for code that needs to name them.
"""

import enum


class Reason(enum.StrEnum):
    """Why an object is in its phase or condition."""

    # Waiting to start (Pending or Queued)
    QUEUED = "Queued"
    QUEUE_FULL = "QueueFull"
    UNKNOWN_QUEUE = "UnknownQueue"
    UNSCHEDULABLE = "Unschedulable"
    OUTSIDE_TIME_WINDOW = "OutsideTimeWindow"
    MUTEX_HELD = "MutexHeld"
    EXCLUSIVE_RUNNING = "ExclusiveRunning"
    WAITING_FOR_CAPACITY = "WaitingForCapacity"
    NO_SCHEDULABLE_NODES = "NoSchedulableNodes"
    PREEMPTED = "Preempted"
    TOOL_NOT_FOUND = "ToolNotFound"
    WAITING_FOR_DEPENDENCY = "WaitingForDependency"
    PREVIOUS_JOB_EXISTS = "PreviousJobExists"
    BACK_OFF = "BackOff"
    JOB_FORBIDDEN = "JobForbidden"
    # An attempt exists
    RUNNING = "Running"
    POD_CREATE_FAILED = "PodCreateFailed"
    POD_UNSCHEDULABLE = "PodUnschedulable"
    CONTAINER_WAITING = "ContainerWaiting"
    # Stopped by the user
    SUSPENDED = "Suspended"
    CANCELLED = "Cancelled"
    # Finished well
    SUCCEEDED = "Succeeded"
    CACHE_HIT = "CacheHit"
    # Finished badly, or can never run
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    DEADLINE_MISSED = "DeadlineMissed"
    DEPENDENCY_FAILED = "DependencyFailed"
    DEPENDENCY_CYCLE = "DependencyCycle"
    INVALID_PARAMETERS = "InvalidParameters"
    INVALID_SPEC = "InvalidSpec"
    INVALID_TOOL = "InvalidTool"
    INVALID_NAME = "InvalidName"
    JOB_REJECTED = "JobRejected"
    STATUS_REJECTED = "StatusRejected"
    OPERATOR_ERROR = "OperatorError"
    # How a container ended, as the kubelet reports it (passed through; see the module docstring)
    ERROR = "Error"
    OOM_KILLED = "OOMKilled"
    EVICTED = "Evicted"
    # Workflows
    STARTED = "Started"
    RESUMED = "Resumed"
    STEP_FAILED = "StepFailed"
    TASK_FAILED = "TaskFailed"
    RETRYING_STEP = "RetryingStep"
    FAILURES_TOLERATED = "FailuresTolerated"
    NOT_RUN = "NotRun"
    CONDITION_FALSE = "ConditionFalse"
    NOT_CHOSEN = "NotChosen"
    NO_ITEMS = "NoItems"
    DEPENDENCY_NOT_MET = "DependencyNotMet"
    INVALID_EXPRESSION = "InvalidExpression"
    EXPRESSION_ERROR = "ExpressionError"
    NAME_CONFLICT = "NameConflict"
    STUCK = "Stuck"
    RESUME_IGNORED = "ResumeIgnored"
    # ResultSets (which also use InvalidExpression and ExpressionError)
    CHECKSUM_MISMATCH = "ChecksumMismatch"
    DECRYPTION_FAILED = "DecryptionFailed"
    INVALID_KEY = "InvalidKey"
    STORAGE_UNAVAILABLE = "StorageUnavailable"
    TOO_LARGE = "TooLarge"
    COLLECTING = "Collecting"
    COLLECTED = "Collected"
    WAITING_FOR_BATCH = "WaitingForBatch"
    WAITING_FOR_TASKS = "WaitingForTasks"
    WAITING_FOR_FIRST_READ = "WaitingForFirstRead"
    WAITING_FOR_REQUEST = "WaitingForRequest"
    SNAPSHOT_TAKEN = "SnapshotTaken"
    SECRET_NOT_FOUND = "SecretNotFound"
    AGGREGATED = "Aggregated"
    TRANSFORMED = "Transformed"
    EXPIRED = "Expired"
    STORAGE_LEFT_BEHIND = "StorageLeftBehind"
    # Tools
    VALID = "Valid"
    INVALID_SCHEMA = "InvalidSchema"
    INVALID_DEFAULTS = "InvalidDefaults"
