"""chronik's testing toolkit: time skipping and crash testing for workflows.

``WorkflowTestEnv`` runs workflows on a temporary journal with a clock that
jumps to the next timer whenever every run waits on one. ``CrashTest`` and
``check_crash_safety`` run a workflow under generated faults (crashes at and
between commits, inside steps, transient step failures, duplicate signals) and
check that it ends as without them, with every outcome and signal recorded once.
It needs hypothesis (installed with ``chronik[test]``).
"""

from actors.testing._crash import CrashTest
from actors.testing._env import WorkflowTestEnv
from actors.testing._errors import (
    CrashSafetyError,
    FaultFreeRunError,
    InjectedCrash,
    InjectedStepFailure,
    NonDeterministicWorkflowError,
    StuckRunError,
)
from actors.testing._faults import (
    Crash,
    CrashAtCommit,
    CrashInStep,
    FailStep,
    FaultPlan,
)
from actors.testing._report import (
    Baseline,
    Invariant,
    RunReport,
    SignalToSend,
    StepExecution,
    StepInfo,
)
from actors.testing._strategies import (
    check_crash_safety,
    crash_points,
    fault_plans,
    step_failures,
)

__all__ = [
    "Baseline",
    "Crash",
    "CrashAtCommit",
    "CrashInStep",
    "CrashSafetyError",
    "CrashTest",
    "FailStep",
    "FaultFreeRunError",
    "FaultPlan",
    "InjectedCrash",
    "InjectedStepFailure",
    "Invariant",
    "NonDeterministicWorkflowError",
    "RunReport",
    "SignalToSend",
    "StepExecution",
    "StepInfo",
    "StuckRunError",
    "WorkflowTestEnv",
    "check_crash_safety",
    "crash_points",
    "fault_plans",
    "step_failures",
]
