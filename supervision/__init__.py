"""chronik's supervision: generic Erlang/OTP-style supervisors for pykka actors.

Child specs, strategies (one_for_one, one_for_all, rest_for_one, children added at
run time, simple_one_for_one for thousands of alike children), restart types,
restart intensity with escalation, optional exponential backoff, refs that
outlive restarts, and the live tree as data. It knows nothing of workflows
(DESIGN.md section 1). Children are ``SupervisedActor``s, or plain pykka actors
made to report their failures by ``supervised``::

    root = start_supervisor(
        [ChildSpec.for_actor("db", Db), Supervisor.child_spec("web", [...])],
        SupervisorFlags(strategy=Strategy.REST_FOR_ONE, max_restarts=3, period=5),
        on_escalate=lambda cause: ...,  # the root itself failed
    )
    root.child("db").ask(Query(...), timeout=1.0)  # whichever incarnation runs
    print(root.format_tree())
    root.stop()  # children stop in reverse start order

Children added at run time: ``start_child(spec)`` asks the supervisor to start
one; ``adopt_child(spec)`` starts the first incarnation in the caller's thread and
tells the supervisor, which restarts it as any child from then on (no round trip
per child: chronik starts each workflow run's actor this way).
"""

from supervision._actor import SupervisedActor, supervised
from supervision._clock import Cancel, Clock, ManualClock, SystemClock
from supervision._dispatch import DispatchedActor, Dispatcher, inline_turns
from supervision._errors import (
    ActorCrashedError,
    ChildStartError,
    ChildUnavailableError,
    DuplicateChildError,
    RestartIntensityError,
    ShutdownTimeoutError,
    SupervisionError,
    UnknownChildError,
    UnknownMessageError,
    UnsupervisedActorError,
)
from supervision._flag import LazyEvent
from supervision._info import ChildInfo, ChildStatus, SupervisorInfo
from supervision._refs import Message, SupervisedRef, SupervisorRef, start_supervisor
from supervision._spec import Backoff, ChildSpec, Restart, Strategy, SupervisorFlags
from supervision._supervisor import Supervisor

__all__ = [
    "ActorCrashedError",
    "Backoff",
    "Cancel",
    "ChildInfo",
    "ChildSpec",
    "ChildStartError",
    "ChildStatus",
    "ChildUnavailableError",
    "Clock",
    "DispatchedActor",
    "Dispatcher",
    "DuplicateChildError",
    "LazyEvent",
    "ManualClock",
    "Message",
    "Restart",
    "RestartIntensityError",
    "ShutdownTimeoutError",
    "Strategy",
    "SupervisedActor",
    "SupervisedRef",
    "SupervisionError",
    "Supervisor",
    "SupervisorFlags",
    "SupervisorInfo",
    "SupervisorRef",
    "SystemClock",
    "UnknownChildError",
    "UnknownMessageError",
    "UnsupervisedActorError",
    "inline_turns",
    "start_supervisor",
    "supervised",
]
