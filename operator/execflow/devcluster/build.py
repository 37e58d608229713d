"""Build the local cluster's binaries from their Go modules, once, into a cache keyed by version.

`k8s.io/kubernetes` and etcd's server cannot be `go install`ed: their go.mod files replace their
own sibling modules with local paths. Each gets a small wrapper module (shipped next to this file)
that requires the real module and points every replaced sibling at its published version. kwok,
helm and versitygw install directly. Kubernetes binaries are version-stamped so that kubectl and
helm see a real semver instead of `v0.0.0-master`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path

from execflow.devcluster.components import (
    COMPONENTS,
    KUBERNETES_VERSION,
    MINIMUM_GO,
    Component,
    binary_path,
    cache_dir,
)


class BuildError(RuntimeError):
    """A component could not be built; the message says which one and what to do."""


def go_environment() -> dict[str, str]:
    cache = cache_dir() / "go"
    env = dict(os.environ)
    env.update(
        GOTOOLCHAIN="local",
        GOFLAGS="-mod=mod",
        GOMODCACHE=str(cache / "mod"),
        GOCACHE=str(cache / "build"),
        CGO_ENABLED="0",
    )
    return env


def check_go() -> str:
    """Return the Go executable, or raise a one-line instruction when Go is missing or too old."""
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            f"Go is not installed: install Go >= {MINIMUM_GO[0]}.{MINIMUM_GO[1]} "
            "(https://go.dev/dl/) and retry"
        )
    output = subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, check=False, env=go_environment()
    ).stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", output)
    if match is None or (int(match[1]), int(match[2])) < MINIMUM_GO:
        raise BuildError(
            f"Go {output or 'of unknown version'} is too old: install Go >= "
            f"{MINIMUM_GO[0]}.{MINIMUM_GO[1]} and retry"
        )
    return go


def kubernetes_ldflags(version: str = KUBERNETES_VERSION) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    stamp = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
    }
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.{key}={value}" for key, value in stamp.items()]
    return " ".join(flags)


def helm_ldflags(version: str) -> str:
    """helm's version, and the Kubernetes version it assumes without a cluster (`helm template`,
    `helm lint`): unstamped it assumes v1.20, which a chart's `kubeVersion` floor refuses."""
    major, minor = KUBERNETES_VERSION.removeprefix("v").split(".")[:2]
    flags = ["-s", "-w", f"-X helm.sh/helm/v3/internal/version.version={version}"]
    for package in ("helm.sh/helm/v3/pkg/chartutil", "helm.sh/helm/v3/pkg/lint/rules"):
        flags += [f"-X {package}.k8sVersionMajor={major}", f"-X {package}.k8sVersionMinor={minor}"]
    return " ".join(flags)


def ldflags_for(component: Component) -> str:
    if component.wrapper == "kubernetes":
        return kubernetes_ldflags(component.version)
    if component.name == "helm":
        return helm_ldflags(component.version)
    if component.name == "versitygw":
        return f"-s -w -X main.Version={component.version}"
    return "-s -w"


def _wrapper_dir(wrapper: str, version: str) -> Path:
    """Copy the shipped wrapper module into the cache, where go may update its go.sum."""
    target = cache_dir() / "src" / f"{wrapper}-{version}"
    target.mkdir(parents=True, exist_ok=True)
    shipped = resources.files("execflow.devcluster").joinpath("gomod", wrapper)
    for name in ("go.mod", "go.sum"):
        source = shipped.joinpath(name)
        if source.is_file():
            (target / name).write_bytes(source.read_bytes())
    return target


def _go_binary_name(package: str) -> str:
    """The file name `go build`/`go install` gives a main package (major-version suffix dropped)."""
    parts = package.split("/")
    if re.fullmatch(r"v\d+", parts[-1]):
        return parts[-2]
    return parts[-1]


def run_go(args: list[str], cwd: Path, log: Path, gobin: Path | None = None) -> None:
    env = go_environment()
    if gobin is not None:
        env["GOBIN"] = str(gobin)
    with log.open("ab") as out:
        out.write(f"$ {' '.join(args)}\n".encode())
        out.flush()
        result = subprocess.run(
            args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise BuildError(f"building failed ({' '.join(args[:3])} ...); log {log}:\n{tail}")


def _build_group(go: str, group: list[Component], log: Path) -> None:
    first = group[0]
    with tempfile.TemporaryDirectory(prefix="execflow-build-", dir=cache_dir()) as tmp:
        out_dir = Path(tmp)
        if first.wrapper is not None:
            cwd = _wrapper_dir(first.wrapper, first.version)
            run_go(
                [go, "build", "-ldflags", ldflags_for(first), "-o", f"{out_dir}/"]
                + [c.package for c in group],
                cwd,
                log,
            )
            built = {c.name: out_dir / _go_binary_name(c.package) for c in group}
        else:
            run_go(
                [
                    go,
                    "install",
                    "-ldflags",
                    ldflags_for(first),
                    f"{first.package}@{first.version}",
                ],
                out_dir,
                log,
                gobin=out_dir,
            )
            built = {first.name: out_dir / _go_binary_name(first.package)}
        for component in group:
            source = built[component.name]
            destination = binary_path(component)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), destination)


def missing(components: Iterable[Component] = COMPONENTS) -> list[Component]:
    return [c for c in components if not binary_path(c).exists()]


def ensure_binaries(progress: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Build whatever is not cached yet; return the path of every binary by component name."""
    say = progress or (lambda message: print(message, file=sys.stderr))
    todo = missing()
    if todo:
        go = check_go()
        log = cache_dir() / "build.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        groups: dict[str, list[Component]] = {}
        for component in todo:
            groups.setdefault(component.wrapper or component.name, []).append(component)
        for group in groups.values():
            names = ", ".join(c.name for c in group)
            say(f"building {names} {group[0].version} (first run only; log: {log})")
            started = time.monotonic()
            _build_group(go, group, log)
            say(f"built {names} in {time.monotonic() - started:.0f}s")
    return {c.name: binary_path(c) for c in COMPONENTS}


def main() -> int:
    try:
        paths = ensure_binaries()
    except BuildError as error:
        print(f"execflow: {error}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name:<24} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
