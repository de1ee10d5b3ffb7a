"""Shared by the Python package's tests: the charrnn binary to compare with, a small text, and
one model trained for about 15 seconds (while a Python thread ticks, to see the GIL released).

Run by `cargo test` (tests/python.rs builds the package into a fresh virtual environment and
sets CHARRNN_BIN), or by hand: `pip install .[test]` then `pytest tests/python` with
`charrnn` on PATH or CHARRNN_BIN set. A missing binary skips the comparisons, or fails them
when CHARRNN_REQUIRE_CLIENTS=1 (CI).
"""

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

import charrnn

ROOT = Path(__file__).resolve().parents[2]
SHAKESPEARE = ROOT / "data" / "tinyshakespeare.txt"


def required() -> bool:
    return os.environ.get("CHARRNN_REQUIRE_CLIENTS") == "1"


@pytest.fixture(scope="session", autouse=True)
def own_cache(tmp_path_factory):
    """Stored probes and books go to a folder of the session's, never the user's cache."""
    os.environ["CHARRNN_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def charrnn_bin():
    """The command line to compare with: CHARRNN_BIN, else `charrnn` on PATH."""
    path = os.environ.get("CHARRNN_BIN") or shutil.which("charrnn")
    if not path:
        message = "no charrnn binary (set CHARRNN_BIN or put charrnn on PATH)"
        if required():
            pytest.fail(message + " (CHARRNN_REQUIRE_CLIENTS=1)")
        pytest.skip(message)
    return path


def run_cli(binary, *args, cwd=None):
    """The command's stdout (it must succeed)."""
    done = subprocess.run([binary, *args], capture_output=True, cwd=cwd, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


@pytest.fixture(scope="session")
def text(tmp_path_factory):
    """The first 200,000 characters of tiny Shakespeare (shipped in data/)."""
    path = tmp_path_factory.mktemp("text") / "shake.txt"
    with open(SHAKESPEARE, encoding="utf-8") as f:
        path.write_text(f.read(200_000), encoding="utf-8")
    return path


class Trained:
    def __init__(self, model, folder, seconds, ticks):
        self.model = model
        self.folder = folder
        self.checkpoint = str(folder / "best.safetensors")
        self.seconds = seconds
        self.ticks = ticks


@pytest.fixture(scope="session")
def trained(text, tmp_path_factory):
    """A 2×64 LSTM trained for 15 seconds; a Python thread ticks every 10 ms meanwhile."""
    folder = tmp_path_factory.mktemp("run") / "shake"
    ticks, done = [], threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    thread = threading.Thread(target=tick)
    thread.start()
    start = time.monotonic()
    try:
        model = charrnn.train(text, minutes=0.25, hidden=64, out=folder, progress=False)
    finally:
        done.set()
        thread.join()
    seconds = (start, time.monotonic())
    return Trained(model, folder, seconds, ticks)
