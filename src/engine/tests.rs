//! The engine's proofs: a naive forward, an f64 numeric gradient check of every parameter
//! tensor and of the carried-in state, and the PyTorch reference fixture.

use super::isa::{Bf16Products, Cpu};
use super::*;
use crate::model::{Cell, Layout, ModelConfig};
use crate::optim::{clip_grad_norm, Adam};
use crate::rng::Rng;

fn sig(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Plain loops, one stream and one step at a time, in f64: the definition of the model.
/// Returns (logits (T·B, V) time-major, final state).
fn naive_forward(
    p: &[f64],
    layout: &Layout,
    x: &[u32],
    b: usize,
    s0: &State<f64>,
) -> (Vec<f64>, State<f64>) {
    let c = layout.config;
    let (h, v, nl) = (c.hidden, c.vocab, c.layers);
    let t_len = x.len() / b;
    let mut logits = vec![0.0; t_len * b * v];
    let mut fin = State::zeros(nl, b, h);
    for bi in 0..b {
        let mut hs: Vec<Vec<f64>> = (0..nl)
            .map(|l| s0.h[(l * b + bi) * h..][..h].to_vec())
            .collect();
        let mut cs: Vec<Vec<f64>> = (0..nl)
            .map(|l| s0.c[(l * b + bi) * h..][..h].to_vec())
            .collect();
        for t in 0..t_len {
            let id = x[t * b + bi] as usize;
            let mut inp = match layout.embed {
                Some(e) => p[e + id * c.embed..][..c.embed].to_vec(),
                None => {
                    let mut one_hot = vec![0.0; v];
                    one_hot[id] = 1.0;
                    one_hot
                }
            };
            for (l, off) in layout.layers.iter().enumerate() {
                let i_sz = off.input;
                let gh = c.cell.gates() * h;
                // Input side and hidden side kept apart, as PyTorch's equations write them.
                let mut zx = vec![0.0; gh];
                let mut zh = vec![0.0; gh];
                for j in 0..gh {
                    zx[j] = p[off.b_ih + j];
                    for k in 0..i_sz {
                        zx[j] += p[off.w_ih + j * i_sz + k] * inp[k];
                    }
                    zh[j] = p[off.b_hh + j];
                    for k in 0..h {
                        zh[j] += p[off.w_hh + j * h + k] * hs[l][k];
                    }
                }
                let z = |j: usize| zx[j] + zh[j];
                for j in 0..h {
                    match c.cell {
                        Cell::Lstm => {
                            let (i, f, g, o) = (
                                sig(z(j)),
                                sig(z(h + j)),
                                z(2 * h + j).tanh(),
                                sig(z(3 * h + j)),
                            );
                            cs[l][j] = f * cs[l][j] + i * g;
                            hs[l][j] = o * cs[l][j].tanh();
                        }
                        Cell::Gru => {
                            let (r, u) = (sig(z(j)), sig(z(h + j)));
                            let n = (zx[2 * h + j] + r * zh[2 * h + j]).tanh();
                            hs[l][j] = (1.0 - u) * n + u * hs[l][j];
                        }
                        Cell::Rnn => hs[l][j] = z(j).tanh(),
                    }
                }
                inp = hs[l].clone();
            }
            for k in 0..v {
                let mut s = p[layout.head_b + k];
                for j in 0..h {
                    s += p[layout.head_w + k * h + j] * inp[j];
                }
                logits[(t * b + bi) * v + k] = s;
            }
        }
        for l in 0..nl {
            fin.h[(l * b + bi) * h..][..h].copy_from_slice(&hs[l]);
            fin.c[(l * b + bi) * h..][..h].copy_from_slice(&cs[l]);
        }
    }
    (logits, fin)
}

fn random_ids(rng: &mut Rng, n: usize, v: usize) -> Vec<u32> {
    (0..n).map(|_| (rng.next_u64() % v as u64) as u32).collect()
}

fn random_state(rng: &mut Rng, l: usize, b: usize, h: usize) -> State<f64> {
    let mut s = State::zeros(l, b, h);
    for x in s.h.iter_mut().chain(s.c.iter_mut()) {
        *x = rng.uniform_in(-0.8, 0.8);
    }
    s
}

fn to_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

#[test]
fn fast_forward_equals_naive_forward() {
    for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
        fast_forward_equals_naive(cell);
    }
}

fn fast_forward_equals_naive(cell: Cell) {
    // Sizes that exercise GEMM blocking (H=40, 4H=160) and more than two layers.
    for &(v, h, l, b, t, threads, embed) in &[
        (7, 5, 3, 3, 4, 1, 0),
        (23, 40, 2, 9, 6, 2, 0),
        (11, 40, 2, 4, 5, 3, 0),
        (9, 24, 2, 1, 7, 2, 0),  // one stream: the matvec path of validation
        (13, 20, 2, 3, 5, 2, 6), // a learned embedding
        (13, 20, 2, 1, 5, 1, 6),
    ] {
        let layout = Layout::new(ModelConfig {
            cell,
            vocab: v,
            hidden: h,
            layers: l,
            embed,
        });
        let mut rng = Rng::new(11);
        let p64: Vec<f64> = init_params(&layout, &mut rng);
        let x = random_ids(&mut rng, b * t, v);
        let s0 = random_state(&mut rng, l, b, h);
        let (want, want_state) = naive_forward(&p64, &layout, &x, b, &s0);

        let p32 = to_f32(&p64);
        let s32 = State {
            h: to_f32(&s0.h),
            c: to_f32(&s0.c),
        };
        let mut ws = Workspace::<f32>::new(&layout, b, t, false, Threads(threads));
        ws.forward(&p32, &layout, &x, &s32);
        let mut got_state = State::zeros(l, b, h);
        ws.final_state(&mut got_state);
        let worst = |a: &[f32], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(&x, &y)| (x as f64 - y).abs())
                .fold(0.0, f64::max)
        };
        assert!(
            worst(ws.logits(v), &want) < 1e-5,
            "{cell:?}: logits differ by {}",
            worst(ws.logits(v), &want)
        );
        assert!(worst(&got_state.h, &want_state.h) < 1e-5);
        if cell == Cell::Lstm {
            assert!(worst(&got_state.c, &want_state.c) < 1e-5);
        } else {
            assert!(got_state.c.iter().all(|&c| c == 0.0), "only the LSTM has c");
        }

        // And the f64 engine agrees with it to round-off.
        let mut ws64 = Workspace::<f64>::new(&layout, b, t, false, Threads(1));
        ws64.forward(&p64, &layout, &x, &s0);
        let d = ws64
            .logits(v)
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(d < 1e-12, "f64 engine differs by {d}");
    }
}

#[test]
fn gradients_match_central_differences_in_f64() {
    // One thread, and a team of two (each owning two of the four hidden units); without and
    // with dropout (masks drawn once, then fixed for every evaluation of the loss).
    for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
        for threads in [1, 2] {
            gradient_check(cell, Threads(threads), 0.0, 0);
        }
        gradient_check(cell, Threads(2), 0.3, 0);
        gradient_check(cell, Threads(1), 0.0, 3); // a learned embedding of width 3
        gradient_check(cell, Threads(2), 0.3, 3);
    }
}

fn gradient_check(cell: Cell, threads: Threads, dropout: f64, embed: usize) {
    let (v, h, l, b, t) = (5, 4, 2, 2, 3);
    let layout = Layout::new(ModelConfig {
        cell,
        vocab: v,
        hidden: h,
        layers: l,
        embed,
    });
    let mut rng = Rng::new(3);
    // Wider than the default init so that no gate saturates into a flat gradient.
    let p: Vec<f64> = (0..layout.total)
        .map(|_| rng.uniform_in(-0.9, 0.9))
        .collect();
    let mut x = random_ids(&mut rng, b * t, v);
    for (k, id) in x.iter_mut().take(v).enumerate() {
        *id = k as u32; // every input column of W_ih gets a gradient
    }
    let y = random_ids(&mut rng, b * t, v);
    let s0 = random_state(&mut rng, l, b, h);
    let mut ws = Workspace::<f64>::new(&layout, b, t, true, threads);
    ws.set_dropout(dropout, &mut Rng::new(17));

    let mut loss_at = |p: &[f64], s: &State<f64>| {
        ws.forward(p, &layout, &x, s);
        ws.loss_sum(&y, v) / y.len() as f64
    };
    let eps = 1e-5;
    let numeric = |f: &mut dyn FnMut(f64) -> f64| (f(eps) - f(-eps)) / (2.0 * eps);

    let mut num_p = vec![0.0; p.len()];
    for k in 0..p.len() {
        num_p[k] = numeric(&mut |d| {
            let mut q = p.clone();
            q[k] += d;
            loss_at(&q, &s0)
        });
    }
    let mut num_s = State::zeros(l, b, h);
    for k in 0..s0.h.len() {
        num_s.h[k] = numeric(&mut |d| {
            let mut s = s0.clone();
            s.h[k] += d;
            loss_at(&p, &s)
        });
        num_s.c[k] = numeric(&mut |d| {
            let mut s = s0.clone();
            s.c[k] += d;
            loss_at(&p, &s)
        });
    }

    let mut ws = Workspace::<f64>::new(&layout, b, t, true, threads);
    ws.set_dropout(dropout, &mut Rng::new(17)); // the same masks
    ws.forward(&p, &layout, &x, &s0);
    ws.loss_and_grad(&y, v);
    let mut grads = vec![0.0; p.len()];
    ws.backward(&p, &layout, &x, &mut grads);

    let check = |name: &str, got: &[f64], want: &[f64]| {
        let mut checked = 0;
        for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
            if w.abs() > 1e-4 {
                let rel = (g - w).abs() / w.abs();
                assert!(
                    rel <= 1e-6,
                    "{cell:?} {name}[{k}]: analytic {g}, numeric {w}, relative error {rel}"
                );
                checked += 1;
            } else {
                assert!(
                    (g - w).abs() < 1e-9,
                    "{cell:?} {name}[{k}]: analytic {g}, numeric {w}"
                );
            }
        }
        assert!(
            checked > got.len() / 2,
            "{cell:?} {name}: only {checked} of {} entries above 1e-4",
            got.len()
        );
    };
    for ti in &layout.tensors {
        let r = ti.offset..ti.offset + ti.len;
        check(&ti.name, &grads[r.clone()], &num_p[r]);
    }
    check("h0", &ws.dstate().h, &num_s.h);
    if cell == Cell::Lstm {
        check("c0", &ws.dstate().c, &num_s.c);
    } else {
        // No cell state: c0 must not matter, and no gradient may claim it does.
        assert!(num_s.c.iter().all(|&g| g == 0.0));
        assert!(ws.dstate().c.iter().all(|&g| g == 0.0));
    }
}

#[test]
fn gradients_at_training_sizes_match_the_f64_engine() {
    // The gradient check above runs at H=4; the kernels' blocking and remainders, and a team of
    // two splitting an odd number of 16-unit blocks, only show at sizes runs choose (H=240 and
    // 272 are 15 and 17 blocks of 16). The f64 engine is checked against central differences
    // above; here the f32 step must match it to f32 round-off, and bf16 products to bf16's.
    // A batch of 50 streams (3 tiles of 16 and 2 left over; the PyTorch peer's batch) and a
    // sequence with a remainder past 16 steps exercise the row remainders too.
    for (h, b, t) in [(240, 4, 6), (272, 4, 6), (272, 50, 19)] {
        let (v, l) = (82, 2);
        let layout = Layout::new(ModelConfig {
            cell: Cell::Lstm,
            vocab: v,
            hidden: h,
            layers: l,
            embed: 0,
        });
        let mut rng = Rng::new(3);
        let p: Vec<f64> = init_params(&layout, &mut rng);
        let x = random_ids(&mut rng, b * t, v);
        let y = random_ids(&mut rng, b * t, v);
        let s0 = random_state(&mut rng, l, b, h);
        let mut ws = Workspace::<f64>::new(&layout, b, t, true, Threads(1));
        ws.forward(&p, &layout, &x, &s0);
        ws.loss_and_grad(&y, v);
        let mut want = vec![0.0; p.len()];
        ws.backward(&p, &layout, &x, &mut want);

        // f32, and bf16 on every kernel this CPU runs.
        let kernels = Cpu::here().bf16_kernels().into_iter().map(Some);
        for (kernel, tol) in [(None, 1e-5)].into_iter().chain(kernels.map(|k| (k, 1e-2))) {
            let precision = kernel.map_or(MatmulPrecision::F32, |_| MatmulPrecision::Bf16);
            let p32 = to_f32(&p);
            let s32 = State {
                h: to_f32(&s0.h),
                c: to_f32(&s0.c),
            };
            let mut ws = Workspace::<f32>::new(&layout, b, t, true, Threads(2));
            ws.set_precision(precision);
            if let Some(k) = kernel {
                ws.set_bf16_kernel(k);
            }
            ws.forward(&p32, &layout, &x, &s32);
            ws.loss_and_grad(&y, v);
            let mut got = vec![0.0f32; p.len()];
            ws.backward(&p32, &layout, &x, &mut got);
            for ti in &layout.tensors {
                let r = ti.offset..ti.offset + ti.len;
                let norm = want[r.clone()].iter().map(|w| w * w).sum::<f64>().sqrt();
                let diff = (got[r.clone()].iter().zip(&want[r]))
                    .map(|(&g, &w)| (g as f64 - w).powi(2))
                    .sum::<f64>()
                    .sqrt();
                assert!(
                    diff <= tol * norm,
                    "H={h} {precision:?} on {kernel:?} {}: off by {:.1e} of its norm",
                    ti.name,
                    diff / norm
                );
            }
        }
    }
}

#[test]
fn dropout_zeroes_about_p_of_the_inputs_and_scales_the_rest() {
    let layout = Layout::new(ModelConfig {
        cell: Cell::Lstm,
        vocab: 7,
        hidden: 32,
        layers: 2,
        embed: 0,
    });
    let mut rng = Rng::new(2);
    let p: Vec<f64> = init_params(&layout, &mut rng);
    let x = random_ids(&mut rng, 10 * 20, 7);
    let s0 = State::zeros(2, 10, 32);
    let mut plain = Workspace::<f64>::new(&layout, 10, 20, true, Threads(1));
    plain.forward(&p, &layout, &x, &s0);
    let mut ws = Workspace::<f64>::new(&layout, 10, 20, true, Threads(1));
    ws.set_dropout(0.25, &mut Rng::new(5));
    let masks = &ws.dropout.as_ref().unwrap().masks;
    let all: Vec<f64> = masks.iter().flatten().copied().collect();
    let zero = all.iter().filter(|&&m| m == 0.0).count() as f64 / all.len() as f64;
    assert!((zero - 0.25).abs() < 0.02, "dropped share {zero}");
    assert!(all
        .iter()
        .all(|&m| m == 0.0 || (m - 1.0 / 0.75).abs() < 1e-12));
    ws.forward(&p, &layout, &x, &s0);
    assert!(
        ws.logits(7) != plain.logits(7),
        "dropout changes the forward"
    );
    ws.set_dropout(0.0, &mut Rng::new(5));
    ws.forward(&p, &layout, &x, &s0);
    assert!(ws.logits(7) == plain.logits(7), "p = 0 turns it off");
}

#[test]
fn gradients_accumulate_across_backward_calls() {
    let layout = Layout::new(ModelConfig {
        cell: Cell::Lstm,
        vocab: 6,
        hidden: 3,
        layers: 2,
        embed: 0,
    });
    let mut rng = Rng::new(5);
    let p: Vec<f64> = init_params(&layout, &mut rng);
    let x = random_ids(&mut rng, 4, 6);
    let y = random_ids(&mut rng, 4, 6);
    let s0 = State::zeros(2, 2, 3);
    let mut ws = Workspace::<f64>::new(&layout, 2, 2, true, Threads(1));
    let mut once = vec![0.0; p.len()];
    let mut twice = vec![0.0; p.len()];
    for (g, reps) in [(&mut once, 1), (&mut twice, 2)] {
        for _ in 0..reps {
            ws.forward(&p, &layout, &x, &s0);
            ws.loss_and_grad(&y, 6);
            ws.backward(&p, &layout, &x, g);
        }
    }
    for (a, b) in once.iter().zip(&twice) {
        assert!((2.0 * a - b).abs() < 1e-12);
    }
    assert!(once.iter().any(|&g| g.abs() > 1e-3));
}

// ---- PyTorch reference (tests/fixtures/reference_lstm.safetensors, made by
// ---- scripts/gen_reference.py with torch 2.15) ----

struct Fixture {
    file: crate::checkpoint::TensorFile,
}

impl Fixture {
    fn load() -> Fixture {
        Fixture::named("reference_lstm.safetensors")
    }
    fn named(name: &str) -> Fixture {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let file = crate::checkpoint::TensorFile::open(&path)
            .expect("reference fixture is committed in the repo");
        Fixture { file }
    }
    fn meta(&self, key: &str) -> String {
        self.file.metadata[key].clone()
    }
    fn f32(&self, name: &str) -> Vec<f32> {
        self.file
            .f32(name, None)
            .unwrap_or_else(|e| panic!("fixture: {e}"))
    }
    fn ids(&self, name: &str) -> (Vec<i64>, Vec<usize>) {
        let (dtype, shape, bytes) = self.file.raw(name).unwrap();
        assert_eq!(dtype, "I64", "{name}");
        let v = bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        (v, shape)
    }
    /// (B, T) batch-first ids → time-major (T·B).
    fn time_major(&self, ids: &[i64], b: usize, t: usize) -> Vec<u32> {
        (0..t * b)
            .map(|k| ids[(k % b) * t + k / b] as u32)
            .collect()
    }
    fn params(&self, layout: &Layout, prefix: &str) -> Vec<f32> {
        let mut p = vec![0.0; layout.total];
        for ti in &layout.tensors {
            let w = self.f32(&format!("{prefix}{}", ti.name));
            assert_eq!(w.len(), ti.len, "{}", ti.name);
            p[ti.offset..ti.offset + ti.len].copy_from_slice(&w);
        }
        p
    }
}

/// |got − want| ≤ 1e-4·max(|want|, 1e-2): 1e-4 relative, with an absolute floor of 1e-6 for
/// entries near zero, where relative error of an f32 sum means nothing.
fn assert_close(name: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-4 * w.abs().max(1e-2);
        assert!((g - w).abs() <= tol, "{name}[{k}]: got {g}, PyTorch {w}");
    }
}

/// bf16 products against PyTorch's f32: ‖got − want‖ ≤ 2e-2·‖want‖ per tensor (norms over the
/// whole tensor). Rounding an operand to bf16 errs by at most 2^-9 of it (0.2 %); errors of
/// a dot product partly cancel, but they compound through T steps and the layers. Measured
/// worst over the four fixtures: see the test's failure message (it prints the ratio).
const BF16_REL_NORM: f64 = 2e-2;

fn assert_close_bf16(name: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let diff: f64 = got
        .iter()
        .zip(want)
        .map(|(&g, &w)| ((g - w) as f64).powi(2))
        .sum();
    let norm: f64 = want.iter().map(|&w| (w as f64).powi(2)).sum();
    let ratio = (diff / norm.max(1e-30)).sqrt();
    assert!(
        ratio <= BF16_REL_NORM,
        "{name}: bf16 relative error {ratio:.2e} of the norm"
    );
}

#[test]
fn matches_pytorch_reference_forward_and_gradients() {
    matches_reference("reference_lstm.safetensors", None);
}

#[test]
fn matches_pytorch_reference_with_an_embedding() {
    matches_reference("reference_embed.safetensors", None);
}

#[test]
fn matches_pytorch_reference_gru() {
    matches_reference("reference_gru.safetensors", None);
}

#[test]
fn matches_pytorch_reference_rnn() {
    matches_reference("reference_rnn.safetensors", None);
}

#[test]
fn bf16_products_match_pytorch_reference_within_bf16_tolerance() {
    for file in [
        "reference_lstm.safetensors",
        "reference_embed.safetensors",
        "reference_gru.safetensors",
        "reference_rnn.safetensors",
    ] {
        // On every bf16 kernel this CPU runs.
        for kernel in Cpu::here().bf16_kernels() {
            matches_reference(file, Some(kernel));
        }
    }
}

/// The fixture `file`'s forward and gradients, with f32 products (`bf16` None) or bf16 ones on
/// the kernel given.
fn matches_reference(file: &str, bf16_on: Option<Bf16Products>) {
    let bf16 = bf16_on.is_some();
    let assert_close = |name: &str, got: &[f32], want: &[f32]| {
        if bf16 {
            assert_close_bf16(&format!("{file} on {bf16_on:?}: {name}"), got, want)
        } else {
            assert_close(name, got, want)
        }
    };
    let fx = Fixture::named(file);
    let m = |k: &str| fx.meta(k).parse::<usize>().unwrap();
    let (v, h, l, b, t) = (m("V"), m("H"), m("L"), m("B"), m("T"));
    let embed = fx.file.metadata.get("D").map_or(0, |d| d.parse().unwrap());
    let cell = match fx.file.metadata.get("cell").map(String::as_str) {
        None | Some("lstm") => Cell::Lstm,
        Some("gru") => Cell::Gru,
        Some("rnn") => Cell::Rnn,
        Some(other) => panic!("fixture cell {other}"),
    };
    let layout = Layout::new(ModelConfig {
        cell,
        vocab: v,
        hidden: h,
        layers: l,
        embed,
    });
    let p = fx.params(&layout, "");
    let x = fx.time_major(&fx.ids("x").0, b, t);
    let y = fx.time_major(&fx.ids("y").0, b, t);
    let lstm = cell == Cell::Lstm;
    let s0 = State {
        h: fx.f32("h0"),
        c: if lstm {
            fx.f32("c0")
        } else {
            vec![0.0; l * b * h]
        },
    };

    let mut ws = Workspace::<f32>::new(&layout, b, t, true, Threads(1));
    if let Some(kernel) = bf16_on {
        ws.set_precision(MatmulPrecision::Bf16);
        ws.set_bf16_kernel(kernel);
    }
    ws.forward(&p, &layout, &x, &s0);
    // PyTorch logits are (B, T, V); ours are time-major (T, B, V).
    let want_logits = fx.f32("logits");
    let got_logits: Vec<f32> = (0..b * t * v)
        .map(|k| {
            let (row, j) = (k / v, k % v);
            let (bi, ti) = (row / t, row % t);
            ws.logits(v)[(ti * b + bi) * v + j]
        })
        .collect();
    assert_close("logits", &got_logits, &want_logits);
    let mut fin = State::zeros(l, b, h);
    ws.final_state(&mut fin);
    assert_close("hT", &fin.h, &fx.f32("hT"));
    if lstm {
        assert_close("cT", &fin.c, &fx.f32("cT"));
    }

    let loss = ws.loss_and_grad(&y, v);
    assert!(
        (loss - fx.f32("loss")[0] as f64).abs() < if bf16 { 1e-2 } else { 1e-5 },
        "loss {loss} vs {:?}",
        fx.f32("loss")
    );
    let mut grads = vec![0.0f32; layout.total];
    ws.backward(&p, &layout, &x, &mut grads);
    for ti in &layout.tensors {
        assert_close(
            &format!("grad.{}", ti.name),
            &grads[ti.offset..][..ti.len],
            &fx.f32(&format!("grad.{}", ti.name)),
        );
    }
    assert_close("grad.h0", &ws.dstate().h, &fx.f32("grad.h0"));
    if lstm {
        assert_close("grad.c0", &ws.dstate().c, &fx.f32("grad.c0"));
    }
}

/// Adam normalises every step to about `lr` whatever the gradient's size, so f32 round-off in
/// tiny gradient entries shows up as an absolute error proportional to lr (0.3 here, 10 steps).
/// Measured worst: 2.0e-5. Adam and AMSGrad end 1.9e-3 apart, so this still tells them apart.
const ADAM_TOL: f32 = 5e-5;

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn matches_pytorch_reference_adam_and_amsgrad_steps() {
    let fx = Fixture::load();
    let m = |k: &str| fx.meta(k).parse::<usize>().unwrap();
    let (v, h, l, b, t) = (m("V"), m("H"), m("L"), m("B"), m("T"));
    let lr: f64 = fx.meta("lr").parse().unwrap();
    let clip: f64 = fx.meta("clip").parse().unwrap();
    let layout = Layout::new(ModelConfig {
        cell: Cell::Lstm,
        vocab: v,
        hidden: h,
        layers: l,
        embed: 0,
    });
    let (ox, shape) = fx.ids("opt.x");
    let (oy, _) = fx.ids("opt.y");
    let steps = shape[0];
    let s0 = State {
        h: fx.f32("h0"),
        c: fx.f32("c0"),
    };
    let mut finals = Vec::new();
    for (name, amsgrad) in [("adam", false), ("amsgrad", true)] {
        let mut p = fx.params(&layout, "");
        let mut adam = Adam::<f32>::new(layout.total, lr, amsgrad);
        let mut ws = Workspace::<f32>::new(&layout, b, t, true, Threads(1));
        let want_loss = fx.f32(&format!("{name}.loss"));
        let want_norm = fx.f32(&format!("{name}.gnorm"));
        for k in 0..steps {
            let x = fx.time_major(&ox[k * b * t..][..b * t], b, t);
            let y = fx.time_major(&oy[k * b * t..][..b * t], b, t);
            ws.forward(&p, &layout, &x, &s0);
            let loss = ws.loss_and_grad(&y, v);
            let mut grads = vec![0.0f32; layout.total];
            ws.backward(&p, &layout, &x, &mut grads);
            let norm = clip_grad_norm(&mut grads, clip);
            assert!(
                (loss - want_loss[k] as f64).abs() < 1e-4 * want_loss[k] as f64,
                "{name} step {k}: loss {loss} vs {}",
                want_loss[k]
            );
            assert!(
                (norm - want_norm[k] as f64).abs() < 1e-4 * want_norm[k] as f64,
                "{name} step {k}: norm {norm} vs {}",
                want_norm[k]
            );
            adam.step(&mut p, &grads);
        }
        let want = fx.params(&layout, &format!("{name}.final."));
        for ti in &layout.tensors {
            let d = max_abs_diff(&p[ti.offset..][..ti.len], &want[ti.offset..][..ti.len]);
            assert!(
                d <= ADAM_TOL,
                "{name}.final.{}: differs from PyTorch by {d}",
                ti.name
            );
        }
        finals.push(p);
    }
    // The fixture is made so that AMSGrad's running max matters: the two runs must differ, by
    // far more than the tolerance, or the comparison above could not tell them apart.
    let adam_ref = fx.params(&layout, "adam.final.");
    assert!(max_abs_diff(&finals[1], &adam_ref) > 20.0 * ADAM_TOL);
    let diff = finals[0]
        .iter()
        .zip(&finals[1])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff > 1e-3, "adam and amsgrad runs differ by only {diff}");
}
