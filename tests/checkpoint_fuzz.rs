//! A checkpoint is input like any other: many mutations of a real checkpoint's header and
//! metadata, loaded in-process, must each give a result or one error line, never a panic, and
//! never an allocation larger than the file (a counting allocator watches every allocation).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, remembering the largest single allocation since the last reset.
struct Watching;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Watching = Watching;

/// xorshift64*: a small deterministic generator for the mutations.
struct Gen(u64);
impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A small trained checkpoint, made with the library's own writer.
fn real_checkpoint(dir: &Path) -> PathBuf {
    use charrnn::checkpoint::{self, CorpusInfo, Plan, TrainConfig, TrainRef, TrainState};
    use charrnn::data::Vocab;
    use charrnn::engine::{init_params, State};
    use charrnn::model::{Cell, Layout, ModelConfig};
    use charrnn::optim::{Adam, Schedule};
    let vocab = Vocab::build("the quick brown fox jumps over the lazy dog.\n", None, 0);
    let model = ModelConfig {
        cell: Cell::Lstm,
        vocab: vocab.len(),
        hidden: 12,
        layers: 2,
        embed: 0,
    };
    let layout = Layout::new(model);
    let params: Vec<f32> = init_params(&layout, &mut charrnn::rng::Rng::new(1));
    let config = TrainConfig {
        batch: 3,
        seq: 8,
        lr: 2e-3,
        clip: 5.0,
        amsgrad: true,
        seed: 1,
        val_frac: 0.1,
        ascii: false,
        lossy: false,
        max_vocab: None,
        min_count: 0,
        lr_schedule: Schedule::Cosine,
        warmup: 0,
        lr_decay: 0.97,
        weight_decay: 0.0,
        dropout: 0.1,
        encoding: None,
        val_chars: Some(1_000_000),
        precision: Default::default(),
        init_from: None,
    };
    let state = TrainState {
        step: 7,
        epoch: 0,
        cursor: 7,
        steps_per_epoch: 100,
        adam_steps: 7,
        rng: ["1", "2", "3", "4"].map(String::from),
        best_val: Some(3.0),
        last_val: Some(3.0),
        evals_since_best: 0,
        patience: None,
        train_seconds: 1.0,
        corpus: CorpusInfo {
            file: "fox.txt".into(),
            chars: 45,
            fingerprint: "0".repeat(64),
        },
        plan: Some(Plan {
            steps: Some(100),
            seconds: None,
        }),
    };
    let adam = Adam::new(layout.total, 2e-3, true);
    let carry = State::zeros(2, 3, 12);
    let path = dir.join("real.safetensors");
    let train = TrainRef {
        config: &config,
        state: &state,
        adam: &adam,
        carry: &carry,
    };
    checkpoint::save(&path, &model, &vocab, &params, Some(train)).unwrap();
    path
}

/// The header (JSON) of a safetensors file, and the data after it.
fn split(bytes: &[u8]) -> (serde_json::Value, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

fn join(header: &serde_json::Value, data: &[u8]) -> Vec<u8> {
    let mut head = serde_json::to_vec(header).unwrap();
    while !head.len().is_multiple_of(8) {
        head.push(b' ');
    }
    let mut out = (head.len() as u64).to_le_bytes().to_vec();
    out.extend(head);
    out.extend(data);
    out
}

/// Values a lying field might hold.
fn odd_value(g: &mut Gen) -> serde_json::Value {
    use serde_json::json;
    let choices = [
        json!(1_000_000_000u64),
        json!(u64::MAX),
        json!(0),
        json!(-1),
        json!(1.5),
        json!("12"),
        json!(null),
        json!([]),
        json!({}),
        json!(65_536),
        json!(3),
        json!(1e300),
    ];
    choices[g.below(choices.len())].clone()
}

/// One mutation of the header or its metadata.
fn mutate(g: &mut Gen, header: &mut serde_json::Value) {
    let obj = header.as_object_mut().unwrap();
    let names: Vec<String> = obj
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect();
    match g.below(6) {
        // A field of the model, training config or state metadata (JSON inside a string).
        0..=2 => {
            let meta = obj["__metadata__"].as_object_mut().unwrap();
            let keys = ["model", "train_config", "train_state", "vocab"];
            let key = keys[g.below(keys.len())];
            let mut inner: serde_json::Value =
                serde_json::from_str(meta[key].as_str().unwrap()).unwrap();
            if let Some(o) = inner.as_object_mut() {
                let fields: Vec<String> = o.keys().cloned().collect();
                let f = &fields[g.below(fields.len())];
                if g.below(5) == 0 {
                    o.remove(f);
                } else {
                    o.insert(f.clone(), odd_value(g));
                }
            }
            meta.insert(key.into(), serde_json::Value::String(inner.to_string()));
        }
        // A tensor's shape.
        3 => {
            let t = &names[g.below(names.len())];
            let shape = obj[t]["shape"].as_array_mut().unwrap();
            if shape.is_empty() || g.below(3) == 0 {
                shape.push(odd_value(g));
            } else {
                let i = g.below(shape.len());
                shape[i] = odd_value(g);
            }
        }
        // A tensor's dtype or offsets.
        4 => {
            let t = &names[g.below(names.len())];
            if g.below(2) == 0 {
                let d = ["F16", "I64", "BOOL", "F64", "X", "U8"];
                obj[t]["dtype"] = d[g.below(d.len())].into();
            } else {
                let offs = obj[t]["data_offsets"].as_array_mut().unwrap();
                let i = g.below(2);
                offs[i] = odd_value(g);
            }
        }
        // A tensor gone, or the metadata's version or format changed.
        _ => {
            if g.below(2) == 0 {
                let t = &names[g.below(names.len())];
                obj.remove(t);
            } else {
                let meta = obj["__metadata__"].as_object_mut().unwrap();
                meta.insert("format_version".into(), odd_value(g).to_string().into());
            }
        }
    }
}

#[test]
fn mutated_checkpoints_never_panic_or_allocate_beyond_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let real = real_checkpoint(dir.path());
    let bytes = std::fs::read(&real).unwrap();
    assert!(charrnn::checkpoint::load(&real).is_ok());
    let (header, data) = split(&bytes);
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    let path = dir.path().join("mutant.safetensors");
    let (mut rejected, mut cases) = (0, 0);
    for case in 0..4000 {
        let mut h = header.clone();
        for _ in 0..1 + g.below(3) {
            mutate(&mut g, &mut h);
        }
        let mut file = join(&h, &data);
        // Now and then also damage the raw bytes: the length field, a cut, a flipped byte.
        match g.below(8) {
            0 => file[g.below(8)] ^= 1 << g.below(8),
            1 => file.truncate(g.below(file.len())),
            2 => {
                let i = g.below(file.len());
                file[i] = g.next() as u8;
            }
            _ => {}
        }
        std::fs::write(&path, &file).unwrap();
        LARGEST.store(0, Ordering::Relaxed);
        let outcome = std::panic::catch_unwind(|| {
            let full = charrnn::checkpoint::load(&path).map(|_| ());
            let model = charrnn::Model::load(&path).map(|_| ());
            (full, model)
        });
        let largest = LARGEST.load(Ordering::Relaxed);
        let (full, model) = outcome.unwrap_or_else(|_| panic!("case {case}: a panic"));
        for r in [&full, &model] {
            if let Err(e) = r {
                rejected += 1;
                assert!(
                    !e.msg.contains('\n') && e.msg.contains("mutant.safetensors"),
                    "case {case}: not one line naming the file: {}",
                    e.msg
                );
            }
        }
        // The loaded parameters and moments are at most the file's tensors; allow the
        // header's JSON its own room.
        assert!(
            largest <= 2 * file.len() + (1 << 16),
            "case {case}: an allocation of {largest} bytes for a file of {}",
            file.len()
        );
        cases += 1;
    }
    assert!(
        rejected > cases,
        "most mutants are rejected: {rejected} of {}",
        2 * cases
    );
}
