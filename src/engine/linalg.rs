//! Matrix products for the engine: one safe wrapper over the `gemm` crate (bounds checked once
//! per call, strides for free transposes) and a plain matvec for batch-1 sampling.
//!
//! Owns no buffers and no model knowledge; the engine decides shapes and threads.

use super::float::Float;

/// A read-only matrix view: `rows × cols`, element (r, c) at `data[r * rs + c * cs]`.
/// A transpose is the same data with `rs` and `cs` swapped.
#[derive(Clone, Copy)]
pub struct MatRef<'a, F> {
    pub data: &'a [F],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, F: Sync> MatRef<'a, F> {
    /// Row-major `rows × cols`.
    pub fn new(data: &'a [F], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose (no copy).
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// How many threads a product may use. `1` runs on the caller's thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threads(pub usize);

/// `c (m × n, row-major) = [c +] a (m × k) · b (k × n)`.
pub fn matmul<F: Float>(
    c: &mut [F],
    a: MatRef<F>,
    b: MatRef<F>,
    accumulate: bool,
    threads: Threads,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    assert!(c.len() >= m * n, "output too small");
    a.check();
    b.check();
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(F::ZERO);
        }
        return;
    }
    // Threads split the output's rows; each part is an independent single-threaded GEMM.
    // (Our own scoped threads rather than a pool: idle pool workers that spin after a call
    // would steal the cores from the recurrent team.) Small products stay on one thread.
    let parts = if (m * n * k) >= PARALLEL_MIN_MACS {
        threads.0.clamp(1, m)
    } else {
        1
    };
    if parts == 1 {
        gemm_serial(&mut c[..m * n], a, b, accumulate);
        return;
    }
    let mut rest = &mut c[..m * n];
    let mut jobs = Vec::with_capacity(parts);
    for p in 0..parts {
        let rows = super::team::share(m, parts, p);
        let (mine, tail) = rest.split_at_mut(rows.len() * n);
        rest = tail;
        let a_part = MatRef {
            data: &a.data[rows.start * a.rs..],
            rows: rows.len(),
            ..a
        };
        jobs.push((mine, a_part));
    }
    std::thread::scope(|s| {
        let mut jobs = jobs.into_iter();
        let (first_c, first_a) = jobs.next().unwrap();
        for (cp, ap) in jobs {
            s.spawn(move || gemm_serial(cp, ap, b, accumulate));
        }
        gemm_serial(first_c, first_a, b, accumulate);
    });
}

/// Products below this many multiply-adds run on one thread (a thread start costs ~20 µs).
const PARALLEL_MIN_MACS: usize = 1 << 21;

fn gemm_serial<F: Float>(c: &mut [F], a: MatRef<F>, b: MatRef<F>, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    a.check();
    debug_assert!(c.len() == m * n);
    if m == 0 {
        return;
    }
    // SAFETY: every index the kernel touches was bounds-checked (views and `c`), the output
    // does not alias the inputs (distinct borrows), and F is f32 or f64.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            F::ONE,
            F::ONE,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

crate::multiversion! {
    /// `ys (N × n) += xs (N × k) · Wᵀ` for W (n × k, row-major): N matvecs that read each row
    /// of W once for all N vectors (a batch of sampling streams pays for the weights once).
    /// Every dot product has a fixed summation order, so results are bit-identical on every
    /// machine and vector width, and the same for a vector alone or in a batch.
    pub fn matvecs_acc<F: Float>(ys: &mut [F], w: &[F], xs: &[F], k: usize) {
        if k == 0 {
            return;
        }
        let (n, streams) = (w.len() / k, xs.len() / k);
        assert!(w.len() == n * k && xs.len() == streams * k && ys.len() == streams * n, "matvecs shape");
        // Four rows at a time: four independent accumulator chains keep the vector units busy
        // (one chain is bound by the add latency); each dot keeps its own fixed order.
        let mut rows = w.chunks_exact(4 * k);
        let mut i = 0;
        for quad in &mut rows {
            let r = [&quad[..k], &quad[k..2 * k], &quad[2 * k..3 * k], &quad[3 * k..]];
            for (s, x) in xs.chunks_exact(k).enumerate() {
                let d = dot4(r, x);
                for (q, dq) in d.iter().enumerate() {
                    ys[s * n + i + q] += *dq;
                }
            }
            i += 4;
        }
        for row in rows.remainder().chunks_exact(k) {
            for (s, x) in xs.chunks_exact(k).enumerate() {
                ys[s * n + i] += dot(row, x);
            }
            i += 1;
        }
    }
}

/// `y (n) += W (n × k, row-major) · x (k)`: `matvecs_acc` for one vector (in f32 on the
/// vectorised kernels, which give the same bits).
pub fn matvec_acc<F: Float>(y: &mut [F], w: &[F], x: &[F]) {
    F::matvecs(y, w, x, x.len())
}

/// A dot product in a fixed order: 16 lanes, folded to 8, then a fixed tree, plus the tail.
#[inline(always)]
fn dot<F: Float>(a: &[F], b: &[F]) -> F {
    let mut acc = [F::ZERO; 16];
    let mut ac = a.chunks_exact(16);
    let mut bc = b.chunks_exact(16);
    for (a16, b16) in (&mut ac).zip(&mut bc) {
        for j in 0..16 {
            acc[j] += a16[j] * b16[j];
        }
    }
    let mut tail = F::ZERO;
    for (&x, &y) in ac.remainder().iter().zip(bc.remainder()) {
        tail += x * y;
    }
    fold(&acc) + tail
}

/// Four dot products against one vector, each in exactly `dot`'s order.
#[inline(always)]
fn dot4<F: Float>(a: [&[F]; 4], b: &[F]) -> [F; 4] {
    let (mut s0, mut s1, mut s2, mut s3) =
        ([F::ZERO; 16], [F::ZERO; 16], [F::ZERO; 16], [F::ZERO; 16]);
    let [a0, a1, a2, a3] = a.map(|r| r.chunks_exact(16));
    let mut bc = b.chunks_exact(16);
    for ((((r0, r1), r2), r3), b16) in a0
        .clone()
        .zip(a1.clone())
        .zip(a2.clone())
        .zip(a3.clone())
        .zip(&mut bc)
    {
        for j in 0..16 {
            s0[j] += r0[j] * b16[j];
            s1[j] += r1[j] * b16[j];
            s2[j] += r2[j] * b16[j];
            s3[j] += r3[j] * b16[j];
        }
    }
    let bt = bc.remainder();
    let tail = |r: std::slice::ChunksExact<'_, F>| {
        let mut t = F::ZERO;
        for (&x, &y) in r.remainder().iter().zip(bt) {
            t += x * y;
        }
        t
    };
    [
        fold(&s0) + tail(a0),
        fold(&s1) + tail(a1),
        fold(&s2) + tail(a2),
        fold(&s3) + tail(a3),
    ]
}

/// The fixed reduction of 16 lanes: folded to 8, then a tree.
#[inline(always)]
fn fold<F: Float>(acc: &[F; 16]) -> F {
    let mut half = [F::ZERO; 8];
    for j in 0..8 {
        half[j] = acc[j] + acc[j + 8];
    }
    ((half[0] + half[4]) + (half[1] + half[5])) + ((half[2] + half[6]) + (half[3] + half[7]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: MatRef<f64>, b: MatRef<f64>) -> Vec<f64> {
        let mut c = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                for p in 0..a.cols {
                    c[i * b.cols + j] += a.data[i * a.rs + p * a.cs] * b.data[p * b.rs + j * b.cs];
                }
            }
        }
        c
    }

    #[test]
    fn matmul_matches_naive_with_transposes_and_accumulation() {
        let a: Vec<f64> = (0..35).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..63).map(|i| (i as f64 * 0.11).cos()).collect();
        // a as 5×7, b as 9×7 transposed → 7×9
        let am = MatRef::new(&a, 5, 7);
        let bm = MatRef::new(&b, 9, 7).t();
        let want = naive(am, bm);
        let mut c = vec![1.0; 45];
        matmul(&mut c, am, bm, true, Threads(1));
        for (g, w) in c.iter().zip(&want) {
            assert!((g - (w + 1.0)).abs() < 1e-12);
        }
        matmul(&mut c, am, bm, false, Threads(2));
        for (g, w) in c.iter().zip(&want) {
            assert!((g - w).abs() < 1e-12);
        }
    }

    #[test]
    fn batched_matvecs_equal_single_ones_bit_for_bit() {
        let w: Vec<f32> = (0..7 * 37)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) / 9.0)
            .collect();
        let xs: Vec<f32> = (0..3 * 37)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 7.0)
            .collect();
        let mut ys = vec![0.25f32; 3 * 7];
        matvecs_acc(&mut ys, &w, &xs, 37);
        for s in 0..3 {
            let mut y = vec![0.25f32; 7];
            matvec_acc(&mut y, &w, &xs[s * 37..(s + 1) * 37]);
            assert!(y == ys[s * 7..(s + 1) * 7], "stream {s}");
        }
    }

    #[test]
    fn matvec_matches_naive() {
        let w: Vec<f32> = (0..13 * 19)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 8.0)
            .collect();
        let x: Vec<f32> = (0..19).map(|i| (i as f32 - 9.0) / 4.0).collect();
        let mut y = vec![0.5f32; 13];
        matvec_acc(&mut y, &w, &x);
        for i in 0..13 {
            let want: f32 = 0.5 + (0..19).map(|j| w[i * 19 + j] * x[j]).sum::<f32>();
            assert!((y[i] - want).abs() < 1e-5);
        }
    }
}
