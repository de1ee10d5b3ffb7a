//! The tile unit's own speed on this machine: 4 tile loads + 4 `tdpbf16ps` per iteration
//! from L1 and streaming, and the multiplies alone. Where loads cost more than the multiplies
//! (measured on the development VM: 74 ns per iteration against 21 ns without loads), the
//! kernel's 2×2 tile blocking (one load per multiply, the best 8 tiles allow) is load-bound.
//!
//!     cargo run --release --example amx_raw      (needs AMX; x86-64 only)
#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
use std::arch::asm;
#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
use std::time::Instant;

#[cfg(not(all(target_arch = "x86_64", not(feature = "portable"))))]
fn main() {
    eprintln!("AMX is x86-64 only (and not in the portable build)");
}

#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
fn main() {
    use charrnn::engine::isa::amx::load_tile_config;
    use charrnn::engine::isa::{kernels, Bf16Products};
    if kernels().bf16 != Bf16Products::Amx {
        eprintln!("no AMX on this CPU (or CHARRNN_NO_AMX is set)");
        return;
    }
    let buf = vec![0u16; 1 << 20];
    let p = buf.as_ptr() as *const u8;
    for &(label, span) in &[("L1 (same 4 KB)", 0usize), ("stream 2 MB", 1usize << 21)] {
        let iters = 200_000usize;
        let t = Instant::now();
        unsafe {
            load_tile_config(); // the kernel's own: C 0–3, A 4–5, B 6–7
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3"
            );
            for i in 0..iters {
                let off = if span == 0 { 0 } else { (i * 4096) % span };
                let a = p.add(off);
                asm!(
                    "tileloadd tmm4, [{a} + {s}]",
                    "tileloadd tmm5, [{a1} + {s}]",
                    "tileloadd tmm6, [{b} + {s}]",
                    "tileloadd tmm7, [{b1} + {s}]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a = in(reg) a, a1 = in(reg) a.add(1024), b = in(reg) a.add(2048), b1 = in(reg) a.add(2048 + 64), s = in(reg) 64usize,
                );
            }
            asm!("tilerelease");
        }
        let dt = t.elapsed().as_secs_f64();
        println!(
            "{label}: {:.0} GFLOP/s, {:.1} ns per 4 tdp",
            iters as f64 * 4.0 * 16384.0 / dt / 1e9,
            dt / iters as f64 * 1e9
        );
    }
    // no loads
    let iters = 200_000usize;
    let t = Instant::now();
    unsafe {
        load_tile_config(); // the kernel's own: C 0–3, A 4–5, B 6–7
        for _ in 0..iters {
            asm!(
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7"
            );
        }
        asm!("tilerelease");
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "no loads: {:.0} GFLOP/s, {:.1} ns per 4 tdp",
        iters as f64 * 4.0 * 16384.0 / dt / 1e9,
        dt / iters as f64 * 1e9
    );
}
