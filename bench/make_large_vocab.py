#!/usr/bin/env python3
"""Writes a generated text with thousands of distinct characters, for measuring charrnn and the
PyTorch peer on a large vocabulary (a Chinese text has ~6,000 distinct characters).

The text: 6,000 CJK ideographs (U+4E00 on), grouped into 3,000 "words" of 1 to 4 characters
(every character in exactly one or two words), words drawn with Zipf-like frequencies into
sentences of 4 to 12 words ending in 。 or ，, with a newline every few sentences. A model that
learns the words beats the character-frequency (unigram) model by a wide margin; one that does
not, cannot. Deterministic (seed 1). Usage:

    python3 bench/make_large_vocab.py OUT.txt [CHARS]     # default 1,000,000 characters
"""
import random
import sys


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    rng = random.Random(1)
    chars = [chr(0x4E00 + i) for i in range(6000)]
    rng.shuffle(chars)
    words, pool = [], list(chars)
    while pool:
        k = min(rng.randint(1, 4), len(pool))
        words.append("".join(pool[:k]))
        pool = pool[k:]
    # A second use for some characters, so words share characters as real ones do.
    for _ in range(len(words) // 2):
        words.append("".join(rng.choice(chars) for _ in range(rng.randint(2, 3))))
    weights = [1.0 / (r + 10) for r in range(len(words))]
    text, length = [], 0
    while length < n:
        sentence = "".join(rng.choices(words, weights, k=rng.randint(4, 12)))
        sentence += "。" if rng.random() < 0.6 else "，"
        if rng.random() < 0.3:
            sentence += "\n"
        text.append(sentence)
        length += len(sentence)
    with open(out, "w", encoding="utf-8") as f:
        f.write("".join(text)[:n])


if __name__ == "__main__":
    main()
