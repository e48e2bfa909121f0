"""Serve a built mirror until SIGINT/SIGTERM: ``baotintuc mirror serve`` (alias
``python -m mirror.serve --site DIR --port N [--fault PATH=KIND[:k=v,...]]``)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from mirror.options import add_serve_arguments
from mirror.server import Fault, MirrorServer, parse_fault

LOG_LIMIT = 1_000  # a long-running server keeps only its newest request records


def parse_faults(items: list[str]) -> dict[str, Fault]:
    """``PATH=SPEC`` items → faults; ValueError names the bad item."""
    faults = {}
    for item in items:
        path, sep, spec = item.partition("=")
        if not sep or not path.startswith("/"):
            raise ValueError(f"--fault needs /PATH=SPEC, got {item!r}")
        faults[path] = parse_fault(spec)
    return faults


def site_folder(path: Path) -> Path:
    """``path`` itself, or ``path/site`` when ``path`` is a build folder."""
    return path / "site" if (path / "manifest.json").is_file() and (path / "site").is_dir() \
        else path


def serve_forever(site: Path, host: str, port: int, faults: dict[str, Fault], *,
                  sitemaps: bool = True, verbose: bool = False,
                  ready: Callable[[MirrorServer], None] | None = None) -> None:
    """Serve until SIGINT or SIGTERM (then stop cleanly)."""
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with MirrorServer(site, host, port, faults, verbose=verbose, sitemaps=sitemaps,
                      log_limit=LOG_LIMIT) as srv:
        if ready is not None:
            ready(srv)
        done.wait()


def _announce(srv: MirrorServer) -> None:
    mode = "pages rendered on request" if srv.plan_file else "files"
    print(f"mirror serving {srv.site_dir} ({mode}) at {srv.base_url}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mirror.serve", description=__doc__)
    add_serve_arguments(ap, site=Path("data/mirror/site"), host="127.0.0.1", port=8765)
    args = ap.parse_args(argv)
    try:
        faults = parse_faults(args.fault)
    except ValueError as exc:
        ap.error(str(exc))
    serve_forever(site_folder(args.site), args.host, args.port, faults,
                  sitemaps=args.sitemaps, verbose=args.verbose, ready=_announce)
    return 0


if __name__ == "__main__":
    sys.exit(main())
