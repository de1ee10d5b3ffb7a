//! Text in: reading a file as UTF-8 (with clear errors), the character vocabulary, the
//! train/validation split and the B-stream batcher of truncated BPTT.
//!
//! Owns everything between a path and the id sequences the engine reads. Does not own the
//! model or the training loop.

use crate::bail;
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// The symbol rare characters map to under `--max-vocab` / `--min-count`.
pub const UNK: char = '\u{FFFD}';

/// Reads `path` as UTF-8 text. A leading byte-order mark is dropped; everything else is kept
/// verbatim. With `lossy`, invalid UTF-8 becomes U+FFFD instead of an error.
pub fn read_text(path: &Path, lossy: bool) -> Result<String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| Error::io(format!("cannot read {shown}"), e))?;
    if meta.is_dir() {
        bail!("{shown} is a directory; give a text file");
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(format!("cannot read {shown}"), e))?;
    decode_text(&bytes, &shown.to_string(), lossy)
}

/// The checks of `read_text` on bytes already in memory; `name` is used in messages.
pub fn decode_text(bytes: &[u8], name: &str, lossy: bool) -> Result<String> {
    if bytes.is_empty() {
        bail!("{name} is empty; give a text file to train on");
    }
    // Like git and ripgrep: a NUL byte near the start means binary, not text.
    if let Some(pos) = bytes.iter().take(8192).position(|&b| b == 0) {
        bail!("{name} looks like binary data (a NUL byte at offset {pos}); charrnn trains on UTF-8 text");
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) if lossy => String::from_utf8_lossy(bytes).into_owned(),
        Err(e) => bail!(
            "{name} is not valid UTF-8: invalid byte at offset {}; pass --lossy to replace invalid bytes with U+FFFD",
            e.valid_up_to()
        ),
    };
    let text = text
        .strip_prefix('\u{FEFF}')
        .map(str::to_string)
        .unwrap_or(text);
    if text.is_empty() {
        bail!("{name} holds only a byte-order mark; give a text file to train on");
    }
    Ok(text)
}

/// The training text: one file, or several files / folders read in sorted order and joined
/// with a blank line.
pub struct Corpus {
    pub text: String,
    /// How to name it in messages: the file, or "N files from …".
    pub name: String,
    pub files: usize,
    /// Files in folders that were skipped for not being UTF-8 text.
    pub skipped: usize,
}

/// Reads `paths`: files are read as with `read_text` (any problem is an error); folders are
/// walked recursively in sorted order, skipping hidden entries and files that are not UTF-8
/// text (counted in `skipped`).
pub fn read_corpus(paths: &[std::path::PathBuf], lossy: bool) -> Result<Corpus> {
    let mut parts: Vec<String> = Vec::new();
    let mut skipped = 0;
    for p in paths {
        if p.is_dir() {
            let mut files = Vec::new();
            walk(p, &mut files)
                .map_err(|e| Error::io(format!("cannot read folder {}", p.display()), e))?;
            files.sort();
            for f in files {
                let bytes = std::fs::read(&f)
                    .map_err(|e| Error::io(format!("cannot read {}", f.display()), e))?;
                match decode_text(&bytes, &f.display().to_string(), lossy) {
                    Ok(t) => parts.push(t),
                    Err(_) => skipped += 1,
                }
            }
        } else {
            parts.push(read_text(p, lossy)?);
        }
    }
    if parts.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        bail!(
            "{} holds no UTF-8 text files ({skipped} skipped); give text files to train on",
            shown.join(" ")
        );
    }
    let name = if paths.len() == 1 && !paths[0].is_dir() {
        paths[0].display().to_string()
    } else {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        format!("{} files from {}", parts.len(), shown.join(" "))
    };
    Ok(Corpus {
        files: parts.len(),
        text: parts.join("\n\n"),
        name,
        skipped,
    })
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let ft = e.file_type()?;
        if ft.is_dir() {
            walk(&e.path(), out)?;
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// Transliterates to ASCII, as the blog post did with `unidecode`.
pub fn to_ascii(text: &str) -> String {
    deunicode::deunicode(text)
}

/// The sorted set of characters (Unicode scalar values) the model knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Vocab {
    pub chars: Vec<char>,
    /// Id of the unknown symbol (U+FFFD), when rare characters were folded into it.
    pub unk: Option<u32>,
    #[serde(skip)]
    index: HashMap<char, u32>,
}

impl Vocab {
    pub fn from_chars(chars: Vec<char>, unk: Option<u32>) -> Vocab {
        let index = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u32))
            .collect();
        Vocab { chars, unk, index }
    }

    /// The vocabulary of `text`: every character, or with `max_vocab` / `min_count` the most
    /// frequent ones (ties to the smaller code point) plus U+FFFD for the rest.
    pub fn build(text: &str, max_vocab: Option<usize>, min_count: usize) -> Vocab {
        let mut counts: HashMap<char, u64> = HashMap::new();
        for c in text.chars() {
            *counts.entry(c).or_insert(0) += 1;
        }
        let mut by_freq: Vec<(char, u64)> = counts.into_iter().collect();
        by_freq.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let total = by_freq.len();
        let mut kept: Vec<char> = by_freq
            .iter()
            .filter(|(_, n)| *n >= min_count as u64)
            .map(|(c, _)| *c)
            .collect();
        if let Some(max) = max_vocab {
            if kept.len() > max {
                kept.truncate(max.saturating_sub(1).max(1));
            }
        }
        let folded = kept.len() < total;
        if folded && !kept.contains(&UNK) {
            kept.push(UNK);
        }
        kept.sort_unstable();
        let unk = folded.then(|| kept.binary_search(&UNK).unwrap() as u32);
        Vocab::from_chars(kept, unk)
    }

    pub fn len(&self) -> usize {
        self.chars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    pub fn id(&self, c: char) -> Option<u32> {
        self.index.get(&c).copied()
    }

    pub fn char(&self, id: u32) -> char {
        self.chars[id as usize]
    }

    /// Ids of `text`; characters outside the vocabulary become the unknown symbol, and are
    /// counted. Without an unknown symbol they are an error naming them.
    pub fn encode(&self, text: &str, what: &str) -> Result<(Vec<u32>, usize)> {
        let mut ids = Vec::with_capacity(text.len());
        let mut unknown = 0;
        let mut missing: Vec<char> = Vec::new();
        for c in text.chars() {
            match (self.id(c), self.unk) {
                (Some(i), _) => ids.push(i),
                (None, Some(u)) => {
                    ids.push(u);
                    unknown += 1;
                }
                (None, None) => {
                    if !missing.contains(&c) && missing.len() < 10 {
                        missing.push(c);
                    }
                    unknown += 1;
                }
            }
        }
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().map(|c| format!("{c:?}")).collect();
            bail!(
                "{what} has {unknown} character(s) the model's vocabulary lacks: {}; use only characters of the training text",
                shown.join(" ")
            );
        }
        Ok((ids, unknown))
    }
}

/// Splits off the last `val_frac` as validation (split index ⌊n·(1−val_frac)⌋, as the PyTorch
/// peers do).
pub fn split(ids: &[u32], val_frac: f64) -> (&[u32], &[u32]) {
    let n_train = (ids.len() as f64 * (1.0 - val_frac)) as usize;
    ids.split_at(n_train)
}

/// B contiguous streams over the training text, read T steps at a time; step k of an epoch
/// reads columns k·T .. k·T+T of every stream. Inputs and targets are time-major (T, B).
pub struct Batches {
    data: Vec<u32>,
    pub batch: usize,
    pub seq: usize,
    pub stream_len: usize,
    pub steps_per_epoch: usize,
}

impl Batches {
    /// Characters of training text.
    pub fn train_len(&self) -> usize {
        self.data.len()
    }

    pub fn new(train: &[u32], batch: usize, seq: usize) -> Result<Batches> {
        let stream_len = train.len().saturating_sub(1) / batch;
        let steps_per_epoch = stream_len / seq;
        if steps_per_epoch == 0 {
            bail!(
                "the training text has {} characters, too short for one batch: --batch {batch} × --seq {seq} needs at least {}; use a smaller --batch or --seq",
                train.len(),
                batch * seq + 1
            );
        }
        Ok(Batches {
            data: train.to_vec(),
            batch,
            seq,
            stream_len,
            steps_per_epoch,
        })
    }

    /// Fills x and y (T·B each, time-major) with step `k` of the epoch (k < steps_per_epoch).
    pub fn fill(&self, k: usize, x: &mut [u32], y: &mut [u32]) {
        let (b, t) = (self.batch, self.seq);
        for ti in 0..t {
            for bi in 0..b {
                let pos = bi * self.stream_len + k * t + ti;
                x[ti * b + bi] = self.data[pos];
                y[ti * b + bi] = self.data[pos + 1];
            }
        }
    }
}

/// The corpus fingerprint stored in checkpoints (SHA-256 of the text as trained on, after
/// `--ascii`), so that `--resume` notices a different text.
pub fn fingerprint(text: &str) -> String {
    crate::sha256::hex(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocab_is_unicode_scalars_sorted() {
        let v = Vocab::build("春眠不觉晓, 处处闻啼鸟", None, 0);
        assert_eq!(v.len(), 11);
        assert!(v.chars.windows(2).all(|w| w[0] < w[1]));
        let (ids, unk) = v.encode("处处", "text").unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(unk, 0);
        assert_eq!(v.char(ids[0]), '处');
    }

    #[test]
    fn rare_characters_fold_into_unknown() {
        let v = Vocab::build("aaaabbbcc d", Some(3), 0);
        assert_eq!(v.chars, vec!['a', 'b', UNK]);
        let (ids, unk) = v.encode("abcd", "text").unwrap();
        assert_eq!(unk, 2);
        assert_eq!(ids[2], v.unk.unwrap());
        let m = Vocab::build("aaaabbbcc d", None, 3);
        assert_eq!(m.chars, vec!['a', 'b', UNK]);
        let err = Vocab::build("ab", None, 0)
            .encode("abz", "--prime")
            .unwrap_err();
        assert!(
            err.msg.contains("'z'") && err.msg.starts_with("--prime"),
            "{}",
            err.msg
        );
    }

    #[test]
    fn decoding_rules() {
        assert_eq!(
            decode_text(b"\xEF\xBB\xBFhi\r\n", "f", false).unwrap(),
            "hi\r\n"
        );
        let e = decode_text(b"ok\xFFno", "f", false).unwrap_err();
        assert!(
            e.msg.contains("offset 2") && e.msg.contains("--lossy"),
            "{}",
            e.msg
        );
        assert_eq!(decode_text(b"ok\xFFno", "f", true).unwrap(), "ok\u{FFFD}no");
        assert!(decode_text(b"", "f", false)
            .unwrap_err()
            .msg
            .contains("empty"));
        assert!(decode_text(b"PK\x03\x04\x00\x00", "f", false)
            .unwrap_err()
            .msg
            .contains("binary"));
    }

    #[test]
    fn batches_are_contiguous_streams() {
        let data: Vec<u32> = (0..23).collect();
        let b = Batches::new(&data, 2, 3).unwrap();
        assert_eq!((b.stream_len, b.steps_per_epoch), (11, 3));
        let (mut x, mut y) = (vec![0; 6], vec![0; 6]);
        b.fill(1, &mut x, &mut y);
        assert_eq!(x, vec![3, 14, 4, 15, 5, 16]);
        assert_eq!(y, vec![4, 15, 5, 16, 6, 17]);
        let e = Batches::new(&data, 5, 5).err().unwrap();
        assert!(
            e.msg.contains("at least 26") && e.msg.contains("--batch"),
            "{}",
            e.msg
        );
    }

    #[test]
    fn split_matches_the_peers() {
        let ids: Vec<u32> = (0..1001).collect();
        let (t, v) = split(&ids, 0.1);
        assert_eq!((t.len(), v.len()), (900, 101));
    }
}
