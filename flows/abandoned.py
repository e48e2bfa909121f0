"""Flow runs left behind by a process that died: mark them Crashed.

A CLI run killed with SIGKILL (or leaving through ``os._exit``) cannot tell the server, so
its flow run would show "Running" forever. Every flow run the CLI starts carries an owner
tag (``owner:<host>:<pid>:<start ticks>``, :func:`flows.runtime.claim_flow_runs`);
:func:`mark_abandoned_runs` finds RUNNING and PENDING runs owned by a process of *this*
host that no longer exists and sets them (and their unfinished task runs) to Crashed. Runs
of other hosts are left alone: their processes cannot be seen from here.

Prefect's own heartbeats do not fit: they are emitted by runners/workers for deployment
runs only, and a direct flow call has neither.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from flows.runtime import OWNER_TAG_PREFIX, process_start_ticks

log = logging.getLogger(__name__)
UNFINISHED = ("RUNNING", "PENDING")


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    start_ticks: int

    @classmethod
    def from_tags(cls, tags: list[str]) -> Owner | None:
        for tag in tags:
            if tag.startswith(OWNER_TAG_PREFIX):
                parts = tag.removeprefix(OWNER_TAG_PREFIX).rsplit(":", 2)
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                    return cls(parts[0], int(parts[1]), int(parts[2]))
        return None

    def is_gone(self) -> bool:
        """True when the owning process (on this host) no longer runs."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        ticks = process_start_ticks(self.pid)
        # Same PID, other start time: the PID was reused by a later process.
        return bool(self.start_ticks and ticks is not None and ticks != self.start_ticks)


def mark_abandoned_runs(client: Any | None = None, limit: int = 200) -> list[str]:
    """Set abandoned flow runs of this host to Crashed; return their ids.

    Uses ``client`` (a sync Prefect client) or opens one for the current API settings.
    """
    from prefect.client.orchestration import get_client

    if client is None:
        with get_client(sync_client=True) as own:
            return mark_abandoned_runs(own, limit)

    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    unfinished = [StateType(s) for s in UNFINISHED]
    runs = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=unfinished))
        ),
        limit=limit,
    )
    host = socket.gethostname()
    crashed: list[str] = []
    for run in runs:
        owner = Owner.from_tags(list(run.tags or []))
        if owner is None or owner.host != host or not owner.is_gone():
            continue
        message = f"abandoned: the process that ran it ({host} pid {owner.pid}) is gone"
        task_runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(
                flow_run_id=TaskRunFilterFlowRunId(any_=[run.id]),
                state=TaskRunFilterState(type=TaskRunFilterStateType(any_=unfinished)),
            )
        )
        for tr in task_runs:
            client.set_task_run_state(tr.id, Crashed(message=message), force=True)
        client.set_flow_run_state(run.id, Crashed(message=message), force=True)
        log.warning("flow run %s (%s): %s", run.name, run.id, message)
        crashed.append(str(run.id))
    return crashed


def crash_own_runs(reason: str, timeout: float = 3.0) -> None:
    """Mark this process's unfinished flow runs Crashed before it exits on a signal.

    Bounded: the API gets ``timeout`` seconds (in a thread); a run it misses is marked by
    the next CLI start or by the heartbeat automation.
    """
    import threading

    from flows.runtime import owner_tag

    tag = owner_tag()

    def work() -> None:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateType,
            FlowRunFilterTags,
        )
        from prefect.client.schemas.objects import StateType
        from prefect.states import Crashed

        try:
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                    tags=FlowRunFilterTags(all_=[tag]),
                    state=FlowRunFilterState(type=FlowRunFilterStateType(
                        any_=[StateType(s) for s in UNFINISHED])),
                ))
                for run in runs:
                    client.set_flow_run_state(run.id, Crashed(message=reason), force=True)
        except Exception as err:  # the process is leaving anyway
            log.warning("could not mark this run Crashed: %s", err)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)


HEARTBEAT_AUTOMATION = "baotintuc: crash flow runs whose heartbeats stopped"
FINAL_EVENTS = ("Completed", "Failed", "Cancelled", "Crashed")


def heartbeat_automation(
    silent_after_seconds: int, name: str = HEARTBEAT_AUTOMATION, tag: str | None = None
) -> Any:
    """Prefect's recipe for zombie flow runs: after a ``prefect.flow-run.heartbeat``, if
    neither another heartbeat nor a final state arrives within ``silent_after_seconds``,
    set the run to Crashed. Catches runs on any host, with no CLI start needed (the
    owner-tag check above is faster for this host). ``tag`` limits it to runs so tagged.
    """
    from datetime import timedelta

    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=name,
        description="Flow runs send a heartbeat every PREFECT_FLOWS_HEARTBEAT_FREQUENCY "
        "seconds; one that falls silent lost its process (killed, host down).",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{s}" for s in FINAL_EVENTS)},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=(
                {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{tag}"}
                if tag
                else {}
            ),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=silent_after_seconds),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"abandoned: no heartbeat for {silent_after_seconds} s "
                "(its process or host is gone)",
            )
        ],
    )


def ensure_heartbeat_automation(
    silent_after_seconds: int, client: Any | None = None, name: str = HEARTBEAT_AUTOMATION,
    tag: str | None = None,
) -> bool:
    """Create the automation unless one of that name exists; True if created."""
    from prefect.client.orchestration import get_client

    if client is None:
        with get_client(sync_client=True) as own:
            return ensure_heartbeat_automation(silent_after_seconds, own, name, tag)
    if client.read_automations_by_name(name):
        return False
    client.create_automation(heartbeat_automation(silent_after_seconds, name, tag))
    return True
