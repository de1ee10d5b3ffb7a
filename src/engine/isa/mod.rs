//! The instruction-set layer: which kernels run, chosen once per process from the CPU's
//! features, and each instruction set's code in its own room:
//!
//! | room | what it holds | runs where |
//! |---|---|---|
//! | `portable` | plain Rust: the sampler's matvecs, bf16 products as the f32 GEMM of the rounded operands | every target (aarch64, any x86-64, others) |
//! | `avx2` | the sampler's matvecs with AVX2 + FMA | x86-64 with AVX2 and FMA |
//! | `avx512` | the same with AVX-512, and bf16 products with `vdpbf16ps` | x86-64 with AVX-512 (F, BW, VL, DQ); AVX512_BF16 for the products |
//! | `amx` | the detection of AMX and the bf16 tile kernel | x86-64 with AMX, on Linux |
//!
//! The loops written once in plain Rust (the gate maths, the loss, the f32 matvec) are compiled
//! once per vector width by `multiversion!` and picked by the same choice; the f32 GEMM is the
//! `gemm` crate's (`linalg`), which picks its own kernels (AVX-512, AVX2 + FMA, NEON, scalar).
//!
//! Every x86 item (the rooms `avx2`, `avx512`, `amx`, every use of `std::arch::x86_64`) is
//! behind `cfg(all(target_arch = "x86_64", not(feature = "portable")))`, so that the `portable`
//! feature builds on x86-64 exactly the code another architecture builds, and CI proves it.
//!
//! The choice (`Path`): the best this CPU has, or `CHARRNN_KERNELS=portable|avx2|avx512|amx`
//! (a path the machine lacks is an error; `init` turns it into one line for the binary). The
//! older `CHARRNN_NO_SIMD=1` means `portable` and `CHARRNN_NO_AMX=1` caps the path at `avx512`;
//! `CHARRNN_KERNELS` wins over both.
//!
//! Owns the detection, the choice and the `multiversion!` macro. Does not own what the kernels
//! compute (the contracts are in `kernels`, `bf16` and `linalg`).

pub mod portable;

#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
pub mod amx;
#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
pub mod avx2;
#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
pub mod avx512;

use super::bf16::{ARef, PackedB, Start};
use std::sync::OnceLock;

/// A set of kernels, each path a superset of the one before it on x86-64: `Avx512` runs the
/// AVX-512 loops and matvecs (and bf16 products with `vdpbf16ps` where the CPU has
/// AVX512_BF16), `Amx` the same with the bf16 products on AMX tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Path {
    Portable,
    Avx2,
    Avx512,
    Amx,
}

impl Path {
    /// Every path, in order.
    pub const ALL: [Path; 4] = [Path::Portable, Path::Avx2, Path::Avx512, Path::Amx];

    /// Its name, as `CHARRNN_KERNELS` takes it: "portable", "avx2", "avx512", "amx".
    pub fn name(self) -> &'static str {
        match self {
            Path::Portable => "portable",
            Path::Avx2 => "avx2",
            Path::Avx512 => "avx512",
            Path::Amx => "amx",
        }
    }

    fn parse(s: &str) -> Option<Path> {
        Path::ALL.into_iter().find(|p| p.name() == s)
    }

    /// The vector loops' instruction set, for people: "portable", "AVX2", "AVX-512".
    pub fn loops_label(self) -> &'static str {
        match self {
            Path::Portable => "portable",
            Path::Avx2 => "AVX2",
            Path::Avx512 | Path::Amx => "AVX-512",
        }
    }
}

/// Which kernel multiplies bf16 operands (`MatmulPrecision::Bf16`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bf16Products {
    /// AMX tiles (`tdpbf16ps`).
    Amx,
    /// AVX512_BF16's `vdpbf16ps`: two bf16 products per f32 lane per instruction.
    Avx512Bf16,
    /// No bf16 arithmetic: the rounded operands unpacked to f32 and the f32 GEMM (correct,
    /// slower than f32).
    F32Gemm,
}

impl Bf16Products {
    /// For people: "AMX", "AVX512-BF16", "f32 GEMM of the rounded operands".
    pub fn label(self) -> &'static str {
        match self {
            Bf16Products::Amx => "AMX",
            Bf16Products::Avx512Bf16 => "AVX512-BF16",
            Bf16Products::F32Gemm => "f32 GEMM of the rounded operands",
        }
    }

    /// Whether the CPU multiplies bf16 itself (AMX or AVX512_BF16).
    pub fn in_hardware(self) -> bool {
        self != Bf16Products::F32Gemm
    }
}

/// What this CPU and this build can run, detected once (environment variables aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// The best path.
    pub best: Path,
    /// AVX512_BF16 (with the AVX-512 path).
    pub avx512_bf16: bool,
}

impl Cpu {
    /// This machine's.
    pub fn here() -> Cpu {
        static CPU: OnceLock<Cpu> = OnceLock::new();
        *CPU.get_or_init(detect)
    }

    /// The bf16 products that run on `path` on this CPU.
    pub fn bf16_at(self, path: Path) -> Bf16Products {
        match path {
            Path::Amx => Bf16Products::Amx,
            Path::Avx512 if self.avx512_bf16 => Bf16Products::Avx512Bf16,
            _ => Bf16Products::F32Gemm,
        }
    }

    /// Whether this CPU runs the bf16 kernel `k`.
    pub fn runs(self, k: Bf16Products) -> bool {
        match k {
            Bf16Products::Amx => self.best == Path::Amx,
            Bf16Products::Avx512Bf16 => self.best >= Path::Avx512 && self.avx512_bf16,
            Bf16Products::F32Gemm => true,
        }
    }

    /// Every bf16 kernel this CPU runs, the portable one first (for tests and benchmarks).
    pub fn bf16_kernels(self) -> Vec<Bf16Products> {
        [
            Bf16Products::F32Gemm,
            Bf16Products::Avx512Bf16,
            Bf16Products::Amx,
        ]
        .into_iter()
        .filter(|&k| self.runs(k))
        .collect()
    }

    /// Every path this CPU runs, portable first.
    pub fn paths(self) -> Vec<Path> {
        Path::ALL.into_iter().filter(|&p| p <= self.best).collect()
    }
}

#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
fn detect() -> Cpu {
    let avx512 = std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("fma");
    let avx2 =
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    let best = match (avx512, avx2) {
        (true, _) if amx::detect() => Path::Amx,
        (true, _) => Path::Avx512,
        (false, true) => Path::Avx2,
        _ => Path::Portable,
    };
    Cpu {
        best,
        avx512_bf16: avx512 && std::arch::is_x86_feature_detected!("avx512bf16"),
    }
}

#[cfg(not(all(target_arch = "x86_64", not(feature = "portable"))))]
fn detect() -> Cpu {
    Cpu {
        best: Path::Portable,
        avx512_bf16: false,
    }
}

/// The kernels that run: a path, and what it multiplies bf16 operands with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernels {
    pub path: Path,
    pub bf16: Bf16Products,
}

impl Kernels {
    /// The f32 GEMM's kernels (the `gemm` crate's own choice from the CPU, whatever the path):
    /// "AVX-512", "AVX2", "SSE2", "NEON", or "the gemm crate's" where this build cannot tell.
    pub fn f32_label(self) -> &'static str {
        f32_gemm_label()
    }

    /// "bf16 products (AMX)", "f32 products (AVX-512)": the products of a training step in
    /// `bf16` or not, and the kernels that run them.
    pub fn products(self, bf16: bool) -> String {
        if bf16 {
            format!("bf16 products ({})", self.bf16.label())
        } else {
            format!("f32 products ({})", self.f32_label())
        }
    }
}

#[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
fn f32_gemm_label() -> &'static str {
    // The gemm crate's own dispatch (gemm-common's `gemm_def!`), with its x86-v4 feature on.
    if std::arch::is_x86_feature_detected!("avx512f") {
        "AVX-512"
    } else if std::arch::is_x86_feature_detected!("fma") {
        "AVX2"
    } else {
        "SSE2"
    }
}

#[cfg(not(all(target_arch = "x86_64", not(feature = "portable"))))]
fn f32_gemm_label() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "NEON"
    } else {
        "the gemm crate's"
    }
}

/// The kernels chosen for this process (see `init`). Panics with `init`'s message when
/// `CHARRNN_KERNELS` names a path this machine lacks: the binary calls `init` first, so only a
/// library user meets the panic.
pub fn kernels() -> Kernels {
    match chosen() {
        Ok(k) => *k,
        Err(e) => panic!("charrnn: {e}"),
    }
}

/// The path of `kernels`, for the dispatch of every vectorised loop.
#[inline]
pub fn level() -> Path {
    kernels().path
}

/// Chooses the kernels from the CPU and `CHARRNN_KERNELS` (or the older `CHARRNN_NO_SIMD`,
/// `CHARRNN_NO_AMX`), once; an unknown name or a path this machine lacks is an input error
/// (exit 2) that names the paths it runs.
pub fn init() -> crate::error::Result<Kernels> {
    chosen()
        .as_ref()
        .copied()
        .map_err(|e| crate::error::Error::input(e.clone()))
}

fn chosen() -> &'static Result<Kernels, String> {
    static CHOSEN: OnceLock<Result<Kernels, String>> = OnceLock::new();
    CHOSEN.get_or_init(|| {
        let cpu = Cpu::here();
        let var = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
        let legacy = (
            var("CHARRNN_NO_SIMD").is_some(),
            var("CHARRNN_NO_AMX").is_some(),
        );
        let path = choose(cpu, var("CHARRNN_KERNELS").as_deref(), legacy)?;
        Ok(Kernels {
            path,
            bf16: cpu.bf16_at(path),
        })
    })
}

/// The path for `cpu` given `CHARRNN_KERNELS` (`forced`) and whether the older
/// `CHARRNN_NO_SIMD` and `CHARRNN_NO_AMX` are set, or the one line that says why not.
pub fn choose(
    cpu: Cpu,
    forced: Option<&str>,
    (no_simd, no_amx): (bool, bool),
) -> Result<Path, String> {
    let Some(name) = forced.filter(|s| !s.is_empty()) else {
        return Ok(match (no_simd, no_amx) {
            (true, _) => Path::Portable,
            (false, true) => cpu.best.min(Path::Avx512),
            _ => cpu.best,
        });
    };
    let runs = cpu.paths().iter().map(|p| p.name()).collect::<Vec<_>>();
    let runs = runs.join(", ");
    let Some(path) = Path::parse(&name.trim().to_ascii_lowercase()) else {
        return Err(format!(
            "CHARRNN_KERNELS={name} is not a set of kernels: use portable, avx2, avx512 or amx (this machine runs {runs}), or unset it"
        ));
    };
    if path > cpu.best {
        let what = if cfg!(all(target_arch = "x86_64", not(feature = "portable"))) {
            "this CPU lacks it"
        } else {
            "this build has only the portable kernels"
        };
        return Err(format!(
            "CHARRNN_KERNELS={name}: {what} (this machine runs {runs}); pick one of those or unset it"
        ));
    }
    Ok(path)
}

/// A bf16 kernel over the 32-row blocks `blocks` of a product, `c` holding exactly their rows
/// (see `isa::amx::kernel`).
pub type BlockKernel = unsafe fn(&mut [f32], ARef, &PackedB, std::ops::Range<usize>, Start);

/// The block kernel of `k`, or None for the portable one (which is not split by blocks).
pub fn block_kernel(k: Bf16Products) -> Option<BlockKernel> {
    match k {
        #[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
        Bf16Products::Amx => Some(amx::kernel),
        #[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
        Bf16Products::Avx512Bf16 => Some(avx512::bf16_kernel),
        #[cfg(not(all(target_arch = "x86_64", not(feature = "portable"))))]
        Bf16Products::Amx | Bf16Products::Avx512Bf16 => None,
        Bf16Products::F32Gemm => None,
    }
}

/// Defines `fn $name` that runs `$body` compiled once per vector width (the target's baseline,
/// and on x86-64 AVX2 and AVX-512) and picks one by `level()`. The body must not use FMA
/// intrinsics: every version must give the same bits.
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
            #[cfg(all(target_arch = "x86_64", not(feature = "portable")))]
            {
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2 $(<$($g: $bound),*>)? ( $($arg: $ty),* ) $(-> $ret)? { body($($arg),*) }
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512 $(<$($g: $bound),*>)? ( $($arg: $ty),* ) $(-> $ret)? { body($($arg),*) }
                use $crate::engine::isa::Path;
                match $crate::engine::isa::level() {
                    // SAFETY: the path was detected on this CPU (`isa::choose`).
                    Path::Avx512 | Path::Amx => return unsafe { avx512($($arg),*) },
                    Path::Avx2 => return unsafe { avx2($($arg),*) },
                    Path::Portable => {}
                }
            }
            body($($arg),*)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const AVX512: Cpu = Cpu {
        best: Path::Avx512,
        avx512_bf16: true,
    };

    #[test]
    fn a_forced_path_is_taken_when_the_cpu_has_it_and_refused_in_one_line_when_not() {
        assert_eq!(choose(AVX512, None, (false, false)), Ok(Path::Avx512));
        assert_eq!(choose(AVX512, Some("avx2"), (false, false)), Ok(Path::Avx2));
        assert_eq!(choose(AVX512, Some("AVX2"), (false, false)), Ok(Path::Avx2));
        assert_eq!(
            choose(AVX512, Some("portable"), (false, false)),
            Ok(Path::Portable)
        );
        assert_eq!(choose(AVX512, Some(""), (false, false)), Ok(Path::Avx512));
        let e = choose(AVX512, Some("amx"), (false, false)).unwrap_err();
        assert!(e.starts_with("CHARRNN_KERNELS=amx: "), "{e}");
        assert!(e.contains("runs portable, avx2, avx512)"), "{e}");
        let e = choose(AVX512, Some("neon"), (false, false)).unwrap_err();
        assert!(e.contains("neon is not a set of kernels"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn the_older_variables_still_cap_the_path_and_charrnn_kernels_wins() {
        let amx = Cpu {
            best: Path::Amx,
            ..AVX512
        };
        assert_eq!(choose(amx, None, (false, false)), Ok(Path::Amx));
        assert_eq!(choose(amx, None, (true, false)), Ok(Path::Portable));
        assert_eq!(choose(amx, None, (false, true)), Ok(Path::Avx512));
        let avx2 = Cpu {
            best: Path::Avx2,
            ..AVX512
        };
        assert_eq!(choose(avx2, None, (false, true)), Ok(Path::Avx2));
        assert_eq!(choose(amx, Some("amx"), (true, true)), Ok(Path::Amx));
        assert_eq!(avx2.paths(), [Path::Portable, Path::Avx2]);
        assert_eq!(amx.bf16_at(Path::Amx), Bf16Products::Amx);
    }

    #[test]
    fn bf16_products_follow_the_path_and_the_cpu() {
        assert_eq!(AVX512.bf16_at(Path::Avx512), Bf16Products::Avx512Bf16);
        assert_eq!(AVX512.bf16_at(Path::Avx2), Bf16Products::F32Gemm);
        let without = Cpu {
            avx512_bf16: false,
            ..AVX512
        };
        assert_eq!(without.bf16_at(Path::Avx512), Bf16Products::F32Gemm);
        assert_eq!(without.bf16_kernels(), [Bf16Products::F32Gemm]);
        assert_eq!(
            AVX512.bf16_kernels(),
            [Bf16Products::F32Gemm, Bf16Products::Avx512Bf16]
        );
    }
}
