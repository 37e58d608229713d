"""`execflow results get`: a ResultSet's stored data, read back, verified and written out.

Reading goes through `execflow.kube.result_access.read_result_set`, as the operator reads:
every segment's and item's sha256 is checked and the chain of segments is compared with the
status's checksum before anything is printed; encrypted data is decrypted with the key its
Secret holds. A mismatch is an error (exit code 1, the reason in the message), never output.

A Lazy set collects nothing until it is first read: `get` then asks for the collection (the
annotation `execflow.dev/collect`) and waits for it; `--collect` does the same for an OnDemand
set, taking a new snapshot. `--transform NAME` prints one transform's output over everything
stored instead of the items.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime
import io
import json
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any

from execflow.api.result_set import COLLECT_ANNOTATION, ResultSet, Strategy
from execflow.api.result_set_status import ResultSetPhase
from execflow.cli.common import add_target, target
from execflow.core.resultsets.errors import ResultSetError
from execflow.core.resultsets.transforms import compile_programs, transform_outputs
from execflow.kube.client import RESULTSETS, Kube
from execflow.kube.connection import Connection, CredentialsError
from execflow.kube.errors import ApiError
from execflow.kube.result_access import MissingSecretError, read_result_set
from execflow.kube.result_storage import StorageError

CSV_COLUMNS = ("task", "phase", "source", "tags", "completionTime", "sha256")


class ReadError(Exception):
    """Why the results cannot be printed."""


def add_parser(commands: Any) -> None:
    results = commands.add_parser("results", help="read what a ResultSet collected")
    actions = results.add_subparsers(dest="action", required=True)
    get = actions.add_parser("get", help="print a ResultSet's items, verified")
    get.add_argument("name", help="the ResultSet")
    add_target(get)
    get.add_argument(
        "-o", "--output", choices=("json", "jsonl", "csv"), default="json", help="format"
    )
    get.add_argument("--out", default="-", help="write to this file (default - : stdout)")
    get.add_argument("--transform", default=None, help="print this transform's output instead")
    get.add_argument(
        "--collect",
        action="store_true",
        help="take a new snapshot first (OnDemand) and wait for it",
    )
    get.add_argument(
        "--wait", type=float, default=120.0, help="seconds to wait for a collection (120)"
    )
    results.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        where = target(args)
        connection = Connection(where.kubeconfig, where.context)
    except CredentialsError as error:
        print(f"execflow: {error}", file=sys.stderr)
        return 2
    namespace = where.namespace or "default"

    async def read() -> str:
        try:
            return await _read(Kube.connect(connection), namespace, args)
        finally:
            await connection.close()

    try:
        text = asyncio.run(read())
    except ReadError as error:
        print(f"execflow: {error}", file=sys.stderr)
        return 1
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    return 0


async def _read(kube: Kube, namespace: str, args: argparse.Namespace) -> str:
    where = f"ResultSet {namespace}/{args.name}"
    try:
        await _collect_if_needed(kube, namespace, args)
        read = await read_result_set(kube, namespace, args.name)
    except ResultSetError as error:
        raise ReadError(f"{where}: {error.reason}: {error}") from error
    except (StorageError, MissingSecretError) as error:
        raise ReadError(f"{where}: {error}") from error
    except ApiError as error:
        raise ReadError(f"{where}: {error}") from error
    if args.transform is not None:
        spec = read.resource.spec
        names = [transform.name for transform in spec.transforms]
        if args.transform not in names:
            raise ReadError(f"{where} has no transform {args.transform!r} (it has {names})")
        try:
            outputs = transform_outputs(compile_programs([], spec.transforms), read.records)
        except ResultSetError as error:
            raise ReadError(f"{where}: {error.reason}: {error}") from error
        return json.dumps(outputs[args.transform], indent=2, ensure_ascii=False) + "\n"
    return render(read.records, args.output)


async def _collect_if_needed(kube: Kube, namespace: str, args: argparse.Namespace) -> None:
    resource = ResultSet.model_validate(await kube.get(RESULTSETS, namespace, args.name))
    lazy_unread = (
        resource.spec.strategy is Strategy.LAZY and COLLECT_ANNOTATION not in _annotations(resource)
    )
    if not lazy_unread and not args.collect:
        return
    token = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    await kube.patch(
        RESULTSETS, namespace, args.name, {"metadata": {"annotations": {COLLECT_ANNOTATION: token}}}
    )
    deadline = time.monotonic() + args.wait
    while True:
        resource = ResultSet.model_validate(await kube.get(RESULTSETS, namespace, args.name))
        status = resource.status
        if status.phase is ResultSetPhase.FAILED:
            raise ReadError(f"ResultSet {namespace}/{args.name} failed: {status.message}")
        served = resource.spec.strategy is not Strategy.ON_DEMAND or status.collect_token == token
        if served and status.phase is ResultSetPhase.READY:
            return
        if time.monotonic() > deadline:
            raise ReadError(
                f"ResultSet {namespace}/{args.name} did not finish collecting within "
                f"{args.wait:.0f}s ({status.phase.value}: {status.message})"
            )
        await asyncio.sleep(0.5)


def render(records: Iterable[Mapping[str, Any]], output: str) -> str:
    """The records as a JSON array, JSON lines or CSV (result fields flattened one level)."""
    if output == "jsonl":
        return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    if output == "json":
        return json.dumps(list(records), indent=2, ensure_ascii=False) + "\n"
    return _csv(list(records))


def _csv(records: list[Mapping[str, Any]]) -> str:
    """One row per item: its fields, then one column per key of the results (a result that is
    not an object goes into a `result` column)."""
    fields: list[str] = []
    plain = False
    for record in records:
        result = record.get("result")
        if isinstance(result, Mapping):
            fields.extend(key for key in result if key not in fields)
        elif result is not None:
            plain = True
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*CSV_COLUMNS, *(f"result.{name}" for name in fields), *(["result"] * plain)])
    for record in records:
        result = record.get("result")
        mapping = result if isinstance(result, Mapping) else {}
        row = [_cell(record.get(column)) for column in CSV_COLUMNS]
        row += [_cell(mapping.get(name)) for name in fields]
        if plain:
            row.append("" if isinstance(result, Mapping) else _cell(result))
        writer.writerow(row)
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ";".join(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _annotations(resource: ResultSet) -> Mapping[str, str]:
    return resource.metadata.annotations
