//! The products' precision of a fresh run without `--precision`: whichever this machine trains
//! faster. Where the CPU multiplies bf16 itself (AMX, or AVX512_BF16's `vdpbf16ps`: see
//! `engine::isa`), the sizing probe (`--minutes` without `--hidden`) times both precisions and
//! the faster at the larger probe size is taken; a run without a probe takes this machine's
//! stored probes of the same shape (`probes`) when both precisions have one; with neither, the
//! rule: bf16 on AMX (measured 1.5× f32 and more at H=256–512, docs/engine.md), f32 on
//! AVX512-BF16 (it must be measured faster first: on the Sapphire Rapids guest it was not).
//! Where the CPU has no bf16 arithmetic, f32: bf16 would be f32 products of the rounded
//! operands, correct but slower. `--precision bf16` where a probe measured it slower gets one
//! line saying so.
//!
//! Owns the rule. Does not own the probe (`sizing`) or the stored probes (`probes`).

use super::probes::Point;
use crate::engine::isa::{Bf16Products, Kernels};
use crate::engine::MatmulPrecision;

/// Both precisions' probe points (hidden, chars/s, spread) and where they came from ("this
/// run's probe", "this machine's stored probes").
pub struct Timed<'a> {
    pub f32: &'a [Point],
    pub bf16: &'a [Point],
    pub source: &'a str,
}

impl Timed<'_> {
    /// (hidden, f32 chars/s, bf16 chars/s) at the largest size both timed, if any.
    fn at_largest(&self) -> Option<(usize, f64, f64)> {
        self.f32
            .iter()
            .filter_map(|f| {
                let b = self.bf16.iter().find(|b| b.0 == f.0)?;
                Some((f.0, f.1, b.1))
            })
            .max_by_key(|p| p.0)
    }
}

/// The precision chosen, why (for the sizing line, after "f32 products (AVX-512)": " as
/// given", ", the faster here: …", " — …" for the rule), and a line for the user when
/// `--precision bf16` was given where f32 was measured faster.
#[derive(Debug, PartialEq)]
pub struct Decision {
    pub precision: MatmulPrecision,
    pub why: String,
    pub warning: Option<String>,
}

/// Whether a fresh run should time both precisions: the CPU multiplies bf16 itself and the
/// precision is not given as f32 (bf16 given is timed against f32 to warn when slower).
pub fn times_both(given: Option<MatmulPrecision>, kernels: Kernels) -> bool {
    kernels.bf16.in_hardware() && given != Some(MatmulPrecision::F32)
}

/// The precision of a fresh run: `given`, else the faster in `timed`, else the rule (see the
/// module header) for `kernels`.
pub fn decide(given: Option<MatmulPrecision>, timed: Option<Timed>, kernels: Kernels) -> Decision {
    let measured = timed
        .as_ref()
        .and_then(|t| Some((t.at_largest()?, t.source)));
    let bf16_label = kernels.bf16.label();
    if let Some(p) = given {
        let warning = match (p, measured) {
            (MatmulPrecision::Bf16, Some(((h, f, b), source))) if f > b => Some(format!(
                "charrnn: --precision bf16 trains slower on this machine: {} against {} chars/s in f32 at H={h} ({bf16_label}; {source}); without --precision the run would take f32",
                count(b),
                count(f)
            )),
            _ => None,
        };
        return Decision {
            precision: p,
            why: " as given".into(),
            warning,
        };
    }
    let (precision, why) = match (kernels.bf16.in_hardware(), measured) {
        (false, _) => (MatmulPrecision::F32, String::new()),
        (true, Some(((h, f, b), source))) => (
            if b > f {
                MatmulPrecision::Bf16
            } else {
                MatmulPrecision::F32
            },
            format!(
                ", the faster here: bf16 {} against f32 {} chars/s at H={h} ({source}; --precision for the other)",
                count(b),
                count(f)
            ),
        ),
        (true, None) if kernels.bf16 == Bf16Products::Amx => (
            MatmulPrecision::Bf16,
            " — the CPU has AMX (--precision f32 for f32)".into(),
        ),
        (true, None) => (
            MatmulPrecision::F32,
            format!(" — bf16 on {bf16_label} is not timed on this machine yet (a --minutes run without --hidden times both)"),
        ),
    };
    Decision {
        precision,
        why,
        warning: None,
    }
}

fn count(x: f64) -> String {
    super::sizing::count(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::isa::Path;

    const AVX512: Kernels = Kernels {
        path: Path::Avx512,
        bf16: Bf16Products::Avx512Bf16,
    };

    fn timed<'a>(f: &'a [Point], b: &'a [Point]) -> Timed<'a> {
        Timed {
            f32: f,
            bf16: b,
            source: "this run's probe",
        }
    }

    #[test]
    fn the_faster_precision_at_the_larger_probe_size_is_taken() {
        let f = [(128, 100e3, 0.1), (384, 20e3, 0.1)];
        let slow = [(128, 120e3, 0.1), (384, 15e3, 0.1)];
        let fast = [(128, 90e3, 0.1), (384, 30e3, 0.1)];
        let d = decide(None, Some(timed(&f, &slow)), AVX512);
        assert_eq!(d.precision, MatmulPrecision::F32, "{}", d.why);
        assert!(
            d.why.contains("15k against f32 20k chars/s at H=384"),
            "{}",
            d.why
        );
        let d = decide(None, Some(timed(&f, &fast)), AVX512);
        assert_eq!(d.precision, MatmulPrecision::Bf16);
        assert_eq!(d.warning, None);
    }

    #[test]
    fn bf16_given_where_measured_slower_says_so_in_one_line() {
        let f = [(128, 100e3, 0.1), (384, 20e3, 0.1)];
        let slow = [(128, 120e3, 0.1), (384, 15e3, 0.1)];
        let d = decide(Some(MatmulPrecision::Bf16), Some(timed(&f, &slow)), AVX512);
        assert_eq!(d.precision, MatmulPrecision::Bf16);
        let w = d.warning.expect("a warning");
        assert!(
            w.starts_with("charrnn: --precision bf16 trains slower"),
            "{w}"
        );
        assert!(!w.contains('\n'));
        let fast = [(128, 90e3, 0.1), (384, 30e3, 0.1)];
        let d = decide(Some(MatmulPrecision::Bf16), Some(timed(&f, &fast)), AVX512);
        assert_eq!(d.warning, None);
    }

    #[test]
    fn without_a_measurement_the_rule_takes_bf16_on_amx_only() {
        let amx = Kernels {
            path: Path::Amx,
            bf16: Bf16Products::Amx,
        };
        assert_eq!(decide(None, None, amx).precision, MatmulPrecision::Bf16);
        assert_eq!(decide(None, None, AVX512).precision, MatmulPrecision::F32);
        let portable = Kernels {
            path: Path::Portable,
            bf16: Bf16Products::F32Gemm,
        };
        assert_eq!(decide(None, None, portable).precision, MatmulPrecision::F32);
        assert!(!times_both(None, portable));
        assert!(times_both(None, AVX512));
        assert!(!times_both(Some(MatmulPrecision::F32), AVX512));
        // Points of different sizes only: nothing to compare, the rule.
        let f = [(128, 100e3, 0.1)];
        let b = [(384, 30e3, 0.1)];
        let d = decide(None, Some(timed(&f, &b)), amx);
        assert_eq!(d.precision, MatmulPrecision::Bf16);
    }
}
