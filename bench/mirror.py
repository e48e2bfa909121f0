"""Mirror at scale: build time, disk size, and serving cost of a big offline mirror.

Usage::

    python -m bench.mirror [--articles 100000] [--out DIR] [--requests 3000]

1. Builds an N-article mirror (``python -m mirror.build`` in a subprocess): wall time,
   CPU time and peak memory of the build, files and bytes on disk.
2. Serves it (``python -m mirror.serve --port 0`` in a subprocess, as ``baotintuc mirror
   serve`` does) and fetches, one keep-alive client after the other, in the same run:
   (a) the 20 real article pages (static files: the baseline), (b) random synthetic
   article pages (rendered on request), (c) random listing pages, deep ones included,
   (d) conditional re-requests of (b) (304 answers). For each: requests/s and the server's
   CPU-ms per request (from /proc), with the ratio to (a); and the server's resident memory
   after each phase (flat memory: it must not grow with the number of pages served).

CPU timings are noisy on a shared 2-core machine: read the ratios to the baseline.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class Phase:
    name: str
    requests: int
    seconds: float
    server_cpu_s: float
    bytes: int
    rss_mb: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.server_cpu_s / self.requests


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def disk_usage(root: Path) -> tuple[int, int, int]:
    """(files, apparent bytes, bytes allocated on disk)."""
    files = apparent = allocated = 0
    for p in root.rglob("*"):
        if p.is_file():
            st = p.stat()
            files += 1
            apparent += st.st_size
            allocated += st.st_blocks * 512
    return files, apparent, allocated


def build(out: Path, articles: int) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "mirror.build", "--out", str(out), "--articles",
                    str(articles)], check=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall_s": wall,
            "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "peak_rss_mb": after.ru_maxrss / 1024}


def fetch_all(base: str, paths: list[str], pid: int, name: str,
              headers: dict[str, str] | None = None, expect: int = 200) -> Phase:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    cpu0, total = cpu_seconds(pid), 0
    t0 = time.monotonic()
    for path in paths:
        conn.request("GET", quote(path), headers=(headers or {}).get(path) or {})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != expect:
            raise SystemExit(f"{name}: {path} answered {resp.status}, expected {expect}")
        total += len(body)
    seconds = time.monotonic() - t0
    conn.close()
    return Phase(name, len(paths), seconds, cpu_seconds(pid) - cpu0, total, rss_mb(pid))


def etags(base: str, paths: list[str]) -> dict[str, dict[str, str]]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    out = {}
    for path in paths:
        conn.request("HEAD", quote(path))
        resp = conn.getresponse()
        resp.read()
        out[path] = {"If-None-Match": resp.getheader("ETag") or ""}
    conn.close()
    return out


def samples(out: Path, n: int, rng: random.Random) -> tuple[list[str], list[str], list[str]]:
    """(real article paths repeated to n, n random synthetic ones, n random listing pages)."""
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    real_ids = set(manifest["real_pages"]["ids"])
    seed_id = manifest["seed_article"]["id"]
    reals, synth = [], []
    with (out / "ground_truth.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            path = row["url"].removeprefix("https://baotintuc.vn")
            if row["article_id"] in real_ids:
                reals.append(path)
            elif row["article_id"] != seed_id:
                synth.append(path)
    pages = [f"/{k}.htm" if i == 1 else f"/{k}/trang-{i}.htm"
             for k, count in manifest["listings"].items() for i in range(1, count + 1)]
    return ((reals * (n // len(reals) + 1))[:n], rng.sample(synth, min(n, len(synth))),
            rng.sample(pages, min(n, len(pages))))


def serve(out: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "mirror.serve", "--site", str(out / "site"),
                             "--port", "0"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if " at http://" not in line:
        proc.terminate()
        raise SystemExit(f"mirror did not start: {line!r}")
    return proc, line.rsplit(" at ", 1)[1].strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.mirror", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=None,
                    help="build folder (default: a temporary one, removed at the end)")
    ap.add_argument("--reuse", action="store_true", help="serve the build already in --out")
    ap.add_argument("--requests", type=int, default=3_000, help="requests per phase")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-mirror-") as tmp:
        out = args.out or Path(tmp) / "mirror"
        figures: dict[str, object] = {"articles": args.articles}
        if not args.reuse:
            b = build(out, args.articles)
            figures["build"] = b
            print(f"build: {args.articles:,} articles in {b['wall_s']:.1f} s wall, "
                  f"{b['cpu_s']:.1f} CPU-s, peak {b['peak_rss_mb']:.0f} MB")
        files, apparent, allocated = disk_usage(out)
        figures["disk"] = {"files": files, "bytes": apparent, "allocated": allocated}
        print(f"disk: {files:,} files, {apparent / 1e6:,.0f} MB ({allocated / 1e6:,.0f} MB "
              f"allocated) in {out}")
        for name in ("plan.sqlite", "ground_truth.jsonl"):
            if (out / name).is_file():
                print(f"  {name}: {(out / name).stat().st_size / 1e6:,.0f} MB")

        rng = random.Random(7)
        reals, synth, listing = samples(out, args.requests, rng)
        proc, base = serve(out)
        try:
            rss0 = rss_mb(proc.pid)
            phases = [fetch_all(base, reals, proc.pid, "a real pages (files, baseline)"),
                      fetch_all(base, synth, proc.pid, "b synthetic articles (rendered)"),
                      fetch_all(base, listing, proc.pid, "c listing pages (rendered)")]
            cond = synth[: min(len(synth), args.requests)]
            phases.append(fetch_all(base, cond, proc.pid, "d 304 re-requests of b",
                                    etags(base, cond), expect=304))
            phases.append(fetch_all(base, rng.sample(synth, len(synth)), proc.pid,
                                    "e synthetic articles again (memory)"))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    base_phase = phases[0]
    print(f"\nserver: {base}, resident memory at start {rss0:.0f} MB")
    print(f"{'phase':<38}{'requests':>9}{'req/s':>9}{'(x a)':>7}{'CPU-ms/req':>11}"
          f"{'(x a)':>7}{'KB/req':>8}{'RSS MB':>8}")
    for p in phases:
        print(f"{p.name:<38}{p.requests:>9}{p.per_second:>9.0f}"
              f"{p.per_second / base_phase.per_second:>7.2f}{p.cpu_ms:>11.2f}"
              f"{p.cpu_ms / base_phase.cpu_ms:>7.2f}{p.bytes / p.requests / 1024:>8.0f}"
              f"{p.rss_mb:>8.0f}")
    figures["phases"] = [{"name": p.name, "requests": p.requests, "req_per_s": p.per_second,
                          "cpu_ms_per_req": p.cpu_ms, "rss_mb": p.rss_mb} for p in phases]
    print("\n" + json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
