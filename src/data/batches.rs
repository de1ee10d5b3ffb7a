//! The B-stream batcher of truncated BPTT over the training part of a text.
//!
//! Owns which characters a step reads. Does not own the ids' meaning (`vocab`) or where the
//! text splits (`training`).

use super::ids::Ids;
use crate::bail;
use crate::error::Result;

/// B contiguous streams over the training text (the first `train_len` ids), read T steps at a
/// time; step k of an epoch reads columns k·T .. k·T+T of every stream. Inputs and targets are
/// time-major (T, B).
pub struct Batches {
    ids: Ids,
    train_len: usize,
    pub batch: usize,
    pub seq: usize,
    pub stream_len: usize,
    pub steps_per_epoch: usize,
    row: Vec<u32>, // (T+1): one stream's ids for a step
}

impl Batches {
    /// Characters of training text.
    pub fn train_len(&self) -> usize {
        self.train_len
    }

    /// Batches over the first `train_len` of `ids` (the training part; the rest is
    /// validation).
    ///
    /// # Errors
    /// A training text too short for one batch.
    pub fn new(ids: Ids, train_len: usize, batch: usize, seq: usize) -> Result<Batches> {
        let stream_len = train_len.saturating_sub(1) / batch;
        let steps_per_epoch = stream_len / seq;
        if steps_per_epoch == 0 {
            bail!(
                "the training text has {train_len} characters, too short for one batch: --batch {batch} × --seq {seq} needs at least {}; use a smaller --batch or --seq",
                batch * seq + 1
            );
        }
        Ok(Batches {
            ids,
            train_len,
            batch,
            seq,
            stream_len,
            steps_per_epoch,
            row: vec![0; seq + 1],
        })
    }

    /// The ids the batches read from (training and validation).
    pub fn ids(&self) -> &Ids {
        &self.ids
    }

    /// Fills x and y (T·B each, time-major) with step `k` of the epoch (k < steps_per_epoch).
    pub fn fill(&mut self, k: usize, x: &mut [u32], y: &mut [u32]) {
        let (b, t) = (self.batch, self.seq);
        for bi in 0..b {
            self.ids.read(bi * self.stream_len + k * t, &mut self.row);
            for ti in 0..t {
                x[ti * b + bi] = self.row[ti];
                y[ti * b + bi] = self.row[ti + 1];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_contiguous_streams() {
        let data: Vec<u32> = (0..23).collect();
        let mut b = Batches::new(Ids::from_vec(&data, 65), 23, 2, 3).unwrap();
        assert_eq!((b.stream_len, b.steps_per_epoch), (11, 3));
        let (mut x, mut y) = (vec![0; 6], vec![0; 6]);
        b.fill(1, &mut x, &mut y);
        assert_eq!(x, vec![3, 14, 4, 15, 5, 16]);
        assert_eq!(y, vec![4, 15, 5, 16, 6, 17]);
        let e = Batches::new(Ids::from_vec(&data, 65), 23, 5, 5)
            .err()
            .unwrap();
        assert!(
            e.msg.contains("at least 26") && e.msg.contains("--batch"),
            "{}",
            e.msg
        );
    }
}
