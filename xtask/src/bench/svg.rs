//! A hand-written SVG bar chart of a bench run: one panel per case, one bar per (operation,
//! tool) at the median wall time, a whisker from the minimum to the maximum.

use std::fmt::Write as _;

use super::report::Results;

const WIDTH: f64 = 900.0;
const LABEL: f64 = 300.0;
const BARS: f64 = 470.0;
const ROW: f64 = 20.0;

fn color(tool: &str) -> &'static str {
    match tool {
        "acr" | "acr Digester" => "#1f77b4",
        "skopeo" => "#ff7f0e",
        "oras-py" => "#2ca02c",
        _ => "#8c8c8c",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart, each panel scaled to its own slowest run.
pub(super) fn chart(results: &Results, subtitle: &str) -> String {
    let mut body = String::new();
    let mut y = 50.0;
    let mut cases: Vec<_> = results.rows.iter().map(|r| r.case).collect();
    cases.dedup();
    for case in cases {
        let rows: Vec<_> = results.rows.iter().filter(|r| r.case == case).collect();
        let scale = rows
            .iter()
            .filter_map(|r| r.wall().map(|w| w.max))
            .fold(0.0_f64, f64::max);
        let _ = writeln!(
            body,
            r#"<text x="10" y="{:.0}" font-weight="bold">{}</text>"#,
            y + 14.0,
            escape(case.title())
        );
        y += 24.0;
        for row in rows {
            let _ = writeln!(
                body,
                r#"<text x="{:.0}" y="{:.0}" text-anchor="end">{} — {}</text>"#,
                LABEL - 8.0,
                y + 14.0,
                escape(&row.op),
                escape(&row.tool)
            );
            match row.wall().filter(|_| scale > 0.0) {
                Some(wall) => {
                    let x = |v: f64| LABEL + v / scale * BARS;
                    let unit = if wall.median < 0.1 {
                        format!("{:.1} ms", wall.median * 1000.0)
                    } else {
                        format!("{:.2} s", wall.median)
                    };
                    let _ = writeln!(
                        body,
                        r#"<rect x="{LABEL:.0}" y="{:.0}" width="{:.1}" height="{:.0}" fill="{}"/>"#,
                        y + 3.0,
                        (x(wall.median) - LABEL).max(1.0),
                        ROW - 6.0,
                        color(&row.tool)
                    );
                    let _ = writeln!(
                        body,
                        r#"<line x1="{:.1}" x2="{:.1}" y1="{mid:.0}" y2="{mid:.0}" stroke="black"/><line x1="{:.1}" x2="{:.1}" y1="{:.0}" y2="{:.0}" stroke="black"/><line x1="{:.1}" x2="{:.1}" y1="{:.0}" y2="{:.0}" stroke="black"/>"#,
                        x(wall.min),
                        x(wall.max),
                        x(wall.min),
                        x(wall.min),
                        y + 6.0,
                        y + ROW - 6.0,
                        x(wall.max),
                        x(wall.max),
                        y + 6.0,
                        y + ROW - 6.0,
                        mid = y + ROW / 2.0,
                    );
                    let _ = writeln!(
                        body,
                        r#"<text x="{:.0}" y="{:.0}">{unit}</text>"#,
                        x(wall.max) + 6.0,
                        y + 14.0
                    );
                }
                None => {
                    let _ = writeln!(
                        body,
                        r##"<text x="{:.0}" y="{:.0}" fill="#777">{}</text>"##,
                        LABEL + 4.0,
                        y + 14.0,
                        escape(row.note.as_deref().unwrap_or("not measured"))
                    );
                }
            }
            y += ROW;
        }
        y += 12.0;
    }
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0}" height="{height:.0}" viewBox="0 0 {WIDTH:.0} {height:.0}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-size="16" font-weight="bold">cargo xtask bench: wall time, median (bar) and min-max (whisker); shorter is better</text>
<text x="10" y="38" font-size="10" fill="#555">{subtitle}</text>
{body}</svg>
"##,
        height = y + 10.0,
        subtitle = escape(subtitle),
    )
}
