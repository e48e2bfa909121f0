"""The scheduled deployments: ``prefect.yaml`` defines them, workers run them.

``prefect.yaml`` at the repository root is their one definition (what runs when, cron read
in Asia/Ho_Chi_Minh, one run at a time with ``CANCEL_NEW``, the ``baotintuc`` process work
pool). ``baotintuc serve`` (:func:`serve_all`) makes them run on this host:

1. the Prefect API is already chosen (``settings_for_flows``: ``PREFECT_API_URL`` or the
   local background server, started if needed);
2. the work pool is created if missing, then ``prefect deploy --all`` registers the
   deployments of ``prefect.yaml`` (Prefect's own reader of the file, so the file means
   exactly what it means to ``prefect deploy`` users), and their schedules are resumed;
3. a worker of the pool (``prefect worker start``) runs until Ctrl-C or SIGTERM; each
   flow run is a subprocess of the worker that imports the flow from the installed
   package.

On stop the worker is stopped and the schedules are paused, so runs do not pile up while
nobody serves them; the next ``serve`` resumes them. The server keeps running (it outlives
``serve``: ``baotintuc server stop`` stops it). Workers on other hosts need none of this:
``prefect worker start --pool baotintuc`` against the same server (README "Workers").
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from config import PROJECT_ROOT, ConfigError, Settings

log = logging.getLogger(__name__)

PREFECT_FILE = PROJECT_ROOT / "prefect.yaml"


class DeployFailed(RuntimeError):
    """``prefect deploy`` or the worker could not start; the message names the log."""


@dataclass(frozen=True)
class DeploymentSpec:
    """What ``serve`` needs to know of one deployment of ``prefect.yaml``."""

    name: str
    entrypoint: str
    work_pool: str


def prefect_file() -> Path:
    """``prefect.yaml`` of the project (env ``BTT_PREFECT_FILE`` names another one)."""
    return Path(os.environ.get("BTT_PREFECT_FILE") or PREFECT_FILE)


def load_deployments(path: Path | None = None) -> list[DeploymentSpec]:
    """The deployments of ``prefect.yaml``, validated as ``prefect deploy`` validates them.

    Raises:
        ConfigError: unreadable file, invalid content, or not exactly one work pool.
    """
    from prefect.cli.deploy._models import PrefectYamlModel

    file = path or prefect_file()
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
        model = PrefectYamlModel.model_validate(raw)
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from None
    except (yaml.YAMLError, ValueError) as exc:
        first = str(exc).strip().splitlines()
        raise ConfigError(f"{file}: {' '.join(first[:3])}") from None
    specs = []
    for dep in raw.get("deployments") or []:
        pool = (dep.get("work_pool") or {}).get("name")
        if not dep.get("name") or not dep.get("entrypoint") or not pool:
            raise ConfigError(f"{file}: every deployment needs a name, entrypoint and work_pool")
        specs.append(DeploymentSpec(dep["name"], dep["entrypoint"], pool))
    if not specs or len(model.deployments) != len(specs):
        raise ConfigError(f"{file}: no deployments")
    pools = {s.work_pool for s in specs}
    if len(pools) != 1:
        raise ConfigError(f"{file}: the deployments must share one work pool, got {sorted(pools)}")
    return specs


def ensure_work_pool(client: Any, name: str) -> None:
    """Create the ``process`` work pool ``name`` unless it exists."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    try:
        client.read_work_pool(name)
    except ObjectNotFound:
        template = ProcessWorker.get_default_base_job_template()
        client.create_work_pool(
            WorkPoolCreate(name=name, type="process", base_job_template=template)
        )


def register(file: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
    """``prefect --no-prompt deploy --all --prefect-file <file>`` from the project root.

    Raises:
        DeployFailed: it exited non-zero (its output is in ``log_path``).
    """
    cmd = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all",
           "--prefect-file", str(file)]  # fmt: skip
    with log_path.open("ab") as out:
        proc = subprocess.run(
            cmd, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, timeout=300, check=False,
        )  # fmt: skip
    if proc.returncode != 0:
        raise DeployFailed(f"prefect deploy exited with code {proc.returncode}; see {log_path}")


def _set_paused(client: Any, specs: list[DeploymentSpec], paused: bool) -> None:
    from prefect.exceptions import ObjectNotFound

    names = {s.name for s in specs}
    for d in client.read_deployments():
        if d.name not in names:
            continue
        with contextlib.suppress(ObjectNotFound):
            (client.pause_deployment if paused else client.resume_deployment)(d.id)


class _Stop(Exception):
    """SIGTERM / SIGINT arrived."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    old = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def start_worker(pool: str, log_path: Path, name: str | None = None) -> subprocess.Popen[bytes]:
    """``prefect worker start --pool <pool>`` as a child process, output to ``log_path``."""
    name = name or f"{socket.gethostname()}-serve-{os.getpid()}"
    cmd = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool,
           "--type", "process", "--name", name]  # fmt: skip
    with log_path.open("ab") as out:
        return subprocess.Popen(
            cmd, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


def stop_worker(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM (Prefect's worker then stops polling and exits), SIGKILL after ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def serve_all(settings: Settings) -> int:
    """Register the deployments, run a worker until Ctrl-C / SIGTERM; return an exit code.

    0 = stopped on request; 2 = could not start (bad prefect.yaml, deploy failed, worker
    died at start). Call after ``settings_for_flows`` (it sets ``PREFECT_API_URL``).
    """
    from prefect.client.orchestration import get_client

    api_url = os.environ.get("PREFECT_API_URL", "")
    home = settings.paths.prefect_home
    deploy_log, worker_log = home / "deploy.log", home / "worker.log"
    stop_timeout = settings.prefect_server.stop_timeout_seconds
    specs: list[DeploymentSpec] = []
    worker: subprocess.Popen[bytes] | None = None
    try:
        with _stop_on_signals():
            found = load_deployments()
            pool = found[0].work_pool
            with get_client(sync_client=True) as client:
                ensure_work_pool(client, pool)
            register(prefect_file(), deploy_log)
            specs = found
            with get_client(sync_client=True) as client:
                _set_paused(client, specs, paused=False)
            worker = start_worker(pool, worker_log)
            ui = api_url.removesuffix("/").removesuffix("/api")
            print(
                f"Prefect UI: {ui}  (API {api_url}); deployments "
                f"{', '.join(s.name for s in specs)} run on a worker of pool {pool!r} "
                f"(log {worker_log}); Ctrl-C stops",
                flush=True,
            )
            code = worker.wait()
            print(f"baotintuc serve: the worker exited with code {code}; see {worker_log}",
                  file=sys.stderr)  # fmt: skip
            return 2
    except (ConfigError, DeployFailed) as exc:
        print(f"baotintuc serve: {exc}", file=sys.stderr)
        return 2
    except (_Stop, KeyboardInterrupt):
        return 0
    finally:
        # A second Ctrl-C / SIGTERM must not interrupt the orderly stop.
        old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            if worker is not None:
                stop_worker(worker, stop_timeout)
            if specs:
                with get_client(sync_client=True) as client:
                    _set_paused(client, specs, paused=True)
                print("worker stopped; schedules paused until the next serve", flush=True)
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)


__all__ = [
    "DeployFailed",
    "DeploymentSpec",
    "ensure_work_pool",
    "load_deployments",
    "register",
    "serve_all",
    "start_worker",
    "stop_worker",
]
