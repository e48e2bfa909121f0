"""Incremental-crawl benchmark: what a scheduled run costs when little or nothing is new.

``python -m bench.incremental [--hidden N]`` builds the offline mirror into a temp dir and
runs the real CLI (``baotintuc crawl``, scheduled defaults: mode all, max_pages 1) three
times into one fresh DuckDB file:

a. baseline: the site with its N newest articles hidden (their links in feeds and
   listings point nowhere), into an empty database;
b. nothing new: the same site again;
c. N new: the full site on the same origin (feeds and first listing pages change).

For each run it prints the requests the mirror saw, the 304 answers, the article
requests, wall seconds of the CLI, the flow's own seconds, new articles and requests per
new article, and each as a ratio to the baseline run of the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from baotintuc.urls import article_id
from mirror.build import ensure_built
from mirror.server import MirrorServer

REPO = Path(__file__).resolve().parent.parent
BAOTINTUC = Path(sys.executable).with_name("baotintuc")
SUMMARY_RE = re.compile(r"(\d+) new, (\d+) updated, (\d+) unchanged, (\d+) failed")
DEAD_LINK = "/tin-da-go.htm"  # not an article URL: the spider ignores it


@dataclass(slots=True)
class RunFigures:
    name: str
    requests: int
    not_modified: int
    article_requests: int
    wall_s: float
    flow_s: float
    new: int

    @property
    def per_new(self) -> float | None:
        return self.requests / self.new if self.new else None


def hide_newest(site: Path, out: Path, n: int, truth: Path) -> list[str]:
    """Copy ``site`` to ``out`` with the links to its ``n`` newest articles made dead."""
    rows = [json.loads(line) for line in truth.read_text(encoding="utf-8").splitlines() if line]
    rows.sort(key=lambda r: r["published_at"], reverse=True)
    paths = ["/" + r["url"].split("://", 1)[1].split("/", 1)[1] for r in rows[:n]]
    shutil.copytree(site, out)
    for file in out.rglob("*"):
        if not file.is_file() or file.suffix not in (".rss", ".htm", ".html"):
            continue
        if article_id(file.name) is not None:
            continue  # article pages keep their related links; the spider does not follow them
        text = file.read_text(encoding="utf-8")
        new = text
        for path in paths:
            new = new.replace(path, DEAD_LINK)
        if new != text:
            file.write_text(new, encoding="utf-8")
    return paths


def run_cli(root: Path, base_url: str, db: Path) -> tuple[str, float]:
    env = dict(os.environ, BTT_ROOT=str(root), PREFECT_HOME=str(root / "prefect"))
    env.pop("PREFECT_API_URL", None)
    started = time.monotonic()
    proc = subprocess.run(
        [str(BAOTINTUC), "crawl", "--base-url", base_url, "--db", str(db)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"crawl failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout, wall


def measure(name: str, srv: MirrorServer, root: Path, db: Path) -> RunFigures:
    mark = len(srv.requests)
    stdout, wall = run_cli(root, srv.base_url, db)
    reqs = srv.requests[mark:]
    m = SUMMARY_RE.search(stdout)
    flow = re.search(r"requests, ([\d.]+) s\)", stdout)
    return RunFigures(
        name=name,
        requests=len(reqs),
        not_modified=sum(1 for r in reqs if r.status == 304),
        article_requests=sum(1 for r in reqs if article_id(r.path) is not None),
        wall_s=wall,
        flow_s=float(flow.group(1)) if flow else 0.0,
        new=int(m.group(1)) if m else 0,
    )


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.3f}"


def report(runs: list[RunFigures]) -> str:
    base = runs[0]
    cols = ("requests", "not_modified", "article_requests", "wall_s", "flow_s", "new")
    lines = [
        f"{'run':<14}"
        + "".join(f"{c:>17}" for c in cols)
        + f"{'req/new':>10}",
    ]
    for r in runs:
        cells = []
        for c in cols:
            v = getattr(r, c)
            shown = f"{v:.1f}" if isinstance(v, float) else str(v)
            cells.append(f"{shown} ({_ratio(v, getattr(base, c))})".rjust(17))
        per = f"{r.per_new:.2f}" if r.per_new is not None else "-"
        lines.append(f"{r.name:<14}" + "".join(cells) + per.rjust(10))
    lines.append("(x) = ratio to the baseline run a; req/new = requests per new article")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.incremental", description=__doc__)
    ap.add_argument("--hidden", type=int, default=20, help="articles new in run c")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        work = Path(tmp)
        site = ensure_built(work / "mirror")
        hidden_site = work / "hidden-site"
        hidden = hide_newest(site, hidden_site, args.hidden, work / "mirror" / "ground_truth.jsonl")
        root, db = work / "root", work / "root" / "bench.duckdb"
        root.mkdir()
        with MirrorServer(hidden_site) as srv:
            port = srv.port
            runs = [measure("a baseline", srv, root, db), measure("b nothing new", srv, root, db)]
        # Same origin (host and port): the HTTP cache revalidates instead of starting over.
        with MirrorServer(site, port=port) as srv:
            runs.append(measure(f"c {len(hidden)} new", srv, root, db))
    print(
        f"incremental crawl benchmark: offline mirror, CLI `baotintuc crawl` (mode all, "
        f"max_pages 1), {len(hidden)} newest articles hidden for runs a and b"
    )
    print(report(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
