"""The `execflow` command (also the kubectl plugin `kubectl execflow`).

Users' verbs (submit, get, watch, logs, workflow, dag, tool, lint, results) live one module each
in this package and register themselves through `add_parser`; this module adds the operator's own
verbs (cluster, run, crds). Progress goes to stderr and results to stdout, so scripts can capture
what they need (for example the kubeconfig path that `cluster up` prints as its last line).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from execflow import __version__

VERBS = ("submit", "get", "watch", "logs", "workflow", "dag", "tool", "lint", "mcp", "results")
"""The modules of this package that each add one user verb (`add_parser(commands)`)."""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cluster(args: argparse.Namespace) -> int:
    from execflow.devcluster import object_store
    from execflow.devcluster.build import BuildError
    from execflow.devcluster.cluster import ClusterError, LocalCluster, NodeShape

    cluster = LocalCluster()
    if args.action == "up":
        shape = NodeShape(count=args.nodes, cpu=args.node_cpu, memory=args.node_memory)
        try:
            kubeconfig = cluster.up(shape, _say)
        except (BuildError, ClusterError) as error:
            _say(f"execflow cluster up: {error}")
            return 1
        print(kubeconfig)
        return 0
    if args.action == "down":
        cluster.down(_say)
        _say("cluster removed")
        return 0
    state = cluster.state()
    if state is None:
        print("no local cluster (run: execflow cluster up)")
        return 1
    for name, alive in cluster.running().items():
        print(f"{name:<24} {'running' if alive else 'STOPPED':<8} pid {state.pids[name]}")
    healthy = cluster.healthy()
    print(f"api server  https://127.0.0.1:{state.ports['kube-apiserver']}")
    if object_store.NAME in state.ports:
        endpoint = object_store.endpoint(state.ports[object_store.NAME])
        secret = f"{object_store.SECRET_NAMESPACE}/{object_store.SECRET_NAME}"
        print(f"s3          {endpoint} (keys in the Secret {secret})")
    print(f"nodes       {state.nodes.count} x {state.nodes.cpu} CPU x {state.nodes.memory}")
    print(f"kubeconfig  {cluster.kubeconfig}")
    print(f"state       {cluster.dir}")
    print(f"healthy     {'yes' if healthy else 'no'}")
    return 0 if healthy else 1


def _service(value: str) -> tuple[str, str]:
    namespace, _, name = value.partition("/")
    if not namespace or not name or "/" in name:
        raise argparse.ArgumentTypeError(f"expected NAMESPACE/NAME, not {value!r}")
    return namespace, name


def _run(args: argparse.Namespace) -> int:
    from execflow.runner import RunOptions, run

    return run(
        RunOptions(
            settings_path=args.settings,
            namespaces=tuple(args.namespace),
            metrics_port=args.metrics_port,
            liveness=args.liveness,
            verbose=args.verbose,
            leader_namespace=args.leader_election_namespace,
            lease_seconds=args.leader_election_lease,
            webhook_port=args.webhook_port,
            webhook_service=args.webhook_service,
        )
    )


def _crds(args: argparse.Namespace) -> int:
    from pathlib import Path

    from execflow.api import crdgen

    rendered = crdgen.render_crds()
    for out in args.out:
        if out == "-":
            sys.stdout.write("---\n".join(rendered[name] for name in sorted(rendered)))
            continue
        for path in crdgen.write_crds(Path(out), rendered):
            _say(f"wrote {path}")
    return 0


def _program() -> str:
    """`kubectl execflow` when run as the kubectl plugin, else `execflow`."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "kubectl execflow" if name.startswith("kubectl-") else "execflow"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_program(),
        description="execflow: tools, tasks, workflows and result sets on Kubernetes",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for verb in VERBS:
        importlib.import_module(f"execflow.cli.{verb}").add_parser(commands)

    cluster = commands.add_parser("cluster", help="a local control plane with fake nodes")
    actions = cluster.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="build (first time), start or reuse the local cluster")
    up.add_argument("--nodes", type=int, default=4, help="number of fake nodes (default 4)")
    up.add_argument("--node-cpu", default="8", help="allocatable CPU per node (default 8)")
    up.add_argument(
        "--node-memory", default="32Gi", help="allocatable memory per node (default 32Gi)"
    )
    actions.add_parser("down", help="stop every process and remove the cluster's state")
    actions.add_parser("status", help="say what runs")
    cluster.set_defaults(handler=_cluster)

    run = commands.add_parser("run", help="run the operator against the current kubeconfig")
    run.add_argument("--settings", help="operator settings YAML (queues); defaults when absent")
    run.add_argument(
        "--namespace", action="append", default=[], help="watch only this namespace (repeatable)"
    )
    run.add_argument("--metrics-port", type=int, default=8080, help="Prometheus port (0: off)")
    run.add_argument("--liveness", default=None, help="e.g. http://0.0.0.0:8081/healthz")
    run.add_argument("--verbose", action="store_true", help="debug logging")
    run.add_argument(
        "--leader-election-namespace",
        default=None,
        help="with several replicas: hold a Lease in this namespace; only its holder acts",
    )
    run.add_argument(
        "--leader-election-lease",
        type=float,
        default=15.0,
        help="seconds a Lease holds without renewal (default 15)",
    )
    run.add_argument(
        "--webhook-port",
        type=int,
        default=0,
        help="serve the Workflow admission webhook on this port and register it as the "
        "ValidatingWebhookConfiguration execflow.dev (default 0: no webhook)",
    )
    run.add_argument(
        "--webhook-service",
        type=_service,
        default=None,
        metavar="NAMESPACE/NAME",
        help="in a cluster: the API server reaches the webhook through this Service (port 443), "
        "and its certificate is kept in the Secret NAME-tls there; without it: "
        "https://127.0.0.1:PORT, for an API server on this machine",
    )
    run.set_defaults(handler=_run)

    crds = commands.add_parser("crds", help="print or write the generated CRD YAML")
    crds.add_argument(
        "--out",
        nargs="+",
        default=["-"],
        help="folders to write one file per CRD into; - (the default): all of them to stdout",
    )
    crds.set_defaults(handler=_crds)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
