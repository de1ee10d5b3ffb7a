//! Bytes into text: the encoding rules every text charrnn reads goes through (a training
//! corpus, `eval`'s files, `--prime-file`, `--check-novelty`), for a whole file in memory or
//! piece by piece in constant memory; the `--ascii` transliteration, streamable; the corpus
//! fingerprint.
//!
//! The rules: a byte-order mark names the encoding (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE) and
//! wins; else `--encoding NAME` (any WHATWG label: windows-1252, latin1, shift_jis, gbk, …,
//! decoded by `encoding_rs`); else UTF-8, strictly (an invalid byte is an error naming its
//! offset, with `--encoding windows-1252` suggested when it looks like a single-byte Western
//! text) or with `--lossy` replacing invalid bytes with U+FFFD. A NUL byte near the start of a
//! text without a mark means binary data. Decoding from anything but UTF-8 says so on stderr.
//! UTF-32 is decoded here (a dozen lines) because `encoding_rs` follows the WHATWG Encoding
//! Standard, which has no UTF-32.
//!
//! Owns turning bytes into text. Does not own which files make a corpus (`corpus`).

use crate::bail;
use crate::error::{Error, Result};
use encoding_rs::{DecoderResult, Encoding, UTF_16BE, UTF_16LE, UTF_8};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// How bytes become text: `--encoding` and `--lossy`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Decoding {
    /// Replace bytes that are not valid in the encoding with U+FFFD instead of an error.
    pub lossy: bool,
    /// The encoding of texts without a byte-order mark (None: UTF-8).
    pub encoding: Option<&'static Encoding>,
}

impl Decoding {
    /// From `--lossy` and `--encoding NAME`.
    ///
    /// # Errors
    /// A name `encoding_rs` does not know.
    pub fn new(lossy: bool, encoding: Option<&str>) -> Result<Decoding> {
        let encoding = match encoding {
            None => None,
            Some(name) => Some(Encoding::for_label(name.trim().as_bytes()).ok_or_else(|| {
                Error::input(format!(
                    "--encoding {name}: unknown encoding; give a WHATWG name such as utf-8, utf-16le, utf-16be, windows-1252, latin1, iso-8859-2, koi8-r, shift_jis, euc-jp, gbk, gb18030, big5 or euc-kr"
                ))
            })?),
        };
        Ok(Decoding { lossy, encoding })
    }

    /// The canonical name of `--encoding`, if given.
    pub fn label(&self) -> Option<&'static str> {
        self.encoding.map(Encoding::name)
    }
}

/// The encoding a text turned out to be in.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scheme {
    /// UTF-8 (with or without a mark).
    Utf8,
    /// An `encoding_rs` encoding other than UTF-8; `bom`: named by a byte-order mark.
    Other(&'static Encoding, bool),
    /// UTF-32, little-endian when true (always named by a mark).
    Utf32(bool),
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Utf8 => "UTF-8",
            Scheme::Other(e, _) => e.name(),
            Scheme::Utf32(true) => "UTF-32LE",
            Scheme::Utf32(false) => "UTF-32BE",
        }
    }
}

/// The scheme of a text starting with `head`, and the length of its byte-order mark.
fn sniff(head: &[u8], d: &Decoding) -> (Scheme, usize) {
    match head {
        [0xFF, 0xFE, 0, 0, ..] => (Scheme::Utf32(true), 4),
        [0, 0, 0xFE, 0xFF, ..] => (Scheme::Utf32(false), 4),
        [0xEF, 0xBB, 0xBF, ..] => (Scheme::Utf8, 3),
        [0xFF, 0xFE, ..] => (Scheme::Other(UTF_16LE, true), 2),
        [0xFE, 0xFF, ..] => (Scheme::Other(UTF_16BE, true), 2),
        _ => match d.encoding {
            Some(e) if e != UTF_8 => (Scheme::Other(e, false), 0),
            _ => (Scheme::Utf8, 0),
        },
    }
}

/// Why a file is not a text as charrnn was told to read it: what is wrong, and what reads it
/// anyway. Every such error has one shape, `NAME REASON; ADVICE`, made by `not_text` and read
/// back by `NotText::of`, so that a folder can skip the file and say why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NotText {
    /// What is wrong, e.g. "is not valid UTF-8: invalid byte 0xFF at offset 2".
    pub reason: String,
    /// What to do, e.g. "pass --encoding NAME …, or --lossy to replace invalid bytes with
    /// U+FFFD" (the flags that read it), or "charrnn trains on text".
    pub advice: String,
}

impl NotText {
    /// The reason and advice of an error `not_text` made about `name`; None for any other
    /// error (an unreadable file, …).
    pub fn of(e: &Error, name: &str) -> Option<NotText> {
        let rest = e.msg.strip_prefix(name)?.strip_prefix(' ')?;
        let (reason, advice) = rest.split_once("; ")?;
        Some(NotText {
            reason: reason.to_string(),
            advice: advice.to_string(),
        })
    }

    /// Whether a flag reads the file (`--encoding`, `--lossy`): it is a text, in another
    /// encoding or with a few bad bytes.
    pub fn readable_with_a_flag(&self) -> bool {
        self.advice.contains("--")
    }
}

/// The error `NAME REASON; ADVICE` (see `NotText`); `reason` holds no "; ".
fn not_text(name: &str, reason: impl std::fmt::Display, advice: &str) -> Error {
    Error::input(format!("{name} {reason}; {advice}"))
}

/// The binary-data check of a text without a mark (like git and ripgrep: a NUL byte in the
/// first 8 KiB); NULs at every other byte are UTF-16 without its mark.
fn check_not_binary(head: &[u8], name: &str) -> Result<()> {
    let Some(pos) = head.iter().take(8192).position(|&b| b == 0) else {
        return Ok(());
    };
    let sample = &head[..head.len().min(8192) & !1];
    let zeros = |parity: usize| {
        sample
            .iter()
            .skip(parity)
            .step_by(2)
            .filter(|&&b| b == 0)
            .count()
    };
    let half = sample.len() / 2;
    let utf16 = if half >= 8 && zeros(1) * 10 >= half * 8 && zeros(0) * 10 < half {
        Some("utf-16le")
    } else if half >= 8 && zeros(0) * 10 >= half * 8 && zeros(1) * 10 < half {
        Some("utf-16be")
    } else {
        None
    };
    Err(match utf16 {
        Some(e) => not_text(
            name,
            format!("looks like UTF-16 without a byte-order mark (a NUL byte at every other offset from {pos})"),
            &format!("pass --encoding {e}"),
        ),
        None => not_text(
            name,
            format!("looks like binary data (a NUL byte at offset {pos})"),
            "charrnn trains on text",
        ),
    })
}

/// The message for an invalid byte in UTF-8 text.
fn invalid_utf8(name: &str, offset: u64, byte: u8, next: Option<u8>) -> Error {
    // A single-byte Western text (windows-1252, latin-1): a high byte alone between ASCII
    // bytes (é, ’, «), where UTF-8 would need a lead byte followed by continuation bytes.
    let western = byte >= 0x80 && next.is_none_or(|b| b < 0x80);
    let advice = if western {
        "it looks like a single-byte Western text: pass --encoding windows-1252 (or the text's encoding), or --lossy to replace invalid bytes with U+FFFD"
    } else {
        "pass --encoding NAME if it is in another encoding, or --lossy to replace invalid bytes with U+FFFD"
    };
    not_text(
        name,
        format!("is not valid UTF-8: invalid byte 0x{byte:02X} at offset {offset}"),
        advice,
    )
}

/// Decodes a whole text in memory by the rules above; `name` is used in messages. Says on
/// stderr when the text was not UTF-8.
///
/// # Errors
/// An empty text, binary data, or invalid bytes (without `lossy`).
pub fn decode_text(bytes: &[u8], name: &str, d: &Decoding) -> Result<String> {
    let mut stream = TextStream::from_reader(std::io::Cursor::new(bytes), name, d)?;
    let mut text = String::with_capacity(bytes.len());
    while stream.next_chunk(&mut text)? {}
    if text.is_empty() {
        return Err(not_text(
            name,
            "holds only a byte-order mark",
            "give a text file",
        ));
    }
    Ok(text)
}

/// Reads and decodes the file at `path` by the rules above.
///
/// # Errors
/// As `decode_text`; also a missing file or a directory.
pub fn read_text(path: &Path, d: &Decoding) -> Result<String> {
    let mut stream = TextStream::open(path, d)?;
    let mut text = String::new();
    while stream.next_chunk(&mut text)? {}
    if text.is_empty() {
        return Err(not_text(
            &path.display().to_string(),
            "holds only a byte-order mark",
            "give a text file",
        ));
    }
    Ok(text)
}

/// A text decoded piece by piece: each `next_chunk` decodes about 1 MiB, whatever the file's
/// size.
pub struct TextStream<'r> {
    reader: Box<dyn Read + 'r>,
    name: String,
    scheme: Scheme,
    lossy: bool,
    decoder: Option<encoding_rs::Decoder>,
    /// Raw bytes read but not yet decoded (a sequence split across reads).
    pending: Vec<u8>,
    /// Bytes of the file consumed before `pending`.
    offset: u64,
    eof: bool,
}

const CHUNK: usize = 1 << 20;

impl<'r> TextStream<'r> {
    /// Opens `path` and sniffs its encoding.
    ///
    /// # Errors
    /// A missing or unreadable file, a directory, an empty file, binary data.
    pub fn open(path: &Path, d: &Decoding) -> Result<TextStream<'static>> {
        let shown = path.display().to_string();
        let io = |e| Error::io(format!("cannot read {shown}"), e);
        if std::fs::metadata(path).map_err(io)?.is_dir() {
            bail!("{shown} is a directory; give a text file");
        }
        let file = std::fs::File::open(path).map_err(io)?;
        TextStream::from_reader(file, &shown, d)
    }

    /// A stream over `reader`; `name` is used in messages.
    ///
    /// # Errors
    /// As `open`.
    pub fn from_reader(reader: impl Read + 'r, name: &str, d: &Decoding) -> Result<TextStream<'r>> {
        let mut s = TextStream {
            reader: Box::new(reader),
            name: name.to_string(),
            scheme: Scheme::Utf8,
            lossy: d.lossy,
            decoder: None,
            pending: Vec::with_capacity(CHUNK + 8),
            offset: 0,
            eof: false,
        };
        s.fill(8192)?;
        if s.pending.is_empty() {
            return Err(not_text(name, "is empty", "give a text file"));
        }
        let (scheme, bom) = sniff(&s.pending, d);
        if bom == 0 && !matches!(scheme, Scheme::Other(e, _) if e == UTF_16LE || e == UTF_16BE) {
            check_not_binary(&s.pending, name)?;
        }
        s.pending.drain(..bom);
        s.offset = bom as u64;
        s.scheme = scheme;
        if let Scheme::Other(e, _) = scheme {
            s.decoder = Some(e.new_decoder_without_bom_handling());
        }
        if scheme != Scheme::Utf8 {
            let how = if bom > 0 {
                "byte-order mark"
            } else {
                "--encoding"
            };
            eprintln!("charrnn: {name}: decoding {} (by its {how})", scheme.name());
        }
        Ok(s)
    }

    /// Bytes of the file decoded so far.
    pub fn bytes_read(&self) -> u64 {
        self.offset
    }

    /// Reads until `pending` holds at least `want` bytes or the end.
    fn fill(&mut self, want: usize) -> Result<()> {
        let mut buf = [0u8; 64 << 10];
        while !self.eof && self.pending.len() < want {
            let n = self
                .reader
                .read(&mut buf)
                .map_err(|e| Error::io(format!("cannot read {}", self.name), e))?;
            self.eof = n == 0;
            self.pending.extend_from_slice(&buf[..n]);
        }
        Ok(())
    }

    /// Appends the next piece of text to `out`; false once the text has ended.
    ///
    /// # Errors
    /// A read error, or bytes that are not valid in the encoding (without `lossy`).
    pub fn next_chunk(&mut self, out: &mut String) -> Result<bool> {
        self.fill(CHUNK)?;
        if self.pending.is_empty() {
            return Ok(false);
        }
        let used = match self.scheme {
            Scheme::Utf8 => self.utf8(out)?,
            Scheme::Utf32(le) => self.utf32(le, out)?,
            Scheme::Other(..) => self.other(out)?,
        };
        self.pending.drain(..used);
        self.offset += used as u64;
        Ok(true)
    }

    /// UTF-8: the valid prefix; a sequence cut by the end of `pending` waits for more bytes.
    fn utf8(&mut self, out: &mut String) -> Result<usize> {
        let bytes = &self.pending;
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                Ok(bytes.len())
            }
            Err(e) if e.error_len().is_none() && !self.eof => {
                // Cut in the middle of a character: decode the rest next time.
                let ok = e.valid_up_to();
                out.push_str(std::str::from_utf8(&bytes[..ok]).expect("valid prefix"));
                Ok(ok)
            }
            Err(e) => {
                let ok = e.valid_up_to();
                out.push_str(std::str::from_utf8(&bytes[..ok]).expect("valid prefix"));
                if !self.lossy {
                    return Err(invalid_utf8(
                        &self.name,
                        self.offset + ok as u64,
                        bytes[ok],
                        bytes.get(ok + 1).copied(),
                    ));
                }
                out.push('\u{FFFD}');
                Ok(ok + e.error_len().unwrap_or(bytes.len() - ok))
            }
        }
    }

    /// UTF-32: four bytes a character; a value that is not a Unicode scalar is invalid.
    fn utf32(&mut self, le: bool, out: &mut String) -> Result<usize> {
        let whole = if self.eof {
            self.pending.len().div_ceil(4) * 4
        } else {
            self.pending.len() / 4 * 4
        };
        for (i, q) in self.pending[..whole.min(self.pending.len())]
            .chunks(4)
            .enumerate()
        {
            let v = match q {
                [a, b, c, d] if le => u32::from_le_bytes([*a, *b, *c, *d]),
                [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
                _ => u32::MAX, // a cut-off last character
            };
            match char::from_u32(v) {
                Some(c) => out.push(c),
                None if self.lossy => out.push('\u{FFFD}'),
                None => {
                    return Err(not_text(
                        &self.name,
                        format!(
                            "is not valid {}: no character 0x{v:X} at offset {}",
                            self.scheme.name(),
                            self.offset + 4 * i as u64
                        ),
                        "pass --lossy to replace it with U+FFFD",
                    ))
                }
            }
        }
        Ok(self.pending.len().min(whole))
    }

    /// Any `encoding_rs` encoding (UTF-16, legacy single- and multi-byte encodings).
    fn other(&mut self, out: &mut String) -> Result<usize> {
        let dec = self.decoder.as_mut().expect("a decoder for this scheme");
        let last = self.eof;
        out.reserve(
            dec.max_utf8_buffer_length(self.pending.len())
                .unwrap_or(self.pending.len() * 3),
        );
        if self.lossy {
            let (_, read, _) = dec.decode_to_string(&self.pending, out, last);
            return Ok(read);
        }
        let (result, read) = dec.decode_to_string_without_replacement(&self.pending, out, last);
        match result {
            DecoderResult::Malformed(bad, after) => Err(not_text(
                &self.name,
                format!(
                    "is not valid {}: an invalid sequence at offset {}",
                    self.scheme.name(),
                    self.offset + read as u64 - bad as u64 - after as u64
                ),
                "pass --encoding with the text's encoding, or --lossy to replace it with U+FFFD",
            )),
            DecoderResult::InputEmpty | DecoderResult::OutputFull => Ok(read),
        }
    }
}

/// `--ascii`: transliteration to ASCII, as the blog post did with `unidecode` (the `deunicode`
/// crate's table), one piece at a time. Gives exactly `deunicode::deunicode` of the whole
/// text: a transliteration ending in a space loses it before a space or at the end, so the
/// last character of each piece waits for the next.
#[derive(Default)]
pub struct Ascii {
    held: Option<char>,
}

impl Ascii {
    fn translit(c: char) -> &'static str {
        deunicode::deunicode_char(c).unwrap_or("[?]")
    }

    fn emit(c: char, next: Option<char>, out: &mut String) {
        let t = Ascii::translit(c);
        let trim = t.len() > 1
            && t.ends_with(' ')
            && next.is_none_or(|n| Ascii::translit(n).starts_with(' '));
        out.push_str(if trim { &t[..t.len() - 1] } else { t });
    }

    /// Transliterates `text`, appending to `out` all but its last character.
    pub fn push(&mut self, text: &str, out: &mut String) {
        for c in text.chars() {
            if let Some(prev) = self.held.replace(c) {
                if prev.is_ascii() && prev != '\u{7F}' {
                    out.push(prev);
                } else {
                    Ascii::emit(prev, Some(c), out);
                }
            }
        }
    }

    /// The last character, at the end of the text.
    pub fn finish(&mut self, out: &mut String) {
        if let Some(prev) = self.held.take() {
            Ascii::emit(prev, None, out);
        }
    }
}

/// Transliterates a whole text to ASCII (see `Ascii`).
pub fn to_ascii(text: &str) -> String {
    deunicode::deunicode(text)
}

/// The corpus fingerprint stored in checkpoints: SHA-256 (lower-case hex) of the text as
/// trained on (decoded, after `--ascii`), so that `--resume` notices a different text.
pub fn fingerprint(text: &str) -> String {
    sha256_hex(text.as_bytes())
}

/// SHA-256 of `bytes` as 64 lower-case hex digits (the `sha2` crate).
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// A SHA-256 fed piece by piece.
#[derive(Clone, Default)]
pub struct Fingerprint(Sha256);

impl Fingerprint {
    pub fn update(&mut self, text: &str) {
        self.0.update(text.as_bytes());
    }
    /// 64 lower-case hex digits.
    pub fn hex(self) -> String {
        format!("{:x}", self.0.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf8() -> Decoding {
        Decoding::default()
    }

    #[test]
    fn decoding_rules() {
        assert_eq!(
            decode_text(b"\xEF\xBB\xBFhi\r\n", "f", &utf8()).unwrap(),
            "hi\r\n"
        );
        let e = decode_text(b"ok\xFFno", "f", &utf8()).unwrap_err();
        assert!(
            e.msg.contains("offset 2") && e.msg.contains("--lossy"),
            "{}",
            e.msg
        );
        let lossy = Decoding {
            lossy: true,
            ..utf8()
        };
        assert_eq!(
            decode_text(b"ok\xFFno", "f", &lossy).unwrap(),
            "ok\u{FFFD}no"
        );
        assert!(decode_text(b"", "f", &utf8())
            .unwrap_err()
            .msg
            .contains("empty"));
        assert!(decode_text(b"PK\x03\x04\x00\x00", "f", &utf8())
            .unwrap_err()
            .msg
            .contains("binary"));
    }

    #[test]
    fn every_reason_a_file_is_not_a_text_reads_back_with_its_advice() {
        let bare16: Vec<u8> = "Hello there, general."
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let mut bad32 = vec![0xFF, 0xFE, 0, 0];
        bad32.extend(0x11_0000u32.to_le_bytes());
        let sjis = Decoding::new(false, Some("shift_jis")).unwrap();
        for (bytes, d, reason, flag) in [
            (&b""[..], utf8(), "is empty", None),
            (
                b"\xEF\xBB\xBF",
                utf8(),
                "holds only a byte-order mark",
                None,
            ),
            (
                b"PK\x03\x04\x00\x00",
                utf8(),
                "looks like binary data (a NUL byte at offset 4)",
                None,
            ),
            (
                &bare16,
                utf8(),
                "looks like UTF-16 without a byte-order mark",
                Some("--encoding utf-16le"),
            ),
            (
                b"ok\xFFno",
                utf8(),
                "is not valid UTF-8: invalid byte 0xFF at offset 2",
                Some("--lossy"),
            ),
            (
                &bad32,
                utf8(),
                "is not valid UTF-32LE: no character 0x110000 at offset 4",
                Some("--lossy"),
            ),
            (
                b"\x82",
                sjis,
                "is not valid Shift_JIS: an invalid sequence at offset 0",
                Some("--encoding"),
            ),
        ] {
            let e = decode_text(bytes, "dir/f.txt", &d).unwrap_err();
            let why = NotText::of(&e, "dir/f.txt").unwrap_or_else(|| panic!("{}", e.msg));
            assert!(why.reason.starts_with(reason), "{why:?}");
            assert_eq!(why.readable_with_a_flag(), flag.is_some(), "{why:?}");
            assert!(flag.is_none_or(|f| why.advice.contains(f)), "{why:?}");
            assert_eq!(e.msg, format!("dir/f.txt {}; {}", why.reason, why.advice));
        }
        assert_eq!(
            NotText::of(&Error::input("cannot read dir/f.txt: gone"), "dir/f.txt"),
            None
        );
    }

    #[test]
    fn byte_order_marks_name_the_encoding() {
        let text = "Hello there, Zoë: 春眠不觉晓 🐶\r\n";
        let mut u16le = vec![0xFF, 0xFE];
        u16le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let mut u16be = vec![0xFE, 0xFF];
        u16be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        let mut u32le = vec![0xFF, 0xFE, 0, 0];
        u32le.extend(text.chars().flat_map(|c| (c as u32).to_le_bytes()));
        let mut u32be = vec![0, 0, 0xFE, 0xFF];
        u32be.extend(text.chars().flat_map(|c| (c as u32).to_be_bytes()));
        for bytes in [u16le, u16be, u32le, u32be] {
            assert_eq!(decode_text(&bytes, "f", &utf8()).unwrap(), text);
        }
        // A mark wins over --encoding.
        let mut u16 = vec![0xFF, 0xFE];
        u16.extend("ab".encode_utf16().flat_map(u16::to_le_bytes));
        let latin = Decoding::new(false, Some("latin1")).unwrap();
        assert_eq!(decode_text(&u16, "f", &latin).unwrap(), "ab");
    }

    #[test]
    fn legacy_encodings_by_name_and_a_hint_when_utf8_fails() {
        let cp1252 = b"It\x92s caf\xe9 time";
        let e = decode_text(cp1252, "f", &utf8()).unwrap_err();
        assert!(
            e.msg.contains("offset 2") && e.msg.contains("--encoding windows-1252"),
            "{}",
            e.msg
        );
        let d = Decoding::new(false, Some("windows-1252")).unwrap();
        assert_eq!(decode_text(cp1252, "f", &d).unwrap(), "It’s café time");
        let sjis = Decoding::new(false, Some("shift_jis")).unwrap();
        assert_eq!(
            decode_text(b"\x82\xa0\x82\xa2", "f", &sjis).unwrap(),
            "あい"
        );
        assert!(Decoding::new(false, Some("klingon"))
            .unwrap_err()
            .msg
            .contains("unknown encoding"));
        // UTF-16 without a mark: binary, with a hint.
        let bare: Vec<u8> = "Hello there, general."
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let e = decode_text(&bare, "f", &utf8()).unwrap_err();
        assert!(e.msg.contains("--encoding utf-16le"), "{}", e.msg);
        let d = Decoding::new(false, Some("utf-16le")).unwrap();
        assert_eq!(
            decode_text(&bare, "f", &d).unwrap(),
            "Hello there, general."
        );
    }

    #[test]
    fn pieces_decode_like_the_whole() {
        // Multi-byte characters cut at every piece boundary.
        let text = "ab€c春🐶d".repeat(200_000);
        let got = decode_text(text.as_bytes(), "f", &utf8()).unwrap();
        assert_eq!(got, text);
        let mut u16 = vec![0xFF, 0xFE];
        u16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode_text(&u16, "f", &utf8()).unwrap(), text);
    }

    #[test]
    fn ascii_in_pieces_equals_the_whole() {
        for text in [
            "北京 is 北京",
            "Ærøskøbing, Zoë! 春眠不觉晓。",
            "tab\tdel\u{7F}北 京",
            "北",
        ] {
            let want = deunicode::deunicode(text);
            let chars: Vec<char> = text.chars().collect();
            for cut in 0..=chars.len() {
                let (a, b): (String, String) =
                    (chars[..cut].iter().collect(), chars[cut..].iter().collect());
                let mut t = Ascii::default();
                let mut out = String::new();
                t.push(&a, &mut out);
                t.push(&b, &mut out);
                t.finish(&mut out);
                assert_eq!(out, want, "{text:?} cut at {cut}");
            }
        }
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
        let mut f = Fingerprint::default();
        f.update("a");
        f.update("bc");
        assert_eq!(f.hex(), sha256_hex(b"abc"));
    }
}
