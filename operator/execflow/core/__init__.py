"""Pure decision logic (scheduling, retries, workflows, results): plain data in, decisions out."""
