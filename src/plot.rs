//! Loss charts as SVG, written by hand (a few lines of markup; no plotting crate needed):
//! one or more series of (characters seen, loss) on linear axes with labelled ticks.
//!
//! Owns the drawing. Does not own where the numbers come from (see `runlog`).

use std::fmt::Write;

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Drawn thin and dashed (training loss), else solid (validation loss).
    pub dashed: bool,
    /// Index into the palette: a run's train and validation series share a colour.
    pub colour: usize,
}

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// "Nice" tick positions covering [lo, hi]: steps of 1, 2 or 5 × 10^k, about `n` of them.
pub fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if hi <= lo || !lo.is_finite() || !hi.is_finite() {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn label(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{}G", trim(v / 1e9))
    } else if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart as an SVG document.
pub fn svg(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let (w, h) = (800.0, 500.0);
    let (left, right, top, bottom) = (70.0, 20.0, 40.0, 60.0);
    let pts = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    x0 = x0.min(0.0);
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    (y0, y1) = ((y0 - pad).max(0.0), y1 + pad);
    let px = |x: f64| left + (x - x0) / (x1 - x0) * (w - left - right);
    let py = |y: f64| top + (y1 - y) / (y1 - y0) * (h - top - bottom);

    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        w / 2.0,
        esc(title)
    );
    for t in ticks(x0, x1, 8) {
        let x = px(t);
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{}" stroke="#eee"/>"##,
            h - bottom
        );
        let _ = writeln!(
            o,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            h - bottom + 18.0,
            label(t)
        );
    }
    for t in ticks(y0, y1, 6) {
        let y = py(t);
        let _ = writeln!(
            o,
            r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/>"##,
            w - right
        );
        let _ = writeln!(
            o,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + 4.0,
            label(t)
        );
    }
    let _ = writeln!(
        o,
        r##"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="#444"/>"##,
        w - left - right,
        h - top - bottom
    );
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (left + w - right) / 2.0,
        h - 18.0,
        esc(x_label)
    );
    let _ = writeln!(
        o,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>"#,
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0,
        esc(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[s.colour % PALETTE.len()];
        let path: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let style = if s.dashed {
            r#"stroke-width="1" stroke-dasharray="4 3" opacity="0.7""#
        } else {
            r#"stroke-width="2""#
        };
        if path.len() == 1 {
            let _ = writeln!(
                o,
                r#"<circle cx="{}" cy="{}" r="3" fill="{colour}"/>"#,
                path[0].split(',').next().unwrap(),
                path[0].split(',').nth(1).unwrap()
            );
        } else if !path.is_empty() {
            let _ = writeln!(
                o,
                r#"<polyline fill="none" stroke="{colour}" {style} points="{}"/>"#,
                path.join(" ")
            );
        }
        // legend, top right
        let ly = top + 16.0 + 16.0 * i as f64;
        let lx = w - right - 230.0;
        let dash = if s.dashed {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let _ = writeln!(
            o,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2"{dash}/>"#,
            lx + 24.0
        );
        let _ = writeln!(
            o,
            r#"<text x="{}" y="{}">{}</text>"#,
            lx + 30.0,
            ly + 4.0,
            esc(&s.name)
        );
    }
    o.push_str("</svg>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        assert_eq!(ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = ticks(1.37, 4.2, 6);
        assert!(
            t.iter().all(|&v| (1.37..=4.2).contains(&v)) && t.len() >= 4,
            "{t:?}"
        );
        assert_eq!(label(2_500_000.0), "2.5M");
        assert_eq!(label(1.5), "1.5");
    }

    #[test]
    fn chart_has_axes_labels_and_one_line_per_series() {
        let s = vec![
            Series {
                name: "run train".into(),
                points: vec![(0.0, 4.0), (1e6, 2.0)],
                dashed: true,
                colour: 0,
            },
            Series {
                name: "run validation".into(),
                points: vec![(5e5, 2.5), (1e6, 2.1)],
                dashed: false,
                colour: 0,
            },
        ];
        let svg = svg("loss", "characters seen", "loss (nats/char)", &s);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(
            svg.contains("characters seen")
                && svg.contains("loss (nats/char)")
                && svg.contains("run validation")
        );
        assert!(svg.contains(">1M<"), "x ticks are labelled");
    }
}
