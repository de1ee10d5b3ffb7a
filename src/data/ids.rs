//! The corpus as character ids, in the narrowest integer that holds the vocabulary (u8 up to
//! 256 symbols, u16 up to 65,536, u32 beyond), so memory does not grow with the text faster
//! than one to four bytes a character; and beyond `MEMORY_LIMIT` bytes not in memory at all but
//! in an unnamed temporary file (removed by the OS when the run ends), read a few dozen ids at a
//! time with positioned reads (the page cache keeps it fast; it does not count as the
//! process's memory).
//!
//! Measured (War and Peace repeated to 204 MB, `--hidden 128`): ids as u32 in memory were 816 MB
//! of the run's 1.6 GB; see `bench/big_corpus.sh` for today's figures.
//!
//! Owns where ids live. Does not own what they mean (`vocab`) or which are read (`batches`).

use crate::error::{Error, Result};
use std::path::Path;

/// Ids up to this many bytes stay in memory; a larger corpus goes to a temporary file. The
/// environment variable `CHARRNN_IDS_IN_MEMORY` (bytes) overrides it (tests use 0).
pub const MEMORY_LIMIT: u64 = 64 << 20;

/// Bytes per id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    U8,
    U16,
    U32,
}

impl Width {
    /// The narrowest width for a vocabulary of `v` symbols.
    pub fn for_vocab(v: usize) -> Width {
        match v {
            0..=256 => Width::U8,
            257..=65_536 => Width::U16,
            _ => Width::U32,
        }
    }
    /// Bytes per id.
    pub fn bytes(self) -> usize {
        match self {
            Width::U8 => 1,
            Width::U16 => 2,
            Width::U32 => 4,
        }
    }
}

enum Store {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    /// Little-endian ids of `Width` in an unnamed file.
    File(std::fs::File),
}

/// A sequence of character ids.
pub struct Ids {
    store: Store,
    width: Width,
    len: usize,
}

impl Ids {
    /// Ids held in memory (tests, small texts).
    pub fn from_vec(ids: &[u32], vocab: usize) -> Ids {
        let width = Width::for_vocab(vocab);
        let store = match width {
            Width::U8 => Store::U8(ids.iter().map(|&i| i as u8).collect()),
            Width::U16 => Store::U16(ids.iter().map(|&i| i as u16).collect()),
            Width::U32 => Store::U32(ids.to_vec()),
        };
        Ids {
            store,
            width,
            len: ids.len(),
        }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes per id.
    pub fn width(&self) -> Width {
        self.width
    }

    /// Whether the ids live in a temporary file rather than in memory.
    pub fn on_disk(&self) -> bool {
        matches!(self.store, Store::File(_))
    }

    /// Copies ids `start .. start + out.len()` into `out`.
    ///
    /// # Panics
    /// A range past the end, or a failed read of the temporary file (the OS lost it).
    pub fn read(&self, start: usize, out: &mut [u32]) {
        let end = start + out.len();
        assert!(end <= self.len, "ids {start}..{end} of {}", self.len);
        match &self.store {
            Store::U8(v) => out
                .iter_mut()
                .zip(&v[start..end])
                .for_each(|(o, &i)| *o = i as u32),
            Store::U16(v) => out
                .iter_mut()
                .zip(&v[start..end])
                .for_each(|(o, &i)| *o = i as u32),
            Store::U32(v) => out.copy_from_slice(&v[start..end]),
            Store::File(f) => {
                let w = self.width.bytes();
                let mut buf = vec![0u8; out.len() * w];
                read_at(f, &mut buf, (start * w) as u64)
                    .expect("the ids' temporary file is readable");
                for (o, b) in out.iter_mut().zip(buf.chunks_exact(w)) {
                    *o = match self.width {
                        Width::U8 => b[0] as u32,
                        Width::U16 => u16::from_le_bytes([b[0], b[1]]) as u32,
                        Width::U32 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                    };
                }
            }
        }
    }

    /// Ids `start .. end` as a vector.
    pub fn to_vec(&self, start: usize, end: usize) -> Vec<u32> {
        let mut v = vec![0; end - start];
        self.read(start, &mut v);
        v
    }
}

#[cfg(unix)]
fn read_at(f: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

#[cfg(not(unix))]
fn read_at(_: &std::fs::File, _: &mut [u8], _: u64) -> std::io::Result<()> {
    unreachable!("ids spill to a file only on unix")
}

/// Builds an `Ids` one id at a time: in memory, or into a temporary file when `expected` ids
/// would pass `MEMORY_LIMIT`.
pub struct IdsWriter {
    width: Width,
    mem: Option<Store>,
    file: Option<std::io::BufWriter<std::fs::File>>,
    len: usize,
}

impl IdsWriter {
    /// A writer for about `expected` ids of a `vocab`-symbol vocabulary; a temporary file, if
    /// needed, is made in `spill_dir`.
    ///
    /// # Errors
    /// The temporary file cannot be made.
    pub fn new(vocab: usize, expected: u64, spill_dir: &Path) -> Result<IdsWriter> {
        let width = Width::for_vocab(vocab);
        let limit = std::env::var("CHARRNN_IDS_IN_MEMORY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(MEMORY_LIMIT);
        let n = expected as usize;
        let in_memory = !cfg!(unix) || expected * width.bytes() as u64 <= limit;
        let (mem, file) = if in_memory {
            let store = match width {
                Width::U8 => Store::U8(Vec::with_capacity(n)),
                Width::U16 => Store::U16(Vec::with_capacity(n)),
                Width::U32 => Store::U32(Vec::with_capacity(n)),
            };
            (Some(store), None)
        } else {
            let f = tempfile::tempfile_in(spill_dir).map_err(|e| {
                Error::io(
                    format!("cannot make a temporary file in {}", spill_dir.display()),
                    e,
                )
            })?;
            (None, Some(std::io::BufWriter::with_capacity(1 << 20, f)))
        };
        Ok(IdsWriter {
            width,
            mem,
            file,
            len: 0,
        })
    }

    /// Appends one id.
    ///
    /// # Errors
    /// A failed write of the temporary file (a full disk).
    #[inline]
    pub fn push(&mut self, id: u32) -> Result<()> {
        self.len += 1;
        match (&mut self.mem, &mut self.file) {
            (Some(Store::U8(v)), _) => v.push(id as u8),
            (Some(Store::U16(v)), _) => v.push(id as u16),
            (Some(Store::U32(v)), _) => v.push(id),
            (_, Some(f)) => {
                use std::io::Write;
                let b = id.to_le_bytes();
                f.write_all(&b[..self.width.bytes()])
                    .map_err(|e| Error::io("cannot write the corpus's temporary id file", e))?;
            }
            _ => unreachable!("a writer has a store"),
        }
        Ok(())
    }

    /// The ids written.
    ///
    /// # Errors
    /// A failed flush of the temporary file.
    pub fn finish(self) -> Result<Ids> {
        let store = match (self.mem, self.file) {
            (Some(m), _) => m,
            (None, Some(f)) => Store::File(f.into_inner().map_err(|e| {
                Error::io(
                    "cannot write the corpus's temporary id file",
                    e.into_error(),
                )
            })?),
            (None, None) => unreachable!("a writer has a store"),
        };
        Ok(Ids {
            store,
            width: self.width,
            len: self.len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_narrowest_width_that_holds_the_vocabulary() {
        assert_eq!(Width::for_vocab(65), Width::U8);
        assert_eq!(Width::for_vocab(256), Width::U8);
        assert_eq!(Width::for_vocab(257), Width::U16);
        assert_eq!(Width::for_vocab(6003), Width::U16);
        assert_eq!(Width::for_vocab(65_536), Width::U16);
        assert_eq!(Width::for_vocab(65_537), Width::U32);
    }

    #[test]
    fn ids_read_back_the_same_from_memory_and_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        for vocab in [200usize, 6000, 70_000] {
            let ids: Vec<u32> = (0..10_000u32).map(|i| (i * 7919) % vocab as u32).collect();
            let mem = Ids::from_vec(&ids, vocab);
            assert_eq!(mem.width(), Width::for_vocab(vocab));
            let mut w = IdsWriter::new(vocab, 10, dir.path()).unwrap(); // 10 expected: small
            for &i in &ids {
                w.push(i).unwrap();
            }
            let small = w.finish().unwrap();
            assert!(!small.on_disk());
            // A corpus past the limit goes to a file.
            let mut w = IdsWriter::new(vocab, MEMORY_LIMIT + 1, dir.path()).unwrap();
            for &i in &ids {
                w.push(i).unwrap();
            }
            let disk = w.finish().unwrap();
            assert!(disk.on_disk() && disk.len() == ids.len());
            for (s, e) in [(0, 10), (4321, 4400), (9990, 10_000)] {
                assert_eq!(mem.to_vec(s, e), ids[s..e]);
                assert_eq!(small.to_vec(s, e), ids[s..e]);
                assert_eq!(disk.to_vec(s, e), ids[s..e]);
            }
        }
    }
}
