//! The safetensors container, through Hugging Face's `safetensors` crate: reading a file
//! through a memory map (`memmap2`), so a command touches only the pages of the tensors it
//! reads (sampling skips the optimiser moments), and writing one straight from the model's
//! buffers into a temporary file that is synced and renamed (see `atomic`). Values are f32;
//! an exported file's weights may be bf16, widened exactly to f32 as they are read.
//!
//! The header is built and checked by the crate's `Metadata` (offsets contiguous, sizes
//! matching dtype and shape, no overflow, the file exactly as long as the header says); the
//! tensor bytes are streamed by us, in 64 KiB pieces, because the crate's own file writer
//! neither syncs nor keeps a checkpoint's ordinary permissions, and its in-memory writer would
//! copy every parameter and moment.
//!
//! Owns the container. Does not know what the tensors or metadata mean (see `checkpoint`).

use crate::engine::kernels::{bf16_to_f32, f32_to_bf16};
use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, Metadata, SafeTensors, TensorInfo};
use safetensors::SafeTensorError;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// A safetensors file opened for reading: its header parsed and checked, tensors read on
/// demand from the memory map.
pub struct TensorFile {
    map: memmap2::Mmap,
    /// How to name the file in messages.
    pub shown: String,
    /// Byte offset of the data section (8 + header length).
    data_start: usize,
    header: Metadata,
    /// The `__metadata__` strings.
    pub metadata: BTreeMap<String, String>,
}

impl TensorFile {
    /// Opens and checks `path`.
    ///
    /// # Errors
    /// A missing or unreadable file or a directory; a file that is not a safetensors file
    /// (`… is not a charrnn checkpoint (…)`); a file shorter than its header says (`… is
    /// damaged or truncated …`); tensor entries that do not fit together.
    pub fn open(path: &Path) -> Result<TensorFile> {
        let shown = path.display().to_string();
        if path.is_dir() {
            crate::bail!(
                "{shown} is a directory; give a checkpoint file such as {}",
                path.join("best.safetensors").display()
            );
        }
        let io = |e| Error::io(format!("cannot read checkpoint {shown}"), e);
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let not_ours =
            |why: &str| Error::input(format!("{shown} is not a charrnn checkpoint ({why})"));
        if len < 8 {
            return Err(not_ours("too short for a safetensors header"));
        }
        // SAFETY: checkpoints are replaced by rename, never rewritten in place, so the mapped
        // file does not change under us (a file truncated by someone else could fault).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let (n, header) = SafeTensors::read_metadata(&map).map_err(|e| match e {
            SafeTensorError::InvalidHeaderLength | SafeTensorError::MetadataIncompleteBuffer => {
                Error::input(format!(
                    "{shown} is damaged or truncated (its length does not match its header)"
                ))
            }
            SafeTensorError::InvalidOffset(_)
            | SafeTensorError::TensorInvalidInfo
            | SafeTensorError::ValidationOverflow
            | SafeTensorError::MisalignedSlice => Error::input(format!(
                "{shown} is not a valid checkpoint: its tensor entries do not fit together ({e})"
            )),
            _ => not_ours("not a safetensors file"),
        })?;
        let metadata = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        Ok(TensorFile {
            map,
            shown,
            data_start: 8 + n,
            header,
            metadata,
        })
    }

    /// Size of the file in bytes.
    pub fn file_bytes(&self) -> u64 {
        self.map.len() as u64
    }

    /// Bytes of the data section.
    pub fn data_bytes(&self) -> u64 {
        (self.map.len() - self.data_start) as u64
    }

    /// (dtype as written in the header, e.g. "F32", shape, little-endian bytes) of tensor
    /// `name`.
    ///
    /// # Errors
    /// The file has no tensor `name`.
    pub fn raw(&self, name: &str) -> Result<(String, Vec<usize>, &[u8])> {
        let info: &TensorInfo = self
            .header
            .info(name)
            .ok_or_else(|| Error::input(format!("{} lacks tensor {name}", self.shown)))?;
        let (s, e) = info.data_offsets;
        let bytes = &self.map[self.data_start + s..self.data_start + e];
        Ok((format!("{:?}", info.dtype), info.shape.clone(), bytes))
    }

    /// Whether the file has tensor `name`.
    pub fn has(&self, name: &str) -> bool {
        self.header.info(name).is_some()
    }

    /// Tensor `name`, checked to be F32 of `shape` (any shape when `None`), into `out`, which
    /// must have exactly its length.
    ///
    /// # Errors
    /// A missing tensor, another dtype, or another shape.
    pub fn f32_into(&self, name: &str, shape: Option<&[usize]>, out: &mut [f32]) -> Result<()> {
        self.read_as_f32(name, shape, out, false)
    }

    /// As `f32_into`, but a BF16 tensor is read too (widened exactly to f32): the weights of
    /// an exported checkpoint.
    ///
    /// # Errors
    /// A missing tensor, a dtype other than F32 or BF16, or another shape.
    pub fn weights_into(&self, name: &str, shape: Option<&[usize]>, out: &mut [f32]) -> Result<()> {
        self.read_as_f32(name, shape, out, true)
    }

    fn read_as_f32(
        &self,
        name: &str,
        shape: Option<&[usize]>,
        out: &mut [f32],
        bf16: bool,
    ) -> Result<()> {
        let (dtype, got, bytes) = self.raw(name)?;
        let width = match dtype.as_str() {
            "F32" => 4,
            "BF16" if bf16 => 2,
            _ => 0,
        };
        if width == 0 || shape.is_some_and(|s| s != got) || bytes.len() != width * out.len() {
            crate::bail!(
                "{} is not a valid checkpoint: tensor {name} is {dtype} {got:?}, expected {} {:?}",
                self.shown,
                if bf16 { "F32 or BF16" } else { "F32" },
                shape.unwrap_or(&got)
            );
        }
        if width == 4 {
            for (x, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            }
        } else {
            for (x, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *x = bf16_to_f32(u16::from_le_bytes([c[0], c[1]]));
            }
        }
        Ok(())
    }

    /// Tensor `name` as f32, checked to be F32 of `shape` (any shape when `None`).
    ///
    /// # Errors
    /// As `f32_into`.
    pub fn f32(&self, name: &str, shape: Option<&[usize]>) -> Result<Vec<f32>> {
        let (_, got, bytes) = self.raw(name)?;
        let mut out = vec![0.0; bytes.len() / 4];
        self.f32_into(name, Some(shape.unwrap_or(&got)), &mut out)?;
        Ok(out)
    }
}

/// One tensor to write: its name, shape (row-major) and f32 values.
pub type Entry<'a> = (String, Vec<usize>, &'a [f32]);

/// How the values of the tensors written are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Stored {
    /// As they are: 4 bytes each.
    #[default]
    F32,
    /// Rounded to bfloat16, to nearest even: 2 bytes each (8 bits of mantissa).
    Bf16,
}

impl Stored {
    /// "f32" or "bf16".
    pub fn name(self) -> &'static str {
        match self {
            Stored::F32 => "f32",
            Stored::Bf16 => "bf16",
        }
    }

    fn bytes(self) -> usize {
        match self {
            Stored::F32 => 4,
            Stored::Bf16 => 2,
        }
    }
}

/// Writes `tensors` (in this order) and `metadata` as a safetensors file at `path`, atomically,
/// every value stored as `stored` says.
///
/// # Errors
/// An I/O failure (`cannot write PATH: …`); entries whose shapes do not match their data are a
/// bug and panic.
pub fn write(
    path: &Path,
    tensors: &[Entry],
    metadata: HashMap<String, String>,
    stored: Stored,
) -> Result<()> {
    let mut infos = Vec::with_capacity(tensors.len());
    let mut offset = 0usize;
    for (name, shape, data) in tensors {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "{name}");
        let end = offset + stored.bytes() * data.len();
        infos.push((
            name.clone(),
            TensorInfo {
                dtype: match stored {
                    Stored::F32 => Dtype::F32,
                    Stored::Bf16 => Dtype::BF16,
                },
                shape: shape.clone(),
                data_offsets: (offset, end),
            },
        ));
        offset = end;
    }
    let header = Metadata::new(Some(metadata), infos).expect("offsets are contiguous");
    let mut head = serde_json::to_vec(&header).expect("a header serialises");
    while !head.len().is_multiple_of(8) {
        head.push(b' '); // the format pads the header to 8 bytes with spaces
    }
    crate::atomic::write(path, |w| {
        w.write_all(&(head.len() as u64).to_le_bytes())?;
        w.write_all(&head)?;
        let mut buf = Vec::with_capacity(1 << 16);
        for (_, _, data) in tensors {
            for chunk in data.chunks(1 << 14) {
                buf.clear();
                match stored {
                    Stored::F32 => buf.extend(chunk.iter().flat_map(|x| x.to_le_bytes())),
                    Stored::Bf16 => {
                        buf.extend(chunk.iter().flat_map(|&x| f32_to_bf16(x).to_le_bytes()))
                    }
                }
                w.write_all(&buf)?;
            }
        }
        Ok(())
    })
}
