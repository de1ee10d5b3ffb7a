//! Generation: N streams (usually one) stepped together, a matvec per layer per character
//! that reads each weight row once for all streams (no GEMM packing, no threads), then
//! softmax(logits / temperature) with optional top-k / top-p and one multinomial draw. The
//! arithmetic has a fixed order and our own exp, so a seed gives the same text on every
//! machine, and a stream gives the same text alone or in a batch.
//!
//! Owns the sampler's state and the choice of the next character. Does not own the CLI
//! (see `cli`) or the parameters.

use crate::engine::{cell_forward, gru_forward, rnn_forward};
use crate::linalg::matvecs_acc;
use crate::model::{Cell, Layout};
use crate::rng::Rng;

pub struct Sampler<'a> {
    layout: &'a Layout,
    params: &'a [f32],
    n: usize,         // streams
    h: Vec<f32>,      // (L, N, H)
    c: Vec<f32>,      // (L, N, H), LSTM only
    gates: Vec<f32>,  // (N, G·H)
    hgates: Vec<f32>, // (N, G·H): the GRU's hidden side, kept apart for r ⊙ (W_hn h + b_hn)
    c_new: Vec<f32>,  // (H)
    logits: Vec<f32>, // (N, V)
    probs: Vec<f32>,  // (V)
    emb: Vec<f32>,    // (N, D): the streams' embedded inputs, with an embedding
}

impl<'a> Sampler<'a> {
    pub fn new(layout: &'a Layout, params: &'a [f32], streams: usize) -> Self {
        let c = layout.config;
        let (l, h, v, n) = (c.layers, c.hidden, c.vocab, streams);
        let gh = c.cell.gates() * h;
        assert_eq!(params.len(), layout.total);
        Sampler {
            layout,
            params,
            n,
            h: vec![0.0; l * n * h],
            c: vec![0.0; l * n * h],
            gates: vec![0.0; n * gh],
            hgates: vec![0.0; if c.cell == Cell::Gru { n * gh } else { 0 }],
            c_new: vec![0.0; h],
            logits: vec![0.0; n * v],
            probs: vec![0.0; v],
            emb: vec![0.0; n * c.embed],
        }
    }

    /// Runs one character per stream through the model (`ids.len()` = streams); the logits
    /// for each stream's next character are then in `logits(s)`.
    pub fn feed(&mut self, ids: &[u32]) {
        let cfg = self.layout.config;
        let (h, v, n) = (cfg.hidden, cfg.vocab, self.n);
        let gh = cfg.cell.gates() * h; // G·H
        let gru = cfg.cell == Cell::Gru;
        assert_eq!(ids.len(), n, "one id per stream");
        let p = self.params;
        for (l, off) in self.layout.layers.iter().enumerate() {
            for (s, g) in self.gates.chunks_exact_mut(gh).enumerate() {
                for (j, ((x, &bi), &bh)) in g
                    .iter_mut()
                    .zip(&p[off.b_ih..][..gh])
                    .zip(&p[off.b_hh..][..gh])
                    .enumerate()
                {
                    // The GRU's b_hh goes with W_hh·h into `hgates`.
                    *x = if gru { bi } else { bi + bh };
                    if l == 0 && self.layout.embed.is_none() {
                        // One-hot input: column `id` of W_ih (G·H, V).
                        *x += p[off.w_ih + j * v + ids[s] as usize];
                    }
                }
            }
            let (below, this) = self.h.split_at_mut(l * n * h);
            if l > 0 {
                matvecs_acc(
                    &mut self.gates,
                    &p[off.w_ih..][..gh * h],
                    &below[(l - 1) * n * h..],
                    h,
                );
            } else if let Some(e) = self.layout.embed {
                // Embedded input: W_ih (4H, D) times each stream's row E[id].
                let d = cfg.embed;
                for (row, &id) in self.emb.chunks_exact_mut(d).zip(ids) {
                    row.copy_from_slice(&p[e + id as usize * d..][..d]);
                }
                matvecs_acc(&mut self.gates, &p[off.w_ih..][..gh * d], &self.emb, d);
            }
            let h_l = &mut this[..n * h]; // (N, H)
            let w_hh = &p[off.w_hh..][..gh * h];
            match cfg.cell {
                Cell::Lstm => {
                    matvecs_acc(&mut self.gates, w_hh, h_l, h);
                    for (s, g) in self.gates.chunks_exact_mut(gh).enumerate() {
                        let (gi, rest) = g.split_at_mut(h);
                        let (gf, rest) = rest.split_at_mut(h);
                        let (gg, go) = rest.split_at_mut(h);
                        let c_s = &mut self.c[(l * n + s) * h..][..h];
                        cell_forward(gi, gf, gg, go, c_s, &mut self.c_new, &mut h_l[s * h..][..h]);
                        c_s.copy_from_slice(&self.c_new);
                    }
                }
                Cell::Gru => {
                    for row in self.hgates.chunks_exact_mut(gh) {
                        row.copy_from_slice(&p[off.b_hh..][..gh]);
                    }
                    matvecs_acc(&mut self.hgates, w_hh, h_l, h);
                    let rows = self
                        .gates
                        .chunks_exact_mut(gh)
                        .zip(self.hgates.chunks_exact(gh));
                    for (s, (g, hg)) in rows.enumerate() {
                        for (x, &y) in g[..2 * h].iter_mut().zip(&hg[..2 * h]) {
                            *x += y;
                        }
                        let (gr, rest) = g.split_at_mut(h);
                        let (gz, gn) = rest.split_at_mut(h);
                        let h_s = &mut h_l[s * h..][..h];
                        self.c_new.copy_from_slice(h_s); // h_{t-1}
                        gru_forward(gr, gz, gn, &hg[2 * h..], &self.c_new, h_s);
                    }
                }
                Cell::Rnn => {
                    matvecs_acc(&mut self.gates, w_hh, h_l, h);
                    for (g, h_s) in self.gates.chunks_exact_mut(h).zip(h_l.chunks_exact_mut(h)) {
                        rnn_forward(g, h_s);
                    }
                }
            }
        }
        for row in self.logits.chunks_exact_mut(v) {
            row.copy_from_slice(&p[self.layout.head_b..][..v]);
        }
        let top = &self.h[(cfg.layers - 1) * n * h..];
        matvecs_acc(&mut self.logits, &p[self.layout.head_w..][..v * h], top, h);
    }

    /// Stream `s`'s logits for its next character, from the last `feed`.
    pub fn logits(&self, s: usize) -> &[f32] {
        let v = self.layout.config.vocab;
        &self.logits[s * v..][..v]
    }

    /// Picks the next character from the last logits: the argmax at temperature ≤ 1e-6,
    /// else a draw from softmax(logits / temperature), restricted to the `top_k` most likely.
    pub fn pick(&mut self, s: usize, how: &Pick, rng: &mut Rng) -> u32 {
        let v = self.layout.config.vocab;
        pick(&self.logits[s * v..][..v], &mut self.probs, how, rng)
    }

    /// Log-probability (nats) of `id` under stream `s`'s last logits at temperature 1.
    pub fn log_prob(&self, s: usize, id: u32) -> f64 {
        let logits = self.logits(s);
        let max = logits.iter().fold(f32::MIN, |m, &x| m.max(x)) as f64;
        let lse = max
            + logits
                .iter()
                .map(|&x| (x as f64 - max).exp())
                .sum::<f64>()
                .ln();
        logits[id as usize] as f64 - lse
    }
}

/// How the next character is chosen from the logits.
#[derive(Clone, Copy, Debug)]
pub struct Pick {
    /// Softmax temperature; at or below 1e-6 the argmax is taken.
    pub temperature: f32,
    /// Only the k most likely characters.
    pub top_k: Option<usize>,
    /// Only the most likely characters whose probabilities add up to at least p (nucleus).
    pub top_p: Option<f64>,
}

impl Pick {
    pub fn temperature(t: f32) -> Pick {
        Pick {
            temperature: t,
            top_k: None,
            top_p: None,
        }
    }
}

pub fn pick(logits: &[f32], probs: &mut [f32], how: &Pick, rng: &mut Rng) -> u32 {
    let (temperature, top_k) = (how.temperature, how.top_k);
    let argmax = logits
        .iter()
        .enumerate()
        .fold(0, |best, (i, &x)| if x > logits[best] { i } else { best });
    if temperature <= 1e-6 {
        return argmax as u32;
    }
    let floor = match top_k {
        Some(k) if k < logits.len() => {
            let mut sorted = logits.to_vec();
            sorted.sort_unstable_by(|a, b| b.total_cmp(a));
            sorted[k.max(1) - 1]
        }
        _ => f32::NEG_INFINITY,
    };
    let max = logits[argmax];
    let inv_t = 1.0 / temperature;
    let mut sum = 0.0f64;
    for (p, &x) in probs.iter_mut().zip(logits) {
        *p = if x >= floor {
            crate::float::exp_f32((x - max) * inv_t)
        } else {
            0.0
        };
        sum += *p as f64;
    }
    if let Some(top_p) = how.top_p.filter(|&p| p < 1.0) {
        // Keep the most likely characters (ties to the lower id) until they hold top_p.
        let mut order: Vec<usize> = (0..probs.len()).filter(|&i| probs[i] > 0.0).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        let mut kept = 0.0f64;
        let mut cut = order.len();
        for (n, &i) in order.iter().enumerate() {
            kept += probs[i] as f64;
            if kept >= top_p * sum {
                cut = n + 1;
                break;
            }
        }
        for &i in &order[cut..] {
            probs[i] = 0.0;
        }
        sum = order[..cut].iter().map(|&i| probs[i] as f64).sum();
    }
    let mut u = rng.uniform() * sum;
    for (i, &p) in probs.iter().enumerate() {
        u -= p as f64;
        if u < 0.0 {
            return i as u32;
        }
    }
    argmax as u32 // only reachable through rounding at the very top of the range
}

/// `charrnn sample`: prime, then stream `length` characters to stdout.
pub fn run(a: &crate::cli::SampleArgs) -> crate::error::Result<()> {
    use crate::error::Error;
    use std::io::Write;
    if !(a.temperature >= 0.0 && a.temperature.is_finite()) {
        crate::bail!("--temperature must be 0 or more, got {}", a.temperature);
    }
    if a.top_k == Some(0) {
        crate::bail!("--top-k must be at least 1");
    }
    if a.top_p.is_some_and(|p| !(p > 0.0 && p <= 1.0)) {
        crate::bail!("--top-p must be in (0, 1], got {}", a.top_p.unwrap());
    }
    if a.num_samples == 0 {
        crate::bail!("--num-samples must be at least 1");
    }
    if a.ngram == 0 {
        crate::bail!("--ngram must be at least 1");
    }
    // Read the corpus first: a bad path should fail before any output.
    let novelty_corpus = match &a.check_novelty {
        Some(p) => Some(crate::data::read_text(p, true)?),
        None => None,
    };
    let ck = crate::checkpoint::load_model(&a.checkpoint)?;
    let layout = Layout::new(ck.model);
    let vocab = &ck.vocab;
    let prime_ids = match &a.prime {
        Some(p) if !p.is_empty() => vocab.encode(p, "--prime")?.0,
        _ => vec![vocab.id('\n').unwrap_or(0)],
    };
    let seed = a.seed.unwrap_or_else(|| {
        let s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        eprintln!("charrnn: --seed {s} reproduces this sample");
        s
    });
    let mut rng = Rng::new(seed);
    let n = a.num_samples;
    let mut s = Sampler::new(&layout, &ck.params, n);
    for &id in &prime_ids {
        s.feed(&vec![id; n]);
    }
    let stdout = std::io::stdout();
    let interactive = std::io::IsTerminal::is_terminal(&stdout);
    let mut out = std::io::BufWriter::new(stdout.lock());
    let io = |e| Error::io("cannot write to stdout", e);
    if let Some(p) = a.prime.as_deref() {
        out.write_all(p.as_bytes()).map_err(io)?;
    }
    let mut buf = [0u8; 4];
    let how = Pick {
        temperature: a.temperature,
        top_k: a.top_k,
        top_p: a.top_p,
    };
    let mut logprob = vec![0.0f64; n];
    // Stream 0 is written as it is generated; with --num-samples, the others follow it.
    let mut others: Vec<String> = vec![String::new(); n];
    let mut first = String::new();
    let mut ids = vec![0u32; n];
    for i in 0..a.length {
        for (k, id) in ids.iter_mut().enumerate() {
            *id = s.pick(k, &how, &mut rng);
            if a.show_logprob {
                logprob[k] += s.log_prob(k, *id);
            }
        }
        let c = vocab.char(ids[0]);
        if novelty_corpus.is_some() {
            first.push(c);
        }
        for k in 1..n {
            others[k].push(vocab.char(ids[k]));
        }
        out.write_all(c.encode_utf8(&mut buf).as_bytes())
            .map_err(io)?;
        // Stream: every character on a terminal; else the first, line ends, every 64.
        if interactive || i == 0 || c == '\n' || i % 64 == 63 {
            out.flush().map_err(io)?;
        }
        if i + 1 < a.length {
            s.feed(&ids);
        }
    }
    out.write_all(b"\n").map_err(io)?;
    for (k, text) in others.iter().enumerate().skip(1) {
        write!(
            out,
            "\n--- sample {} of {n} ---\n{}{text}\n",
            k + 1,
            a.prime.as_deref().unwrap_or("")
        )
        .map_err(io)?;
    }
    out.flush().map_err(io)?;
    if a.show_logprob && a.length > 0 {
        for (k, lp) in logprob.iter().enumerate() {
            let which = if n > 1 {
                format!(" {}", k + 1)
            } else {
                String::new()
            };
            eprintln!(
                "charrnn: log-probability of sample{which}: {lp:.2} nats ({:.4} bits/char over {} characters, at temperature 1)",
                -lp / std::f64::consts::LN_2 / a.length as f64,
                a.length
            );
        }
    }
    others[0] = first;
    if let (Some(corpus), Some(path)) = (&novelty_corpus, &a.check_novelty) {
        match novelty(&others, corpus, a.ngram) {
            Some((novel, total)) => eprintln!(
                "charrnn: novelty: {:.1}% of the {total} sampled {}-grams do not occur in {}",
                100.0 * novel as f64 / total as f64,
                a.ngram,
                path.display()
            ),
            None => eprintln!(
                "charrnn: novelty: the sample is shorter than one {}-gram",
                a.ngram
            ),
        }
    }
    Ok(())
}

/// (novel, total): how many of the `n`-character windows of the samples never occur in
/// `corpus` (the memorisation check torch-rnn kept as a side script). None when every sample
/// is shorter than `n`.
pub fn novelty(samples: &[String], corpus: &str, n: usize) -> Option<(usize, usize)> {
    fn grams(text: &str, n: usize) -> impl Iterator<Item = u64> + '_ {
        let chars: Vec<char> = text.chars().collect();
        (0..chars.len().saturating_sub(n - 1)).map(move |i| {
            // FNV-1a over the window's scalar values: collisions are negligible at 64 bits.
            chars[i..i + n]
                .iter()
                .fold(0xcbf2_9ce4_8422_2325u64, |h, &c| {
                    (h ^ c as u64).wrapping_mul(0x0100_0000_01b3)
                })
        })
    }
    let seen: std::collections::HashSet<u64> = grams(corpus, n).collect();
    let (mut novel, mut total) = (0, 0);
    for g in samples.iter().flat_map(|s| grams(s, n)) {
        total += 1;
        novel += usize::from(!seen.contains(&g));
    }
    (total > 0).then_some((novel, total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{State, Workspace};
    use crate::linalg::Threads;
    use crate::model::{init_params, ModelConfig};

    #[test]
    fn sampler_matches_the_batched_engine() {
        for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
            for embed in [0, 5] {
                sampler_matches(cell, embed);
            }
        }
    }

    fn sampler_matches(cell: Cell, embed: usize) {
        // Two streams at once against the training engine with B = 2.
        let layout = Layout::new(ModelConfig {
            cell,
            vocab: 9,
            hidden: 12,
            layers: 2,
            embed,
        });
        let p: Vec<f32> = init_params(&layout, &mut Rng::new(1));
        let x = [3u32, 5, 0, 0, 8, 1, 8, 2, 1, 7]; // time-major (T = 5, B = 2)
        let mut ws = Workspace::<f32>::new(&layout, 2, 5, false, Threads(1));
        ws.forward(&p, &layout, &x, &State::zeros(2, 2, 12));
        let mut s = Sampler::new(&layout, &p, 2);
        let mut alone = Sampler::new(&layout, &p, 1);
        for t in 0..5 {
            s.feed(&x[2 * t..2 * t + 2]);
            alone.feed(&x[2 * t..2 * t + 1]);
            for b in 0..2 {
                for (a, w) in s
                    .logits(b)
                    .iter()
                    .zip(&ws.logits(9)[(2 * t + b) * 9..][..9])
                {
                    assert!(
                        (a - w).abs() < 1e-5,
                        "{cell:?} step {t} stream {b}: {a} vs {w}"
                    );
                }
            }
            assert!(
                alone.logits(0) == s.logits(0),
                "a stream gives the same bits alone"
            );
        }
    }

    #[test]
    fn novelty_counts_windows_absent_from_the_corpus() {
        assert_eq!(novelty(&["abcd".into()], "xxabcxx", 3), Some((1, 2))); // "abc" occurs, "bcd" does not
        assert_eq!(novelty(&["ab".into()], "abc", 3), None);
        assert_eq!(
            novelty(&["春眠不觉".into(), "晓".into()], "春眠不觉晓", 2),
            Some((0, 3))
        );
    }

    #[test]
    fn top_p_keeps_the_smallest_set_holding_p() {
        // softmax([3, 2, 1, 0]) = [0.644, 0.237, 0.087, 0.032]
        let logits = [3.0f32, 2.0, 1.0, 0.0];
        let mut probs = [0.0f32; 4];
        let mut rng = Rng::new(1);
        let mut counts = [0usize; 4];
        for _ in 0..3000 {
            counts[pick(
                &logits,
                &mut probs,
                &Pick {
                    top_p: Some(0.85),
                    ..Pick::temperature(1.0)
                },
                &mut rng,
            ) as usize] += 1;
        }
        assert!(
            counts[2] == 0 && counts[3] == 0 && counts[0] > 0 && counts[1] > 0,
            "{counts:?}"
        );
        let only_top = pick(
            &logits,
            &mut probs,
            &Pick {
                top_p: Some(0.5),
                ..Pick::temperature(1.0)
            },
            &mut rng,
        );
        assert_eq!(only_top, 0);
    }

    #[test]
    fn picking_rules() {
        let logits = [0.0f32, 2.0, 1.0, -1.0];
        let mut probs = [0.0f32; 4];
        let mut rng = Rng::new(0);
        assert_eq!(
            pick(&logits, &mut probs, &Pick::temperature(0.0), &mut rng),
            1
        );
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            counts[pick(
                &logits,
                &mut probs,
                &Pick {
                    top_k: Some(2),
                    ..Pick::temperature(1.0)
                },
                &mut rng,
            ) as usize] += 1;
        }
        assert_eq!(
            counts[0] + counts[3],
            0,
            "top-k 2 must only pick ids 1 and 2: {counts:?}"
        );
        // softmax([2, 1]) = [0.731, 0.269]
        assert!(
            (counts[1] as f64 / 4000.0 - 0.731).abs() < 0.03,
            "{counts:?}"
        );
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            counts[pick(&logits, &mut probs, &Pick::temperature(1.0), &mut rng) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
    }
}
