"""Every Task spec a user can write gets an answer: refused at admission with a message that names
the field, or a phase with a reason, and never an operator traceback.

Runs generated specs (tests.fuzzing.specs: from the Task CRD's own schema, plausible ones and
mutations of them) against the real control plane and the operator, and judges each with
tests.fuzzing.judge. EXECFLOW_FUZZ_COUNT sets how many (default 300), EXECFLOW_FUZZ_SEED which.
"""

from __future__ import annotations

import os
import sys

import yaml
from kubernetes import client

from tests.fuzzing.judge import judge
from tests.fuzzing.specs import generate_specs
from tests.integration.conftest import OPERATOR_SETTINGS
from tests.integration.operator_process import OperatorProcess

COUNT = int(os.environ.get("EXECFLOW_FUZZ_COUNT", "300"))
SEED = int(os.environ.get("EXECFLOW_FUZZ_SEED", "0"))


def _queues() -> list[str]:
    """The queue names the test operator is configured with."""
    return list(yaml.safe_load(OPERATOR_SETTINGS)["queues"])


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def test_every_generated_spec_is_refused_clearly_or_gets_a_phase_with_a_reason(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    specs = generate_specs(COUNT, seed=SEED, queues=_queues())
    verdict = judge(
        api, namespace, specs, operator_log=operator.log_text, timeout=100, progress=say
    )

    print(f"\nfuzz: {verdict.counts()} settled={verdict.settled}")
    print(f"fuzz by origin: {verdict.by_origin()}")
    print(f"fuzz reasons: {dict(verdict.reasons().most_common(15))}")
    report = verdict.describe()
    assert operator.running, f"the operator exited; log: {operator.log_path}"
    assert verdict.count("stuck") == 0, report
    assert not verdict.crashes, report
    assert verdict.count("unclear") == 0, report
    assert verdict.count("error") == 0, report
