//! Hand-written SVG charts: lines over time and grouped bars. No script, no external file.

use std::fmt::Write;

/// Colours of the series, in order.
pub const COLOURS: [&str; 6] = [
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

const W: f64 = 720.0;
const H: f64 = 260.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;

/// Escapes text for HTML and SVG.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn frame(title: &str, y_max: f64, y_fmt: &dyn Fn(f64) -> String, out: &mut String) {
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img"><title>{t}</title><text x="{LEFT}" y="18" font-size="14" font-weight="bold">{t}</text>"#,
        t = esc(title)
    );
    for k in 0..=4 {
        let v = y_max * f64::from(k) / 4.0;
        let y = TOP + (H - TOP - BOTTOM) * (1.0 - f64::from(k) / 4.0);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{tx}" y="{ty:.1}" font-size="11" text-anchor="end">{l}</text>"##,
            x2 = W - RIGHT,
            tx = LEFT - 4.0,
            ty = y + 4.0,
            l = esc(&y_fmt(v))
        );
    }
}

fn legend(names: &[String], out: &mut String) {
    for (i, n) in names.iter().enumerate() {
        let y = TOP + 16.0 * i as f64;
        let _ = write!(
            out,
            r#"<rect x="{x}" y="{y:.1}" width="12" height="12" fill="{c}"/><text x="{tx}" y="{ty:.1}" font-size="12">{n}</text>"#,
            x = W - RIGHT + 10.0,
            c = COLOURS[i % COLOURS.len()],
            tx = W - RIGHT + 26.0,
            ty = y + 10.0,
            n = esc(n)
        );
    }
}

/// Lines over a shared x axis (`x_max` is the axis end; x labels via `x_fmt`).
pub fn lines(
    title: &str,
    series: &[(String, Vec<(f64, f64)>)],
    x_max: f64,
    x_fmt: &dyn Fn(f64) -> String,
    y_fmt: &dyn Fn(f64) -> String,
) -> String {
    let y_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.05;
    let mut out = String::new();
    frame(title, y_max, y_fmt, &mut out);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    for k in 0..=4 {
        let x = LEFT + pw * f64::from(k) / 4.0;
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{y}" font-size="11" text-anchor="middle">{l}</text>"#,
            y = H - BOTTOM + 16.0,
            l = esc(&x_fmt(x_max * f64::from(k) / 4.0))
        );
    }
    for (i, (_, pts)) in series.iter().enumerate() {
        let d: Vec<String> = pts
            .iter()
            .map(|&(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    LEFT + pw * (x / x_max.max(1e-9)),
                    TOP + ph * (1.0 - y / y_max)
                )
            })
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{p}"/>"#,
            c = COLOURS[i % COLOURS.len()],
            p = d.join(" ")
        );
    }
    let names: Vec<String> = series.iter().map(|s| s.0.clone()).collect();
    legend(&names, &mut out);
    out.push_str("</svg>");
    out
}

/// Grouped bars: one group per label, one bar per series in each group.
pub fn bars(
    title: &str,
    groups: &[String],
    series: &[(String, Vec<f64>)],
    y_fmt: &dyn Fn(f64) -> String,
) -> String {
    let y_max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let mut out = String::new();
    frame(title, y_max, y_fmt, &mut out);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let gw = pw / groups.len().max(1) as f64;
    let bw = (gw * 0.8) / series.len().max(1) as f64;
    for (g, label) in groups.iter().enumerate() {
        let gx = LEFT + gw * g as f64 + gw * 0.1;
        for (i, (_, vals)) in series.iter().enumerate() {
            let v = vals.get(g).copied().unwrap_or(0.0);
            let h = ph * v / y_max;
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{h:.1}" fill="{c}"><title>{t}</title></rect>"#,
                x = gx + bw * i as f64,
                y = TOP + ph - h,
                c = COLOURS[i % COLOURS.len()],
                t = esc(&format!("{}: {}", series[i].0, y_fmt(v)))
            );
        }
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{y}" font-size="11" text-anchor="middle">{l}</text>"#,
            x = gx + gw * 0.4,
            y = H - BOTTOM + 16.0,
            l = esc(label)
        );
    }
    let names: Vec<String> = series.iter().map(|s| s.0.clone()).collect();
    legend(&names, &mut out);
    out.push_str("</svg>");
    out
}
