//! Which vector width our own hot loops (gate maths, sampling matvec) run at, chosen once at
//! run time: the binary is built for baseline x86-64 and uses AVX2 or AVX-512 where the CPU
//! has them. The loops are written so that every lane does the same IEEE operations in the same
//! order at any width (no FMA contraction, fixed accumulators), so results are bit-identical
//! on every machine.
//!
//! Owns the detection and the `multiversion!` macro. Does not own any maths.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Base,
    Avx2,
    Avx512,
}

pub fn level() -> Level {
    use std::sync::atomic::{AtomicU8, Ordering};
    static LEVEL: AtomicU8 = AtomicU8::new(u8::MAX);
    let cached = LEVEL.load(Ordering::Relaxed);
    if cached != u8::MAX {
        return [Level::Base, Level::Avx2, Level::Avx512][cached as usize];
    }
    let detected = detect();
    LEVEL.store(detected as u8, Ordering::Relaxed);
    detected
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Level {
    if std::env::var_os("CHARRNN_NO_SIMD").is_some() {
        Level::Base
    } else if is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("fma")
    {
        Level::Avx512
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Level::Avx2
    } else {
        Level::Base
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Level {
    Level::Base
}

/// Defines `fn $name` that runs `$body` compiled three times (baseline, AVX2, AVX-512) and
/// picks one at run time. The body must not use FMA intrinsics: the three must agree bit for
/// bit.
#[macro_export]
macro_rules! multiversion {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident $(<$($g:ident : $bound:path),*>)? ( $($arg:ident : $ty:ty),* $(,)? ) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name $(<$($g: $bound),*>)? ( $($arg: $ty),* ) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body $(<$($g: $bound),*>)? ( $($arg: $ty),* ) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2 $(<$($g: $bound),*>)? ( $($arg: $ty),* ) $(-> $ret)? { body($($arg),*) }
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512 $(<$($g: $bound),*>)? ( $($arg: $ty),* ) $(-> $ret)? { body($($arg),*) }
                match $crate::engine::simd::level() {
                    // SAFETY: the level was detected on this CPU.
                    $crate::engine::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    $crate::engine::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::engine::simd::Level::Base => {}
                }
            }
            body($($arg),*)
        }
    };
}
