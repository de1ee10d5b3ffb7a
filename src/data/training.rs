//! A training text, read and split: [`TrainingText::read`] is the one call that takes the
//! files and the reading flags and returns the text as ids, its vocabulary, its train/validation
//! split and the batches over the training part.
//!
//! Owns the order of the passes over the corpus, the choice of vocabulary (fresh, a base
//! model's extended, or a resumed run's) and the split. Does not own decoding (`text`), the
//! passes themselves (`corpus`), where the ids live (`ids`) or which of them a step reads
//! (`batches`).

use super::batches::Batches;
use super::corpus::{Corpus, Scan};
use super::text::Decoding;
use super::vocab::Vocab;
use crate::bail;
use crate::error::Result;
use std::path::PathBuf;

/// What to read and how: the inputs and the flags that decide the text, its vocabulary and
/// its split.
pub struct TextSpec<'a> {
    /// Files and folders (walked recursively), in reading order.
    pub files: &'a [PathBuf],
    /// `--lossy`: invalid bytes become U+FFFD instead of an error.
    pub lossy: bool,
    /// `--encoding`: the encoding of texts without a byte-order mark (None: UTF-8).
    pub encoding: Option<&'a str>,
    /// `--ascii`: transliterate to ASCII first.
    pub ascii: bool,
    pub vocab: VocabFrom<'a>,
    /// `--val-frac`: the share of the text, taken from its end, that validates.
    pub val_frac: f64,
    /// `--val-chars`: validation during training scores this many characters of the
    /// validation part (all of it when None, below 2, or not fewer than the part).
    pub val_chars: Option<u64>,
    /// `--batch` streams of `--seq` characters a step.
    pub batch: usize,
    pub seq: usize,
}

/// Where the vocabulary comes from.
pub enum VocabFrom<'a> {
    /// The text's own characters (a fresh run): `--max-vocab`, `--min-count` (see
    /// `Vocab::from_counts`).
    Counts {
        max_vocab: Option<usize>,
        min_count: usize,
    },
    /// The text's own characters (as `Counts`) added to a base model's (`train --init-from`,
    /// see `Vocab::merged`): characters the base has keep theirs, however rare in the text.
    Extends {
        base: &'a Vocab,
        max_vocab: Option<usize>,
        min_count: usize,
    },
    /// A resumed run's, whose text this must be.
    Resumed {
        vocab: &'a Vocab,
        trained_on: TrainedOn<'a>,
    },
}

/// The text a run was trained on, as its checkpoint names it.
pub struct TrainedOn<'a> {
    pub file: &'a str,
    pub chars: usize,
    /// SHA-256 of the text as trained on (`Scan::fingerprint`).
    pub fingerprint: &'a str,
}

/// Where the text splits: the first `train` characters train, the last `val` validate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    pub train: usize,
    pub val: usize,
}

/// Splits a text of `len` characters: the last `val_frac` validates (split index
/// ⌊len·(1−val_frac)⌋, as the PyTorch peers do).
pub fn split(len: usize, val_frac: f64) -> Split {
    let train = (len as f64 * (1.0 - val_frac)) as usize;
    Split {
        train,
        val: len - train,
    }
}

/// A training text, read and split.
pub struct TrainingText {
    /// The files read (`Corpus::bytes` is their size).
    pub corpus: Corpus,
    /// What the first pass found: name, characters, fingerprints, files used and skipped.
    pub scan: Scan,
    pub vocab: Vocab,
    /// Characters mapped to the unknown symbol.
    pub unknown: u64,
    pub split: Split,
    /// (C): the slice of the validation part that validation during training scores.
    pub val_ids: Vec<u32>,
    /// The batches over the training part; they hold the ids of the whole text.
    pub batches: Batches,
}

impl TrainingText {
    /// Reads `spec`'s text in two streaming passes (count, then encode) and splits it.
    /// `spill_dir` is asked for once, after the first pass, for the folder where the ids of a
    /// corpus too large for memory go (see `ids`): a caller whose folder is made only then
    /// leaves none behind for a text that cannot be read.
    ///
    /// # Errors
    /// A bad `--encoding`, a file that cannot be read or is not text, a text that is not the
    /// resumed run's, characters the resumed vocabulary lacks, a validation part under 2
    /// characters, a training part too short for one batch, or `spill_dir`'s error.
    pub fn read(
        spec: &TextSpec,
        spill_dir: impl FnOnce() -> Result<PathBuf>,
    ) -> Result<TrainingText> {
        let decoding = Decoding::new(spec.lossy, spec.encoding)?;
        let corpus = Corpus::open(spec.files)?;
        let scan = corpus.scan(&decoding, spec.ascii)?;
        let vocab = match &spec.vocab {
            VocabFrom::Counts {
                max_vocab,
                min_count,
            } => Vocab::from_counts(&scan.counts, *max_vocab, *min_count),
            VocabFrom::Extends {
                base,
                max_vocab,
                min_count,
            } => base.merged(&Vocab::from_counts(&scan.counts, *max_vocab, *min_count)),
            VocabFrom::Resumed { vocab, trained_on } => {
                check_same_text(&scan, trained_on)?;
                (*vocab).clone()
            }
        };
        let encoded = corpus.encode(&decoding, spec.ascii, &vocab, scan.chars, &spill_dir()?)?;
        let ids = encoded.ids;
        let split = split(ids.len(), spec.val_frac);
        // 2 characters to validate on and 2 to train on (one step of batch 1 × seq 1).
        if ids.len() < 4 {
            bail!(
                "{} has {} character(s): too short to train on (2 are needed to validate on and 2 more to train on); use a longer text",
                scan.name,
                ids.len()
            );
        }
        if split.val < 2 {
            bail!(
                "the validation part of {} has {} character(s); it needs at least 2: use a larger --val-frac or a longer text",
                scan.name,
                split.val
            );
        }
        let scored = match spec.val_chars {
            Some(k) if k >= 2 && (k as usize) < split.val => k as usize,
            _ => split.val,
        };
        let val_ids = ids.to_vec(split.train, split.train + scored);
        let batches = Batches::new(ids, split.train, spec.batch, spec.seq)?;
        Ok(TrainingText {
            corpus,
            scan,
            vocab,
            unknown: encoded.unknown,
            split,
            val_ids,
            batches,
        })
    }
}

/// On resume the text must be the one the run was trained on (by fingerprint: the decoded
/// text, whatever its encoding on disk).
fn check_same_text(scan: &Scan, was: &TrainedOn) -> Result<()> {
    if was.fingerprint != scan.fingerprint {
        bail!(
            "{} is not the text this run was trained on ({}, {} characters); resume with that file",
            scan.name,
            was.file,
            was.chars
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_matches_the_peers() {
        let s = split(1001, 0.1);
        assert_eq!((s.train, s.val), (900, 101));
    }
}
