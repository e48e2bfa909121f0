"""``baotintuc serve``: the Prefect server and the scheduled deployments."""

from __future__ import annotations

import argparse
from typing import Any

from flows.cli.common import settings_for_flows


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_for_flows()  # Prefect's environment first: it reads it at import time
    from flows.deploy import serve_all

    return serve_all(settings)


def register(sub: Any) -> None:
    sv = sub.add_parser(
        "serve", help="Prefect server on 127.0.0.1 + the scheduled deployments (Ctrl-C stops)"
    )
    sv.set_defaults(func=cmd_serve)
