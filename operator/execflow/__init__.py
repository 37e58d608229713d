"""execflow: a Kubernetes operator that queues, schedules, retries and collects tool executions."""

__version__ = "0.1.0"
