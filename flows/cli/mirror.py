"""``baotintuc mirror``: build or serve the offline stand-in of baotintuc.vn."""

from __future__ import annotations

import argparse
import contextlib
import threading
from typing import Any

from config import load_settings
from flows.cli.common import EXIT_OK


def cmd_mirror(args: argparse.Namespace) -> int:
    settings = load_settings()
    from mirror.build import ensure_built

    site_dir = ensure_built(settings.mirror.site_dir.parent, force=args.action == "build")
    if args.action == "build":
        print(f"mirror built in {site_dir}")
        return EXIT_OK
    from mirror.server import MirrorServer

    port = args.port or settings.mirror.port
    with MirrorServer(site_dir, host=settings.mirror.host, port=port) as srv:
        print(f"serving the offline mirror at {srv.base_url} (Ctrl-C to stop)")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return EXIT_OK


def register(sub: Any) -> None:
    m = sub.add_parser("mirror", help="build or serve the offline mirror")
    m.add_argument("action", choices=("build", "serve"))
    m.add_argument("--port", type=int, default=0)
    m.set_defaults(func=cmd_mirror)
