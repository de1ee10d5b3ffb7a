//! The vocabulary: the sorted set of characters (Unicode scalar values) the model knows, with
//! an optional unknown symbol for rare ones, and the mapping between characters and ids.
//!
//! Owns ids. Does not own reading text (`text`) or batching (`batches`).

use crate::bail;
use crate::error::Result;
use serde::Serialize;
use std::collections::HashMap;

/// The symbol rare characters map to under `--max-vocab` / `--min-count`.
pub const UNK: char = '\u{FFFD}';

/// The sorted set of characters (Unicode scalar values) the model knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Vocab {
    pub chars: Vec<char>,
    /// Id of the unknown symbol (U+FFFD), when rare characters were folded into it.
    pub unk: Option<u32>,
    #[serde(skip)]
    index: HashMap<char, u32>,
    /// Ids of code points below 256 (u32::MAX: not in the vocabulary): most characters of
    /// most corpora, looked up without hashing (a corpus pass looks up every character).
    #[serde(skip)]
    low: Vec<u32>,
}

impl Vocab {
    pub fn from_chars(chars: Vec<char>, unk: Option<u32>) -> Vocab {
        let index: HashMap<char, u32> = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u32))
            .collect();
        let mut low = vec![u32::MAX; 256];
        for (&c, &i) in &index {
            if (c as u32) < 256 {
                low[c as usize] = i;
            }
        }
        Vocab {
            chars,
            unk,
            index,
            low,
        }
    }

    /// The vocabulary of `text`: every character, or with `max_vocab` / `min_count` the most
    /// frequent ones (ties to the smaller code point) plus U+FFFD for the rest.
    pub fn build(text: &str, max_vocab: Option<usize>, min_count: usize) -> Vocab {
        let mut counts: HashMap<char, u64> = HashMap::new();
        for c in text.chars() {
            *counts.entry(c).or_insert(0) += 1;
        }
        Vocab::from_counts(&counts, max_vocab, min_count)
    }

    /// The vocabulary of a text with these character counts (see `build`).
    pub fn from_counts(
        counts: &HashMap<char, u64>,
        max_vocab: Option<usize>,
        min_count: usize,
    ) -> Vocab {
        let counts = counts.iter().map(|(&c, &n)| (c, n));
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

    /// A base model's vocabulary extended by a text's (fine-tuning, `train --init-from`): the
    /// sorted union of both sets of characters, so that every character of either keeps a row
    /// (the base's ids move, which is why rows are matched by character, never by index). The
    /// union folds rare characters into U+FFFD when either does.
    pub fn merged(&self, text: &Vocab) -> Vocab {
        let mut chars: Vec<char> = self.chars.iter().chain(&text.chars).copied().collect();
        chars.sort_unstable();
        chars.dedup();
        let unk = (self.unk.is_some() || text.unk.is_some()).then(|| {
            chars
                .binary_search(&UNK)
                .expect("a folding vocabulary holds U+FFFD") as u32
        });
        Vocab::from_chars(chars, unk)
    }

    pub fn len(&self) -> usize {
        self.chars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    #[inline]
    pub fn id(&self, c: char) -> Option<u32> {
        match self.low.get(c as usize) {
            Some(&i) if i != u32::MAX => Some(i),
            Some(_) => None,
            None => self.index.get(&c).copied(),
        }
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
    fn a_merged_vocabulary_keeps_every_character_of_both_sorted() {
        let base = Vocab::build("the cat", None, 0);
        let text = Vocab::build("die Katze äß", None, 0);
        let m = base.merged(&text);
        let want: Vec<char> = {
            let mut v: Vec<char> = "the catdie Katze äß".chars().collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        assert_eq!(m.chars, want);
        assert_eq!(m.unk, None);
        for c in "the catdie Katze äß".chars() {
            assert_eq!(m.char(m.id(c).unwrap()), c);
        }
        // The unknown symbol of either side stays the unknown symbol.
        let folded = Vocab::build("aaaabbbcc d", Some(3), 0);
        let m = base.merged(&folded);
        assert_eq!(m.unk.map(|u| m.char(u)), Some(UNK));
        assert_eq!(folded.merged(&base).chars, m.chars);
    }
}
