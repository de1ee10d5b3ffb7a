//! Fine-tuning's starting point (`train --init-from`): a base model's parameters carried to a
//! model of the same architecture whose vocabulary differs, matched by character, not by index.
//!
//! Four tensors have a row per character: `head.weight` (V, H) and `head.bias` (V) on the
//! output side, and on the input side `embed.weight` (V, D) or, with one-hot input, the columns
//! of layer 0's `weight_ih` (G·H, V). A character the base knows keeps its rows, wherever its
//! id moved; every other tensor is copied as it is. A character the base lacks gets:
//! - as input, the mean of the base's input rows (columns) of the shared characters, the
//!   "average character" (J. Hewitt, *Initializing New Word Embeddings for Pretrained Language
//!   Models*, 2021: a mean start keeps the new symbol from disturbing what the model does);
//! - as output, the mean of the shared characters' `head.weight` rows, so its logit moves with
//!   the hidden state as the average shared character's does, offset by its bias;
//! - as bias, `mean_S(b) + ln f_c − mean_S(ln f)`, with f a character's share of the new text
//!   and S the shared characters that occur in it: its logit then sits above or below the
//!   shared characters' mean logit by exactly its log-frequency's distance from theirs, so the
//!   model starts by predicting it about as often as the text has it (as far as the base
//!   predicts the shared characters as often as the text has them).
//!
//! Without a shared character that occurs in the text, the means are over all the base's rows
//! and the bias is `mean(b) + ln f_c − mean(ln f)` over the new characters.
//!
//! Owns which rows go where and how new rows start. Does not match characters (the caller
//! gives each new id's base id) or read checkpoints.

use super::Layout;

/// Where each character of the new vocabulary comes from, by id of the new vocabulary.
pub struct VocabMap<'a> {
    /// The base's id of the same character, or None for a character the base lacks.
    pub from: &'a [Option<usize>],
    /// ln of the character's share of the new text's characters; None where it does not
    /// occur.
    pub log_freq: &'a [Option<f64>],
}

impl VocabMap<'_> {
    /// Ids (of the base) of the shared characters that occur in the new text: the means are
    /// over these, or over the whole base vocabulary when there are none.
    fn reference(&self, base_vocab: usize) -> Vec<usize> {
        let shared: Vec<usize> = self
            .from
            .iter()
            .zip(self.log_freq)
            .filter_map(|(b, f)| f.and(*b))
            .collect();
        if shared.is_empty() {
            (0..base_vocab).collect()
        } else {
            shared
        }
    }

    /// The bias of each new character (see the module header), by id of the new vocabulary
    /// (None for the carried ones). `head_b` is the base's `head.bias` (V_base).
    fn new_biases(&self, head_b: &[f32]) -> Vec<Option<f32>> {
        let mean = |xs: &mut dyn Iterator<Item = f64>| {
            let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
            if n == 0 {
                0.0
            } else {
                s / n as f64
            }
        };
        let pairs = || self.from.iter().zip(self.log_freq);
        let shared = || pairs().filter_map(|(b, f)| Some((b.as_ref()?, f.as_ref()?)));
        let (mean_b, mean_f) = if shared().next().is_some() {
            (
                mean(&mut shared().map(|(&b, _)| head_b[b] as f64)),
                mean(&mut shared().map(|(_, &f)| f)),
            )
        } else {
            (
                mean(&mut head_b.iter().map(|&b| b as f64)),
                mean(&mut pairs().filter(|(b, _)| b.is_none()).filter_map(|(_, f)| *f)),
            )
        };
        // A new character that does not occur (not made by the callers) counts as the
        // rarest that does.
        let rarest = self
            .log_freq
            .iter()
            .flatten()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let rarest = if rarest.is_finite() { rarest } else { mean_f };
        pairs()
            .map(|(b, f)| match b {
                Some(_) => None,
                None => Some((mean_b + f.unwrap_or(rarest) - mean_f) as f32),
            })
            .collect()
    }
}

/// The parameters of a model laid out as `to` from the base's (`base`, `params`): the same
/// architecture, with `to`'s vocabulary, whose characters `map` relates to the base's (see the
/// module header). `to.total` values.
///
/// # Panics
/// When the two layouts differ in anything but the vocabulary, or `map` does not have one
/// entry per character of `to` (bugs of the caller).
pub fn carry_vocab(base: &Layout, params: &[f32], to: &Layout, map: &VocabMap) -> Vec<f32> {
    let (vb, vt) = (base.config.vocab, to.config.vocab);
    assert_eq!(
        super::ModelConfig {
            vocab: vt,
            ..base.config
        },
        to.config,
        "only the vocabulary may differ"
    );
    assert!(map.from.len() == vt && map.log_freq.len() == vt);
    assert!(map.from.iter().flatten().all(|&b| b < vb));
    let refs = map.reference(vb);
    let mut out = vec![0.0f32; to.total];
    for (tb, tt) in base.tensors.iter().zip(&to.tensors) {
        let (src, dst) = (
            &params[tb.offset..][..tb.len],
            &mut out[tt.offset..][..tt.len],
        );
        if tt.name == "head.bias" {
            let new = map.new_biases(src);
            for (i, d) in dst.iter_mut().enumerate() {
                *d = new[i].unwrap_or_else(|| src[map.from[i].expect("carried")]);
            }
        } else if tt.name == "head.weight" || tt.name == "embed.weight" {
            rows(src, tb.shape[1], dst, map.from, &refs);
        } else if tt.shape != tb.shape {
            // Layer 0's weight_ih with one-hot input: a column per character.
            let height = tt.shape[0];
            for r in 0..height {
                columns(
                    &src[r * vb..][..vb],
                    &mut dst[r * vt..][..vt],
                    map.from,
                    &refs,
                );
            }
        } else {
            dst.copy_from_slice(src);
        }
    }
    out
}

/// A (V, W) matrix whose rows are the characters': each carried character's row, and the mean
/// of the `refs` rows for each new one.
fn rows(src: &[f32], w: usize, dst: &mut [f32], from: &[Option<usize>], refs: &[usize]) {
    let mut mean = vec![0.0f64; w];
    for &b in refs {
        for (m, &x) in mean.iter_mut().zip(&src[b * w..][..w]) {
            *m += x as f64;
        }
    }
    let mean: Vec<f32> = mean
        .iter()
        .map(|m| (m / refs.len() as f64) as f32)
        .collect();
    for (i, row) in dst.chunks_exact_mut(w).enumerate() {
        row.copy_from_slice(match from[i] {
            Some(b) => &src[b * w..][..w],
            None => &mean,
        });
    }
}

/// One row of a (R, V) matrix whose columns are the characters' (`src` the base's row,
/// `dst` the new one): each carried character's entry, and the mean of the `refs` entries for
/// each new one.
fn columns(src: &[f32], dst: &mut [f32], from: &[Option<usize>], refs: &[usize]) {
    let mean = (refs.iter().map(|&b| src[b] as f64).sum::<f64>() / refs.len() as f64) as f32;
    for (d, f) in dst.iter_mut().zip(from) {
        *d = f.map_or(mean, |b| src[b]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cell, ModelConfig};

    fn layout(cell: Cell, vocab: usize, embed: usize) -> Layout {
        Layout::new(ModelConfig {
            cell,
            vocab,
            hidden: 3,
            layers: 2,
            embed,
        })
    }

    /// Distinct values, so that a row taken from the wrong place shows.
    fn numbered(n: usize) -> Vec<f32> {
        (0..n).map(|i| i as f32 * 0.5 + 1.0).collect()
    }

    /// The base's character rows by base id: (input, head row, bias).
    fn rows_of(l: &Layout, p: &[f32], id: usize) -> (Vec<f32>, Vec<f32>, f32) {
        let (v, h) = (l.config.vocab, l.config.hidden);
        let input = match l.embed {
            Some(e) => p[e + id * l.config.embed..][..l.config.embed].to_vec(),
            None => {
                let gh = l.config.cell.gates() * h;
                (0..gh).map(|r| p[l.layers[0].w_ih + r * v + id]).collect()
            }
        };
        (
            input,
            p[l.head_w + id * h..][..h].to_vec(),
            p[l.head_b + id],
        )
    }

    #[test]
    fn shared_characters_keep_their_rows_wherever_their_ids_go() {
        for (cell, embed) in [(Cell::Lstm, 0), (Cell::Gru, 0), (Cell::Rnn, 2)] {
            let base = layout(cell, 5, embed);
            let p = numbered(base.total);
            // A permuted subset of the base's 5 characters, and two new ones (ids 1 and 4).
            let from = [Some(3), None, Some(0), Some(4), None, Some(1)];
            let log_freq = [
                Some(-1.0),
                Some(-2.0),
                Some(-3.0),
                Some(-1.5),
                Some(-4.0),
                None,
            ];
            let to = layout(cell, from.len(), embed);
            let map = VocabMap {
                from: &from,
                log_freq: &log_freq,
            };
            let q = carry_vocab(&base, &p, &to, &map);
            for (i, f) in from.iter().enumerate() {
                if let Some(b) = f {
                    assert_eq!(
                        rows_of(&to, &q, i),
                        rows_of(&base, &p, *b),
                        "{cell:?} id {i}"
                    );
                }
            }
            // The tensors without a row per character are the base's.
            for (tb, tt) in base.tensors.iter().zip(&to.tensors) {
                if tb.shape == tt.shape {
                    assert_eq!(
                        p[tb.offset..][..tb.len],
                        q[tt.offset..][..tt.len],
                        "{}",
                        tt.name
                    );
                }
            }
            // A new character's input and head row are the mean of the shared characters
            // that occur in the text (base ids 3, 0, 4; base id 1 does not occur).
            let mean = |k: usize| -> Vec<f32> {
                let rows: Vec<Vec<f32>> = [3, 0, 4]
                    .iter()
                    .map(|&b| {
                        let r = rows_of(&base, &p, b);
                        if k == 0 {
                            r.0
                        } else {
                            r.1
                        }
                    })
                    .collect();
                (0..rows[0].len())
                    .map(|j| rows.iter().map(|r| r[j]).sum::<f32>() / 3.0)
                    .collect()
            };
            let new = rows_of(&to, &q, 1);
            for (k, got) in [new.0, new.1].iter().enumerate() {
                for (g, w) in got.iter().zip(mean(k)) {
                    assert!((g - w).abs() < 1e-4, "{cell:?} part {k}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn a_new_characters_bias_sits_at_its_log_frequency_from_the_shared_ones() {
        let base = layout(Cell::Lstm, 3, 0);
        let mut p = vec![0.0; base.total];
        p[base.head_b..][..3].copy_from_slice(&[1.0, 2.0, 6.0]);
        let from = [Some(0), Some(1), None, None];
        let (fa, fb, fn1, fn2) = (0.5f64.ln(), 0.3f64.ln(), 0.15f64.ln(), 0.05f64.ln());
        let log_freq = [Some(fa), Some(fb), Some(fn1), Some(fn2)];
        let to = layout(Cell::Lstm, 4, 0);
        let q = carry_vocab(
            &base,
            &p,
            &to,
            &VocabMap {
                from: &from,
                log_freq: &log_freq,
            },
        );
        let b = &q[to.head_b..][..4];
        let (mean_b, mean_f) = (1.5, (fa + fb) / 2.0);
        assert_eq!(&b[..2], &[1.0, 2.0]);
        for (got, f) in [(b[2], fn1), (b[3], fn2)] {
            assert!((got as f64 - (mean_b + f - mean_f)).abs() < 1e-5, "{got}");
        }
        // Its logit over the shared characters' mean is its log-frequency over theirs:
        // ln(0.15) − mean(ln 0.5, ln 0.3) for a hidden state of zeros.
        assert!((b[2] as f64 - mean_b - (fn1 - mean_f)).abs() < 1e-5);
    }

    #[test]
    #[should_panic(expected = "only the vocabulary may differ")]
    fn another_architecture_is_a_bug() {
        let base = layout(Cell::Lstm, 3, 0);
        let to = layout(Cell::Gru, 3, 0);
        let from = [Some(0), Some(1), Some(2)];
        let log_freq = [None; 3];
        carry_vocab(
            &base,
            &vec![0.0; base.total],
            &to,
            &VocabMap {
                from: &from,
                log_freq: &log_freq,
            },
        );
    }
}
