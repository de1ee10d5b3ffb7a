//! Checkpoint files: one safetensors file holding every parameter by its PyTorch name, the
//! Adam moments (`adam.m.<name>`, `adam.v.<name>`, `adam.vmax.<name>`) and the carried state
//! (`state.h`, `state.c`, (L, B, H)), with JSON metadata: format and version, model config,
//! vocabulary, training config and training state. Python reads it with
//! `safetensors.torch.load_file`. Files are written to a temporary name and renamed, so a crash
//! never leaves a half-written checkpoint.
//!
//! Owns the file format: nothing else reads or writes a checkpoint's bytes. Does not decide
//! when to save (see `train`).

use crate::bail;
use crate::data::Vocab;
use crate::engine::State;
use crate::error::{Error, Result};
use crate::model::{Layout, ModelConfig};
use crate::optim::Adam;
use serde::Deserialize;

pub mod state;
pub use state::{default_lr_decay, CorpusInfo, TrainConfig, TrainState};
use std::path::Path;

pub const FORMAT: &str = "charrnn";
/// Bumped whenever a reader of the previous version would misread a new file.
pub const FORMAT_VERSION: u32 = 1;

pub struct Checkpoint {
    pub model: ModelConfig,
    pub vocab: Vocab,
    pub params: Vec<f32>,
    /// Present in checkpoints written by training.
    pub train: Option<TrainSnapshot>,
    /// Size of the file in bytes.
    pub file_bytes: u64,
}

pub struct TrainSnapshot {
    pub config: TrainConfig,
    pub state: TrainState,
    /// What only `--resume` needs: read by `load`, not by `load_model`.
    pub resume: Option<ResumeState>,
}

#[derive(Debug, PartialEq)]
pub struct ResumeState {
    pub adam: Adam<f32>,
    pub carry: State<f32>,
}

#[derive(Deserialize)]
struct VocabFile {
    chars: Vec<char>,
    unk: Option<u32>,
}

/// What a training run saves, borrowed: nothing is copied on the way to the file.
pub struct TrainRef<'a> {
    pub config: &'a TrainConfig,
    pub state: &'a TrainState,
    pub adam: &'a Adam<f32>,
    pub carry: &'a State<f32>,
}

/// Writes a checkpoint to `path` atomically: a temporary file in the same folder, written
/// straight from the model's buffers (no copy of the parameters or moments in memory), synced,
/// then renamed. On failure the previous file at `path` is untouched and the temporary file is
/// removed.
pub fn save(
    path: &Path,
    model: &ModelConfig,
    vocab: &Vocab,
    params: &[f32],
    train: Option<TrainRef>,
) -> Result<()> {
    let layout = Layout::new(*model);
    // Every tensor as (name, shape, data), in file order.
    fn add_flat<'a>(
        layout: &Layout,
        prefix: &str,
        flat: &'a [f32],
        list: &mut Vec<(String, Vec<usize>, &'a [f32])>,
    ) {
        for t in &layout.tensors {
            list.push((
                format!("{prefix}{}", t.name),
                t.shape.clone(),
                &flat[t.offset..][..t.len],
            ));
        }
    }
    let mut tensors: Vec<(String, Vec<usize>, &[f32])> = Vec::new();
    add_flat(&layout, "", params, &mut tensors);
    let mut meta = serde_json::Map::new();
    let s = |v: String| serde_json::Value::String(v);
    meta.insert("format".into(), s(FORMAT.into()));
    meta.insert("format_version".into(), s(FORMAT_VERSION.to_string()));
    meta.insert("model".into(), s(serde_json::to_string(model).unwrap()));
    meta.insert("vocab".into(), s(serde_json::to_string(vocab).unwrap()));
    if let Some(tr) = &train {
        add_flat(&layout, "adam.m.", &tr.adam.m, &mut tensors);
        add_flat(&layout, "adam.v.", &tr.adam.v, &mut tensors);
        if let Some(vmax) = &tr.adam.vmax {
            add_flat(&layout, "adam.vmax.", vmax, &mut tensors);
        }
        let shape = vec![model.layers, tr.config.batch, model.hidden];
        tensors.push(("state.h".into(), shape.clone(), &tr.carry.h));
        tensors.push(("state.c".into(), shape, &tr.carry.c));
        meta.insert(
            "train_config".into(),
            s(serde_json::to_string(tr.config).unwrap()),
        );
        meta.insert(
            "train_state".into(),
            s(serde_json::to_string(tr.state).unwrap()),
        );
    }

    // The safetensors header: name -> dtype, shape, byte offsets in the data section.
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::Value::Object(meta));
    let mut offset = 0usize;
    for (name, shape, data) in &tensors {
        assert_eq!(shape.iter().product::<usize>(), data.len());
        let end = offset + 4 * data.len();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut head = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    while !head.len().is_multiple_of(8) {
        head.push(b' '); // the format pads the header to 8 bytes with spaces
    }
    crate::atomic::write(path, |w| {
        w.write_all(&(head.len() as u64).to_le_bytes())?;
        w.write_all(&head)?;
        let mut buf = Vec::with_capacity(1 << 16);
        for (_, _, data) in &tensors {
            for chunk in data.chunks(1 << 14) {
                buf.clear();
                buf.extend(chunk.iter().flat_map(|x| x.to_le_bytes()));
                w.write_all(&buf)?;
            }
        }
        Ok(())
    })
}

/// A safetensors file opened for reading: its header parsed, tensors read on demand, so a
/// command reads only what it needs (sampling skips the optimiser moments).
pub struct TensorFile {
    file: std::fs::File,
    shown: String,
    data_start: u64,
    data_len: u64,
    entries: serde_json::Map<String, serde_json::Value>,
    pub metadata: std::collections::BTreeMap<String, String>,
}

impl TensorFile {
    pub fn open(path: &Path) -> Result<TensorFile> {
        let shown = path.display().to_string();
        if path.is_dir() {
            bail!(
                "{shown} is a directory; give a checkpoint file such as {}",
                path.join("best.safetensors").display()
            );
        }
        let io = |e| Error::io(format!("cannot read checkpoint {shown}"), e);
        let mut file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let not_ours =
            |why: &str| Error::input(format!("{shown} is not a charrnn checkpoint ({why})"));
        let truncated = || {
            Error::input(format!(
                "{shown} is damaged or truncated (shorter than its header says)"
            ))
        };
        let mut n = [0u8; 8];
        std::io::Read::read_exact(&mut file, &mut n)
            .map_err(|_| not_ours("too short for a safetensors header"))?;
        let n = u64::from_le_bytes(n);
        if n > 100 << 20 {
            return Err(not_ours("not a safetensors file"));
        }
        if 8 + n > len {
            return Err(truncated());
        }
        let mut head = vec![0u8; n as usize];
        std::io::Read::read_exact(&mut file, &mut head).map_err(io)?;
        let mut entries: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&head).map_err(|_| not_ours("not a safetensors file"))?;
        let metadata = match entries.remove("__metadata__") {
            Some(m) => serde_json::from_value(m).map_err(|_| not_ours("unreadable metadata"))?,
            None => Default::default(),
        };
        let data_len = len - 8 - n;
        let tf = TensorFile {
            file,
            shown: shown.clone(),
            data_start: 8 + n,
            data_len,
            entries,
            metadata,
        };
        // Every tensor must lie inside the file: a cut file is caught here, not half-loaded.
        for name in tf.entries.keys() {
            let (_, _, range) = tf.entry(name)?;
            if range.end > data_len {
                return Err(truncated());
            }
        }
        Ok(tf)
    }

    /// (dtype, shape, byte range in the data section) of tensor `name`.
    fn entry(&self, name: &str) -> Result<(String, Vec<usize>, std::ops::Range<u64>)> {
        let bad = || {
            Error::input(format!(
                "{} has a malformed entry for tensor {name}",
                self.shown
            ))
        };
        let e = self
            .entries
            .get(name)
            .ok_or_else(|| Error::input(format!("{} lacks tensor {name}", self.shown)))?;
        let dtype = e
            .get("dtype")
            .and_then(|d| d.as_str())
            .ok_or_else(bad)?
            .to_string();
        let shape: Vec<usize> =
            serde_json::from_value(e.get("shape").cloned().ok_or_else(bad)?).map_err(|_| bad())?;
        let off: [u64; 2] = serde_json::from_value(e.get("data_offsets").cloned().ok_or_else(bad)?)
            .map_err(|_| bad())?;
        let size = match dtype.as_str() {
            "F32" | "I32" => 4,
            "F64" | "I64" => 8,
            _ => 0,
        };
        if off[0] > off[1] || off[1] - off[0] != size * shape.iter().product::<usize>() as u64 {
            return Err(bad());
        }
        Ok((dtype, shape, off[0]..off[1]))
    }

    /// Raw little-endian bytes of tensor `name`, with its dtype and shape.
    pub fn raw(&mut self, name: &str) -> Result<(String, Vec<usize>, Vec<u8>)> {
        let (dtype, shape, range) = self.entry(name)?;
        let mut bytes = vec![0u8; (range.end - range.start) as usize];
        let io = |e| Error::io(format!("cannot read checkpoint {}", self.shown), e);
        std::io::Seek::seek(
            &mut self.file,
            std::io::SeekFrom::Start(self.data_start + range.start),
        )
        .map_err(io)?;
        std::io::Read::read_exact(&mut self.file, &mut bytes).map_err(io)?;
        debug_assert!(range.end <= self.data_len);
        Ok((dtype, shape, bytes))
    }

    /// Tensor `name` as f32, checked to be F32 of `shape` (any shape when `None`).
    pub fn f32(&mut self, name: &str, shape: Option<&[usize]>) -> Result<Vec<f32>> {
        let (dtype, got, bytes) = self.raw(name)?;
        if dtype != "F32" || shape.is_some_and(|s| s != got) {
            bail!(
                "{}: tensor {name} is {dtype} {got:?}, expected F32 {:?}",
                self.shown,
                shape.unwrap_or(&got)
            );
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// Reads a whole checkpoint: model, vocabulary, weights and (if present) the training state.
pub fn load(path: &Path) -> Result<Checkpoint> {
    read(path, true)
}

/// Reads what sampling needs: model, vocabulary and weights, not the optimiser state.
pub fn load_model(path: &Path) -> Result<Checkpoint> {
    read(path, false)
}

fn read(path: &Path, with_train: bool) -> Result<Checkpoint> {
    let mut tf = TensorFile::open(path)?;
    let shown = tf.shown.clone();
    let meta = tf.metadata.clone();
    let not_ours =
        |why: String| Error::input(format!("{shown} is not a charrnn checkpoint ({why})"));
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(not_ours("no charrnn metadata".into()));
    }
    let version: u32 = meta
        .get("format_version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| not_ours("no format version".into()))?;
    if version > FORMAT_VERSION {
        bail!("{shown} has checkpoint format version {version}, newer than this charrnn reads ({FORMAT_VERSION}); upgrade charrnn");
    }
    let json = |key: &str| -> Result<&str> {
        meta.get(key)
            .map(String::as_str)
            .ok_or_else(|| not_ours(format!("missing {key}")))
    };
    let bad = |key: &str, e: serde_json::Error| {
        Error::input(format!("{shown} has unreadable {key} metadata: {e}"))
    };
    let model: ModelConfig = serde_json::from_str(json("model")?).map_err(|e| bad("model", e))?;
    let vf: VocabFile = serde_json::from_str(json("vocab")?).map_err(|e| bad("vocab", e))?;
    if vf.chars.len() != model.vocab || model.hidden == 0 || model.layers == 0 {
        bail!(
            "{shown} is inconsistent: vocabulary of {} characters, model {model:?}",
            vf.chars.len()
        );
    }
    let vocab = Vocab::from_chars(vf.chars, vf.unk);
    let layout = Layout::new(model);
    let flat = |tf: &mut TensorFile, prefix: &str| -> Result<Vec<f32>> {
        let mut v = vec![0.0f32; layout.total];
        for t in &layout.tensors {
            v[t.offset..][..t.len]
                .copy_from_slice(&tf.f32(&format!("{prefix}{}", t.name), Some(&t.shape))?);
        }
        Ok(v)
    };
    let params = flat(&mut tf, "")?;
    let train = match (meta.get("train_config"), meta.get("train_state")) {
        (Some(c), Some(s)) => {
            let config: TrainConfig =
                serde_json::from_str(c).map_err(|e| bad("train_config", e))?;
            let state: TrainState = serde_json::from_str(s).map_err(|e| bad("train_state", e))?;
            let resume = if with_train {
                let shape = [model.layers, config.batch, model.hidden];
                let carry = State {
                    h: tf.f32("state.h", Some(&shape))?,
                    c: tf.f32("state.c", Some(&shape))?,
                };
                let mut adam = Adam::new(layout.total, config.lr, config.amsgrad);
                adam.t = state.adam_steps;
                adam.m = flat(&mut tf, "adam.m.")?;
                adam.v = flat(&mut tf, "adam.v.")?;
                if config.amsgrad {
                    adam.vmax = Some(flat(&mut tf, "adam.vmax.")?);
                }
                Some(ResumeState { adam, carry })
            } else {
                None
            };
            Some(TrainSnapshot {
                config,
                state,
                resume,
            })
        }
        _ => None,
    };
    let file_bytes = tf.data_start + tf.data_len;
    Ok(Checkpoint {
        model,
        vocab,
        params,
        train,
        file_bytes,
    })
}
