//! Matrix products with bf16 operands and f32 accumulation, for `train --precision bf16`.
//! Operands are rounded to bf16 (to nearest even) as they are packed, in the layout of AMX's
//! tiles; the kernel chosen for this process (`isa::Kernels::bf16`) multiplies them: AMX tiles
//! (`isa::amx`), or the f32 GEMM of the unpacked operands (`isa::portable`): the same
//! operands, slower.
//!
//! Owns the packed layout, the contract of a product (exact products of the rounded operands,
//! f32 sums, the same bits on any number of threads), the split of a product's rows over
//! threads and the dispatch. Does not own the kernels (the rooms of `isa`), nor which products
//! run in bf16 (see `workspace` and `recurrent`).

use super::float::Float;
use super::isa::{self, Bf16Products};
use super::kernels::{bf16_to_f32, f32_to_bf16};
use super::linalg::{matmul, MatRef, Threads};
use super::team::{share, Crew, Shared};

/// Rows and columns are padded to multiples of this (one pair of tiles).
pub const BLOCK: usize = 32;

/// An (m × k) operand rounded to bf16, in 32 × 32 chunks: rows padded to a multiple of 32
/// (mp) and k to one of 32 (kp) with zeros; chunk (i / 32, kk / 32) is 32 rows of 32 values
/// (2 KB), the chunks of a block of 32 rows one after the other along k. A tile of A is then
/// 16 rows 64 bytes apart, and one step of the kernel's k loop reads 2 KB in one piece: with
/// row-major A the 32 rows were 32 separate streams, and the kernel waited on its A loads
/// (measured). Reused between products (its buffer only grows).
#[derive(Default)]
pub struct PackedA {
    data: Vec<u16>, // (mp/32, kp/32, 32, 32)
    m: usize,
    k: usize,
}

/// Index of element (i, kk) of a packed A of depth kp.
#[inline(always)]
pub fn a_index(kp: usize, i: usize, kk: usize) -> usize {
    (i / BLOCK) * (BLOCK * kp) + (kk / BLOCK) * (BLOCK * BLOCK) + (i % BLOCK) * BLOCK + kk % BLOCK
}

/// The pieces of row i, columns `cols`, of a packed A of depth kp: (index range in the
/// packed buffer, offset in `cols`) for each run that stays within one chunk.
pub fn a_row_runs(
    kp: usize,
    i: usize,
    cols: std::ops::Range<usize>,
) -> impl Iterator<Item = (std::ops::Range<usize>, usize)> {
    let start = cols.start;
    let mut c = cols.start;
    std::iter::from_fn(move || {
        if c >= cols.end {
            return None;
        }
        let end = (c / BLOCK + 1) * BLOCK;
        let run = c..end.min(cols.end);
        c = run.end;
        let at = a_index(kp, i, run.start);
        Some((at..at + run.len(), run.start - start))
    })
}

/// A packed (m × k) operand borrowed for a product: `data` as in `PackedA`.
#[derive(Clone, Copy)]
pub struct ARef<'a> {
    data: &'a [u16],
    m: usize,
    k: usize,
    kp: usize,
}

impl<'a> ARef<'a> {
    /// The operand in `data` (laid out by `PackedA::shape(m, k)`).
    pub fn new(data: &'a [u16], m: usize, k: usize) -> ARef<'a> {
        let kp = k.next_multiple_of(BLOCK);
        assert!(
            data.len() >= m.next_multiple_of(BLOCK) * kp,
            "packed operand too small"
        );
        ARef { data, m, k, kp }
    }

    /// Rows (m).
    pub fn rows(&self) -> usize {
        self.m
    }

    /// Depth (k).
    pub fn depth(&self) -> usize {
        self.k
    }

    /// Depth padded to a multiple of `BLOCK` (kp).
    pub fn padded_depth(&self) -> usize {
        self.kp
    }

    /// The packed values (see `PackedA`).
    pub fn data(&self) -> &'a [u16] {
        self.data
    }

    /// The rounded values as f32, (m × k) row-major (the portable kernel).
    pub fn unpack(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(self.m * self.k);
        for i in 0..self.m {
            v.extend((0..self.k).map(|kk| bf16_to_f32(self.data[a_index(self.kp, i, kk)])));
        }
        v
    }
}

impl PackedA {
    /// Bytes its buffer holds (it only grows).
    pub fn bytes(&self) -> usize {
        self.data.capacity() * 2
    }

    /// Lays the buffer out for an (m × k) operand with zero padding; returns kp. The values
    /// are left to the caller (`pack`, or team members writing their columns through
    /// `data_mut` and `a_row_runs`).
    pub fn shape(&mut self, m: usize, k: usize) -> usize {
        let (mp, kp) = (m.next_multiple_of(BLOCK), k.next_multiple_of(BLOCK));
        (self.m, self.k) = (m, k);
        self.data.resize(mp * kp, 0);
        let data = &mut self.data[..mp * kp];
        if k < kp {
            for i in 0..m {
                let at = a_index(kp, i, k);
                data[at..at + (kp - k)].fill(0);
            }
        }
        for i in m..mp {
            for k0 in (0..kp).step_by(BLOCK) {
                let at = a_index(kp, i, k0);
                data[at..at + BLOCK].fill(0);
            }
        }
        kp
    }

    /// The buffer of the last `shape`.
    pub fn data_mut(&mut self) -> &mut [u16] {
        let len = self.m.next_multiple_of(BLOCK) * self.k.next_multiple_of(BLOCK);
        &mut self.data[..len]
    }

    /// Packs `a` (m × k, any strides): rows in runs when they are contiguous, 16 × 16 blocks
    /// transposed when columns are (a transposed view), element by element otherwise.
    pub fn pack<F: Float>(&mut self, a: MatRef<F>) {
        let (m, k, rs, cs, d) = (a.rows, a.cols, a.rs, a.cs, a.data);
        let kp = self.shape(m, k);
        let data = &mut self.data[..];
        if cs == 1 {
            for i in 0..m {
                let row = &d[i * rs..][..k];
                for (at, off) in a_row_runs(kp, i, 0..k) {
                    let len = at.len();
                    convert(&mut data[at], &row[off..off + len]);
                }
            }
        } else if rs == 1 {
            // Row kk of the stored matrix is column kk of a: read 16 of its values at a time
            // (contiguous), write them down a column of 16 packed rows.
            let mut blk = [[0u16; 16]; 16];
            for i0 in (0..m).step_by(16) {
                let w = 16.min(m - i0);
                for k0 in (0..k).step_by(16) {
                    let kw = 16.min(k - k0);
                    for kk in 0..kw {
                        let src = &d[(k0 + kk) * cs + i0..][..w];
                        for (ii, &x) in src.iter().enumerate() {
                            blk[ii][kk] = f32_to_bf16(x.to_f32());
                        }
                    }
                    for (ii, row) in blk.iter().enumerate().take(w) {
                        // 16 columns from a multiple of 16: within one chunk.
                        let at = a_index(kp, i0 + ii, k0);
                        data[at..at + kw].copy_from_slice(&row[..kw]);
                    }
                }
            }
        } else {
            for i in 0..m {
                for kk in 0..k {
                    data[a_index(kp, i, kk)] = f32_to_bf16(d[i * rs + kk * cs].to_f32());
                }
            }
        }
    }

    /// The packed operand.
    pub fn view(&self) -> ARef<'_> {
        ARef::new(&self.data, self.m, self.k)
    }
}

/// `dst[i] = bf16(src[i])`.
#[inline]
pub fn convert<F: Float>(dst: &mut [u16], src: &[F]) {
    for (o, &x) in dst.iter_mut().zip(src) {
        *o = f32_to_bf16(x.to_f32());
    }
}

/// A (k × n) operand rounded to bf16 in the tiles' layout: panels of 32 columns, one after
/// the other; in a panel, word p·32 + j holds the pair (`b[2p][j]`, `b[2p+1][j]`) (low half the
/// first), so a row of pairs is 128 bytes; k padded to a multiple of 32 and n to one of 32
/// with zeros. A tile of B (16 row pairs × 16 columns) is then 16 rows 128 bytes apart:
/// row-major B with n in the thousands put them 4 KB apart, in one L1 set (measured: the B
/// loads took over a third of the kernel's time). Reused between products (the buffer only
/// grows).
#[derive(Default)]
pub struct PackedB {
    data: Vec<u32>, // (np/32, kp/2, 32)
    k: usize,
    n: usize,
}

/// The pair word of two bf16-rounded values (low half `lo`).
#[inline(always)]
fn pair(lo: f32, hi: f32) -> u32 {
    f32_to_bf16(lo) as u32 | (f32_to_bf16(hi) as u32) << 16
}

impl PackedB {
    /// Bytes its buffer holds (it only grows).
    pub fn bytes(&self) -> usize {
        self.data.capacity() * 4
    }

    /// Index of the word holding rows (kk & !1, kk | 1) of column j, for depth kp.
    #[inline(always)]
    fn at(kp: usize, kk: usize, j: usize) -> usize {
        (j / BLOCK) * (kp / 2 * BLOCK) + (kk / 2) * BLOCK + j % BLOCK
    }

    /// Packs `b` (k × n, any strides); two rows at a time when rows are contiguous.
    pub fn pack<F: Float>(&mut self, b: MatRef<F>) {
        let (k, n, rs, cs, d) = (b.rows, b.cols, b.rs, b.cs, b.data);
        if cs != 1 {
            return self.pack_with(k, n, |kk, j| d[kk * rs + j * cs].to_f32());
        }
        let kp = self.zeroed(k, n);
        let data = &mut self.data[..];
        for p in 0..k.div_ceil(2) {
            let r0 = &d[2 * p * rs..][..n];
            for j0 in (0..n).step_by(BLOCK) {
                let w = BLOCK.min(n - j0);
                let dst = &mut data[Self::at(kp, 2 * p, j0)..][..w];
                if 2 * p + 1 < k {
                    let r1 = &d[(2 * p + 1) * rs + j0..][..w];
                    for ((o, &x0), &x1) in dst.iter_mut().zip(&r0[j0..j0 + w]).zip(r1) {
                        *o = pair(x0.to_f32(), x1.to_f32());
                    }
                } else {
                    for (o, &x0) in dst.iter_mut().zip(&r0[j0..j0 + w]) {
                        *o = pair(x0.to_f32(), 0.0);
                    }
                }
            }
        }
    }

    /// Packs the (k × n) matrix whose element (kk, j) is `get(kk, j)`, reading it in 16×16
    /// blocks.
    pub fn pack_with(&mut self, k: usize, n: usize, get: impl Fn(usize, usize) -> f32) {
        let kp = self.zeroed(k, n);
        let data = &mut self.data[..];
        for k0 in (0..k).step_by(16) {
            for j0 in (0..n).step_by(16) {
                for kk in k0..(k0 + 16).min(k) {
                    let shift = 16 * (kk % 2);
                    for j in j0..(j0 + 16).min(n) {
                        data[Self::at(kp, kk, j)] |= (f32_to_bf16(get(kk, j)) as u32) << shift;
                    }
                }
            }
        }
    }

    /// Sets the shape and zeroes the buffer (the padding must be zero); returns kp.
    fn zeroed(&mut self, k: usize, n: usize) -> usize {
        let (kp, np) = (k.next_multiple_of(BLOCK), n.next_multiple_of(BLOCK));
        (self.k, self.n) = (k, n);
        self.data.clear();
        self.data.resize(kp / 2 * np, 0);
        kp
    }

    fn kp(&self) -> usize {
        self.k.next_multiple_of(BLOCK)
    }

    /// Columns (n).
    pub fn cols(&self) -> usize {
        self.n
    }

    /// Depth padded to a multiple of `BLOCK` (kp).
    pub fn padded_depth(&self) -> usize {
        self.kp()
    }

    /// The packed pair words (see `PackedB`).
    pub fn data(&self) -> &[u32] {
        &self.data
    }

    /// The rounded values as f32, (k × n) row-major (the portable kernel).
    pub fn unpack(&self) -> Vec<f32> {
        let kp = self.kp();
        let mut v = Vec::with_capacity(self.k * self.n);
        for kk in 0..self.k {
            v.extend(
                (0..self.n).map(|j| {
                    bf16_to_f32((self.data[Self::at(kp, kk, j)] >> (16 * (kk % 2))) as u16)
                }),
            );
        }
        v
    }
}

/// The two packed operands of one product (what a workspace or a team member keeps).
#[derive(Default)]
pub struct Packs {
    pub a: PackedA,
    pub b: PackedB,
}

/// `c (m × n, row-major) = [c +] a · b` for packed `a` (m × k) and `b` (k × n): exact products
/// of the bf16 operands, accumulated in f32. Threads split the rows (in blocks of 32) of
/// products of at least 2^21 multiply-adds; every element is summed in the same order whatever
/// the thread count.
pub fn gemm(c: &mut [f32], a: ARef, b: &PackedB, accumulate: bool, threads: Threads) {
    gemm_on(c, a, b, Start::from(accumulate), None, threads)
}

/// What C starts from.
#[derive(Clone, Copy)]
pub enum Start<'a> {
    Zero,
    /// Its own values: C += A·B.
    C,
    /// The row vector (n) in every row: C = bias + A·B, without reading C (a layer's input
    /// projection: half the memory traffic of filling C with the bias and accumulating).
    Bias(&'a [f32]),
}

impl From<bool> for Start<'_> {
    fn from(accumulate: bool) -> Self {
        if accumulate {
            Start::C
        } else {
            Start::Zero
        }
    }
}

/// `gemm` from `start`, on the members of `crew` when there is one (persistent threads: see
/// `team::run_on`), else on `threads` scoped threads; on the kernel chosen for this process.
pub fn gemm_on(
    c: &mut [f32],
    a: ARef,
    b: &PackedB,
    start: Start,
    crew: Option<&Crew>,
    threads: Threads,
) {
    gemm_with(isa::kernels().bf16, c, a, b, start, (crew, threads))
}

/// `gemm_on` on the kernel `kernel`, which this CPU must run (`isa::Cpu::runs`): for tests and
/// benchmarks.
pub fn gemm_with(
    kernel: Bf16Products,
    c: &mut [f32],
    a: ARef,
    b: &PackedB,
    start: Start,
    (crew, threads): (Option<&Crew>, Threads),
) {
    let (m, k, n) = (a.m, a.k, b.n);
    assert_eq!(b.k, k, "inner dimensions differ");
    assert!(c.len() >= m * n, "output too small");
    if m == 0 || n == 0 {
        return;
    }
    if let Start::Bias(bias) = start {
        assert_eq!(bias.len(), n, "bias length");
    }
    assert!(
        isa::Cpu::here().runs(kernel),
        "bf16 kernel {kernel:?} on a CPU without it"
    );
    match isa::block_kernel(kernel) {
        None => isa::portable::bf16_products(c, a, b, start, threads),
        // SAFETY: this CPU runs the kernel (asserted above), the packed operands have the
        // padded shapes it reads (by construction: `PackedA::shape`, `PackedB::zeroed`), and
        // the shapes of c and the bias were checked above.
        Some(kernel) => unsafe { split_rows(kernel, c, a, b, start, (crew, threads)) },
    }
}

/// Runs `kernel` over the 32-row blocks of the product, split between the members of `crew`
/// or `threads` scoped threads when the product has at least 2^21 multiply-adds. Each element
/// is computed by one call whatever the split, so the bits do not depend on the threads.
///
/// # Safety
/// As for a call of `kernel` on the whole product.
unsafe fn split_rows(
    kernel: isa::BlockKernel,
    c: &mut [f32],
    a: ARef,
    b: &PackedB,
    start: Start,
    (crew, threads): (Option<&Crew>, Threads),
) {
    let (m, k, n) = (a.m, a.k, b.n);
    let blocks = m.div_ceil(BLOCK);
    let big = m * n * k >= 1 << 21;
    if let Some(crew) = crew.filter(|c| big && c.size() > 1) {
        let parts = crew.size();
        let c_s = Shared::new(&mut c[..m * n]);
        crew.run(&|p, _| {
            let range = share(blocks, parts, p);
            if range.is_empty() {
                return;
            }
            let rows = range.start * BLOCK..(range.end * BLOCK).min(m);
            // SAFETY: member p writes only the rows of its blocks; the rest as for the call.
            unsafe {
                kernel(
                    c_s.slice_mut(rows.start * n..rows.end * n),
                    a,
                    b,
                    range,
                    start,
                )
            };
        });
        return;
    }
    let parts = if big { threads.0.clamp(1, blocks) } else { 1 };
    let mut rest = &mut c[..m * n];
    let mut jobs = Vec::with_capacity(parts);
    for p in 0..parts {
        let range = share(blocks, parts, p);
        let rows = (range.end * BLOCK).min(m) - range.start * BLOCK;
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut(rows * n);
        rest = tail;
        jobs.push((mine, range));
    }
    // SAFETY (both calls): each part of c holds exactly the rows of its blocks; the rest as
    // for the call.
    let mut jobs = jobs.into_iter();
    let (first, first_range) = jobs.next().unwrap();
    std::thread::scope(|s| {
        for (cp, range) in jobs {
            s.spawn(move || unsafe { kernel(cp, a, b, range, start) });
        }
        unsafe { kernel(first, a, b, first_range, start) };
    });
}

/// `c = [c +] a · b` with bf16 operands for any engine float: f32 runs `gemm_with` on
/// `kernel`; f64 (the gradient checks' type) multiplies the same rounded operands exactly in
/// f64.
pub fn gemm_any<F: Float>(
    c: &mut [F],
    a: ARef,
    b: &PackedB,
    (accumulate, bias): (bool, Option<&[F]>),
    (kernel, crew, threads): (Bf16Products, Option<&Crew>, Threads),
) {
    if let (Some(c32), Some(bias32)) = (F::as_f32_mut(c), bias.map(F::as_f32)) {
        let start = bias32.map_or(Start::from(accumulate), Start::Bias);
        return gemm_with(kernel, c32, a, b, start, (crew, threads));
    }
    if let Some(bias) = bias {
        for row in c[..a.m * b.n].chunks_exact_mut(b.n) {
            row.copy_from_slice(bias);
        }
    }
    let accumulate = accumulate || bias.is_some();
    if let Some(c32) = F::as_f32_mut(c) {
        return gemm_with(kernel, c32, a, b, Start::from(accumulate), (crew, threads));
    }
    let (au, bu) = (a.unpack(), b.unpack());
    let au: Vec<F> = au.into_iter().map(|x| F::from_f64(x as f64)).collect();
    let bu: Vec<F> = bu.into_iter().map(|x| F::from_f64(x as f64)).collect();
    let (av, bv) = (MatRef::new(&au, a.m, a.k), MatRef::new(&bu, b.k, b.n));
    matmul(c, av, bv, accumulate, threads);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn round(x: f32) -> f32 {
        bf16_to_f32(f32_to_bf16(x))
    }

    /// The exact product of the bf16-rounded operands, in f64.
    fn reference(a: MatRef<f32>, b: MatRef<f32>, c0: &[f32], accumulate: bool) -> Vec<f64> {
        let (m, k, n) = (a.rows, a.cols, b.cols);
        (0..m * n)
            .map(|ij| {
                let (i, j) = (ij / n, ij % n);
                let dot: f64 = (0..k)
                    .map(|kk| {
                        round(a.data[i * a.rs + kk * a.cs]) as f64
                            * round(b.data[kk * b.rs + j * b.cs]) as f64
                    })
                    .sum();
                dot + if accumulate { c0[ij] as f64 } else { 0.0 }
            })
            .collect()
    }

    #[test]
    fn bf16_products_match_the_rounded_operands_exact_product() {
        let mut rng = Rng::new(3);
        for (m, k, n, acc, ta, tb) in [
            (50, 256, 1024, true, false, false),
            (37, 100, 45, false, true, true),
            (2500, 64, 96, true, true, false),
            (1, 3, 2, false, false, true),
            (64, 512, 32, true, false, false),
            (65, 2500, 40, true, true, false),
            (300, 600, 70, false, false, false), // several depths, row groups and a column edge
        ] {
            let a: Vec<f32> = (0..m * k)
                .map(|_| rng.uniform_in(-1.0, 1.0) as f32)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|_| rng.uniform_in(-0.3, 0.3) as f32)
                .collect();
            let c0: Vec<f32> = (0..m * n)
                .map(|_| rng.uniform_in(-1.0, 1.0) as f32)
                .collect();
            let av = if ta {
                MatRef::new(&a, k, m).t()
            } else {
                MatRef::new(&a, m, k)
            };
            let bv = if tb {
                MatRef::new(&b, n, k).t()
            } else {
                MatRef::new(&b, k, n)
            };
            let want = reference(av, bv, &c0, acc);
            let mut packs = Packs::default();
            packs.a.pack(av);
            packs.b.pack(bv);
            for kernel in isa::Cpu::here().bf16_kernels() {
                let mut first: Option<Vec<f32>> = None;
                for threads in [1, 2] {
                    let mut c = c0.clone();
                    let (start, on) = (Start::from(acc), (None, Threads(threads)));
                    gemm_with(kernel, &mut c, packs.a.view(), &packs.b, start, on);
                    for (g, w) in c.iter().zip(&want) {
                        // f32 sums of exact bf16 products: a few ulps of the running sum.
                        let tol = 1e-6 * (1.0 + w.abs()) * (k as f64).sqrt();
                        let at = format!("{kernel:?} {m}×{k}×{n}");
                        assert!((*g as f64 - w).abs() <= tol, "{at}: {g} vs {w}");
                    }
                    // The kernels of the CPU give the same bits whatever the thread count (the
                    // portable kernel's f32 GEMM need not).
                    match &first {
                        None => first = Some(c),
                        Some(f) => assert!(
                            !kernel.in_hardware() || f == &c,
                            "{kernel:?} {m}×{k}×{n}: threads change the bits"
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn a_bias_start_equals_filling_c_with_the_bias() {
        let mut rng = Rng::new(4);
        for (m, k, n) in [(50, 256, 1024), (37, 40, 45), (64, 64, 64), (140, 300, 33)] {
            let a: Vec<f32> = (0..m * k)
                .map(|_| rng.uniform_in(-1.0, 1.0) as f32)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|_| rng.uniform_in(-0.3, 0.3) as f32)
                .collect();
            let bias: Vec<f32> = (0..n).map(|_| rng.uniform_in(-1.0, 1.0) as f32).collect();
            let mut packs = Packs::default();
            packs.a.pack(MatRef::new(&a, m, k));
            packs.b.pack(MatRef::new(&b, k, n));
            for kernel in isa::Cpu::here().bf16_kernels() {
                let mut filled: Vec<f32> = bias.iter().copied().cycle().take(m * n).collect();
                let (a, b) = (packs.a.view(), &packs.b);
                gemm_with(kernel, &mut filled, a, b, Start::C, (None, Threads(1)));
                let mut c = vec![f32::NAN; m * n]; // a bias start never reads c
                let start = Start::Bias(&bias);
                gemm_with(kernel, &mut c, a, b, start, (None, Threads(2)));
                assert_eq!(c, filled, "{kernel:?} {m}×{k}×{n}");
            }
        }
    }

    #[test]
    fn repacking_a_smaller_operand_leaves_no_stale_values() {
        let mut rng = Rng::new(5);
        let mut packs = Packs::default();
        let big: Vec<f32> = (0..70 * 70)
            .map(|_| rng.uniform_in(-1.0, 1.0) as f32)
            .collect();
        packs.a.pack(MatRef::new(&big, 70, 70));
        packs.b.pack(MatRef::new(&big, 70, 70));
        let (a, b) = ([1.0f32, 2.0, 3.0], [4.0f32, 5.0, 6.0]);
        packs.a.pack(MatRef::new(&a, 1, 3));
        packs.b.pack(MatRef::new(&b, 3, 1));
        let mut c = [0.0f32];
        gemm(&mut c, packs.a.view(), &packs.b, false, Threads(1));
        assert_eq!(c[0], 32.0);
    }

    #[test]
    fn f64_products_use_the_same_rounded_operands() {
        let a = [1.0f64 + 1.0 / 1024.0, 3.0];
        let b = [1.0f64, 1.0];
        let mut packs = Packs::default();
        packs.a.pack(MatRef::new(&a, 1, 2));
        packs.b.pack(MatRef::new(&b, 2, 1));
        let mut c = [0.0f64];
        gemm_any(
            &mut c,
            packs.a.view(),
            &packs.b,
            (false, None),
            (Bf16Products::F32Gemm, None, Threads(1)),
        );
        assert_eq!(
            c[0], 4.0,
            "1 + 2^-10 rounds to 1 in bf16 (8 bits of mantissa)"
        );
    }
}
