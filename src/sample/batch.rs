//! Many streams of one model stepped as one batch: every step feeds each stream one character
//! (a prompt character or its last pick) in one pass over the weights, then advances each
//! stream on its own; a finished stream leaves the batch at once and a new one joins at the
//! next step. `charrnn sample --num-samples` and the server's scheduler both drive it.
//!
//! Owns which stream is in which slot of the sampler. Does not own a stream's rules (`stream`)
//! or where its text goes.

use super::sampler::Sampler;
use super::stream::{Step, Stream};
use crate::data::Vocab;

/// Streams keyed by `K` (a request id, a sample number), stepped together.
pub struct Batch<'m, K> {
    sampler: Sampler,
    vocab: &'m Vocab,
    /// Slot i of the sampler is `streams[i]`.
    streams: Vec<(K, Stream)>,
    ids: Vec<u32>, // (N): this step's inputs
    /// Streams that finished and left, until `take_finished`.
    finished: Vec<(K, Stream)>,
}

impl<'m, K: Clone + PartialEq> Batch<'m, K> {
    /// An empty batch stepping `sampler` (which must have no streams yet), with the
    /// characters of `vocab`.
    pub fn new(sampler: Sampler, vocab: &'m Vocab) -> Self {
        assert_eq!(sampler.streams(), 0, "a batch starts empty");
        Batch {
            sampler,
            vocab,
            streams: Vec::new(),
            ids: Vec::new(),
            finished: Vec::new(),
        }
    }

    /// Streams in the batch.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// Whether no stream is in the batch.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Adds a stream (from a zero state); it is fed from the next step. A stream that is
    /// already finished (a limit of 0 characters) is not added.
    pub fn add(&mut self, key: K, stream: Stream) {
        if stream.finished().is_none() {
            self.sampler.add_stream();
            self.streams.push((key, stream));
        }
    }

    /// Takes stream `key` out of the batch (its client left), if it is there.
    pub fn remove(&mut self, key: &K) -> Option<Stream> {
        let slot = self.streams.iter().position(|(k, _)| k == key)?;
        Some(self.remove_slot(slot))
    }

    fn remove_slot(&mut self, slot: usize) -> Stream {
        self.sampler.remove_stream(slot);
        self.streams.swap_remove(slot).1
    }

    /// One step of every stream; appends what each did to `out` (in slot order). Streams
    /// that finish leave the batch (see `take_finished`); their final `Step::Done` is in `out`.
    pub fn step(&mut self, out: &mut Vec<(K, Step)>) {
        if self.streams.is_empty() {
            return;
        }
        self.ids.clear();
        self.ids.extend(self.streams.iter().map(|(_, s)| s.input()));
        self.sampler.feed(&self.ids);
        for (slot, (key, stream)) in self.streams.iter_mut().enumerate() {
            let step = stream.advance(&mut self.sampler, slot, self.vocab);
            out.push((key.clone(), step));
        }
        // Leave from the back, so that a swap-remove never moves a stream still to be checked.
        for slot in (0..self.streams.len()).rev() {
            if self.streams[slot].1.finished().is_some() {
                let key = self.streams[slot].0.clone();
                let stream = self.remove_slot(slot);
                self.finished.push((key, stream));
            }
        }
    }

    /// The streams that finished since the last call, with their final state (log-probability,
    /// characters generated).
    pub fn take_finished(&mut self) -> Vec<(K, Stream)> {
        std::mem::take(&mut self.finished)
    }

    /// The stream with `key`, while it is in the batch.
    pub fn get(&self, key: &K) -> Option<&Stream> {
        self.streams.iter().find(|(k, _)| k == key).map(|(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::init_params;
    use crate::model::{Cell, Layout, ModelConfig};
    use crate::rng::Rng;
    use crate::sample::Settings;

    /// Runs `batch` until `key` finishes, adding `late` streams at the given steps and
    /// removing keys at others; returns `key`'s text.
    fn text_of(
        batch: &mut Batch<u32>,
        key: u32,
        joins: &mut Vec<(usize, u32, Stream)>,
        leaves: &[(usize, u32)],
    ) -> String {
        let mut text = String::new();
        let mut out = Vec::new();
        for step in 0.. {
            while let Some(i) = joins.iter().position(|(at, _, _)| *at == step) {
                let (_, k, s) = joins.remove(i);
                batch.add(k, s);
            }
            for (_, k) in leaves.iter().filter(|(at, _)| *at == step) {
                batch.remove(k);
            }
            out.clear();
            batch.step(&mut out);
            for (k, s) in out.drain(..) {
                if let (true, Step::Text(t) | Step::Done(t, _)) = (k == key, s) {
                    text.push_str(&t);
                }
            }
            if step > 5 && batch.get(&key).is_none() {
                break;
            }
        }
        text
    }

    #[test]
    fn a_stream_gives_the_same_text_alone_or_among_streams_that_join_and_leave() {
        for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
            let layout = Layout::new(ModelConfig {
                cell,
                vocab: 12,
                hidden: 20,
                layers: 2,
                embed: 0,
            });
            let p: Vec<f32> = init_params(&layout, &mut Rng::new(3));
            let vocab = Vocab::from_chars("abcdefghij \n".chars().collect(), None);
            let settings = |seed| Settings {
                seed,
                temperature: 1.0,
                max_chars: Some(60),
                stop: vec!["jj".into()],
                ..Settings::default()
            };
            let stream = |seed, prompt: &[u32]| Stream::new(prompt.to_vec(), &settings(seed));
            let mut alone = Batch::new(Sampler::new(&layout, &p, 0), &vocab);
            alone.add(1, stream(7, &[1, 2, 3]));
            let want = text_of(&mut alone, 1, &mut Vec::new(), &[]);
            assert!(!want.is_empty());
            let threads = 1 + cell as usize % 2; // one or two threads: the same text
            let crowd_sampler =
                Sampler::with(&layout, &p, 0, crate::sample::Precision::F32, threads);
            let mut crowd = Batch::new(crowd_sampler, &vocab);
            crowd.add(0, stream(1, &[4]));
            crowd.add(2, stream(2, &[5, 6, 7, 8, 9]));
            let mut joins = vec![
                (3, 1, stream(7, &[1, 2, 3])),
                (5, 3, stream(3, &[0])),
                (9, 4, stream(4, &[2])),
            ];
            let got = text_of(&mut crowd, 1, &mut joins, &[(6, 0), (12, 3)]);
            assert_eq!(got, want, "{cell:?}");
        }
    }
}
