//! Reading text: a file as UTF-8 with clear errors, a corpus of files and folders joined, the
//! `--ascii` transliteration and the corpus fingerprint.
//!
//! Owns the rules for turning bytes into the text trained on. Does not own the vocabulary
//! (`vocab`) or the batches (`batches`).

use crate::bail;
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::Path;

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

/// The corpus fingerprint stored in checkpoints: SHA-256 (lower-case hex) of the text as
/// trained on (after `--ascii`), so that `--resume` notices a different text.
pub fn fingerprint(text: &str) -> String {
    sha256_hex(text.as_bytes())
}

/// SHA-256 of `bytes` as 64 lower-case hex digits (the `sha2` crate).
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn sha256_of_known_inputs() {
        // FIPS 180-2 test vectors.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
