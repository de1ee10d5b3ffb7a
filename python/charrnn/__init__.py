"""charrnn: a character-level recurrent language model (LSTM, GRU or RNN) trained on a CPU.

Train on any text, then generate text in its style and score texts::

    import charrnn
    model = charrnn.train("data/tinyshakespeare.txt", minutes=5)   # into runs/tinyshakespeare
    print(model.generate("ROMEO:", length=300, temperature=0.8, seed=7))
    model = charrnn.load("runs/tinyshakespeare/best.safetensors")  # later
    model.score("To be, or not to be").bits                          # bits per character

Everything runs in the crate's Rust code (this package is the `charrnn` command line's
library with a thin layer): `train` is `charrnn train`, `Model.generate` gives exactly
`charrnn sample`'s text for the same checkpoint, prime, seed and settings, and `Model.score`
equals `charrnn eval`. The GIL is released while Rust works, so other Python threads run.
Errors are FileNotFoundError, ValueError or RuntimeError carrying the command line's one-line
message.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Dict, Optional, Sequence, Union

from . import _native
from ._native import Model, Score, Stream, __version__, fetch, load

__all__ = ["train", "load", "fetch", "Model", "Score", "Stream", "__version__"]

PathLike = Union[str, "os.PathLike[str]"]


def train(
    paths: Union[PathLike, Sequence[PathLike]],
    *,
    minutes: Optional[float] = None,
    epochs: Optional[float] = None,
    steps: Optional[int] = None,
    out: Optional[PathLike] = None,
    seed: Optional[int] = None,
    hidden: Optional[int] = None,
    layers: Optional[int] = None,
    cell: Optional[str] = None,
    threads: Optional[int] = None,
    init_from: Optional[PathLike] = None,
    progress: bool = True,
    **flags: Any,
) -> Model:
    """Trains a model as ``charrnn train`` does and returns the run's best checkpoint.

    paths: a text file, a folder (its text files, read recursively in sorted order) or a list
    of them; UTF-8, or UTF-16/32 with a byte-order mark, or another encoding with
    ``encoding="windows-1252"``. May be empty with ``gutenberg=ID``.

    minutes: stop after this many minutes of training (steps only: validation and saving are
    extra); the model is sized for it. epochs: passes over the training text [default: 10
    when neither steps nor minutes is given]. steps: optimiser steps in all. out: the run
    folder [default: runs/<first file's stem>]. seed: initial weights and dropout masks
    [default: 1]. hidden: hidden units per layer (H) and layers: stacked layers (L) [default:
    sized for the budget, 2 layers]. cell: "lstm", "gru" or "rnn". threads: worker threads
    [default: all cores]. init_from: start from a checkpoint's weights (``--init-from``; a
    ValueError until the command line has that flag).

    **flags: any other flag of ``charrnn train --help`` by its name with ``_`` for ``-``:
    ``dropout=0.1``, ``lr=0.002``, ``batch=32``, ``seq=32``, ``resume="runs/x/last.safetensors"``,
    ``ascii=True`` (a switch), ``gutenberg=27200``. They are parsed by the command line's own
    definitions, so defaults, sizing, checks, the run folder and exact resume are the
    command's.

    progress: show the run's lines (what was read and chosen, each validation, samples, the
    closing line) and a progress bar: ``tqdm.auto``'s when tqdm is installed (a widget in
    notebooks), else a status line every 10 s, all on stdout. False shows none of them (a
    few notes from before the run, such as the sizing probe's "timing training steps" or a
    download, still go to the process's stderr, as on the command line).

    Returns the Model loaded from ``<out>/best.safetensors`` (the lowest validation loss).

    Raises FileNotFoundError (a path that does not exist, named), ValueError (any other bad
    input or flag, with the command line's message), RuntimeError (training diverged; the
    checkpoints from before it are kept). KeyboardInterrupt (Ctrl-C, or a notebook's stop
    button) ends the current step, validates and saves ``last.safetensors`` (and
    ``best.safetensors`` when it improved) as Ctrl-C does on the command line, then is raised
    with a message saying how to resume (``resume=".../last.safetensors"``).
    """
    named = dict(
        minutes=minutes,
        epochs=epochs,
        steps=steps,
        out=out,
        seed=seed,
        hidden=hidden,
        layers=layers,
        cell=cell,
        threads=threads,
        init_from=init_from,
    )
    show = _display() if progress else None
    try:
        folder = _native.train(paths, {**named, **flags}, show)
    finally:
        if show is not None:
            show.close()
    return load(os.path.join(folder, "best.safetensors"))


def _display() -> "_Bar | _Lines":
    """The progress display: a tqdm.auto bar when tqdm is installed, else plain lines."""
    try:
        from tqdm.auto import tqdm  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return _Lines()
    return _Bar(tqdm)


class _Bar:
    """A tqdm bar over the budget's fraction (in thousandths) followed by the status, as the
    command line's bar shows them; the run's lines are written above it."""

    def __init__(self, tqdm: Callable[..., Any]) -> None:
        self.bar = tqdm(total=1000, bar_format="{bar:20}| {desc}", dynamic_ncols=True)

    def __call__(self, event: Dict[str, Any]) -> None:
        if "line" in event:
            self.bar.write(event["line"], file=sys.stdout)
            return
        self.bar.set_description_str(event["bar"], refresh=False)
        self.bar.update(round(event["fraction"] * 1000) - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class _Lines:
    """Without tqdm: every line of the run, and the status line every 10 s, as the command
    line prints them when its output is not a terminal."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def __call__(self, event: Dict[str, Any]) -> None:
        if "line" in event:
            print(event["line"], flush=True)
        elif time.monotonic() - self.last >= 10:
            self.last = time.monotonic()
            print(event["status"], flush=True)

    def close(self) -> None:
        pass
