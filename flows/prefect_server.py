"""The Prefect server the pipeline talks to: the one ``PREFECT_API_URL`` names, or ours.

Without ``PREFECT_API_URL`` the CLI uses a **local background server** that outlives one
run: started on first need (``python -m prefect server start`` in its own session, output
to ``<prefect_home>/server.log``), stopped by ``baotintuc server stop``. Its PID goes where
Prefect's own ``prefect server start --background`` puts it (``<PREFECT_HOME>/server.pid``,
mode 0600), so ``prefect server stop`` stops it too.

Why not ``prefect server start --background`` itself (Prefect 3.9.1): it pipes the
server's output to the launching process, which exits at once, so the server log is lost
(nothing to show when a first start fails); it leaves the server in the caller's process
group and session, so a Ctrl-C or a closed terminal aimed at ``baotintuc crawl`` would also
kill the server meant to outlive it; it returns before the server answers; and it cannot
tell a stale PID file (after a reboot) from a running server. What is kept by hand is
that: a detached ``Popen``, a health wait, a PID-file check, a lock against two starts.

Before a server is used it must prove it is Prefect of the installed version
(``/api/health`` and ``/api/admin/version``): a program that merely answers ``/health``
on the port is refused with one line.

The server runs with CSRF protection on and CORS limited to its own UI origin (README
"Security"). An auth string is used when the environment gives one
(``PREFECT_API_AUTH_STRING`` / ``PREFECT_SERVER_API_AUTH_STRING``) or when
``<prefect_home>/auth-string`` exists (``baotintuc server start --require-auth`` writes it,
mode 0600); secrets never live in the repository.

This module does not import Prefect: it runs before Prefect reads its settings.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path

from config import Settings

PID_FILE = "server.pid"  # Prefect's SERVER_PID_FILE_NAME
LOG_FILE = "server.log"
LOCK_FILE = "server.lock"
AUTH_FILE = "auth-string"
LOG_ROTATE_BYTES = 20 * 1024 * 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1")

Announce = Callable[[str], None]


class ServerUnavailable(RuntimeError):
    """No usable Prefect server; the message is one line for the operator."""


def prefect_version() -> str:
    return installed_version("prefect")


def ui_url_for(api_url: str) -> str:
    base = api_url.rstrip("/")
    return base[: -len("/api")] if base.endswith("/api") else base


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


# --- probing a server ---------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """What answers at an API URL. ``ok`` = a Prefect server of the installed version.

    ``healthy and not ok`` means a definite answer that it is not usable (another
    version, an auth string missing or wrong, not Prefect at all); a server still starting
    (``/admin/version`` times out) is not ``healthy`` yet.
    """

    reachable: bool
    healthy: bool
    ok: bool
    version: str | None = None
    why: str = ""


def _get(url: str, auth: str | None, timeout: float) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return int(r.status), r.read(4096)
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""


def probe(api_url: str, auth: str | None = None, timeout: float = 3.0) -> Probe:
    """Ask ``<api_url>/health`` and ``<api_url>/admin/version``; never raises."""
    base = api_url.rstrip("/")
    try:
        status, body = _get(base + "/health", None, timeout)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        why = getattr(reason, "strerror", None) or str(reason)
        return Probe(False, False, False, why=f"does not answer ({why})")
    if status != 200 or body.strip() != b"true":
        return Probe(True, False, False, why=f"answers /health with HTTP {status}, not as Prefect")
    try:
        status, body = _get(base + "/admin/version", auth, timeout)
    except (OSError, ValueError) as exc:  # e.g. a time-out while it is still starting
        reason = getattr(exc, "reason", None) or exc
        return Probe(True, False, False, why=f"answers /health but not /admin/version ({reason})")
    if status == 401:
        hint = "a wrong auth string" if auth else "no auth string"
        return Probe(True, True, False, why=f"refuses {hint} (set PREFECT_API_AUTH_STRING)")
    try:
        found = json.loads(body) if status == 200 else None
    except ValueError:
        found = None
    if not isinstance(found, str):
        return Probe(
            True, True, False, why=f"is not a Prefect server (/admin/version: HTTP {status})"
        )
    want = prefect_version()
    if found != want:
        return Probe(True, True, False, found, f"runs Prefect {found}, this one has {want}")
    return Probe(True, True, True, found)


# --- auth string --------------------------------------------------------------------------


def _read_auth_file(home: Path) -> str | None:
    path = home / AUTH_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if path.stat().st_mode & 0o077:
        raise ServerUnavailable(f"{path} is readable by others: chmod 600 {path}")
    return text or None


def create_auth_file(home: Path) -> Path:
    """Write a random ``user:password`` auth string to ``<home>/auth-string`` (0600)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / AUTH_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"baotintuc:{secrets.token_urlsafe(24)}\n")
    return path


def client_auth(home: Path | None = None) -> str | None:
    """The auth string a client sends: the environment's, else the local auth file's."""
    env = os.environ.get("PREFECT_API_AUTH_STRING") or os.environ.get(
        "PREFECT_SERVER_API_AUTH_STRING"
    )
    if env:
        return env
    return _read_auth_file(home) if home is not None else None


# --- the local background server ----------------------------------------------------------


@dataclass(frozen=True)
class ServerStatus:
    pid: int | None
    probe: Probe
    rss_mb: float | None = None

    @property
    def running(self) -> bool:
        return self.pid is not None


def pid_alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own exited child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _looks_like_prefect_server(pid: int) -> bool:
    """Guard against a PID reused after a reboot (Linux; elsewhere trust the PID)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return not Path("/proc/self").exists()
    return b"prefect" in cmd and (b"server" in cmd)


def _rss_mb(pid: int) -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One start or stop at a time (two CLI runs may want the server at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass(frozen=True)
class LocalServer:
    """The project's background Prefect server: state, PID and log in ``home``."""

    home: Path
    host: str = "127.0.0.1"
    port: int = 4200
    startup_timeout: float = 90.0
    stop_timeout: float = 10.0
    log_level: str = "WARNING"

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalServer:
        s = settings.prefect_server
        return cls(
            settings.paths.prefect_home, s.host, s.port,
            s.startup_timeout_seconds, s.stop_timeout_seconds, s.log_level,
        )  # fmt: skip

    @property
    def api_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return ui_url_for(self.api_url)

    @property
    def pid_file(self) -> Path:
        return self.home / PID_FILE

    @property
    def log_path(self) -> Path:
        return self.home / LOG_FILE

    def auth(self) -> str | None:
        return client_auth(self.home)

    def pid(self) -> int | None:
        """The PID of our running server, or None (a stale PID file counts as none)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) and _looks_like_prefect_server(pid) else None

    def status(self) -> ServerStatus:
        pid = self.pid()
        found = probe(self.api_url, self.auth(), timeout=2.0)
        return ServerStatus(pid, found, _rss_mb(pid) if pid else None)

    def server_env(self) -> dict[str, str]:
        """Environment of the server process: state here, nothing sent anywhere, CSRF on,
        CORS limited to the UI's own origin. An operator's explicit setting wins."""
        # Prefect's default logging: the server's records go to its stdout, server.log.
        dropped = ("PREFECT_API_", "PREFECT_LOGGING_SETTINGS_PATH")
        env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
        origins = [self.ui_url]
        if self.host in LOOPBACK:
            origins += [f"http://{h}:{self.port}" for h in ("127.0.0.1", "localhost")]
        defaults = {
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_UI_ENABLED": "true",
            "PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "true",
            "PREFECT_SERVER_CORS_ALLOWED_ORIGINS": ",".join(dict.fromkeys(origins)),
            "PREFECT_SERVER_LOGGING_LEVEL": self.log_level,
        }
        if self.host not in ("0.0.0.0", "::"):
            defaults["PREFECT_UI_API_URL"] = self.api_url
        env = defaults | env
        env["PREFECT_HOME"] = str(self.home)
        auth = os.environ.get("PREFECT_SERVER_API_AUTH_STRING") or client_auth(self.home)
        if auth:
            env["PREFECT_SERVER_API_AUTH_STRING"] = auth
        return env

    def start(self, announce: Announce | None = None) -> bool:
        """Make sure our server runs and answers; True if this call started it.

        Raises:
            ServerUnavailable: the port is taken by something else, or the server did not
                come up within ``startup_timeout`` (the message names the log).
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with _locked(self.home / LOCK_FILE):
            pid = self.pid()
            if pid is not None:
                self._wait_ready(None, pid)
                return False
            self.pid_file.unlink(missing_ok=True)  # stale: its process is gone
            if port_in_use(self.host, self.port):
                raise ServerUnavailable(self._occupied_message())
            self._rotate_log()
            if announce:
                announce(
                    f"starting the Prefect server at {self.ui_url} "
                    f"(first start ~15 s; log {self.log_path})"
                )
            proc = self._spawn()
            self._write_pid(proc.pid)
            try:
                self._wait_ready(proc, proc.pid)
            except BaseException:
                self._kill(proc.pid)
                self.pid_file.unlink(missing_ok=True)
                raise
            return True

    def stop(self) -> bool:
        """SIGTERM our server, SIGKILL after ``stop_timeout``; False if none was running."""
        if not self.home.is_dir():
            return False
        with _locked(self.home / LOCK_FILE):
            pid = self.pid()
            if pid is None:
                self.pid_file.unlink(missing_ok=True)
                return False
            self._kill(pid)
            self.pid_file.unlink(missing_ok=True)
            return True

    # -- internals --

    def _occupied_message(self) -> str:
        found = probe(self.api_url, self.auth(), timeout=2.0)
        where = f"{self.host}:{self.port}"
        change = "set BTT_PREFECT_SERVER__PORT to a free port"
        if found.version:
            return (
                f"another Prefect server (version {found.version}) answers on {where}, "
                f"not the one of {self.home}; use it with PREFECT_API_URL={self.api_url} "
                f"or {change}"
            )
        return f"{where} is taken by a program that is not a Prefect server; {change}"

    def _rotate_log(self) -> None:
        with contextlib.suppress(OSError):
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:
                self.log_path.replace(self.log_path.with_suffix(".log.1"))

    def _spawn(self) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "prefect", "server", "start",
               "--host", self.host, "--port", str(self.port)]  # fmt: skip
        with self.log_path.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
            log.flush()
            return subprocess.Popen(
                cmd,
                cwd=self.home,
                env=self.server_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C aimed at the CLI must not reach it
                umask=0o077,  # its database holds run parameters and logs
            )

    def _write_pid(self, pid: int) -> None:
        tmp = self.pid_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(str(pid))
        tmp.replace(self.pid_file)

    def _wait_ready(self, proc: subprocess.Popen[bytes] | None, pid: int) -> None:
        deadline = time.monotonic() + self.startup_timeout
        auth = self.auth()
        while True:
            found = probe(self.api_url, auth, timeout=1.0)
            if found.ok:
                return
            if found.healthy:
                # It answers but is not usable (version, auth): waiting won't help.
                raise ServerUnavailable(f"the Prefect server at {self.api_url} {found.why}")
            exited = proc.poll() if proc is not None else (None if pid_alive(pid) else -1)
            if exited is not None:
                raise ServerUnavailable(
                    f"the Prefect server exited (code {exited}) while starting; "
                    f"see {self.log_path}"
                )
            if time.monotonic() > deadline:
                raise ServerUnavailable(
                    f"the Prefect server did not answer {self.api_url}/health within "
                    f"{self.startup_timeout:.0f} s; see {self.log_path}"
                )
            time.sleep(0.2)

    def _kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while pid_alive(pid):
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + self.stop_timeout
            time.sleep(0.1)


# --- what the CLI calls -------------------------------------------------------------------


@dataclass(frozen=True)
class ApiTarget:
    api_url: str
    ui_url: str
    auth: str | None
    local: bool  # our background server (not one named by PREFECT_API_URL)
    started: bool  # this call started it


def ensure_api(settings: Settings, announce: Announce | None = None) -> ApiTarget:
    """The Prefect API this process must use, checked (and the local server started).

    ``PREFECT_API_URL`` set: that server must answer as Prefect of the installed version,
    else :class:`ServerUnavailable`. Not set: the local background server of
    ``settings.paths.prefect_home``, started if needed (``announce`` gets one line then).
    """
    env_url = os.environ.get("PREFECT_API_URL", "").strip().rstrip("/")
    if env_url:
        auth = client_auth(None)
        found = probe(env_url, auth)
        if not found.ok:
            raise ServerUnavailable(
                f"the Prefect API at PREFECT_API_URL={env_url} {found.why}; start that "
                "server, or unset PREFECT_API_URL to use the local one (baotintuc server start)"
            )
        return ApiTarget(env_url, ui_url_for(env_url), auth, local=False, started=False)
    local = LocalServer.from_settings(settings)
    started = local.start(announce)
    return ApiTarget(local.api_url, local.ui_url, local.auth(), local=True, started=started)


def use_api(target: ApiTarget) -> None:
    """Point this process (and the subprocesses it starts) at ``target``: call before
    Prefect is imported."""
    os.environ["PREFECT_API_URL"] = target.api_url
    if target.auth:
        os.environ["PREFECT_API_AUTH_STRING"] = target.auth


__all__ = [
    "ApiTarget",
    "LocalServer",
    "Probe",
    "ServerStatus",
    "ServerUnavailable",
    "create_auth_file",
    "ensure_api",
    "free_port",
    "probe",
    "ui_url_for",
    "use_api",
]
