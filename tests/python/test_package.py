"""The Python package against the command line: generate is `charrnn sample`'s text, score is
`charrnn eval`'s loss, train is `charrnn train` (its flags, messages, run folder, Ctrl-C),
and Python threads keep running while Rust works."""

import os
import signal
import subprocess
import sys
import threading

import pytest

import charrnn
from conftest import ROOT, run_cli


def test_import_takes_under_half_a_second():
    code = "import time; t = time.perf_counter(); import charrnn; print(time.perf_counter() - t)"
    runs = [float(subprocess.check_output([sys.executable, "-c", code])) for _ in range(3)]
    assert min(runs) < 0.5, runs


def test_python_threads_run_while_training(trained):
    start, end = trained.seconds
    assert end - start >= 15
    during = [t for t in trained.ticks if start + 2 < t < end - 2]
    # A tick every 10 ms while the GIL is free: at least a third of them on a busy machine
    # (none at all if training held the GIL).
    assert len(during) >= (end - start - 4) / 0.01 / 3, (len(during), end - start)


SETTINGS = [
    ("ROMEO:", dict(length=300, temperature=0.8, seed=7)),
    ("", dict(length=200, seed=3, top_k=5)),
    ("The ", dict(length=400, temperature=1.2, seed=1, top_p=0.9, stop=["\n\n", "KING"])),
    ("First", dict(length=100, temperature=0.0)),
]


def sample_flags(prime, kw):
    flags = ["--prime", prime] if prime else []
    for name, value in kw.items():
        for v in value if isinstance(value, list) else [value]:
            flags += ["--" + name.replace("_", "-"), str(v)]
    return flags


@pytest.mark.parametrize("prime,kw", SETTINGS)
def test_generate_is_charrnn_samples_text(trained, charrnn_bin, prime, kw):
    text = trained.model.generate(prime, **kw)
    printed = run_cli(charrnn_bin, "sample", trained.checkpoint, *sample_flags(prime, kw))
    assert prime + text + "\n" == printed
    assert len(text) <= kw["length"]


def test_generate_without_a_seed_draws_a_new_one_each_time(trained):
    texts = {trained.model.generate("ROMEO:", length=60) for _ in range(3)}
    assert len(texts) > 1


def test_stream_gives_generates_text_piece_by_piece(trained):
    kw = dict(length=300, temperature=0.8, seed=11)
    stream = trained.model.stream("ROMEO:", **kw)
    assert stream.finish_reason is None
    pieces = list(stream)
    assert "".join(pieces) == trained.model.generate("ROMEO:", **kw)
    assert len(pieces) > 10
    assert stream.finish_reason == "length"


def test_score_is_charrnn_evals_loss(trained, charrnn_bin, text, tmp_path):
    with open(text, encoding="utf-8") as f:
        sample = f.read()[-20_000:] + "café\n"
    path = tmp_path / "scored.txt"
    path.write_text(sample, encoding="utf-8")
    score = trained.model.score(sample)
    printed = run_cli(charrnn_bin, "eval", trained.checkpoint, str(path))
    assert printed.startswith(
        f"{path}: {score.chars} characters, {score.nats:.4f} nats/char, {score.bits:.4f} "
        f"bits/char, perplexity {score.perplexity:.3f}; 1 of {len(sample)} characters "
    ), (printed, score)
    assert "are outside the vocabulary and left out" in printed, printed
    assert score.unknown == 1 and score.out_of_vocab == {"é": 1}
    assert score.chars == len(sample) - 1  # no unknown symbol: the é is left out


def test_info_is_what_the_checkpoint_holds(trained, charrnn_bin):
    info = trained.model.info
    assert info["model"]["hidden"] == 64 and info["model"]["layers"] == 2
    assert info["model"]["cell"] == "lstm"
    assert len(info["vocabulary"]) == info["model"]["vocab"]
    assert info["train_state"]["step"] > 0 and info["precision"] == "f32"
    printed = run_cli(charrnn_bin, "info", trained.checkpoint)
    assert f"vocabulary {info['model']['vocab']}, {info['parameters']} parameters" in printed


def test_kernels_the_machine_lacks_raise_value_error_at_import():
    # "avx9" is no set of kernels on any machine: the import itself refuses, with the command
    # line's line, before any work (not a RuntimeError at the first product).
    env = dict(os.environ, CHARRNN_KERNELS="avx9")
    run = subprocess.run([sys.executable, "-c", "import charrnn"], env=env, capture_output=True, text=True)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: CHARRNN_KERNELS=avx9 is not a set of kernels"), run.stderr


@pytest.mark.parametrize("kw", [{"length": -1}, {"seed": -1}, {"seed": 2**70}, {"top_k": -3}, {"length": "many"}])
def test_a_count_out_of_range_raises_value_error_naming_it(trained, kw):
    (name, value), = kw.items()
    with pytest.raises(ValueError, match=f"^{name} must be a whole number from 0 to 18446744073709551615, got {value!r}"):
        trained.model.generate("The", **kw)
    with pytest.raises(ValueError, match=f"^{name} must be a whole number"):
        trained.model.stream("The", **kw)


def test_a_missing_file_raises_file_not_found_naming_it(tmp_path):
    missing = tmp_path / "no-such-text.txt"
    with pytest.raises(FileNotFoundError, match="no-such-text.txt"):
        charrnn.train(missing, steps=1, out=tmp_path / "run", progress=False)
    with pytest.raises(FileNotFoundError, match="nothing.safetensors"):
        charrnn.load(tmp_path / "nothing.safetensors")


def test_bad_input_raises_value_error_with_the_command_lines_message(trained, text, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="--minutes"):
        charrnn.train(text, minutes=-1, out=out, progress=False)
    with pytest.raises(ValueError, match="unexpected argument '--hiden' found; tip: .*'--hidden'"):
        charrnn.train(text, hiden=8, out=out, progress=False)
    # init_from is --init-from: unknown to the command line until it has that flag, then the
    # missing checkpoint.
    with pytest.raises((ValueError, FileNotFoundError), match="init-from|x.safetensors"):
        charrnn.train(text, init_from=tmp_path / "x.safetensors", out=out, progress=False)
    with pytest.raises(ValueError, match=r"--top-p must be in \(0, 1\], got 1.5"):
        trained.model.generate(top_p=1.5)
    with pytest.raises(ValueError, match="--temperature must be 0 or more"):
        trained.model.generate(temperature=-1.0)
    with pytest.raises(ValueError, match="--stop must not be empty"):
        trained.model.generate(stop="")
    with pytest.raises(ValueError, match="the text has 1 usable character"):
        trained.model.score("a")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="is not a charrnn checkpoint"):
        charrnn.load(junk)
    with pytest.raises(ValueError, match="--precision"):
        charrnn.load(trained.checkpoint, precision="f16")


def test_ctrl_c_saves_as_the_command_line_does_then_raises_keyboard_interrupt(text, tmp_path):
    out = tmp_path / "run"
    timer = threading.Timer(3.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as caught:
            charrnn.train(text, steps=3000, hidden=32, out=out, progress=False)
    finally:
        timer.cancel()
    message = str(caught.value)
    assert message.startswith("interrupted at step "), message
    last = out / "last.safetensors"
    assert message.endswith(f"saved {last}; continue with: charrnn.train(the same arguments, resume={str(last)!r})"), message
    resumed = charrnn.load(out / "last.safetensors")
    assert resumed.info["train_state"]["step"] > 0


def test_progress_false_prints_nothing(text, tmp_path, capfd):
    charrnn.train(text, steps=20, hidden=16, out=tmp_path / "run", progress=False)
    assert capfd.readouterr() == ("", "")


def test_progress_shows_the_runs_lines_and_a_tqdm_bar(text, tmp_path, capfd):
    pytest.importorskip("tqdm")
    charrnn.train(text, steps=20, hidden=16, out=tmp_path / "run")
    out, err = capfd.readouterr()
    assert "charrnn: LSTM 2×16" in out and "validation loss" in out, out
    assert "charrnn: done at step 20 " in out, out
    assert "ch/s" in err, err  # the bar: the status as the command line's bar shows it


def test_without_tqdm_the_lines_are_plain(text, tmp_path, capfd, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # `import tqdm.auto` fails
    charrnn.train(text, steps=20, hidden=16, out=tmp_path / "run")
    out, err = capfd.readouterr()
    assert "charrnn: LSTM 2×16" in out and "charrnn: done at step 20 " in out, out
    assert err == ""


def test_a_diverged_run_raises_runtime_error(text, tmp_path):
    with pytest.raises(RuntimeError, match="training diverged at step .*lower --lr"):
        charrnn.train(text, steps=200, hidden=16, lr=100, clip=0, out=tmp_path / "run", progress=False)


@pytest.fixture
def gutenberg_mirror():
    """A local Gutenberg mirror serving book 99999 (tests/fixtures/gutenberg-sample.txt)."""
    import http.server

    book = (ROOT / "tests" / "fixtures" / "gutenberg-sample.txt").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            found = self.path == "/cache/epub/99999/pg99999.txt"
            self.send_response(200 if found else 404)
            self.end_headers()
            if found:
                self.wfile.write(book)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def test_fetch_and_train_on_a_gutenberg_book(gutenberg_mirror, tmp_path):
    path = charrnn.fetch(gutenberg=99999, mirror=gutenberg_mirror, cache=tmp_path / "cache")
    assert path == str(tmp_path / "cache" / "gutenberg-99999.txt")
    want = (ROOT / "tests" / "fixtures" / "gutenberg-sample.book.txt").read_text(encoding="utf-8")
    assert open(path, encoding="utf-8").read() == want
    with pytest.raises(ValueError, match="no plain-text book 12345"):
        charrnn.fetch(gutenberg=12345, mirror=gutenberg_mirror, cache=tmp_path / "cache")
    # train(gutenberg=...) takes the book from the cache, as `charrnn train --gutenberg` does.
    model = charrnn.train(
        [], gutenberg=99999, cache=tmp_path / "cache", steps=5, hidden=16, batch=4, seq=8,
        out=tmp_path / "run", progress=False,
    )
    assert model.info["train_state"]["corpus"]["file"].endswith("gutenberg-99999.txt")
