"""Pure decision logic (the Task view and lifecycle, conditions, dependencies, retries,
scheduling): plain data in, decisions out; no I/O and no clock reads."""
