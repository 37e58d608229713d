"""The Workflow, as pure decisions: from the spec, the status checkpoint and the child Tasks to
the children to create, change or delete and the status to write. No I/O, no clock reads."""
