"""Kueue as a peer in the throughput benchmark: the same N Jobs, admitted through Kueue.

Why this exists: task_throughput.py reports execflow Tasks relative to bare Jobs run on the same
cluster in the same run. The same Jobs queued in Kueue, a widely used batch queue, add a second
point of comparison: what a queue in front of Jobs costs on this control plane and this machine.
The Jobs are exactly the benchmark's bare Jobs, created suspended and labelled with Kueue's
queue-name (what Kueue's admission webhook, which is not registered here, would do), in a fresh
namespace whose LocalQueue points at a ClusterQueue big enough to admit all of them at once, so
that Kueue is measured and not a quota. Kueue itself (execflow.devcluster.kueue) is built from its
Go module on first use and runs as a local process with the cluster's admin kubeconfig.

The clock runs from the first create until a watch on the namespace has seen every Job Complete
(or Failed): jobs/s = N / elapsed. The same watch gives each Job's ADDED -> admitted time, where
admitted is the first event with `spec.suspend` false (Kueue unsuspends a Job once admitted).

Run alone from the repository root, it measures N bare Jobs and then N Kueue Jobs:

    .venv/bin/python benchmarks/kueue_peer.py [--count 200] [--cluster shared|private]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from execflow.devcluster import harness, kueue, kueue_process
from task_throughput import (
    NAMESPACE_LABELS,
    Latency,
    Observations,
    Percentiles,
    Run,
    bare_job,
    create_all,
    drain,
    list_resource_version,
    run_jobs,
    say,
    summarize_run,
    wait_until_finished,
)
from watching import RawWatch


@dataclass
class KueueObservations(Observations):
    """The bare-Job observations plus when each Job was first seen unsuspended."""

    admitted: dict[str, float] = field(default_factory=dict)

    def on_kueue_job(self, kind: str, job: dict[str, Any], at: float) -> None:
        self.on_bare_job(kind, job, at)
        if not (job.get("spec") or {}).get("suspend", False):
            with self.lock:
                self.admitted.setdefault(job["metadata"]["name"], at)


@dataclass(frozen=True)
class KueueRun:
    """N Jobs through Kueue: the run as for bare Jobs; ADDED -> admitted -> finished as the watch
    saw them; when Kueue had released every Workload (Finished, finalizer removed; from the
    first create, polled every 0.5 s); Kueue's CPU time until then (None without the process)."""

    run: Run
    added_to_admitted_seconds: Latency
    admitted_to_finished_seconds: Percentiles
    released_seconds: float
    kueue_version: str
    kueue_cpu_seconds: float | None


def kueue_job(name: str, duration: str, queue: str) -> dict[str, Any]:
    """`bare_job` as Kueue's webhook would leave it: suspended, with the queue-name label."""
    job = bare_job(name, duration)
    job["metadata"]["labels"] = {kueue.QUEUE_LABEL: queue}
    job["spec"]["suspend"] = True
    return job


@contextmanager
def kueue_running(
    kubeconfig: Path,
    api: client.ApiClient,
    progress: harness.Progress = say,
    *,
    qps: float = 50,
    burst: int = 100,
) -> Iterator[kueue_process.KueueProcess]:
    """Kueue built (first use only), its CRDs applied, and its manager running for the block,
    with the client rate of Kueue's default installation unless qps/burst say otherwise (a
    negative qps: no client-side limit). Its folder (configuration, certificates, log) is removed
    afterwards unless the block failed."""
    binary = kueue.ensure_kueue(progress)
    kueue.apply_crds(api)
    directory = Path(tempfile.mkdtemp(prefix="execflow-kueue-"))
    process = kueue_process.KueueProcess(binary, kubeconfig, directory, qps=qps, burst=burst)
    progress(f"starting kueue {kueue.KUEUE_VERSION}, client qps {qps} (log: {process.log_path})")
    succeeded = False
    try:
        process.start()
        yield process
        succeeded = True
    finally:
        process.stop()
        if succeeded:
            shutil.rmtree(process.directory, ignore_errors=True)
        else:
            progress(f"kueue folder kept: {process.directory}; {process.log_tail(20)}")


def run_kueue_jobs(
    api: client.ApiClient,
    namespace: str,
    count: int,
    threads: int,
    duration: str,
    *,
    timeout: float | None = None,
    process: kueue_process.KueueProcess | None = None,
) -> KueueRun:
    """N Jobs through Kueue in namespace (fresh, empty); Kueue must be running (kueue_running).
    Creates the namespace's queues first and waits until Kueue reports them Active."""
    limit = 120 + 0.5 * count if timeout is None else timeout
    queue = kueue.setup_queues(api, namespace, capacity=max(100_000, count))
    kueue.wait_queue_active(api, namespace)
    batch = client.BatchV1Api(api)
    names = [f"job-{index:05d}" for index in range(count)]
    observed = KueueObservations()

    def list_jobs(**kwargs: Any) -> Any:
        return batch.list_namespaced_job(namespace, **kwargs)

    watch = RawWatch(
        "kueue-jobs", list_jobs, list_resource_version(list_jobs), observed.on_kueue_job
    )
    watch.start()

    def create(name: str) -> None:
        drain(
            batch.create_namespaced_job(
                namespace, kueue_job(name, duration, queue), _preload_content=False
            )
        )

    def kueue_alive() -> None:
        if process is not None and not process.running:
            raise RuntimeError(f"kueue exited during the run; {process.log_tail()}")

    cpu_before = None if process is None else process.cpu_seconds()
    say(f"kueue: creating {count} suspended Jobs in {namespace} (LocalQueue {queue})")
    try:
        start, created = create_all(names, create, threads)
        say(f"  created in {created - start:.1f} s")
        wait_until_finished(
            "Kueue Jobs",
            observed,
            count,
            created_at=start,
            timeout=limit,
            watches=[watch],
            on_tick=kueue_alive,
        )
    finally:
        watch.stop()
    # Not part of the run: Kueue's own bookkeeping after the Jobs completed.
    kueue.wait_workloads_released(api, namespace, count, timeout=limit)
    released = time.monotonic()
    cpu_after = None if process is None else process.cpu_seconds()
    with observed.lock:
        times = [
            (record.added, observed.admitted[name], record.finished)
            for name, record in observed.jobs.items()
            if name in observed.admitted
        ]
        records = list(observed.jobs.values())
    return KueueRun(
        run=summarize_run(namespace, start, created, records, count),
        added_to_admitted_seconds=Latency.of([b - a for a, b, _ in times if a is not None]),
        admitted_to_finished_seconds=Percentiles.of([c - b for _, b, c in times if c is not None]),
        released_seconds=round(released - start, 3),
        kueue_version=kueue.KUEUE_VERSION,
        kueue_cpu_seconds=None
        if cpu_before is None or cpu_after is None
        else round(cpu_after - cpu_before, 2),
    )


# ----- run alone --------------------------------------------------------------------------------
def print_figures(jobs: Run, queued: KueueRun, count: int) -> None:
    kueued = queued.run
    print(f"\nbare Jobs vs Jobs through Kueue {queued.kueue_version}: N={count}")
    rows = [
        ("created in (s)", jobs.create_seconds, kueued.create_seconds),
        ("all finished after (s)", jobs.elapsed_seconds, kueued.elapsed_seconds),
        ("throughput (jobs/s)", jobs.per_second, kueued.per_second),
        (
            "ADDED -> finished p50 (s)",
            jobs.added_to_finished_seconds.p50,
            kueued.added_to_finished_seconds.p50,
        ),
        (
            "ADDED -> finished p99 (s)",
            jobs.added_to_finished_seconds.p99,
            kueued.added_to_finished_seconds.p99,
        ),
    ]
    for label, left, right in rows:
        print(f"  {label:<28}{left!s:>12}{right!s:>12}")
    admitted = queued.added_to_admitted_seconds
    print(
        f"  Kueue ADDED -> admitted p50 {admitted.p50} s, p99 {admitted.p99} s, "
        f"max {admitted.max} s ({admitted.samples} Jobs)"
    )
    after = queued.admitted_to_finished_seconds
    print(f"  Kueue admitted -> finished p50 {after.p50} s, p99 {after.p99} s")
    print(f"  Kueue released every Workload after {queued.released_seconds} s")
    print(f"  ratio kueue/bare {kueued.per_second / jobs.per_second:.3f}")
    print(f"  outcomes: bare {jobs.outcomes}, kueue {kueued.outcomes}")
    print(f"  kueue CPU during the run: {queued.kueue_cpu_seconds} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="Jobs of each kind (200)")
    harness.add_cluster_options(parser)
    parser.add_argument("--threads", type=int, default=32, help="client create threads (32)")
    parser.add_argument("--duration", default="0s", help="simulated container run time (0s)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per run")
    parser.add_argument(
        "--kueue-qps",
        type=float,
        default=50,
        help="Kueue's client requests/s (50, burst 2x, as installed); negative: no limit",
    )
    args = parser.parse_args(argv)
    if args.timeout is None:
        args.timeout = 120 + 0.5 * args.count
    with harness.cluster_from_options(args, say) as cluster:
        api = harness.connect(cluster.kubeconfig, pool_size=args.threads + 8)
        namespaces: list[str] = []
        try:
            namespaces.append(harness.create_namespace(api, "bench-jobs", labels=NAMESPACE_LABELS))
            jobs = run_jobs(api, namespaces[0], args)
            namespaces.append(harness.create_namespace(api, "bench-kueue", labels=NAMESPACE_LABELS))
            qps = args.kueue_qps
            burst = max(1, int(2 * qps))
            with kueue_running(cluster.kubeconfig, api, qps=qps, burst=burst) as process:
                queued = run_kueue_jobs(
                    api,
                    namespaces[1],
                    args.count,
                    args.threads,
                    args.duration,
                    timeout=args.timeout,
                    process=process,
                )
                if cluster.mode != "private" and not kueue.remove_queues(api, namespaces[1]):
                    say(f"the ClusterQueue {namespaces[1]} is still there")
        finally:
            if cluster.mode != "private":
                for name in namespaces:
                    harness.delete_namespace(api, name)
                if remaining := harness.wait_namespaces_gone(api, namespaces, timeout=180):
                    say(f"namespaces still terminating: {', '.join(remaining)}")
            api.close()
    print_figures(jobs, queued, args.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
