//! Matrix products for the engine: one safe wrapper over the `gemm` crate (bounds checked once
//! per call, strides for free transposes) and a plain matvec for batch-1 sampling.
//!
//! Owns no buffers and no model knowledge; the engine decides shapes and threads.

use crate::float::Float;

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
        let rows = crate::team::share(m, parts, p);
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
    /// `y (n) += W (n × k, row-major) · x (k)`, in a fixed summation order (16 lanes, then a
    /// fixed tree) so that sampling gives the same bits on every machine and vector width.
    pub fn matvec_acc<F: Float>(y: &mut [F], w: &[F], x: &[F]) {
        let k = x.len();
        assert_eq!(w.len(), y.len() * k, "matvec shape");
        for (yi, row) in y.iter_mut().zip(w.chunks_exact(k)) {
            let mut acc = [F::ZERO; 16];
            let mut rc = row.chunks_exact(16);
            let mut xc = x.chunks_exact(16);
            for (r16, x16) in (&mut rc).zip(&mut xc) {
                for j in 0..16 {
                    acc[j] += r16[j] * x16[j];
                }
            }
            let mut tail = F::ZERO;
            for (&r, &xv) in rc.remainder().iter().zip(xc.remainder()) {
                tail += r * xv;
            }
            let mut half = [F::ZERO; 8];
            for j in 0..8 {
                half[j] = acc[j] + acc[j + 8];
            }
            let s = ((half[0] + half[4]) + (half[1] + half[5])) + ((half[2] + half[6]) + (half[3] + half[7]));
            *yi += s + tail;
        }
    }
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
