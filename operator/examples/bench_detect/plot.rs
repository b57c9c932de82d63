//! The plot of bench/results.md: median delay per regression family and detector.

/// Grouped bars: median detection delay per regression family and detector (missing bar = no
/// detection at all).
pub fn delays_svg(labels: &[&str], rows: &[(String, Vec<Option<f64>>)]) -> String {
    let colors = ["#d62728", "#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f"];
    let (w, h, left, top, bottom) = (1000.0, 360.0 + 40.0 + 16.0 * rows.len() as f64, 60.0, 50.0, 360.0);
    let max = rows.iter().flat_map(|r| r.1.iter().flatten()).fold(1.0f64, |a, b| a.max(*b)) * 1.1;
    let group_w = (w - left - 20.0) / labels.len() as f64;
    let bar_w = group_w * 0.8 / rows.len() as f64;
    let y = |v: f64| bottom - (bottom - top) * v / max;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/>"#
    );
    s += &format!(
        r#"<text x="{left}" y="22" font-size="15" font-weight="bold">Median hours from the start of a regression to rollback (lower is better)</text>"#
    );
    for i in 0..=4 {
        let v = max * i as f64 / 4.0;
        s += &format!(
            r##"<line x1="{left}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v:.0} h</text>"##,
            w - 20.0,
            y(v),
            y(v),
            left - 4.0,
            y(v) + 4.0
        );
    }
    for (g, label) in labels.iter().enumerate() {
        let gx = left + g as f64 * group_w + group_w * 0.1;
        for (m, (_, medians)) in rows.iter().enumerate() {
            let x = gx + m as f64 * bar_w;
            match medians[g] {
                Some(v) => {
                    s += &format!(
                        r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                        y(v),
                        bar_w - 2.0,
                        bottom - y(v),
                        colors[m % colors.len()]
                    )
                }
                None => {
                    s += &format!(
                        r#"<text x="{:.1}" y="{}" text-anchor="middle" fill="{}">miss</text>"#,
                        x + bar_w / 2.0,
                        bottom - 4.0,
                        colors[m % colors.len()]
                    )
                }
            }
        }
        s += &format!(
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            gx + group_w * 0.4,
            bottom + 16.0,
            label.replace(" (the incident)", "")
        );
    }
    for (m, (name, _)) in rows.iter().enumerate() {
        let ly = bottom + 40.0 + m as f64 * 16.0;
        s += &format!(
            r#"<rect x="{left}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{}" y="{:.1}">{name}</text>"#,
            ly - 10.0,
            colors[m % colors.len()],
            left + 18.0,
            ly
        );
    }
    s + "</svg>\n"
}
