//! What a training run will hold in memory, counted before any of it is allocated: the
//! weights, gradients and Adam moments, the guard's copies, the step's workspace, validation,
//! the text's ids. A run that would not fit in the memory available is one line and exit 2,
//! naming the bytes it needs and the bytes there are (`--hidden 100000` asked the allocator for
//! 480 GB and aborted).
//!
//! Owns the training run's count. Does not own the shapes' own counts
//! (`engine::Workspace::bytes`, `sample::Sampler::bytes`) or reading the machine (`memory`).

use super::args::TrainArgs;
use super::sizing::{AUTO_EMBED, AUTO_EMBED_VOCAB, PROBE_SIZES};
use crate::checkpoint::TrainConfig;
use crate::data::{ids, Width};
use crate::engine::{Evaluator, MatmulPrecision, Threads, Workspace};
use crate::error::Result;
use crate::memory::{buffer, Need};
use crate::model::{Layout, ModelConfig};
use crate::sample::Sampler;

/// The text a run reads: its characters and the vocabulary's size.
#[derive(Clone, Copy, Debug)]
pub struct Text {
    pub chars: u64,
    pub vocab: usize,
}

/// What a run of model `m` with settings `c` on `threads` threads holds, by part.
pub fn need(m: &ModelConfig, c: &TrainConfig, threads: usize, text: Text) -> Need {
    let layout = Layout::new(*m);
    let p = layout.total;
    let moments = 2 + usize::from(c.amsgrad);
    let threads = Threads(threads);
    let val = (text.chars as f64 * c.val_frac).ceil() as u64;
    let val_slice = match c.val_chars {
        Some(k) if k >= 2 => val.min(k),
        _ => val,
    };
    let ids = buffer(
        &[text.chars as usize, Width::for_vocab(text.vocab).bytes()],
        1,
    );
    let mut need = Need::default();
    need.add(
        "the weights, gradients and Adam moments",
        buffer(&[2 + moments, p], 4),
    )
    .add(
        "the two copies the guard against blow-ups keeps",
        buffer(&[2, 1 + moments, p], 4),
    )
    .add(
        format!("the workspace of batch {} × seq {}", c.batch, c.seq),
        Workspace::<f32>::bytes(
            &layout,
            (c.batch, c.seq),
            (true, c.dropout > 0.0),
            (c.precision, threads),
        )
        .saturating_add(buffer(&[2, c.batch, c.seq], 4)) // the batch's inputs and targets
        .saturating_add(buffer(&[2, m.layers, c.batch, m.hidden], 4)), // the carried state
    )
    .add(
        "validation",
        Workspace::<f32>::bytes(
            &layout,
            (1, Evaluator::CHUNK),
            (false, false),
            (MatmulPrecision::F32, threads),
        )
        .saturating_add(buffer(&[val_slice as usize], 4)),
    )
    .add("the samples shown", Sampler::bytes(&layout, 1))
    .add(
        "the text's ids",
        // Beyond the limit they are kept in a file (on Unix).
        if cfg!(unix) && ids > ids::MEMORY_LIMIT {
            0
        } else {
            ids
        },
    );
    need
}

/// The model a fresh run's memory is counted for before the budget sizes it: the flags' hidden
/// size, or the largest the probe times (`sizing` then keeps its choice within memory); the
/// embedding the sizing would give a large vocabulary.
pub fn as_flags_give(a: &TrainArgs, m: ModelConfig, vocab: usize) -> ModelConfig {
    ModelConfig {
        vocab,
        hidden: a.hidden.unwrap_or(PROBE_SIZES[1]),
        embed: a.embed.unwrap_or(if vocab >= AUTO_EMBED_VOCAB {
            AUTO_EMBED
        } else {
            0
        }),
        ..m
    }
}

/// Refuses a run that would not fit in the memory available: one line with the model (`probed`:
/// the probe's size, no size the user chose), the bytes it needs by part and the bytes there are.
///
/// # Errors
/// The run needs more than `crate::memory::available()`.
pub fn check(
    m: &ModelConfig,
    c: &TrainConfig,
    threads: usize,
    text: Text,
    resumed: bool,
    probed: bool,
) -> Result<()> {
    let what = format!(
        "{} {}×{}{} with batch {} × seq {}",
        m.cell.label(),
        m.layers,
        m.hidden,
        if probed {
            " (the size the sizing probe times, without --hidden)"
        } else {
            ""
        },
        c.batch,
        c.seq
    );
    let advice = if resumed {
        "resume it on a machine with more memory"
    } else {
        "choose a smaller --hidden, --layers, --embed, --batch or --seq"
    };
    need(m, c, threads, text).check(&what, crate::memory::available(), advice)
}

/// Whether a run fits in `available` bytes (None: unknown, so it does).
pub fn fits(
    m: &ModelConfig,
    c: &TrainConfig,
    threads: usize,
    text: Text,
    available: Option<u64>,
) -> bool {
    available.is_none_or(|a| need(m, c, threads, text).total() <= a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cell;

    fn config() -> TrainConfig {
        let a = <TrainArgs as clap::FromArgMatches>::from_arg_matches(
            &<TrainArgs as clap::Args>::augment_args(clap::Command::new("t"))
                .get_matches_from(["t", "x.txt"]),
        )
        .unwrap();
        super::super::config::fresh_config(&a).unwrap().1
    }

    #[test]
    fn a_run_needs_its_weights_moments_copies_and_workspace() {
        let m = ModelConfig {
            cell: Cell::Lstm,
            vocab: 65,
            hidden: 100_000,
            layers: 2,
            embed: 0,
        };
        let c = config();
        let text = Text {
            chars: 1_000_000,
            vocab: 65,
        };
        let p = Layout::new(m).total as u64;
        let need = need(&m, &c, 2, text).total();
        // 16 bytes a parameter for the weights, gradients and moments, 24 for the guard's
        // copies, 4 for the samples' copy of the weights, and the workspace on top (W_hh
        // regrouped, and in bf16 its packed copies).
        assert!(need > 44 * p && need < 52 * p, "{need} for {p} parameters");
        assert!(!fits(&m, &c, 2, text, Some(1 << 40)));
        assert!(fits(&m, &c, 2, text, None));
        let small = ModelConfig { hidden: 64, ..m };
        assert!(fits(&small, &c, 2, text, Some(1 << 30)));
    }
}
