"""How kstatus, the status library Flux and kpt use, judges objects: the real library, not a model.

Why this exists: the operator writes its conditions so that GitOps tools read every kind right, and
the only convincing check of that is the library those tools run (`sigs.k8s.io/cli-utils`, package
`pkg/kstatus/status`). A small Go program shipped next to this file (`gomod/kstatus`) feeds each
object on its standard input to `status.Compute` and prints one JSON line per object. It is built
from its module like the cluster's other binaries, on first use, into the same cache; the folder is
keyed by the program's own files, so changing them rebuilds it. Its module pins the Kubernetes
libraries the cluster's binaries are built with, so on a machine that built those the build reuses
their compiled packages and takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from execflow.devcluster.build import BuildError, check_go, run_go
from execflow.devcluster.components import cache_dir

SOURCES = ("go.mod", "go.sum", "main.go")
MODULE = "sigs.k8s.io/cli-utils"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Verdict:
    """kstatus' judgement of one object: `status` is InProgress, Current, Failed, Terminating,
    NotFound or Unknown; `error` is set instead when kstatus could not read the object."""

    kind: str
    namespace: str
    name: str
    status: str
    message: str
    error: str


def _shipped() -> dict[str, bytes]:
    folder = resources.files("execflow.devcluster").joinpath("gomod", "kstatus")
    return {name: folder.joinpath(name).read_bytes() for name in SOURCES}


def library_version(go_mod: str) -> str:
    """The cli-utils version the shipped module requires."""
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(MODULE)}\s+(v\S+)", go_mod, re.MULTILINE)
    if match is None:
        raise BuildError(f"the kstatus module does not require {MODULE}")
    return match[1]


def binary_path() -> Path:
    """Where the built program lives: keyed by the library version and the program's files."""
    sources = _shipped()
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode() + b"\0" + sources[name] + b"\0")
    version = library_version(sources["go.mod"].decode())
    return cache_dir() / "bin" / f"kstatus-{version}-{digest.hexdigest()[:12]}" / "kstatus"


def ensure_kstatus(progress: Progress | None = None) -> Path:
    """The kstatus program, built from its module on the first call and cached after."""
    binary = binary_path()
    if binary.exists():
        return binary
    say = progress or (lambda message: print(message, file=sys.stderr))
    go = check_go()
    log = cache_dir() / "build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    say(f"building kstatus (first run only; log: {log})")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="execflow-build-", dir=cache_dir()) as tmp:
        source, built = Path(tmp) / "src", Path(tmp) / "kstatus"
        source.mkdir()
        for name, content in _shipped().items():
            (source / name).write_bytes(content)
        run_go([go, "build", "-ldflags", "-s -w", "-o", str(built), "."], source, log)
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(built), binary)
    say(f"built kstatus in {time.monotonic() - started:.0f}s")
    return binary


def compute(objects: Iterable[Mapping[str, Any]], binary: Path | None = None) -> list[Verdict]:
    """kstatus' verdict on each object, in order (objects as the API server returns them)."""
    items = list(objects)
    program = binary or ensure_kstatus()
    stdin = "".join(json.dumps(item) + "\n" for item in items)
    done = subprocess.run(
        [str(program)], input=stdin, capture_output=True, text=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"kstatus failed ({done.returncode}): {done.stderr.strip()}")
    verdicts = [_verdict(json.loads(line)) for line in done.stdout.splitlines() if line]
    if len(verdicts) != len(items):
        raise RuntimeError(f"kstatus judged {len(verdicts)} of {len(items)} objects")
    return verdicts


def _verdict(raw: Mapping[str, Any]) -> Verdict:
    return Verdict(
        kind=str(raw.get("kind", "")),
        namespace=str(raw.get("namespace", "")),
        name=str(raw.get("name", "")),
        status=str(raw.get("status", "")),
        message=str(raw.get("message", "")),
        error=str(raw.get("error", "")),
    )


def main() -> int:
    """`python -m execflow.devcluster.kstatus < objects.json`: build if needed, then judge."""
    try:
        binary = ensure_kstatus()
    except BuildError as error:
        print(f"execflow: {error}", file=sys.stderr)
        return 1
    return subprocess.run([str(binary)], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
