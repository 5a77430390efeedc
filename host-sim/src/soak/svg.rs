//! `--svg FILE`: the p50 and p99 latency of each service over the run, as
//! a hand-written SVG (no dependencies). Time runs along x; latency is on
//! a log scale on y, since a UDP echo (µs) and a plaintext login on the
//! emulated board (hundreds of ms) share the plot. p50 is solid, p99
//! dashed; a bucket in which a service had no exchange leaves a gap.

use std::fmt::Write as _;

use super::stats::{Latencies, Service};

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 540.0;
/// The plot area's margins: labels left and below, the legend right.
const LEFT: f64 = 80.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 56.0;

/// One colour per service, in `Service::ALL` order (Tableau 10).
const COLOURS: [&str; 7] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
];

/// The SVG document: `title` on top.
pub fn render(latency: &Latencies, title: &str) -> String {
    let buckets = latency.buckets();
    let span = latency.span().as_secs_f64().max(1e-3);
    // (colour, service, [(bucket, p50, p99)])
    type Points = Vec<(usize, u64, u64)>;
    let series: Vec<(usize, Service, Points)> = Service::ALL
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let points = (0..buckets)
                .filter_map(|b| {
                    let h = latency.get(s, b);
                    Some((b, h.quantile(0.5)?, h.quantile(0.99)?))
                })
                .collect();
            (i, s, points)
        })
        .filter(|(_, _, p): &(_, _, Vec<_>)| !p.is_empty())
        .collect();

    // The y range: whole decades around every point.
    let all = series
        .iter()
        .flat_map(|(_, _, p)| p.iter().flat_map(|&(_, a, b)| [a, b]));
    let (lo, hi) = all.fold((u64::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if hi == 0 {
        (1, 1000)
    } else {
        (lo.max(1), hi.max(1))
    };
    let d_lo = (lo as f64).log10().floor() as i32;
    let d_hi = ((hi as f64).log10().ceil() as i32).max(d_lo + 1);

    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |t: f64| LEFT + t / span * plot_w;
    let y = |us: u64| {
        let v = (us.max(1) as f64).log10();
        TOP + plot_h * (1.0 - (v - f64::from(d_lo)) / f64::from(d_hi - d_lo))
    };

    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );

    // Horizontal grid: decades labelled, 2 and 5 faint.
    for d in d_lo..=d_hi {
        let us = 10u64.pow(d as u32);
        let yy = y(us);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#bbb"/>"##,
            LEFT + plot_w
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            yy + 4.0,
            escape(&decade_label(d))
        );
        if d < d_hi {
            for m in [2, 5] {
                let ym = y(us * m);
                let _ = writeln!(
                    s,
                    r##"<line x1="{LEFT}" y1="{ym:.1}" x2="{:.1}" y2="{ym:.1}" stroke="#eee"/>"##,
                    LEFT + plot_w
                );
            }
        }
    }
    // Vertical grid: bucket boundaries, labelled in seconds.
    for b in 0..=buckets {
        let t = span * b as f64 / buckets as f64;
        let xx = x(t);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}" stroke="#eee"/>"##,
            TOP + plot_h
        );
        let _ = writeln!(
            s,
            r#"<text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + plot_h + 16.0,
            seconds(t)
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time into the run, s</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 14.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">latency per exchange (log scale)</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );

    // The series: a path per percentile, broken where a bucket is empty.
    let mid = |b: usize| x(span * (b as f64 + 0.5) / buckets as f64);
    for (i, service, points) in &series {
        let colour = COLOURS[*i % COLOURS.len()];
        for (pick, dash, width) in [(0usize, "", 2.0), (1, r#" stroke-dasharray="6 4""#, 1.5)] {
            let mut d = String::new();
            let mut prev: Option<usize> = None;
            for &(b, p50, p99) in points {
                let v = if pick == 0 { p50 } else { p99 };
                let cmd = if prev == Some(b.wrapping_sub(1)) {
                    'L'
                } else {
                    'M'
                };
                let _ = write!(d, "{cmd}{:.1},{:.1} ", mid(b), y(v));
                prev = Some(b);
            }
            let _ = writeln!(
                s,
                r#"<path d="{}" fill="none" stroke="{colour}" stroke-width="{width}"{dash}><title>{} p{}</title></path>"#,
                d.trim_end(),
                escape(service.name()),
                if pick == 0 { 50 } else { 99 }
            );
            for &(b, p50, p99) in points {
                let v = if pick == 0 { p50 } else { p99 };
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{colour}"/>"#,
                    mid(b),
                    y(v)
                );
            }
        }
    }

    // The legend.
    let lx = LEFT + plot_w + 16.0;
    let mut ly = TOP + 8.0;
    for (i, service, _) in &series {
        let colour = COLOURS[*i % COLOURS.len()];
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="{colour}" stroke-width="3"/>"#,
            lx + 22.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 28.0,
            ly + 4.0,
            escape(service.name())
        );
        ly += 20.0;
    }
    ly += 10.0;
    for (label, dash) in [("p50", ""), ("p99", r#" stroke-dasharray="6 4""#)] {
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="black" stroke-width="1.5"{dash}/>"#,
            lx + 22.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{label}</text>"#,
            lx + 28.0,
            ly + 4.0
        );
        ly += 20.0;
    }
    if series.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">no exchanges</text>"#,
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// `10^d` µs in words.
fn decade_label(d: i32) -> String {
    match d {
        ..=2 => format!("{} µs", 10u64.pow(d.max(0) as u32)),
        3..=5 => format!("{} ms", 10u64.pow(d as u32 - 3)),
        _ => format!("{} s", 10u64.pow(d as u32 - 6)),
    }
}

/// A time label: whole seconds when it is one.
fn seconds(t: f64) -> String {
    if (t - t.round()).abs() < 1e-6 {
        format!("{}", t.round())
    } else {
        format!("{t:.1}")
    }
}

/// Text for an XML text node or attribute.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn plots_every_service_with_data_and_escapes_the_title() {
        let mut l = Latencies::new(Duration::from_secs(10), 5);
        for b in [0u64, 1, 3, 4] {
            l.record(
                Service::TcpEcho,
                Duration::from_secs(2 * b),
                Duration::from_micros(80 + b),
            );
        }
        l.record(
            Service::LoginLine,
            Duration::from_secs(5),
            Duration::from_millis(250),
        );
        let svg = render(&l, "a <b> & c");
        assert!(svg.starts_with("<?xml"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        assert!(svg.contains("tcp echo") && svg.contains("login line"));
        assert!(!svg.contains("hotline"), "no data, no legend entry");
        // Bucket 2 is empty: the tcp echo line breaks there (two M's).
        let p50 = svg
            .lines()
            .find(|l| l.contains("<title>tcp echo p50</title>"))
            .unwrap();
        assert_eq!(p50.matches('M').count(), 2, "{p50}");
        assert_eq!(decade_label(2), "100 µs");
        assert_eq!(decade_label(4), "10 ms");
        assert_eq!(decade_label(6), "1 s");
    }
}
