//! Many streams of one model stepped as one batch: every step feeds each stream one character
//! (a prompt character or its last pick) in one pass over the weights, then advances each
//! stream on its own; a finished stream leaves the batch at once and a new one joins at the
//! next step. `charrnn sample --num-samples` and the server's scheduler both drive it.
//!
//! A stream can also be parked: taken out with its recurrent state and brought back later
//! (`park`, `resume`), its text unchanged, so a server can pause one whose reader is slow.
//!
//! Owns which stream is in which slot of the sampler. Does not own a stream's rules (`stream`)
//! or where its text goes.

use super::sampler::{Sampler, Saved};
use super::stream::{Scores, Step, Stream};
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
    /// The log-probabilities the last step released, in slot order, until `take_scores`.
    scores: Vec<(K, Scores)>,
}

/// A stream out of the batch with its recurrent state (`Batch::park`).
pub struct Parked<K> {
    pub key: K,
    stream: Stream,
    state: Saved,
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
            scores: Vec::new(),
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

    /// Takes stream `key` out of the batch with its state, to `resume` it later.
    pub fn park(&mut self, key: &K) -> Option<Parked<K>> {
        let slot = self.streams.iter().position(|(k, _)| k == key)?;
        let state = self.sampler.save_stream(slot);
        let stream = self.remove_slot(slot);
        Some(Parked {
            key: key.clone(),
            stream,
            state,
        })
    }

    /// Brings a parked stream back; it is fed from the next step, and its text is what it
    /// would have been had it never left.
    pub fn resume(&mut self, p: Parked<K>) {
        self.sampler.add_saved(&p.state);
        self.streams.push((p.key, p.stream));
    }

    fn remove_slot(&mut self, slot: usize) -> Stream {
        self.sampler.remove_stream(slot);
        self.streams.swap_remove(slot).1
    }

    /// One step of every stream; appends what each did to `out` (in slot order). Streams
    /// that finish leave the batch (see `take_finished`); their final `Step::Done` is in `out`.
    /// The log-probabilities released wait for `take_scores`.
    pub fn step(&mut self, out: &mut Vec<(K, Step)>) {
        if self.streams.is_empty() {
            return;
        }
        self.scores.clear();
        self.ids.clear();
        self.ids.extend(self.streams.iter().map(|(_, s)| s.input()));
        self.sampler.feed(&self.ids);
        for (slot, (key, stream)) in self.streams.iter_mut().enumerate() {
            let step = stream.advance(&mut self.sampler, slot, self.vocab);
            if let Some(scores) = stream.take_scores() {
                self.scores.push((key.clone(), scores));
            }
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

    /// The log-probabilities released by the last step, in the order of its `out` (only the
    /// streams that keep them and released some).
    pub fn take_scores(&mut self) -> Vec<(K, Scores)> {
        std::mem::take(&mut self.scores)
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

    /// Steps `batch` until it is empty; each key's text and released scores, parking `key`
    /// for the steps in `parked`.
    fn run_all(
        batch: &mut Batch<u32>,
        key: u32,
        parked: std::ops::Range<usize>,
    ) -> Vec<(String, Vec<Scores>)> {
        let mut got = vec![(String::new(), Vec::new()); 4];
        let (mut out, mut away) = (Vec::new(), None);
        for step in 0.. {
            if step == parked.start {
                away = batch.park(&key);
                assert!(away.is_some());
            }
            if step == parked.end {
                batch.resume(away.take().unwrap());
            }
            if batch.is_empty() && away.is_none() {
                break;
            }
            out.clear();
            batch.step(&mut out);
            for (k, s) in batch.take_scores() {
                got[k as usize].1.push(s);
            }
            for (k, s) in out.drain(..) {
                if let Step::Text(t) | Step::Done(t, _) = s {
                    got[k as usize].0.push_str(&t);
                }
            }
        }
        got
    }

    #[test]
    fn a_parked_stream_resumes_its_text_and_scores_follow_the_text() {
        let layout = Layout::new(ModelConfig {
            cell: Cell::Lstm,
            vocab: 12,
            hidden: 20,
            layers: 2,
            embed: 0,
        });
        let p: Vec<f32> = init_params(&layout, &mut Rng::new(4));
        let vocab = Vocab::from_chars("abcdefghij \n".chars().collect(), None);
        let settings = |seed, logprobs: Option<usize>, max| Settings {
            seed,
            max_chars: Some(max),
            stop: vec!["jj".into(), "ab".into()],
            logprobs,
            prompt_logprobs: logprobs.is_some(),
            ..Settings::default()
        };
        let fill = |b: &mut Batch<u32>, logprobs| {
            b.add(0, Stream::new(vec![1, 2], &settings(1, None, 80)));
            b.add(1, Stream::new(vec![3, 4, 5], &settings(6, logprobs, 80)));
            b.add(2, Stream::new(vec![6, 7, 8, 9], &settings(3, logprobs, 0)));
            b.add(3, Stream::new(vec![0], &settings(4, None, 50)));
        };
        let mut plain = Batch::new(Sampler::new(&layout, &p, 0), &vocab);
        fill(&mut plain, None);
        let want = run_all(&mut plain, 3, 1..2);
        let mut scored = Batch::new(Sampler::new(&layout, &p, 0), &vocab);
        fill(&mut scored, Some(3));
        let got = run_all(&mut scored, 1, 4..9);
        let mut still = Batch::new(Sampler::new(&layout, &p, 0), &vocab);
        fill(&mut still, Some(3));
        let unparked = run_all(&mut still, 1, usize::MAX..usize::MAX);
        for k in 0..4 {
            assert_eq!(
                got[k].0, want[k].0,
                "stream {k}: parking or scoring changed the text"
            );
        }
        assert!(
            got[1].1 == unparked[1].1,
            "parking changed the log-probabilities"
        );
        // Stream 1 ends at a stop string (its held-back characters' scores are dropped).
        assert!((1..80).contains(&want[1].0.chars().count()) && want[2].0.is_empty());
        // Stream 1: its prompt's 2 scored characters, then one score per character of text.
        let prompt: Vec<_> = got[1].1.iter().filter_map(|s| s.prompt.clone()).collect();
        assert_eq!(prompt.len(), 1);
        let chars: Vec<char> = prompt[0].iter().map(|l| l.char).collect();
        assert_eq!(chars, ['e', 'f']);
        let text: String = got[1]
            .1
            .iter()
            .flat_map(|s| &s.text)
            .map(|l| l.char)
            .collect();
        assert_eq!(text, got[1].0);
        for l in got[1].1.iter().flat_map(|s| &s.text) {
            assert!(l.logprob < 0.0 && l.top.len() == 3 && l.top[0].1 >= l.logprob);
        }
        // Stream 2 (no characters): only its prompt's, and the other streams none.
        let s2: Vec<usize> = got[2]
            .1
            .iter()
            .map(|s| s.prompt.as_ref().unwrap().len())
            .collect();
        assert_eq!(s2, [3]);
        assert!(got[0].1.is_empty() && got[3].1.is_empty());
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
