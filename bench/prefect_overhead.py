"""What Prefect costs a CLI run: the local background server against the temporary one.

``python -m bench.prefect_overhead [--repeat N]`` builds the offline mirror into a temp
dir and measures, with the real CLI and a fresh data root:

- ``baotintuc --help`` (imports of the CLI alone);
- ``baotintuc server start`` with a fresh ``PREFECT_HOME`` (cold: migrations) and again
  after a stop (warm), and the server's RSS once it answers;
- a trivial flow run (``python -c``: import Prefect, run a flow returning 1) against the
  background server, the CLI's fixed Prefect cost without our flow's own work;
- a nothing-new ``baotintuc crawl --mode rss`` against the mirror (after one run that
  stored everything), N times with the background server up (``PREFECT_API_URL`` unset:
  the CLI finds the server it started) and N times with
  ``BTT_PREFECT_SERVER__BACKGROUND=false`` (Prefect's temporary per-run server, the old
  behaviour; its ``PREFECT_HOME`` already migrated by a first run).

Wall seconds, median of N; the ratio is against the temporary-server run of the same
process (the machine is shared: absolute figures are noisy, the ratio less so).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flows.prefect_server import LocalServer, free_port
from mirror.build import ensure_built
from mirror.server import MirrorServer

REPO = Path(__file__).resolve().parent.parent
BAOTINTUC = Path(sys.executable).with_name("baotintuc")


def timed(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(BAOTINTUC), *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"baotintuc {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return took


TRIVIAL_FLOW = """
from prefect import flow

@flow(name="bench-trivial")
def trivial() -> int:
    return 1

trivial()
"""


def timed_python(code: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=300)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.prefect_overhead", description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-prefect-") as tmp:
        work = Path(tmp)
        site = ensure_built(work / "mirror")
        root = work / "root"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env |= {"BTT_ROOT": str(root), "BTT_PREFECT_SERVER__PORT": str(port)}
        local = LocalServer(home=root / "data" / "prefect", port=port)
        rows: list[tuple[str, float, str]] = []
        rows.append(("baotintuc --help", timed(["--help"], env), ""))
        try:
            cold = timed(["server", "start"], env)
            rss = local.status().rss_mb
            rows.append(("server start, fresh PREFECT_HOME", cold, f"RSS {rss:.0f} MB"))
            timed(["server", "stop"], env)
            warm = timed(["server", "start"], env)
            rows.append(("server start, migrated PREFECT_HOME", warm, ""))
            flow_env = env | {"PREFECT_API_URL": local.api_url, "PREFECT_HOME": str(local.home),
                              "PREFECT_LOGGING_LEVEL": "WARNING"}  # fmt: skip
            trivial = [timed_python(TRIVIAL_FLOW, flow_env) for _ in range(args.repeat)]
            rows.append(("trivial flow run, background server", statistics.median(trivial), ""))
            with MirrorServer(site) as srv:
                crawl = ["crawl", "--mode", "rss", "--base-url", srv.base_url]
                timed(crawl, env)  # stores everything: the next runs find nothing new
                bg = [timed(crawl, env) for _ in range(args.repeat)]
                eph_env = env | {"BTT_PREFECT_SERVER__BACKGROUND": "false",
                                 "PREFECT_HOME": str(work / "ephemeral-home")}  # fmt: skip
                timed(crawl, eph_env)  # migrates the temporary server's database once
                eph = [timed(crawl, eph_env) for _ in range(args.repeat)]
        finally:
            local.stop()
    base = statistics.median(eph)
    rows.append(("crawl --mode rss, nothing new, background server", statistics.median(bg),
                 f"{statistics.median(bg) / base:.2f} of the temporary-server run"))  # fmt: skip
    rows.append(("crawl --mode rss, nothing new, temporary server", base, "1.00"))
    print(f"Prefect overhead of the CLI (median of {args.repeat}; wall seconds)")
    for what, secs, note in rows:
        print(f"  {what:<52} {secs:6.2f} s  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
