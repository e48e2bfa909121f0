"""CLI: ``python -m mirror.serve --site DIR --port N [--fault PATH=KIND[:k=v,...]]``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from mirror.server import MirrorServer, parse_fault


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mirror.serve", description=__doc__)
    ap.add_argument("--site", type=Path, default=Path("data/mirror/site"))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="PATH=SPEC",
        help="e.g. /phap-luat.rss=status:status=503,times=2 (repeatable)",
    )
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args(argv)

    faults = {}
    for item in args.fault:
        path, sep, spec = item.partition("=")
        if not sep:
            ap.error(f"--fault needs PATH=SPEC, got {item!r}")
        faults[path] = parse_fault(spec)

    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with MirrorServer(args.site, args.host, args.port, faults, verbose=args.verbose) as srv:
        print(f"mirror serving {srv.site_dir} at {srv.base_url}", flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
