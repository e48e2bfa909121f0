"""The pipeline benchmark's memory sampler."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from bench.pipeline import _forked_not_yet_run


def _commands(*procs: psutil.Process) -> dict[int, list[str]]:
    return {p.pid: p.cmdline() for p in procs}


def test_a_fork_before_its_exec_is_not_counted_a_started_program_is() -> None:
    me = psutil.Process()
    pid = os.fork()
    if pid == 0:  # the child: the parent's program still, until it exits
        time.sleep(2)
        os._exit(0)
    program = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])
    try:
        time.sleep(0.5)
        fork, child = psutil.Process(pid), psutil.Process(program.pid)
        commands = _commands(me, fork, child)
        assert _forked_not_yet_run(fork, commands)
        assert not _forked_not_yet_run(child, commands)
        assert not _forked_not_yet_run(me, commands)
    finally:
        program.kill()
        program.wait()
        os.waitpid(pid, 0)
