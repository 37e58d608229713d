"""Running the `execflow` command in integration tests, as a user would: a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXECFLOW = [sys.executable, "-m", "execflow.cli.main"]


def execflow(
    kubeconfig: Path,
    *args: str,
    stdin: str | None = None,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`execflow ARGS --kubeconfig KUBECONFIG`, stdout and stderr captured (stdout is a pipe)."""
    return subprocess.run(
        [*EXECFLOW, *args, "--kubeconfig", str(kubeconfig)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        check=False,
    )
