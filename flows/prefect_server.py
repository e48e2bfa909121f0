"""A Prefect server for the pipeline: reuse the one ``PREFECT_API_URL`` names, or start one.

``ensure_server(settings)`` returns a :class:`ServerHandle`. When ``PREFECT_API_URL`` points
at a server that answers ``/api/health``, that server is used and ``stop()`` leaves it alone.
Otherwise ``prefect server start --host 127.0.0.1 --port <port>`` runs as a child process
(its own process group, so a Ctrl-C in the terminal reaches only our process, which then
stops the server in order) with ``PREFECT_HOME`` under the project's data directory and
telemetry off (shared/NOTES.md). Start-up waits for ``/api/health`` within a bound and fails
with the tail of the server log if it does not come up.

This module does not import Prefect, so it can run before Prefect reads its settings.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from config import Settings

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200
# Environment of the server process: state under the project, nothing sent anywhere.
QUIET_ENV: dict[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_UI_ENABLED": "true",
}


class ServerStartError(RuntimeError):
    """The Prefect server did not answer ``/api/health`` in time (or exited)."""


def is_healthy(api_url: str, timeout: float = 2.0) -> bool:
    """True if ``<api_url>/health`` answers 200 within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=timeout) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.URLError, ValueError):
        return False


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ui_url_for(api_url: str) -> str:
    base = api_url.rstrip("/")
    return base[: -len("/api")] if base.endswith("/api") else base


@dataclass
class ServerHandle:
    """A Prefect API we can talk to; ``process`` is set only when we started the server."""

    api_url: str
    ui_url: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    stop_timeout: float = 10.0
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def owned(self) -> bool:
        return self.process is not None

    def stop(self, timeout: float | None = None) -> int | None:
        """Stop the server we started: SIGTERM, then SIGKILL after ``timeout`` seconds.

        A server we only reused is left running. Returns the exit code (None if not ours).
        """
        proc = self.process
        if proc is None:
            return None
        bound = self.stop_timeout if timeout is None else timeout
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=bound)
            except subprocess.TimeoutExpired:
                log.warning(
                    "Prefect server pid %s ignored SIGTERM for %.0f s: killing", proc.pid, bound
                )
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=bound)
        # Children of the server (uvicorn workers, if any) share its process group.
        _signal_group(proc, signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return proc.returncode

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The server was started with start_new_session=True: its pgid is its own pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the process that started us dies.

    The server runs in its own session (a terminal's Ctrl-C goes to us, and we stop it in
    order); this makes sure it does not outlive us if we are killed with SIGKILL.
    """
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _prefect_command() -> list[str]:
    return [sys.executable, "-m", "prefect"]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.strip().splitlines()[-lines:])


def ensure_server(
    settings: Settings,
    *,
    host: str = DEFAULT_HOST,
    port: int | None = None,
    startup_timeout: float = 60.0,
    stop_timeout: float = 10.0,
    reuse_env: bool = True,
    fallback_to_free_port: bool = True,
) -> ServerHandle:
    """Return a healthy Prefect API: the one in ``PREFECT_API_URL``, or a server we start.

    Args:
        settings: the pipeline settings; ``settings.paths.prefect_home`` holds the server's
            state (SQLite database, UI build) and its log ``server.log``.
        host: interface to listen on (loopback by default).
        port: port to listen on (``None`` = 4200, ``0`` = any free port). When it is taken
            by a healthy Prefect server, that server is used; by anything else, a free port
            is used instead (or ``ServerStartError`` if ``fallback_to_free_port`` is False).
        startup_timeout: seconds to wait for ``/api/health``.
        stop_timeout: seconds ``stop()`` waits after SIGTERM before SIGKILL.
        reuse_env: use a healthy server named by ``PREFECT_API_URL`` instead of starting one.
        fallback_to_free_port: see ``port``.

    Raises:
        ServerStartError: the server exited or did not answer within ``startup_timeout``.
    """
    env_url = os.environ.get("PREFECT_API_URL", "").strip()
    if reuse_env and env_url:
        if is_healthy(env_url):
            handle = ServerHandle(
                env_url.rstrip("/"), ui_url_for(env_url), stop_timeout=stop_timeout
            )
            log.info("Prefect UI: %s (existing server from PREFECT_API_URL)", handle.ui_url)
            return handle
        log.warning("PREFECT_API_URL=%s does not answer /health: starting a server", env_url)

    wanted = DEFAULT_PORT if port is None else port
    if wanted and not port_is_free(host, wanted):
        busy_api = f"http://{host}:{wanted}/api"
        if is_healthy(busy_api):
            handle = ServerHandle(busy_api, ui_url_for(busy_api), stop_timeout=stop_timeout)
            log.info("Prefect UI: %s (a server already runs on that port)", handle.ui_url)
            return handle
        if not fallback_to_free_port:
            raise ServerStartError(f"port {host}:{wanted} is in use by something else")
        log.warning("port %s:%s is in use by something else: using a free port", host, wanted)
        wanted = 0
    port = wanted or free_port(host)

    home = settings.paths.prefect_home
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_")}
    env |= QUIET_ENV | {"PREFECT_HOME": str(home)}
    api_url = f"http://{host}:{port}/api"
    env["PREFECT_UI_API_URL"] = api_url
    log_path = home / "server.log"
    log_file = log_path.open("ab")
    cmd = [*_prefect_command(), "server", "start", "--host", host, "--port", str(port)]
    log.debug("starting %s", " ".join(cmd))
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # only prctl: safe between fork and exec
    )
    handle = ServerHandle(api_url, ui_url_for(api_url), proc, log_path, stop_timeout, log_file)
    deadline = time.monotonic() + startup_timeout
    try:
        while not is_healthy(api_url, timeout=1.0):
            if proc.poll() is not None:
                raise ServerStartError(
                    f"prefect server exited with code {proc.returncode} before answering "
                    f"{api_url}/health; log {log_path}:\n{_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"prefect server did not answer {api_url}/health within "
                    f"{startup_timeout:.0f} s; log {log_path}:\n{_tail(log_path)}"
                )
            time.sleep(0.25)
    except BaseException:
        handle.stop(timeout=5)
        raise
    log.info("Prefect UI: %s (server pid %s, PREFECT_HOME=%s)", handle.ui_url, proc.pid, home)
    return handle


__all__ = ["ServerHandle", "ServerStartError", "ensure_server", "free_port", "is_healthy"]
