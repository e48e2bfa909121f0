"""``baotintuc mirror build|serve``: the offline stand-in of baotintuc.vn, of any size."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from config import load_settings
from flows.cli.common import EXIT_OK, fail
from mirror.options import add_build_arguments, add_serve_arguments


def cmd_build(args: argparse.Namespace) -> int:
    from mirror.build import ensure_built

    out = args.out or load_settings().mirror.site_dir.parent
    try:
        ensure_built(out, args.articles, sitemaps=args.sitemaps, pages=args.pages, force=True)
    except OSError as exc:
        return fail(f"cannot build the mirror in {out}: {exc}")
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    c = m["counts"]
    print(f"mirror built in {out / 'site'}: {c['articles']} articles "
          f"({m['date_span']['first'][:10]} .. {m['date_span']['last'][:10]}), "
          f"{c['listing_pages']} listing pages, {c['sitemap_urls']} sitemap URLs, "
          f"pages {m['options']['pages']}; ground truth in {out / 'ground_truth.jsonl'}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from mirror.serve import parse_faults, serve_forever, site_folder

    settings = load_settings()
    try:
        faults = parse_faults(args.fault)
    except ValueError as exc:
        return fail(str(exc))
    if args.site is None:  # the demo mirror: built (or rebuilt) when needed
        from mirror.build import ensure_built

        site = ensure_built(settings.mirror.site_dir.parent)
    else:
        site = site_folder(args.site)
        if not site.is_dir():
            return fail(f"no mirror at {args.site}: build one with "
                        f"`baotintuc mirror build --out {args.site}`")
    host = args.host or settings.mirror.host
    port = settings.mirror.port if args.port is None else args.port

    def ready(srv: Any) -> None:
        mode = "pages rendered on request" if srv.plan_file else "files"
        print(f"serving the offline mirror {srv.site_dir} ({mode}) at {srv.base_url} "
              "(Ctrl-C to stop)", flush=True)

    try:
        serve_forever(site, host, port, faults, sitemaps=args.sitemaps, verbose=args.verbose,
                      ready=ready)
    except OSError as exc:
        return fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}")
    except ValueError as exc:  # a plan built from other inputs than this package's
        return fail(str(exc))
    return EXIT_OK


def register(sub: Any) -> None:
    m = sub.add_parser("mirror", help="build or serve the offline mirror of baotintuc.vn")
    actions = m.add_subparsers(dest="action", required=True)
    b = actions.add_parser("build", help="build a mirror (default: the 381-article demo one)")
    b.add_argument("--out", type=Path, default=None,
                   help="build folder (default: the parent of settings mirror.site_dir)")
    add_build_arguments(b)
    b.set_defaults(func=cmd_build)
    s = actions.add_parser("serve", help="serve a built mirror on 127.0.0.1")
    add_serve_arguments(s, site=None, host=None, port=None)
    s.set_defaults(func=cmd_serve)
