"""Scheduled deployments of the pipeline, served by one long-running process.

``config/schedules.toml`` says what runs when (cron strings read in Asia/Ho_Chi_Minh):

- ``rss-poll``: ``ingest(mode="rss")`` every 15 minutes;
- ``listing-sweep``: ``ingest(mode="listings", max_pages=1)`` every hour;
- ``nightly-backfill``: ``ingest(mode="listings", max_pages=20)`` at 02:30;
- ``quality-report``: ``quality_report(hours=24)`` at 06:30.

:func:`serve_all` makes sure a Prefect server runs (:func:`flows.prefect_server.ensure_server`),
then ``prefect.serve(...)`` polls it for due runs; each run is a subprocess importing the
flow from the project directory. Every deployment has a concurrency limit of one with the
``CANCEL_NEW`` collision strategy, so a run that falls due while the previous one still
runs is cancelled instead of overlapping it. Ctrl-C or SIGTERM stops the runner, pauses the
schedules (they resume at the next ``serve``), stops the server if we started it, and
returns 0. ``prefect.yaml`` at the repository root declares the same deployments for
``prefect deploy`` users.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, ValidationError, field_validator

from config import PROJECT_ROOT, ConfigError, Settings

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment

log = logging.getLogger(__name__)

SCHEDULES_FILE = PROJECT_ROOT / "config" / "schedules.toml"
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


class ServerConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(4200, ge=0, le=65535)
    startup_timeout_seconds: float = Field(90, gt=0)
    stop_timeout_seconds: float = Field(10, gt=0)


class DeploymentConfig(BaseModel):
    entrypoint: str = Field(pattern=r"^[\w/.-]+\.py:\w+$")
    cron: str
    timezone: str | None = None  # None = the file's top-level timezone
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    concurrency_limit: int = Field(1, ge=1)
    collision_strategy: Literal["CANCEL_NEW", "ENQUEUE"] = "CANCEL_NEW"

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        from prefect.schedules import Cron

        Cron(v)  # raises ValueError on a bad cron string
        return v


class SchedulesConfig(BaseModel):
    timezone: str = DEFAULT_TIMEZONE
    server: ServerConfig = ServerConfig()
    deployments: dict[str, DeploymentConfig]

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("deployments")
    @classmethod
    def _names(cls, v: dict[str, DeploymentConfig]) -> dict[str, DeploymentConfig]:
        if not v:
            raise ValueError("no deployments")
        for name, dep in v.items():
            if dep.timezone is not None:
                cls._tz(dep.timezone)
            if not name.replace("-", "").isalnum() or name != name.lower():
                raise ValueError(f"deployment name {name!r}: use lowercase letters, digits, '-'")
        return v

    def timezone_of(self, dep: DeploymentConfig) -> str:
        return dep.timezone or self.timezone


def load_schedules(path: Path | None = None) -> SchedulesConfig:
    """Read ``config/schedules.toml`` (or ``path``; env ``BTT_SCHEDULES_FILE`` also works).

    Raises:
        ConfigError: the file is missing or a value is invalid (named in the message).
    """
    file = path or Path(os.environ.get("BTT_SCHEDULES_FILE") or SCHEDULES_FILE)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read schedules file {file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"schedules file {file}: {exc}") from None
    try:
        return SchedulesConfig(**data)
    except ValidationError as err:
        msgs = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise ConfigError(f"schedules file {file}: " + "; ".join(msgs)) from None


def load_flow(entrypoint: str) -> Flow[Any, Any]:
    """``flows/ingest.py:ingest`` → the flow object, imported as ``flows.ingest``."""
    from prefect import Flow

    path, _, attr = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    obj = getattr(module, attr, None)
    if not isinstance(obj, Flow):
        raise ConfigError(f"entrypoint {entrypoint}: {attr} is not a Prefect flow")
    return obj


def build_deployments(schedules: SchedulesConfig | None = None) -> list[RunnerDeployment]:
    """One ``RunnerDeployment`` per ``[deployments.<name>]`` of the schedules file.

    Entrypoints are relative to the project root, so call this with the project root as
    the working directory (``serve_all`` does).
    """
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron

    cfg = schedules or load_schedules()
    out = []
    for name, dep in cfg.deployments.items():
        fl = load_flow(dep.entrypoint)
        d = fl.to_deployment(
            name=name,
            schedules=[Cron(dep.cron, timezone=cfg.timezone_of(dep), slug=f"{name}-cron")],
            parameters=dep.parameters,
            description=dep.description or None,
            tags=dep.tags,
            concurrency_limit=ConcurrencyLimitConfig(
                limit=dep.concurrency_limit,
                collision_strategy=ConcurrencyLimitStrategy(dep.collision_strategy),
            ),
        )
        d.entrypoint = dep.entrypoint  # as written, whatever the working directory
        out.append(d)
    return out


class _Stop(Exception):
    """SIGTERM arrived before the runner installed its own handler."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM raises while we start up (so a started server is still stopped)."""
    old = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def serve_all(settings: Settings, schedules: SchedulesConfig | None = None) -> int:
    """Serve every scheduled deployment until Ctrl-C / SIGTERM; return an exit code.

    0 = stopped on request; 2 = could not start (bad schedules, no server, flow import
    error). Needs Prefect's environment prepared first (``flows.runtime.prepare_prefect_env``
    before Prefect is imported), which the ``baotintuc serve`` command does.
    """
    from flows.prefect_server import ServerStartError, ensure_server
    from flows.runtime import prepare_prefect_env

    prepare_prefect_env(settings.paths.prefect_home)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    handle = None
    try:
        with _signals_raise():
            cfg = schedules or load_schedules()
            handle = ensure_server(
                settings,
                host=cfg.server.host,
                port=cfg.server.port,
                startup_timeout=cfg.server.startup_timeout_seconds,
                stop_timeout=cfg.server.stop_timeout_seconds,
            )
            print(f"Prefect UI: {handle.ui_url}  (API {handle.api_url})", flush=True)
            os.environ["PREFECT_API_URL"] = handle.api_url  # flow-run subprocesses inherit it
            with contextlib.chdir(PROJECT_ROOT):
                deployments = build_deployments(cfg)
        return _serve(deployments, handle.api_url)
    except (ConfigError, ServerStartError, ImportError) as exc:
        print(f"baotintuc serve: {exc}", file=sys.stderr)
        return 2
    except (_Stop, KeyboardInterrupt):
        return 0
    finally:
        # A second Ctrl-C / SIGTERM must not interrupt the server's orderly stop.
        for sig in handlers:
            signal.signal(sig, signal.SIG_IGN)
        try:
            if handle is not None and handle.owned:
                print("stopping the Prefect server ...", flush=True)
                handle.stop()
        finally:
            for sig, old in handlers.items():  # the runner replaced SIGTERM's handler
                signal.signal(sig, old)


def _serve(deployments: list[RunnerDeployment], api_url: str) -> int:
    from prefect import serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(updates={PREFECT_API_URL: api_url}),
        contextlib.chdir(PROJECT_ROOT),
        contextlib.suppress(KeyboardInterrupt),
    ):
        serve(*deployments, pause_on_shutdown=True)
    print("scheduler stopped", flush=True)
    return 0


if __name__ == "__main__":
    from config import load_settings

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sys.exit(serve_all(load_settings()))
