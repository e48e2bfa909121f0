"""``baotintuc server start|stop|status`` and ``baotintuc serve``."""

from __future__ import annotations

import argparse
from typing import Any

from config import load_settings
from flows.cli.common import EXIT_FAILED, EXIT_OK, fail, settings_for_flows


def _local() -> Any:
    from flows.prefect_server import LocalServer

    return LocalServer.from_settings(load_settings())


def cmd_server_start(args: argparse.Namespace) -> int:
    from flows.prefect_server import AUTH_FILE, ServerUnavailable, create_auth_file

    local = _local()
    if args.require_auth and not (local.home / AUTH_FILE).exists():
        if local.pid() is not None:
            return fail("the server runs without an auth string: `baotintuc server stop` first")
        path = create_auth_file(local.home)
        print(f"auth string written to {path} (mode 0600); the UI asks for it")
    try:
        started = local.start(announce=lambda line: fail(line, EXIT_OK))
    except ServerUnavailable as exc:
        return fail(str(exc))
    st = local.status()
    what = "started" if started else "already running"
    print(f"Prefect server {what}: {local.ui_url} (pid {st.pid}, log {local.log_path})")
    return EXIT_OK


def cmd_server_stop(args: argparse.Namespace) -> int:
    local = _local()
    if local.stop():
        print(f"Prefect server at {local.ui_url} stopped")
    else:
        print(f"no Prefect server of {local.home} is running")
    return EXIT_OK


def cmd_server_status(args: argparse.Namespace) -> int:
    """Exit 0 when the server runs and answers, 1 otherwise."""
    local = _local()
    st = local.status()
    if st.pid is None:
        extra = ""
        if st.probe.reachable:
            extra = f"; something else answers on port {local.port}: {st.probe.why or 'Prefect'}"
        print(f"not running (state {local.home}{extra})")
        return EXIT_FAILED
    auth = "on" if local.auth() else "off"
    rss = f", {st.rss_mb:.0f} MB" if st.rss_mb else ""
    health = f"Prefect {st.probe.version}" if st.probe.ok else f"not ready: {st.probe.why}"
    print(
        f"running: {local.ui_url} (pid {st.pid}{rss}; {health}; auth string {auth}; "
        f"log {local.log_path})"
    )
    return EXIT_OK if st.probe.ok else EXIT_FAILED


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_for_flows()  # Prefect's environment first: it reads it at import time
    from flows.deploy import serve_all

    return serve_all(settings)


def register(sub: Any) -> None:
    sv = sub.add_parser(
        "serve",
        help="register the scheduled deployments (prefect.yaml) and run a worker (Ctrl-C stops)",
    )
    sv.set_defaults(func=cmd_serve)

    srv = sub.add_parser("server", help="the local background Prefect server (UI and API)")
    ssub = srv.add_subparsers(dest="server_command", required=True)
    st = ssub.add_parser("start", help="start it in the background (runs start it when needed)")
    st.add_argument(
        "--require-auth",
        action="store_true",
        help="generate an auth string in <prefect_home>/auth-string (0600) and require it",
    )
    st.set_defaults(func=cmd_server_start)
    ssub.add_parser("stop", help="stop it").set_defaults(func=cmd_server_stop)
    ssub.add_parser("status", help="is it running; where; memory").set_defaults(
        func=cmd_server_status
    )
