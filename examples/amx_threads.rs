//! Measures what a thread pays for AMX: a product on the main thread, on a new thread per
//! call (each new thread's first tile instruction makes the kernel grant it the tile state),
//! on one and on two persistent threads. The reason `team::run_on` and `bf16::gemm_on` use a
//! crew of persistent threads for bf16 training.
//!
//!     cargo run --release --example amx_threads
use charrnn::engine::bf16::{gemm, Packs};
use charrnn::engine::linalg::{MatRef, Threads};
use std::time::Instant;
fn setup(m: usize, k: usize, n: usize) -> (Packs, Vec<f32>) {
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
    let mut p = Packs::default();
    p.a.pack(MatRef::new(&a, m, k));
    p.b.pack(MatRef::new(&b, k, n));
    (p, vec![0f32; m * n])
}
fn main() {
    let (m, k, n) = (256, 512, 512);
    let reps = 50;
    // main thread only
    let (p, mut c) = setup(m, k, n);
    let t = Instant::now();
    for _ in 0..reps {
        gemm(&mut c, p.a.view(), &p.b, false, Threads(1));
    }
    println!(
        "main thread: {:.1} us/call",
        t.elapsed().as_secs_f64() * 1e6 / reps as f64
    );
    // spawn a thread per call
    let t = Instant::now();
    for _ in 0..reps {
        std::thread::scope(|s| {
            s.spawn(|| gemm(&mut c, p.a.view(), &p.b, false, Threads(1)));
        });
    }
    println!(
        "new thread per call: {:.1} us/call",
        t.elapsed().as_secs_f64() * 1e6 / reps as f64
    );
    // one persistent thread alone
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..reps {
                gemm(&mut c, p.a.view(), &p.b, false, Threads(1));
            }
        });
    });
    println!(
        "one persistent thread: {:.1} us/call",
        t.elapsed().as_secs_f64() * 1e6 / reps as f64
    );
    // two persistent threads concurrently
    let (p2, mut c2) = setup(m, k, n);
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..reps {
                gemm(&mut c, p.a.view(), &p.b, false, Threads(1));
            }
        });
        s.spawn(|| {
            for _ in 0..reps {
                gemm(&mut c2, p2.a.view(), &p2.b, false, Threads(1));
            }
        });
    });
    println!(
        "two persistent threads: {:.1} us per call-pair",
        t.elapsed().as_secs_f64() * 1e6 / reps as f64
    );
    let (p3, mut c3) = setup(2 * m, k, n);
    let t = Instant::now();
    for _ in 0..reps {
        gemm(&mut c3, p3.a.view(), &p3.b, false, Threads(2));
    }
    println!(
        "gemm threads=2 on 2m rows: {:.1} us/call",
        t.elapsed().as_secs_f64() * 1e6 / reps as f64
    );
    for &(m, k, n) in &[(1250usize, 256usize, 1024usize), (1250, 256, 1000)] {
        let (p, mut c) = setup(m, k, n);
        let (p2, mut c2) = setup(m, k, n);
        let t = Instant::now();
        for _ in 0..10 {
            gemm(&mut c, p.a.view(), &p.b, true, Threads(1));
        }
        println!(
            "{m}x{k}x{n} one thread: {:.1} us/call",
            t.elapsed().as_secs_f64() * 1e6 / 10.0
        );
        let t = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..10 {
                    gemm(&mut c, p.a.view(), &p.b, true, Threads(1));
                }
            });
            s.spawn(|| {
                for _ in 0..10 {
                    gemm(&mut c2, p2.a.view(), &p2.b, true, Threads(1));
                }
            });
        });
        println!(
            "{m}x{k}x{n} two persistent: {:.1} us per pair",
            t.elapsed().as_secs_f64() * 1e6 / 10.0
        );
    }
}
