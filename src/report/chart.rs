//! Loss charts: one or more series of (characters seen, loss) on linear axes with labelled
//! ticks and a legend. The chart is laid out once as a list of shapes, then written as SVG
//! (text markup) or PNG (rasterised by `raster`).
//!
//! Owns the chart's layout and its two renderings. Does not own where the numbers come from
//! (see `runlog`).

use super::raster::{Canvas, Rgb};
use std::fmt::Write;

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Drawn thin and dashed (training loss), else solid (validation loss).
    pub dashed: bool,
    /// Index into the palette: a run's train and validation series share a colour.
    pub colour: usize,
}

const PALETTE: [Rgb; 8] = [
    Rgb(0x1f, 0x77, 0xb4),
    Rgb(0xd6, 0x27, 0x28),
    Rgb(0x2c, 0xa0, 0x2c),
    Rgb(0xff, 0x7f, 0x0e),
    Rgb(0x94, 0x67, 0xbd),
    Rgb(0x8c, 0x56, 0x4b),
    Rgb(0xe3, 0x77, 0xc2),
    Rgb(0x17, 0xbe, 0xcf),
];
const GRID: Rgb = Rgb(0xee, 0xee, 0xee);
const FRAME: Rgb = Rgb(0x44, 0x44, 0x44);
const INK: Rgb = Rgb(0, 0, 0);

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// What a chart is made of, in pixels of a W×H picture (y down).
pub enum Shape {
    Line {
        points: Vec<(f64, f64)>,
        colour: Rgb,
        width: f64,
        dashed: bool,
        opacity: f64,
    },
    Frame {
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        colour: Rgb,
    },
    Dot {
        x: f64,
        y: f64,
        r: f64,
        colour: Rgb,
    },
    /// `y` is the baseline; `vertical` text reads bottom to top, centred on (x, y).
    Text {
        x: f64,
        y: f64,
        text: String,
        size: f64,
        anchor: Anchor,
        vertical: bool,
    },
}

pub const WIDTH: usize = 800;
pub const HEIGHT: usize = 500;

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

/// Lays the chart out as shapes.
pub fn layout(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Vec<Shape> {
    let (w, h) = (WIDTH as f64, HEIGHT as f64);
    let (left, right, top, bottom) = (70.0, 20.0, 40.0, 60.0);
    let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| finite(p))
    {
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
    let text = |x: f64, y: f64, t: &str, size: f64, anchor: Anchor| Shape::Text {
        x,
        y,
        text: t.to_string(),
        size,
        anchor,
        vertical: false,
    };

    let mut s = vec![text(w / 2.0, 24.0, title, 15.0, Anchor::Middle)];
    for t in ticks(x0, x1, 8) {
        let x = px(t);
        s.push(Shape::Line {
            points: vec![(x, top), (x, h - bottom)],
            colour: GRID,
            width: 1.0,
            dashed: false,
            opacity: 1.0,
        });
        s.push(text(x, h - bottom + 18.0, &label(t), 12.0, Anchor::Middle));
    }
    for t in ticks(y0, y1, 6) {
        let y = py(t);
        s.push(Shape::Line {
            points: vec![(left, y), (w - right, y)],
            colour: GRID,
            width: 1.0,
            dashed: false,
            opacity: 1.0,
        });
        s.push(text(left - 6.0, y + 4.0, &label(t), 12.0, Anchor::End));
    }
    s.push(Shape::Frame {
        x: left,
        y: top,
        w: w - left - right,
        h: h - top - bottom,
        colour: FRAME,
    });
    s.push(text(
        (left + w - right) / 2.0,
        h - 18.0,
        x_label,
        12.0,
        Anchor::Middle,
    ));
    s.push(Shape::Text {
        x: 18.0,
        y: (top + h - bottom) / 2.0,
        text: y_label.to_string(),
        size: 12.0,
        anchor: Anchor::Middle,
        vertical: true,
    });
    for (i, ser) in series.iter().enumerate() {
        let colour = PALETTE[ser.colour % PALETTE.len()];
        let pts: Vec<(f64, f64)> = ser
            .points
            .iter()
            .filter(|p| finite(p))
            .map(|&(x, y)| (px(x), py(y)))
            .collect();
        let (width, opacity) = if ser.dashed { (1.0, 0.7) } else { (2.0, 1.0) };
        match pts.len() {
            0 => {}
            1 => s.push(Shape::Dot {
                x: pts[0].0,
                y: pts[0].1,
                r: 3.0,
                colour,
            }),
            _ => s.push(Shape::Line {
                points: pts,
                colour,
                width,
                dashed: ser.dashed,
                opacity,
            }),
        }
        // legend, top right
        let (lx, ly) = (w - right - 230.0, top + 16.0 + 16.0 * i as f64);
        s.push(Shape::Line {
            points: vec![(lx, ly), (lx + 24.0, ly)],
            colour,
            width: 2.0,
            dashed: ser.dashed,
            opacity: 1.0,
        });
        s.push(text(lx + 30.0, ly + 4.0, &ser.name, 12.0, Anchor::Start));
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart as an SVG document.
pub fn svg(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let (w, h) = (WIDTH, HEIGHT);
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    for shape in layout(title, x_label, y_label, series) {
        match shape {
            Shape::Line {
                points,
                colour,
                width,
                dashed,
                opacity,
            } => {
                let pts: Vec<String> = points
                    .iter()
                    .map(|(x, y)| format!("{x:.1},{y:.1}"))
                    .collect();
                let dash = if dashed {
                    r#" stroke-dasharray="4 3""#
                } else {
                    ""
                };
                let op = if opacity < 1.0 {
                    format!(r#" opacity="{opacity}""#)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    o,
                    r#"<polyline fill="none" stroke="{colour}" stroke-width="{width}"{dash}{op} points="{}"/>"#,
                    pts.join(" ")
                );
            }
            Shape::Frame { x, y, w, h, colour } => {
                let _ = writeln!(
                    o,
                    r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="none" stroke="{colour}"/>"#
                );
            }
            Shape::Dot { x, y, r, colour } => {
                let _ = writeln!(
                    o,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{colour}"/>"#
                );
            }
            Shape::Text {
                x,
                y,
                text,
                size,
                anchor,
                vertical,
            } => {
                let a = match anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let rot = if vertical {
                    format!(r#" transform="rotate(-90 {x} {y})""#)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    o,
                    r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{a}" font-size="{size}"{rot}>{}</text>"#,
                    esc(&text)
                );
            }
        }
    }
    o.push_str("</svg>\n");
    o
}

/// The chart as a PNG file.
pub fn png(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Vec<u8> {
    let mut c = Canvas::new(WIDTH, HEIGHT);
    for shape in layout(title, x_label, y_label, series) {
        match shape {
            Shape::Line {
                points,
                colour,
                width,
                dashed,
                opacity,
            } => c.polyline(&points, colour, width, dashed, opacity),
            Shape::Frame { x, y, w, h, colour } => c.polyline(
                &[(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)],
                colour,
                1.0,
                false,
                1.0,
            ),
            Shape::Dot { x, y, r, colour } => c.dot(x, y, r, colour),
            Shape::Text {
                x,
                y,
                text,
                size,
                anchor,
                vertical,
            } => c.text(x, y, &text, size, anchor, vertical, INK),
        }
    }
    c.to_png()
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

    fn two_series() -> Vec<Series> {
        vec![
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
        ]
    }

    #[test]
    fn svg_chart_has_axes_labels_and_one_line_per_series() {
        let svg = svg("loss", "characters seen", "loss (nats/char)", &two_series());
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // 2 series + 2 legend swatches, besides the grid lines (drawn as polylines of 2 points)
        let series_lines = svg
            .lines()
            .filter(|l| l.contains("<polyline") && l.contains("#1f77b4"))
            .count();
        assert_eq!(series_lines, 4);
        assert!(
            svg.contains("characters seen")
                && svg.contains("loss (nats/char)")
                && svg.contains("run validation")
        );
        assert!(svg.contains(">1M<"), "x ticks are labelled");
    }

    #[test]
    fn png_chart_is_a_png_with_ink_where_the_lines_are() {
        let bytes = png("loss", "characters seen", "loss (nats/char)", &two_series());
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let shapes = layout("loss", "characters seen", "loss (nats/char)", &two_series());
        let mut c = Canvas::new(WIDTH, HEIGHT);
        for s in &shapes {
            if let Shape::Line {
                points,
                colour,
                width,
                dashed,
                opacity,
            } = s
            {
                c.polyline(points, *colour, *width, *dashed, *opacity);
            }
        }
        // The validation line's midpoint is coloured, a corner of the picture is white.
        let Shape::Line { points, .. } = shapes
            .iter()
            .find(|s| matches!(s, Shape::Line { dashed: false, width, .. } if *width == 2.0))
            .unwrap()
        else {
            unreachable!()
        };
        let (mx, my) = (
            (points[0].0 + points[1].0) / 2.0,
            (points[0].1 + points[1].1) / 2.0,
        );
        assert_ne!(c.pixel(mx as usize, my as usize), Rgb(255, 255, 255));
        assert_eq!(c.pixel(1, HEIGHT - 2), Rgb(255, 255, 255));
    }
}
