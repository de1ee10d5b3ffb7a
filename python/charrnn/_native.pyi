"""Type stubs of charrnn's native module (src/python/, built by maturin)."""

import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

_Path = Union[str, "os.PathLike[str]"]

__version__: str

def train(
    paths: Union[_Path, Sequence[_Path], None],
    flags: Optional[Dict[str, Any]],
    callable: Optional[Callable[[Dict[str, Any]], None]] = None,
) -> str:
    """Trains as `charrnn train PATHS --FLAG VALUE...` would; returns the run folder."""

def load(path: _Path, *, precision: Optional[str] = None, threads: Optional[int] = None) -> "Model":
    """Loads a checkpoint written by `charrnn train`; precision "f32", "bf16" or "int8"."""

def fetch(*, gutenberg: int, cache: Optional[_Path] = None, mirror: Optional[str] = None) -> str:
    """Downloads a Project Gutenberg book once into the cache; returns the path of its text."""

class Model:
    """A trained model loaded from a checkpoint."""

    def generate(
        self,
        prime: str = "",
        *,
        length: int = 500,
        temperature: float = 1.0,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
        stop: Union[str, List[str], None] = None,
    ) -> str:
        """The text after `prime` (not repeated), as `charrnn sample` generates it."""

    def stream(
        self,
        prime: str = "",
        *,
        length: int = 500,
        temperature: float = 1.0,
        top_k: Optional[int] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
        stop: Union[str, List[str], None] = None,
    ) -> "Stream":
        """`generate`'s text as an iterator of pieces as they are sampled."""

    def score(self, text: str) -> "Score":
        """The loss on `text`, as `charrnn eval` and validation measure it."""

    @property
    def info(self) -> Dict[str, Any]:
        """What the checkpoint holds: model, parameters, vocabulary, training config and state."""

class Stream(Iterator[str]):
    """Text pieces of one generation as they are sampled."""

    def __iter__(self) -> "Stream": ...
    def __next__(self) -> str: ...
    @property
    def finish_reason(self) -> Optional[str]:
        """"length" or "stop" once the text has ended; None before."""

class Score:
    """A model's loss on a text."""

    nats: float
    """Mean cross-entropy in nats per predicted character."""
    bits: float
    """The same in bits per character."""
    perplexity: float
    """e ** nats."""
    chars: int
    """Characters in the scored stream (the first is only read, every other one predicted)."""
    unknown: int
    """Characters outside the vocabulary (scored as the unknown symbol or left out)."""
    out_of_vocab: Dict[str, int]
    """Those characters and how often each occurs."""
