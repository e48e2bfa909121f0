"""``make run`` on a machine without internet: fail fast, one clear line, exit code 2."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import BAOTINTUC, REPO, cli_env


def _online() -> bool:
    try:
        socket.create_connection(("baotintuc.vn", 443), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(_online(), reason="this machine reaches baotintuc.vn: a live crawl would run")
def test_make_run_offline_fails_fast_and_clearly(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run(["make", "--no-print-directory", "run"], cwd=REPO, env=cli_env(tmp_path),
                          capture_output=True, text=True, timeout=60, check=False)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2
    assert elapsed < 30
    ours = [line for line in proc.stderr.splitlines() if line.startswith("baotintuc:")]
    assert len(ours) == 1, proc.stderr
    assert "make demo" in ours[0] and "baotintuc.vn" in ours[0]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_bad_configuration_fails_at_start_naming_the_setting(tmp_path: Path) -> None:
    env = cli_env(tmp_path) | {"BTT_CRAWL__DOWNLOAD_DELAY": "-1"}
    proc = subprocess.run([str(BAOTINTUC), "crawl"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "crawl.download_delay" in proc.stderr and "BTT_CRAWL__DOWNLOAD_DELAY" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_unexpected_error_is_one_line_and_its_traceback_is_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's error boundary: a bug in a command ends in one line on stderr naming the
    log, and the log keeps the whole traceback."""
    import logging

    from flows.cli import analysis, main

    def boom(args: object) -> int:
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setenv("BTT_ROOT", str(tmp_path))
    monkeypatch.setattr(analysis, "cmd_query", boom)
    root = logging.getLogger()
    handlers = list(root.handlers)
    try:
        code = main(["query", "select 1"])
    finally:
        for h in root.handlers[len(handlers):]:
            h.close()
        root.handlers[:] = handlers
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1 and len(lines) == 1, err
    assert lines[0].startswith("baotintuc: unexpected error: RuntimeError: a bug over two lines")
    log = tmp_path / "data" / "logs" / "baotintuc.log"
    assert str(log) in lines[0]
    text = log.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "RuntimeError: a bug" in text
