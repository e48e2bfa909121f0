"""The whole pipeline, measured in one run: speed against bare trafilatura, memory at
growing sizes, cores used, a nothing-new rerun, and re-extraction on Dask.

Usage::

    python -m bench.pipeline [--sizes 1000,10000,100000] [--work data/bench]
                             [--json out.json] [--skip-dask] [--trafilatura-sample 2000]

For each size N (mirrors are built once and kept under ``--work``):

1. An N-article mirror is served (``python -m mirror.serve``, its own process: the site
   is not the pipeline, its CPU is not counted).
2. ``baotintuc backfill`` ingests all of it into a fresh warehouse, against a Prefect
   server that is already up (the CLI reuses a long-lived local server; its start-up is
   measured once, apart). Measured: wall time, CPU time of the CLI and every process it
   starts (rusage of waited children), cores used = CPU / wall (and, with the site's
   server, how busy the machine was: the site shares the two cores), and the peak of the
   summed resident memory of the CLI's process tree (sampled every 0.1 s), with each
   process's own peak. Summed RSS counts the pages processes share (libraries, the spawned
   parse worker's) once per process; the summed PSS, which splits them, is given too.
3. Bare ``trafilatura.extract(html)`` over the same archived pages, in one process (up to
   ``--trafilatura-sample`` pages): pages/s. The ratio CLI articles/s ÷ trafilatura pages/s
   says whether the whole pipeline keeps pace with the extraction library alone.
4. For the smallest size: a nothing-new ``crawl --mode rss`` (wall, requests).
5. For the middle size: ``reextract --workers 1`` vs ``--workers 2`` (a local Dask
   cluster), wall time and speed-up.

It prints a Markdown table for the README and writes every figure to ``--json``. Timings
on a shared 2-core machine are noisy: compare the ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
BTT = Path(sys.executable).with_name("baotintuc")


@dataclass(slots=True)
class Measured:
    """One command: wall, CPU of its tree, peak memory of its tree."""

    name: str
    returncode: int
    wall_s: float
    cpu_s: float
    peak_tree_mb: float
    peaks_mb: dict[str, float] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    peak_tree_pss_mb: float = 0.0

    @property
    def cores(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s else 0.0


def _label(proc: psutil.Process) -> str:
    cmd = " ".join(proc.cmdline()[1:4])
    for key, name in (("scrapy", "spider"), ("uvicorn", "prefect-server"),
                      ("prefect", "prefect"), ("baotintuc", "cli"), ("dask", "dask"),
                      ("multiprocessing", "worker")):
        if key in cmd:
            return name
    return cmd[:40] or "?"


def _forked_not_yet_run(proc: psutil.Process, commands: dict[int, list[str]]) -> bool:
    """A child still running its parent's command: the instant between a fork and the
    exec of the program it starts (the spider, a parse worker). It shares every page
    with its parent, so its RSS is the parent's counted twice (one sample of a 4,000-
    article backfill read 436 MB that way, against 390-400 otherwise); PSS, which splits
    shared pages, is right either way."""
    own = commands.get(proc.pid)
    parent = commands.get(proc.ppid())
    return own is not None and own == parent


def measure(name: str, cmd: list[str], env: dict[str, str], timeout: float = 7200) -> Measured:
    """Run ``cmd``; sample its process tree's memory; CPU from rusage of waited children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    peak = [0.0, 0.0]  # summed RSS, summed PSS
    peaks: dict[str, float] = {}
    stop = threading.Event()

    def sample() -> None:
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            total = total_pss = 0.0
            commands = {}
            for p in tree:
                try:
                    commands[p.pid] = p.cmdline()
                except psutil.Error:
                    continue
            for p in tree:
                try:
                    if _forked_not_yet_run(p, commands):
                        continue
                    mem = p.memory_full_info()
                    label = _label(p)
                except psutil.Error:
                    continue
                rss = mem.rss / 2**20
                total += rss
                total_pss += mem.pss / 2**20
                peaks[label] = max(peaks.get(label, 0.0), rss)
            peak[0] = max(peak[0], total)
            peak[1] = max(peak[1], total_pss)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop.set()
        sampler.join()
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(name, proc.returncode, wall, cpu, peak[0],
                    {k: round(v, 1) for k, v in peaks.items()}, out, err,
                    peak_tree_pss_mb=peak[1])


class PrefectServer:
    """A long-lived Prefect server for the benchmark (the CLI's own reuse, measured once)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.proc: subprocess.Popen[bytes] | None = None
        self.api = ""
        self.start_s = 0.0
        self.rss_mb = 0.0

    def __enter__(self) -> PrefectServer:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PREFECT_HOME": str(self.home), "DO_NOT_TRACK": "1",
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_URL", None)
        t0 = time.monotonic()
        log = (self.home / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.api = f"http://127.0.0.1:{port}/api"
        import urllib.request

        while True:
            try:
                with urllib.request.urlopen(self.api + "/health", timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() - t0 > 120:
                    raise RuntimeError(
                        f"Prefect server did not start: {self.home}/server.log") from None
                time.sleep(0.25)
        self.start_s = time.monotonic() - t0
        return self

    def measure_rss(self) -> float:
        assert self.proc is not None
        root = psutil.Process(self.proc.pid)
        total = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        self.rss_mb = total / 2**20
        return self.rss_mb

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


class Mirror:
    """An N-article mirror, built once under ``work``, served by its own process."""

    def __init__(self, work: Path, articles: int) -> None:
        self.out = work / f"mirror-{articles}"
        self.articles = articles
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def build(self) -> float:
        if (self.out / "manifest.json").exists():
            return 0.0
        t0 = time.monotonic()
        subprocess.run([str(BTT), "mirror", "build", "--articles", str(self.articles),
                        "--out", str(self.out)], check=True, cwd=REPO,
                       stdout=subprocess.DEVNULL)
        return time.monotonic() - t0

    def __enter__(self) -> Mirror:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mirror.serve", "--site", str(self.out / "site"),
             "--port", "0"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:\d+", line)
        if not m:
            raise RuntimeError(f"mirror did not start: {line!r}")
        self.base_url = m.group(0)
        return self

    def cpu_s(self) -> float:
        """CPU seconds the site's server has used so far."""
        assert self.proc is not None
        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def cli_env(root: Path, api: str) -> dict[str, str]:
    env = {**os.environ, "BTT_ROOT": str(root), "PREFECT_API_URL": api,
           "PREFECT_HOME": str(root / "prefect-client")}
    return env


def trafilatura_rate(root: Path, limit: int) -> dict[str, float]:
    """Bare ``trafilatura.extract`` over the run's archived pages, in a fresh process."""
    code = (
        "import sys, time, glob, json, trafilatura\n"
        "from crawler.archive import iter_pages\n"
        "pages = []\n"
        f"for seg in sorted(glob.glob({str(root / 'data' / 'raw')!r} + '/*/*.warc.gz')):\n"
        "    pages += [p.body for p in iter_pages(seg)]\n"
        f"    if len(pages) >= {limit}: break\n"
        f"pages = pages[:{limit}]\n"
        "trafilatura.extract(pages[0])\n"
        "t = time.perf_counter(); c = time.process_time()\n"
        "for body in pages: trafilatura.extract(body)\n"
        "print(json.dumps({'pages': len(pages), 'wall_s': time.perf_counter() - t,"
        " 'cpu_s': time.process_time() - c}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    data["pages_per_s"] = data["pages"] / data["wall_s"]
    return data


def _stored(root: Path, db: Path) -> dict[str, Any]:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "select count(*), (select requests from crawl_runs order by started_at desc "
            "limit 1) from articles").fetchone()
    assert row is not None
    return {"articles": int(row[0]), "requests_last_run": int(row[1] or 0)}


def run_size(work: Path, n: int, api: str, sample: int) -> dict[str, Any]:
    mirror = Mirror(work, n)
    build_s = mirror.build()
    root = work / f"run-{n}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    db = root / "bench.duckdb"
    with mirror:
        site = mirror.cpu_s()
        m = measure(f"ingest-{n}", [str(BTT), "backfill", "--base-url", mirror.base_url,
                                    "--db", str(db)], cli_env(root, api))
        site = mirror.cpu_s() - site
    if m.returncode != 0:
        raise RuntimeError(f"ingest of {n} failed: {m.stderr[-2000:]}")
    stored = _stored(root, db)
    traf = trafilatura_rate(root, min(sample, stored["articles"]))
    rate = stored["articles"] / m.wall_s
    result = {
        "articles": n, "mirror_build_s": round(build_s, 1), "stored": stored["articles"],
        "wall_s": round(m.wall_s, 1), "cpu_s": round(m.cpu_s, 1), "cores": round(m.cores, 2),
        "site_cpu_s": round(site, 1),
        "machine_cores": round((m.cpu_s + site) / m.wall_s, 2),
        "peak_tree_mb": round(m.peak_tree_mb), "peaks_mb": m.peaks_mb,
        "peak_tree_pss_mb": round(m.peak_tree_pss_mb),
        "articles_per_s": round(rate, 1),
        "trafilatura_pages_per_s": round(traf["pages_per_s"], 1),
        "trafilatura_sample": traf["pages"],
        "ratio_vs_trafilatura": round(rate / traf["pages_per_s"], 2),
        "summary": m.stdout.strip().splitlines()[0] if m.stdout.strip() else "",
    }
    print(json.dumps(result), flush=True)
    return result


def nothing_new(work: Path, n: int, api: str) -> dict[str, Any]:
    root = work / f"run-{n}"
    db = root / "bench.duckdb"
    with Mirror(work, n) as mirror:
        # The first rss run against this port fills the HTTP cache; the second is the one
        # a scheduled poll would make.
        measure("rss-warm", [str(BTT), "crawl", "--mode", "rss", "--base-url",
                             mirror.base_url, "--db", str(db)], cli_env(root, api))
        m = measure("rss-nothing-new", [str(BTT), "crawl", "--mode", "rss", "--base-url",
                                        mirror.base_url, "--db", str(db)], cli_env(root, api))
    stored = _stored(root, db)
    out = {"wall_s": round(m.wall_s, 2), "requests": stored["requests_last_run"],
           "returncode": m.returncode, "summary": m.stdout.strip().splitlines()[0:1]}
    print(json.dumps({"nothing_new": out}), flush=True)
    return out


def dask_speedup(work: Path, n: int, api: str) -> dict[str, Any]:
    root = work / f"run-{n}"
    db = root / "bench.duckdb"
    runs = {}
    for workers in (1, 2):
        m = measure(f"reextract-{workers}", [str(BTT), "reextract", "--db", str(db),
                                             "--workers", str(workers)], cli_env(root, api))
        if m.returncode != 0:
            raise RuntimeError(f"reextract failed: {m.stderr[-2000:]}")
        runs[workers] = m
    out = {
        "articles": n,
        "one_worker_s": round(runs[1].wall_s, 1),
        "two_workers_s": round(runs[2].wall_s, 1),
        "speedup": round(runs[1].wall_s / runs[2].wall_s, 2),
        "peak_tree_mb_two_workers": round(runs[2].peak_tree_mb),
    }
    print(json.dumps({"dask": out}), flush=True)
    return out


def table(results: dict[str, Any]) -> str:
    sizes = results["sizes"]
    base = sizes[0]["peak_tree_mb"] if sizes else 0
    lines = [
        "| articles | wall | articles/s | bare trafilatura pages/s | ratio | cores "
        "(with the site) | peak RSS, all processes (PSS) | vs smallest |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sizes:
        lines.append(
            f"| {r['articles']:,} | {r['wall_s']:.0f} s | {r['articles_per_s']:.1f} | "
            f"{r['trafilatura_pages_per_s']:.1f} | **{r['ratio_vs_trafilatura']:.2f}×** | "
            f"{r['cores']:.2f} ({r.get('machine_cores', 0):.2f}) | {r['peak_tree_mb']} MB "
            f"({r.get('peak_tree_pss_mb', 0)} MB) | {r['peak_tree_mb'] / base:.2f} |"
        )
    s = results.get("server", {})
    if s:
        lines.append("")
        lines.append(f"Prefect server (long-lived, started once): {s['start_s']:.1f} s to "
                     f"start, {s['rss_mb']:.0f} MB.")
    nn = results.get("nothing_new")
    if nn:
        lines.append(f"Nothing-new `crawl --mode rss`: {nn['wall_s']:.1f} s wall, "
                     f"{nn['requests']} requests.")
    d = results.get("dask")
    if d:
        lines.append(f"`reextract` of {d['articles']:,} articles on a local Dask cluster: "
                     f"{d['one_worker_s']:.0f} s with 1 worker, {d['two_workers_s']:.0f} s "
                     f"with 2: **{d['speedup']:.2f}×**.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--work", type=Path, default=REPO / "data" / "bench")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--trafilatura-sample", type=int, default=2000)
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"sizes": [], "started": time.strftime("%Y-%m-%d %H:%M")}
    with PrefectServer(work / "prefect") as server:
        results["server"] = {"start_s": round(server.start_s, 1),
                             "rss_mb": round(server.measure_rss())}
        for n in sizes:
            results["sizes"].append(run_size(work, n, server.api, args.trafilatura_sample))
        results["nothing_new"] = nothing_new(work, sizes[0], server.api)
        if not args.skip_dask:
            middle = sizes[len(sizes) // 2] if len(sizes) > 2 else sizes[-1]
            results["dask"] = dask_speedup(work, middle, server.api)
    print()
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

