"""Running the chart's Argo CD health checks (Lua) the way Argo CD does, for the tests.

Why this exists: the health checks ship as Lua files in the chart (`charts/execflow/health`), and
the unit tests (edge cases) and the integration test (real objects) must run the same files in the
same way. Argo CD runs a check in gopher-lua, a Lua 5.1, with the object as the global `obj` and
only a few standard libraries open; here each run gets a fresh Lua 5.1 runtime (lupa) that keeps
only the base and table libraries, so a check that leans on anything more fails here first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lupa import lua51  # type: ignore[import-untyped]

CHECKS = Path(__file__).resolve().parent.parent / "charts" / "execflow" / "health"
KINDS = ("Task", "Workflow", "ResultSet", "Tool")
STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
_UNAVAILABLE = ("string", "io", "os", "math", "debug", "coroutine", "require", "dofile", "load")


@dataclass(frozen=True)
class Health:
    """What a health check returned."""

    status: str
    message: str


def script(kind: str) -> str:
    """The check for `kind`, as it goes into argocd-cm."""
    return (CHECKS / f"execflow.dev_{kind}.lua").read_text()


def check(obj: dict[str, Any], kind: str | None = None) -> Health:
    """Run the check for `kind` (default: the object's own kind) on `obj`."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=False)
    lua_globals = runtime.globals()
    for name in _UNAVAILABLE:
        lua_globals[name] = None
    lua_globals.obj = runtime.table_from(obj, recursive=True)
    returned = runtime.execute(script(kind or obj["kind"]))
    if returned is None or lua51.lua_type(returned) != "table":
        raise AssertionError(f"the {kind or obj['kind']} check returned {returned!r}, not a table")
    status, message = returned["status"], returned["message"]
    if status not in STATUSES:
        raise AssertionError(f"the check returned the status {status!r}")
    return Health(str(status), "" if message is None else str(message))
