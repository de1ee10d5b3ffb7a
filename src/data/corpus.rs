//! A training corpus: one file, several, or folders (walked recursively in sorted order,
//! hidden entries skipped), joined with a blank line, read in passes that each stream over the
//! files in constant memory: the first counts characters and takes the fingerprints, the
//! second turns the text into ids. Files inside folders that are not text are skipped, each
//! named with why and, for a text in another encoding or with a few bad bytes, the flag that
//! reads it (files up to 64 MiB are checked whole before any of them is used; a larger one that
//! turns out not to be text is an error).
//!
//! Owns which files make the corpus and the passes over them. Does not own decoding (`text`)
//! or what the ids become (`ids`, `batches`).

use super::ids::{Ids, IdsWriter};
use super::text::{decode_text, Ascii, Decoding, Fingerprint, NotText, TextStream};
use super::vocab::Vocab;
use crate::bail;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Files in folders up to this size are decoded whole first, so that one that is not text
/// can be skipped before any of it is used.
const WHOLE_FILE_LIMIT: u64 = 64 << 20;
/// Corpora from this size show a progress bar (or a line) while they are read.
const PROGRESS_FROM: u64 = 64 << 20;

/// The files of a corpus, in reading order.
pub struct Corpus {
    /// (path, found in a folder).
    files: Vec<(PathBuf, bool)>,
    /// The paths as given.
    given: Vec<PathBuf>,
    /// Total size of the files in bytes.
    pub bytes: u64,
}

/// What the first pass found.
pub struct Scan {
    /// How to name the corpus in messages: the file, or "N files from …".
    pub name: String,
    /// Files used, and files in folders skipped for not being text (in reading order).
    pub files: usize,
    pub skipped: Vec<Skipped>,
    /// Characters of the text as trained on (after `--ascii`).
    pub chars: u64,
    /// How often each of those characters occurs.
    pub counts: HashMap<char, u64>,
    /// SHA-256 of the decoded text, and of the text as trained on (they differ with --ascii).
    pub sha256: String,
    pub fingerprint: String,
}

/// A file of a folder that was skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub path: String,
    #[serde(flatten)]
    pub why: NotText,
}

/// Skipped files named on stderr at most; `config.json` lists them all.
const SKIPS_SHOWN: usize = 20;

impl Scan {
    /// The lines that name the skipped files: one per file (those a flag reads first), at
    /// most `SKIPS_SHOWN`, then how many more the run's `config.json` lists.
    pub fn skip_lines(&self) -> Vec<String> {
        let mut order: Vec<&Skipped> = self.skipped.iter().collect();
        order.sort_by_key(|s| !s.why.readable_with_a_flag());
        let mut lines: Vec<String> = order
            .iter()
            .take(SKIPS_SHOWN)
            .map(|s| {
                let advice = if s.why.readable_with_a_flag() {
                    format!("; {}", s.why.advice)
                } else {
                    String::new()
                };
                format!("charrnn: skipped {}: it {}{advice}", s.path, s.why.reason)
            })
            .collect();
        if order.len() > SKIPS_SHOWN {
            lines.push(format!(
                "charrnn: … and {} more files skipped (the run's config.json lists them all)",
                order.len() - SKIPS_SHOWN
            ));
        }
        lines
    }
}

/// What the second pass made.
pub struct Encoded {
    pub ids: Ids,
    /// Characters mapped to the unknown symbol.
    pub unknown: u64,
}

impl Corpus {
    /// Lists the files of `paths` (files as given, folders walked).
    ///
    /// # Errors
    /// A path that does not exist or a folder that cannot be read.
    pub fn open(paths: &[PathBuf]) -> Result<Corpus> {
        let mut files = Vec::new();
        for p in paths {
            if p.is_dir() {
                let mut found = Vec::new();
                walk(p, &mut found)
                    .map_err(|e| Error::io(format!("cannot read folder {}", p.display()), e))?;
                found.sort();
                files.extend(found.into_iter().map(|f| (f, true)));
            } else {
                std::fs::metadata(p)
                    .map_err(|e| Error::io(format!("cannot read {}", p.display()), e))?;
                files.push((p.clone(), false));
            }
        }
        let bytes = files
            .iter()
            .map(|(f, _)| std::fs::metadata(f).map_or(0, |m| m.len()))
            .sum();
        Ok(Corpus {
            files,
            given: paths.to_vec(),
            bytes,
        })
    }

    /// Pass 1: characters, their counts and the fingerprints.
    ///
    /// # Errors
    /// A file that cannot be read or is not text (see the module header), or no text at all.
    pub fn scan(&self, d: &Decoding, ascii: bool) -> Result<Scan> {
        let mut counts: HashMap<char, u64> = HashMap::new();
        let mut low = [0u64; 256]; // code points below 256 counted without hashing
        let mut chars = 0u64;
        let (mut raw, mut trained) = (Fingerprint::default(), Fingerprint::default());
        let (files, skipped) = self.visit(d, ascii, "counting", &mut |piece, text| {
            raw.update(piece);
            if ascii {
                trained.update(text);
            }
            for c in text.chars() {
                match low.get_mut(c as usize) {
                    Some(n) => *n += 1,
                    None => *counts.entry(c).or_insert(0) += 1,
                }
                chars += 1;
            }
            Ok(())
        })?;
        for (c, &n) in low.iter().enumerate().filter(|(_, &n)| n > 0) {
            counts.insert(char::from(c as u8), n);
        }
        let sha256 = raw.hex();
        Ok(Scan {
            name: self.name(files),
            files,
            skipped,
            chars,
            counts,
            fingerprint: if ascii { trained.hex() } else { sha256.clone() },
            sha256,
        })
    }

    /// Pass 2: the text as ids of `vocab`, kept in the narrowest integer that holds them, in
    /// memory or, beyond `IdsWriter`'s limit, in an unnamed file in `spill_dir`. `chars` is
    /// the count from `scan`.
    ///
    /// # Errors
    /// As `scan`; characters the vocabulary lacks (without an unknown symbol), named.
    pub fn encode(
        &self,
        d: &Decoding,
        ascii: bool,
        vocab: &Vocab,
        chars: u64,
        spill_dir: &Path,
    ) -> Result<Encoded> {
        let mut w = IdsWriter::new(vocab.len(), chars, spill_dir)?;
        let mut unknown = 0u64;
        let mut missing: Vec<char> = Vec::new();
        self.visit(d, ascii, "encoding", &mut |_, text| {
            for c in text.chars() {
                match (vocab.id(c), vocab.unk) {
                    (Some(i), _) => w.push(i)?,
                    (None, Some(u)) => {
                        unknown += 1;
                        w.push(u)?;
                    }
                    (None, None) => {
                        unknown += 1;
                        if missing.len() < 10 && !missing.contains(&c) {
                            missing.push(c);
                        }
                    }
                }
            }
            Ok(())
        })?;
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().map(|c| format!("{c:?}")).collect();
            bail!(
                "{} has {unknown} character(s) the model's vocabulary lacks: {}; use only characters of the training text",
                self.name(self.files.len()),
                shown.join(" ")
            );
        }
        Ok(Encoded {
            ids: w.finish()?,
            unknown,
        })
    }

    /// The corpus's name in messages: the one file given, or "N files from …".
    fn name(&self, used: usize) -> String {
        if self.given.len() == 1 && !self.files.first().is_some_and(|f| f.1) {
            self.given[0].display().to_string()
        } else {
            let shown: Vec<String> = self.given.iter().map(|p| p.display().to_string()).collect();
            format!("{used} files from {}", shown.join(" "))
        }
    }

    /// Streams the corpus: `f(piece, text)` for each decoded piece and the same piece as
    /// trained on (after `--ascii`), with a blank line between files. Returns (files used,
    /// files skipped).
    fn visit(
        &self,
        d: &Decoding,
        ascii: bool,
        what: &str,
        f: &mut dyn FnMut(&str, &str) -> Result<()>,
    ) -> Result<(usize, Vec<Skipped>)> {
        let progress = Reading::new(self.bytes, what);
        let mut translit = Ascii::default();
        let mut trained = String::new();
        let mut emit = |piece: &str, last: bool| -> Result<()> {
            if !ascii {
                return f(piece, piece);
            }
            trained.clear();
            translit.push(piece, &mut trained);
            if last {
                translit.finish(&mut trained);
            }
            f(piece, &trained)
        };
        let (mut used, mut skipped, mut done) = (0usize, Vec::new(), 0u64);
        let mut piece = String::new();
        for (path, in_folder) in &self.files {
            let size = std::fs::metadata(path).map_or(0, |m| m.len());
            if *in_folder && size <= WHOLE_FILE_LIMIT {
                // Decode it whole: a file that is not text is skipped before any of it is used.
                let bytes = std::fs::read(path)
                    .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
                let shown = path.display().to_string();
                match decode_text(&bytes, &shown, d) {
                    Ok(text) => {
                        if used > 0 {
                            emit("\n\n", false)?;
                        }
                        emit(&text, false)?;
                        used += 1;
                    }
                    Err(e) => skipped.push(Skipped {
                        why: NotText::of(&e, &shown).ok_or(e)?,
                        path: shown,
                    }),
                }
            } else {
                let mut stream = TextStream::open(path, d)?;
                if used > 0 {
                    emit("\n\n", false)?;
                }
                let mut any = false;
                loop {
                    piece.clear();
                    if !stream.next_chunk(&mut piece)? {
                        break;
                    }
                    any |= !piece.is_empty();
                    emit(&piece, false)?;
                    progress.at(done + stream.bytes_read());
                }
                if !any {
                    bail!(
                        "{} holds only a byte-order mark; give a text file",
                        path.display()
                    );
                }
                used += 1;
            }
            done += size;
            progress.at(done);
        }
        if used == 0 {
            let shown: Vec<String> = self.given.iter().map(|p| p.display().to_string()).collect();
            let first = skipped
                .iter()
                .find(|s| s.why.readable_with_a_flag())
                .or(skipped.first())
                .map_or(String::new(), |s| {
                    format!(": {} {}; {}", s.path, s.why.reason, s.why.advice)
                });
            bail!(
                "{} holds no text files ({} skipped{first}); give text files to train on",
                shown.join(" "),
                skipped.len()
            );
        }
        emit("", true)?;
        progress.finish();
        Ok((used, skipped))
    }
}

/// A progress bar over the corpus's bytes for large corpora (a line when stderr is not a
/// terminal).
struct Reading(Option<indicatif::ProgressBar>);

impl Reading {
    fn new(bytes: u64, what: &str) -> Reading {
        if bytes < PROGRESS_FROM {
            return Reading(None);
        }
        if !std::io::stderr().is_terminal() {
            eprintln!("charrnn: {what} {:.0} MB of text", bytes as f64 / 1e6);
            return Reading(None);
        }
        let bar = indicatif::ProgressBar::new(bytes);
        bar.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "{what} {{bar:30}} {{bytes}}/{{total_bytes}} {{bytes_per_sec}}"
            ))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Reading(Some(bar))
    }
    fn at(&self, bytes: u64) {
        if let Some(b) = &self.0 {
            b.set_position(bytes);
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
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
