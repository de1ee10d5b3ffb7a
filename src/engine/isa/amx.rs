//! The AMX room: whether the CPU has Intel's tile matrix unit (and Linux granted its state),
//! and the bf16 kernel on its tiles: `tdpbf16ps` multiplies a 16×32 tile of bf16 by a 32×16
//! one into 16×16 f32 in one instruction.
//!
//! Measured reason for hand-written tiles: one core here does about 2 TFLOP/s of `tdpbf16ps`
//! against 0.16 TFLOP/s of f32 FMA; no crate on crates.io drives AMX (the `gemm` crate's
//! bf16 path is plain AVX). Stable Rust has no AMX intrinsics, so the few instructions are
//! written with `asm!`; Linux must grant the tile state (`arch_prctl(ARCH_REQ_XCOMP_PERM)`).
//!
//! Owns the detection and the tile kernel. Does not own the packed layout, the split over
//! threads or the dispatch (see `bf16`), nor the choice of path (`isa`).

use crate::engine::bf16::{ARef, PackedB, Start, BLOCK};
use std::arch::asm;

/// Whether this CPU has AMX-TILE and AMX-BF16 and the OS granted the tile state (Linux only:
/// elsewhere the permission call is not known, so no).
#[cfg(target_os = "linux")]
pub fn detect() -> bool {
    // CPUID leaf 7: EDX bit 24 AMX-TILE, bit 22 AMX-BF16 (`is_x86_feature_detected!` for them
    // is not stable yet).
    let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
    if leaf7.edx & (1 << 24) == 0 || leaf7.edx & (1 << 22) == 0 {
        return false;
    }
    // arch_prctl(ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18): syscall 158. It fails
    // where the kernel or the hypervisor does not enable the tile state. The permission is the
    // process's: every thread may then configure tiles.
    let ret: i64;
    // SAFETY: a system call that writes no memory of ours; rcx and r11 are clobbered.
    unsafe {
        asm!("syscall", inlateout("rax") 158i64 => ret, in("rdi") 0x1023i64,
            in("rsi") 18i64, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret == 0
}

/// Elsewhere than Linux: no AMX (see the Linux version).
#[cfg(not(target_os = "linux"))]
pub fn detect() -> bool {
    false
}

/// The tile configuration: C tiles 0–3 (16 rows × 16 f32), A tiles 4–5 (16 rows × 32 bf16),
/// B tiles 6–7 (16 row pairs × 16 columns × 2 bf16): every row 64 bytes.
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

const CONFIG: TileConfig = TileConfig {
    palette: 1,
    start_row: 0,
    reserved: [0; 14],
    colsb: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

/// Loads the kernel's tile configuration (`CONFIG`) into this thread's tile registers; also
/// for `examples/amx_raw.rs`, which times these tiles alone.
///
/// # Safety
/// The CPU has AMX and the tile state was granted (`detect`).
pub unsafe fn load_tile_config() {
    asm!("ldtilecfg [{}]", in(reg) &CONFIG as *const TileConfig, options(nostack));
}

/// C [+]= A · B on the 32-row blocks `blocks` of A, with `c` holding exactly those rows (n
/// columns each). Per 32 × 32 block of C, four C tiles accumulate 2 A tiles × 2 B tiles for
/// every 32 of k. Whole blocks load and store their tiles in `c`; blocks on the edges of C go
/// through a 32 × 32 buffer that has every row and column.
///
/// # Safety
/// The CPU has AMX and the tile state was granted (`detect`), and `a`, `b` are packed with
/// equal k.
pub unsafe fn kernel(
    c: &mut [f32],
    a: ARef,
    b: &PackedB,
    blocks: std::ops::Range<usize>,
    start: Start,
) {
    let (m, n) = (a.rows(), b.cols());
    debug_assert_eq!(a.padded_depth(), b.padded_depth());
    let first = blocks.start * BLOCK;
    let mut tmp = [0.0f32; BLOCK * BLOCK];
    load_tile_config();
    for mb in blocks {
        let i0 = mb * BLOCK;
        let rows = BLOCK.min(m - i0);
        for j0 in (0..n).step_by(BLOCK) {
            let cols = BLOCK.min(n - j0);
            let whole = rows == BLOCK && cols == BLOCK;
            // The C block: in c itself (row stride n floats), or in tmp (stride 32).
            let (t, cs) = if whole {
                (c.as_mut_ptr().add((i0 - first) * n + j0) as *mut u8, n * 4)
            } else {
                for r in 0..BLOCK {
                    let row = &mut tmp[r * BLOCK..][..BLOCK];
                    row.fill(0.0);
                    match start {
                        Start::C if r < rows => {
                            row[..cols].copy_from_slice(&c[(i0 + r - first) * n + j0..][..cols])
                        }
                        Start::Bias(bias) => row[..cols].copy_from_slice(&bias[j0..j0 + cols]),
                        _ => {}
                    }
                }
                (tmp.as_mut_ptr() as *mut u8, BLOCK * 4)
            };
            load_c(t, cs, start, whole, j0);
            multiply(a, b, i0, j0);
            asm!(
                "tilestored [{t} + {s}], tmm0",
                "tilestored [{t1} + {s}], tmm1",
                "tilestored [{t2} + {s}], tmm2",
                "tilestored [{t3} + {s}], tmm3",
                t = in(reg) t, t1 = in(reg) t.add(64), t2 = in(reg) t.add(16 * cs),
                t3 = in(reg) t.add(16 * cs + 64), s = in(reg) cs, options(nostack)
            );
            if !whole {
                for r in 0..rows {
                    c[(i0 + r - first) * n + j0..][..cols]
                        .copy_from_slice(&tmp[r * BLOCK..][..cols]);
                }
            }
        }
    }
    asm!("tilerelease", options(nostack));
}

/// The C tiles' start for the block at `t` (row stride `cs` bytes; `whole`: the block is in
/// c itself, else in the edge buffer that already holds the start): the bias in every row,
/// the block's values, or zero.
///
/// # Safety
/// As `kernel`; `t` points at 32 rows of 32 floats `cs` bytes apart.
#[inline(always)]
unsafe fn load_c(t: *mut u8, cs: usize, start: Start, whole: bool, j0: usize) {
    if let (Start::Bias(bias), true) = (start, whole) {
        // Stride 0: every row of the tiles is the bias.
        let p = bias.as_ptr().add(j0) as *const u8;
        asm!(
            "tileloadd tmm0, [{p} + {z}]",
            "tileloadd tmm1, [{p1} + {z}]",
            "tileloadd tmm2, [{p} + {z}]",
            "tileloadd tmm3, [{p1} + {z}]",
            p = in(reg) p, p1 = in(reg) p.add(64), z = in(reg) 0usize, options(nostack)
        );
    } else if matches!(start, Start::C) || !whole {
        asm!(
            "tileloadd tmm0, [{t} + {s}]",
            "tileloadd tmm1, [{t1} + {s}]",
            "tileloadd tmm2, [{t2} + {s}]",
            "tileloadd tmm3, [{t3} + {s}]",
            t = in(reg) t, t1 = in(reg) t.add(64), t2 = in(reg) t.add(16 * cs),
            t3 = in(reg) t.add(16 * cs + 64), s = in(reg) cs, options(nostack)
        );
    } else {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        );
    }
}

/// The C tiles += rows i0..i0+32 of A · columns j0..j0+32 of B, over the whole depth.
///
/// # Safety
/// As `kernel`.
#[inline(always)]
unsafe fn multiply(a: ARef, b: &PackedB, i0: usize, j0: usize) {
    let kp = a.padded_depth();
    // Bytes between rows of an A chunk and between row pairs of a B panel (both 32 wide);
    // the size of a B panel in words.
    let (a_stride, b_stride, panel) = (2 * BLOCK, 4 * BLOCK, kp / 2 * BLOCK);
    for k0 in (0..kp).step_by(BLOCK) {
        let a0 = a.data().as_ptr().add(i0 * kp + k0 * BLOCK) as *const u8;
        let bb = b.data().as_ptr().add((j0 / BLOCK) * panel + k0 / 2 * BLOCK) as *const u8;
        asm!(
            "tileloadd tmm4, [{a0} + {sa}]",
            "tileloadd tmm5, [{a1} + {sa}]",
            "tileloadd tmm6, [{b0} + {sb}]",
            "tileloadd tmm7, [{b1} + {sb}]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            a0 = in(reg) a0, a1 = in(reg) a0.add(16 * a_stride), b0 = in(reg) bb,
            b1 = in(reg) bb.add(64), sa = in(reg) a_stride, sb = in(reg) b_stride,
            options(nostack)
        );
    }
}
