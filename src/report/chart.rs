//! Loss charts: one or more series of (characters seen, loss) on linear axes with labelled
//! ticks and a legend, drawn by the `plotters` crate as SVG (its SVG backend) or PNG (its
//! bitmap backend into a buffer, encoded by the `png` crate). Text in a PNG uses DejaVu Sans,
//! embedded by the `dejavu` crate, so charts look the same on every machine.
//!
//! Owns the chart's look. Does not own where the numbers come from (see `metrics`).

use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One curve of a chart.
pub struct Series {
    /// Its legend entry.
    pub name: String,
    /// (characters seen, loss in nats/char), in order of x.
    pub points: Vec<(f64, f64)>,
    /// Drawn thin and faint (training loss), else solid (validation loss).
    pub dashed: bool,
    /// Index into the palette: a run's train and validation series share a colour.
    pub colour: usize,
}

/// matplotlib's "tab10" colours.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// Width and height of a chart in pixels.
pub const SIZE: (u32, u32) = (800, 500);

/// A tick label: 2.5M, 300k, 1.5.
pub fn label(v: f64) -> String {
    let trim = |x: f64| {
        let s = format!("{x:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    match v.abs() {
        a if a >= 1e9 => format!("{}G", trim(v / 1e9)),
        a if a >= 1e6 => format!("{}M", trim(v / 1e6)),
        a if a >= 1e3 => format!("{}k", trim(v / 1e3)),
        _ => trim(v),
    }
}

/// The chart as an SVG document.
///
/// # Errors
/// Only if drawing fails (it does not for finite data).
pub fn svg(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<String> {
    register_font();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        draw(&root, title, x_label, y_label, series)?;
        root.present().map_err(drawing)?;
    }
    Ok(out)
}

/// The chart as PNG file bytes.
///
/// # Errors
/// Only if drawing or encoding fails.
pub fn png(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<Vec<u8>> {
    register_font();
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        draw(&root, title, x_label, y_label, series)?;
        root.present().map_err(drawing)?;
    }
    let mut bytes = Vec::new();
    let mut enc = png::Encoder::new(&mut bytes, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let encoded = enc
        .write_header()
        .and_then(|mut wr| wr.write_image_data(&rgb));
    encoded.map_err(|e| Error::input(format!("cannot encode the chart as PNG: {e}")))?;
    Ok(bytes)
}

fn drawing<E: std::fmt::Debug>(e: E) -> Error {
    Error::input(format!("cannot draw the chart: {e:?}"))
}

/// plotters finds fonts by family name; ours is registered once per process.
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// The axes' ranges: all points, with 5 % room above and below the losses.
fn ranges(series: &[Series]) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let pts = || series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts().filter(|(x, y)| x.is_finite() && y.is_finite()) {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return (0.0..1.0, 0.0..1.0); // nothing to draw yet
    }
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    (x0..x1, (y0 - pad)..(y1 + pad))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    root.fill(&WHITE).map_err(drawing)?;
    let (xr, yr) = ranges(series);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(xr, yr)
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|v| label(*v))
        .y_label_formatter(&|v| label(*v))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(RGBColor(0xee, 0xee, 0xee))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(drawing)?;
    for s in series {
        let colour = PALETTE[s.colour % PALETTE.len()];
        let style = if s.dashed {
            colour.mix(0.45).stroke_width(1)
        } else {
            colour.stroke_width(2)
        };
        let points = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite());
        chart
            .draw_series(LineSeries::new(points, style))
            .map_err(drawing)?
            .label(&s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(0x44, 0x44, 0x44))
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(drawing)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn tick_labels_are_short() {
        assert_eq!(label(2_500_000.0), "2.5M");
        assert_eq!(label(300_000.0), "300k");
        assert_eq!(label(1.5), "1.5");
        assert_eq!(label(2.0), "2");
    }

    #[test]
    fn svg_chart_has_axes_labels_and_one_line_per_series() {
        let svg = svg("loss", "characters seen", "loss (nats/char)", &two_series()).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // 2 series + 2 legend swatches in the run's colour
        let series_lines = svg
            .lines()
            .filter(|l| l.contains("<polyline") && l.to_lowercase().contains("#1f77b4"))
            .count();
        assert_eq!(series_lines, 4);
        assert!(
            svg.contains("characters seen")
                && svg.contains("loss (nats/char)")
                && svg.contains("run validation")
        );
        assert!(
            svg.lines().any(|l| l.trim() == "1M"),
            "x ticks are labelled"
        );
    }

    #[test]
    fn png_chart_is_a_png_with_ink_of_the_series_colour() {
        let bytes = png("loss", "characters seen", "loss (nats/char)", &two_series()).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let mut reader = png::Decoder::new(std::io::Cursor::new(&bytes))
            .read_info()
            .unwrap();
        let mut rgb = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut rgb).unwrap();
        assert_eq!((info.width, info.height), SIZE);
        let px = |x: u32, y: u32| {
            let i = 3 * (y * SIZE.0 + x) as usize;
            (rgb[i], rgb[i + 1], rgb[i + 2])
        };
        assert_eq!(px(1, SIZE.1 - 2), (255, 255, 255), "a corner is white");
        let blue = (0..SIZE.1)
            .flat_map(|y| (0..SIZE.0).map(move |x| (x, y)))
            .filter(|&(x, y)| px(x, y) == (0x1f, 0x77, 0xb4))
            .count();
        assert!(blue > 300, "the validation line is drawn: {blue} pixels");
        let dark = rgb.chunks(3).filter(|p| p.iter().all(|&c| c < 80)).count();
        assert!(dark > 500, "text and frame leave ink: {dark} pixels");
    }
}
