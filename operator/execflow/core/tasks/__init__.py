"""The Task, as pure decisions: snapshot → view (`view`), view → plan (`lifecycle`), plan → status
write (`status`), and the Task in the scheduler's terms (`queueing`). No I/O, no clock reads."""
