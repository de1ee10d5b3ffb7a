//! A small rasteriser for charts: anti-aliased lines (by distance to the segment), dots, text
//! (glyph outlines of the embedded DejaVu Sans, drawn by `ab_glyph`) and a PNG encoder
//! (zlib by `miniz_oxide`).
//!
//! Owns pixels only; what to draw is `plot`'s business.

use super::chart::Anchor;
use ab_glyph::{Font, FontRef, PxScale, ScaleFont};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl std::fmt::Display for Rgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

pub struct Canvas {
    w: usize,
    h: usize,
    px: Vec<[f32; 3]>, // (H, W), linear 0..255 per channel, white background
}

fn font() -> FontRef<'static> {
    FontRef::try_from_slice(dejavu::sans::regular()).expect("the embedded DejaVu Sans parses")
}

impl Canvas {
    pub fn new(w: usize, h: usize) -> Canvas {
        Canvas {
            w,
            h,
            px: vec![[255.0; 3]; w * h],
        }
    }

    pub fn pixel(&self, x: usize, y: usize) -> Rgb {
        let p = self.px[y * self.w + x];
        Rgb(p[0].round() as u8, p[1].round() as u8, p[2].round() as u8)
    }

    /// Mixes `colour` into pixel (x, y) with weight `a` in [0, 1].
    fn blend(&mut self, x: i64, y: i64, colour: Rgb, a: f32) {
        if x < 0 || y < 0 || x >= self.w as i64 || y >= self.h as i64 || a <= 0.0 {
            return;
        }
        let a = a.min(1.0);
        let p = &mut self.px[y as usize * self.w + x as usize];
        for (c, v) in p.iter_mut().zip([colour.0, colour.1, colour.2]) {
            *c += (v as f32 - *c) * a;
        }
    }

    /// A segment `width` pixels wide: each pixel is covered by how far its centre lies inside.
    fn segment(
        &mut self,
        (x0, y0): (f64, f64),
        (x1, y1): (f64, f64),
        colour: Rgb,
        width: f64,
        opacity: f64,
    ) {
        let r = width / 2.0;
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len2 = dx * dx + dy * dy;
        let (xa, xb) = (
            (x0.min(x1) - r - 1.0).floor() as i64,
            (x0.max(x1) + r + 1.0).ceil() as i64,
        );
        let (ya, yb) = (
            (y0.min(y1) - r - 1.0).floor() as i64,
            (y0.max(y1) + r + 1.0).ceil() as i64,
        );
        for y in ya..=yb {
            for x in xa..=xb {
                let (cx, cy) = (x as f64 + 0.5, y as f64 + 0.5);
                let t = if len2 > 0.0 {
                    (((cx - x0) * dx + (cy - y0) * dy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (ex, ey) = (cx - (x0 + t * dx), cy - (y0 + t * dy));
                let d = (ex * ex + ey * ey).sqrt();
                let cover = (r + 0.5 - d).clamp(0.0, 1.0);
                self.blend(x, y, colour, (cover * opacity) as f32);
            }
        }
    }

    /// A polyline; dashed lines alternate 4 pixels drawn and 3 skipped along its length.
    pub fn polyline(
        &mut self,
        pts: &[(f64, f64)],
        colour: Rgb,
        width: f64,
        dashed: bool,
        opacity: f64,
    ) {
        let mut phase = 0.0f64; // distance along the dash pattern
        for w in pts.windows(2) {
            let (a, b) = (w[0], w[1]);
            if !dashed {
                self.segment(a, b, colour, width, opacity);
                continue;
            }
            let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
            let mut s = 0.0;
            while s < len {
                let in_dash = phase < 4.0;
                let step = (if in_dash { 4.0 - phase } else { 7.0 - phase }).min(len - s);
                if in_dash {
                    let p = |u: f64| (a.0 + (b.0 - a.0) * u / len, a.1 + (b.1 - a.1) * u / len);
                    self.segment(p(s), p(s + step), colour, width, opacity);
                }
                s += step;
                phase = (phase + step) % 7.0;
            }
        }
    }

    pub fn dot(&mut self, x: f64, y: f64, r: f64, colour: Rgb) {
        self.segment((x, y), (x, y), colour, 2.0 * r, 1.0);
    }

    /// Text with its baseline at `y`; vertical text reads bottom to top, centred on (x, y).
    #[allow(clippy::too_many_arguments)]
    pub fn text(
        &mut self,
        x: f64,
        y: f64,
        text: &str,
        size: f64,
        anchor: Anchor,
        vertical: bool,
        colour: Rgb,
    ) {
        let font = font();
        let scaled = font.as_scaled(PxScale::from(size as f32 * 1.3));
        // Coverage of the run of glyphs in its own box: (width, height, alpha).
        let ascent = scaled.ascent();
        let height = (scaled.ascent() - scaled.descent()).ceil() as usize + 1;
        let mut caret = 0.0f32;
        let mut prev = None;
        let mut glyphs = Vec::new();
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                caret += scaled.kern(p, id);
            }
            glyphs.push(id.with_scale_and_position(scaled.scale, ab_glyph::point(caret, ascent)));
            caret += scaled.h_advance(id);
            prev = Some(id);
        }
        let width = caret.ceil() as usize + 1;
        let mut alpha = vec![0.0f32; width * height];
        for g in glyphs {
            if let Some(og) = font.outline_glyph(g) {
                let bb = og.px_bounds();
                og.draw(|gx, gy, cov| {
                    let (ax, ay) = (bb.min.x as i64 + gx as i64, bb.min.y as i64 + gy as i64);
                    if ax >= 0 && ay >= 0 && (ax as usize) < width && (ay as usize) < height {
                        let a = &mut alpha[ay as usize * width + ax as usize];
                        *a = (*a + cov).min(1.0);
                    }
                });
            }
        }
        let shift = match anchor {
            Anchor::Start => 0.0,
            Anchor::Middle => width as f64 / 2.0,
            Anchor::End => width as f64,
        };
        for ty in 0..height {
            for tx in 0..width {
                let a = alpha[ty * width + tx];
                if a == 0.0 {
                    continue;
                }
                // Box coordinates relative to the baseline start point.
                let (u, v) = (tx as f64 - shift, ty as f64 - ascent as f64);
                let (px, py) = if vertical {
                    (x + v, y - u)
                } else {
                    (x + u, y + v)
                };
                self.blend(px.round() as i64, py.round() as i64, colour, a);
            }
        }
    }

    /// The picture as a PNG file (8-bit RGB, zlib-compressed).
    pub fn to_png(&self) -> Vec<u8> {
        let mut raw = Vec::with_capacity((self.w * 3 + 1) * self.h);
        for row in self.px.chunks_exact(self.w) {
            raw.push(0); // filter: none
            for p in row {
                raw.extend(p.iter().map(|v| v.round().clamp(0.0, 255.0) as u8));
            }
        }
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend((self.w as u32).to_be_bytes());
        ihdr.extend((self.h as u32).to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]); // depth 8, colour type RGB, deflate, no filter, no interlace
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(
            &mut out,
            b"IDAT",
            &miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6),
        );
        chunk(&mut out, b"IEND", &[]);
        out
    }
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// CRC-32 (IEEE), as PNG chunks need.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn text_leaves_ink_and_lines_cover_their_pixels() {
        let mut c = Canvas::new(60, 30);
        c.text(2.0, 20.0, "Hg", 12.0, Anchor::Start, false, Rgb(0, 0, 0));
        let dark = (0..30)
            .flat_map(|y| (0..60).map(move |x| (x, y)))
            .filter(|&(x, y)| c.pixel(x, y).0 < 128)
            .count();
        assert!(dark > 20, "text drew {dark} dark pixels");
        let mut c = Canvas::new(20, 20);
        c.polyline(
            &[(0.0, 10.5), (20.0, 10.5)],
            Rgb(255, 0, 0),
            1.0,
            false,
            1.0,
        );
        assert_eq!(c.pixel(10, 10), Rgb(255, 0, 0));
        assert_eq!(c.pixel(10, 5), Rgb(255, 255, 255));
    }
}
