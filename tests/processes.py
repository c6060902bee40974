"""Killing a training run the hard way, as a power cut or an OOM killer would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def train_command(*args: object) -> list[str]:
    """``shelfwatch train ARGS`` as a subprocess command line."""
    return [sys.executable, "-m", "shelfwatch", "train", *map(str, args)]


def kill_then_resume(cmd: list[str], out: Path, timeout: float = 300) -> tuple[dict, str]:
    """Run ``cmd``, SIGKILL its process group as soon as ``out/checkpoint.pt`` appears (after
    the first epoch), check that it left no finished model, then run it again with
    ``--resume``. Returns the resumed run's ``training.json`` and its standard output."""
    proc = subprocess.Popen(
        cmd,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + timeout
    while not (out / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / "checkpoint.pt").exists() and not (out / "training.json").exists()
    resumed = subprocess.run(
        [*cmd, "--resume"], env=os.environ.copy(), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    return json.loads((out / "training.json").read_text()), resumed.stdout
