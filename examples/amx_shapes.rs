//! bf16 products of the training step's shapes (B=50 per-step products, 512³, the hoisted
//! T·B-row products at H=256) against the f32 GEMM, and the cost of packing each operand, on
//! the bf16 kernel chosen for this process (`CHARRNN_KERNELS=avx512` for AVX512-BF16 on a CPU
//! with AMX).
//!
//!     cargo run --release --example amx_shapes
use charrnn::engine::bf16::{gemm, Packs};
use charrnn::engine::isa::kernels;
use charrnn::engine::linalg::{matmul, MatRef, Threads};
use std::time::Instant;
fn main() {
    let label = kernels().bf16.label();
    for &(m, k, n, th) in &[
        (50usize, 1024usize, 128usize, 1usize),
        (50, 256, 512, 1),
        (64, 1024, 128, 1),
        (512, 512, 512, 1),
        (512, 512, 512, 2),
        (2500, 256, 1024, 2),
        (2500, 256, 1024, 1),
        (256, 2500, 1024, 1),
        (256, 2500, 1024, 2),
    ] {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let mut p = Packs::default();
        p.a.pack(MatRef::new(&a, m, k));
        p.b.pack(MatRef::new(&b, k, n));
        let reps = (2e9 / (2.0 * (m * n * k) as f64)).max(3.0) as usize;
        let t = Instant::now();
        for _ in 0..reps {
            gemm(&mut c, p.a.view(), &p.b, true, Threads(th));
        }
        let dt = t.elapsed().as_secs_f64() / reps as f64;
        let t = Instant::now();
        for _ in 0..reps {
            matmul(
                &mut c,
                MatRef::new(&a, m, k),
                MatRef::new(&b, k, n),
                true,
                Threads(th),
            );
        }
        let df = t.elapsed().as_secs_f64() / reps as f64;
        let t = Instant::now();
        for _ in 0..reps {
            p.a.pack(MatRef::new(&a, m, k));
        }
        let dpa = t.elapsed().as_secs_f64() / reps as f64;
        let t = Instant::now();
        for _ in 0..reps {
            p.b.pack(MatRef::new(&b, k, n));
        }
        let dpb = t.elapsed().as_secs_f64() / reps as f64;
        println!("{m}x{k}x{n} th{th}: {label} {:.1} us ({:.0} GF/s), f32 {:.1} us ({:.0} GF/s), packA {:.1} us, packB {:.1} us",
            dt * 1e6, 2.0 * (m * n * k) as f64 / dt / 1e9, df * 1e6, 2.0 * (m * n * k) as f64 / df / 1e9, dpa * 1e6, dpb * 1e6);
    }
}
