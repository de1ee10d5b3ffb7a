//! Read bandwidth of this machine's caches and memory, for the ceiling of batch-1 sampling
//! (whose every character reads all the weights): T threads each sum their own buffer of S
//! bytes over and over; prints GB/s per thread and in all for each S.
//!
//!   cargo run --release --example bandwidth -- [THREADS] [MEGABYTES...]

use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2);
    let sizes: Vec<f64> = if args.len() > 1 {
        args[1..].iter().filter_map(|a| a.parse().ok()).collect()
    } else {
        vec![0.5, 1.0, 1.5, 3.0, 6.0, 12.0, 24.0, 96.0]
    };
    for mb in sizes {
        let n = (mb * 1e6 / 4.0) as usize;
        let (bytes, secs) = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        let buf: Vec<f32> = (0..n).map(|i| ((i + t) % 7) as f32).collect();
                        let reps = ((2e9 / (4.0 * n as f64)) as usize).max(3);
                        let sum = |b: &[f32]| {
                            let mut acc = [0f32; 16];
                            for c in b.chunks_exact(16) {
                                for j in 0..16 {
                                    acc[j] += c[j];
                                }
                            }
                            acc.iter().sum::<f32>()
                        };
                        std::hint::black_box(sum(&buf)); // warm
                        let t0 = Instant::now();
                        let mut total = 0.0;
                        for _ in 0..reps {
                            total += sum(std::hint::black_box(&buf));
                        }
                        std::hint::black_box(total);
                        ((4 * n * reps) as f64, t0.elapsed().as_secs_f64())
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .fold((0.0, 0.0f64), |(b, s), (bb, ss)| (b + bb, s.max(ss)))
        });
        println!(
            "{threads} thread(s), {mb:>5} MB each: {:6.1} GB/s in all, {:6.1} GB/s per thread",
            bytes / secs / 1e9,
            bytes / secs / 1e9 / threads as f64
        );
    }
}
