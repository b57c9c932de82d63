//! `maintenance-operator replay`: run a recorded trace through the same baseline fit and detector
//! the controller uses, and say whether (and when) it would have rolled back. Pure, no client.

use crate::crd::{BaselineStatus, DetectorState, MaintenanceUpgrade, RegressionRule, Verdict};
use crate::detector::{Assessment, Counts, Cusum, fit_baseline, pct, rate_at};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt::Write as _;

pub type Row = (DateTime<Utc>, Counts);

/// Parse a `ts,attempts,errors` trace (header required, rows evenly spaced, at least one).
/// Errors name the line.
pub fn parse_trace(text: &str) -> Result<Vec<Row>, String> {
    let rows = parse_rows(text, true)?;
    if rows.is_empty() {
        return Err("the trace has a header but no rows".into());
    }
    Ok(rows)
}

/// Parse `ts,attempts,errors` CSV (header required, rows in time order); `evenly_spaced` also
/// refuses gaps (a recording has them where the operator could not see). Errors name the line.
pub fn parse_rows(text: &str, evenly_spaced: bool) -> Result<Vec<Row>, String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim().replace(' ', "") == "ts,attempts,errors" => {}
        Some((_, h)) => return Err(format!("line 1: expected the header ts,attempts,errors, found {h:?}")),
        None => return Err("the trace is empty".into()),
    }
    let mut rows: Vec<Row> = vec![];
    for (i, line) in lines {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 3 {
            return Err(format!("line {n}: expected 3 fields (ts,attempts,errors), found {}", f.len()));
        }
        let ts = DateTime::parse_from_rfc3339(f[0])
            .map_err(|e| format!("line {n}: ts {:?} is not RFC 3339: {e}", f[0]))?
            .with_timezone(&Utc);
        let attempts: u64 = f[1]
            .parse()
            .map_err(|_| format!("line {n}: attempts {:?} is not a non-negative integer", f[1]))?;
        let errors: u64 =
            f[2].parse().map_err(|_| format!("line {n}: errors {:?} is not a non-negative integer", f[2]))?;
        if errors > attempts {
            return Err(format!("line {n}: errors ({errors}) exceed attempts ({attempts})"));
        }
        if let Some((prev, _)) = rows.last() {
            if ts <= *prev {
                return Err(format!(
                    "line {n}: ts {} is not after the previous row's {}",
                    f[0],
                    prev.to_rfc3339()
                ));
            }
            if evenly_spaced && rows.len() >= 2 {
                let step = rows[1].0 - rows[0].0;
                if ts - *prev != step {
                    return Err(format!(
                        "line {n}: rows must be evenly spaced ({}s apart), this one is {}s after the last",
                        step.num_seconds(),
                        (ts - *prev).num_seconds()
                    ));
                }
            }
        }
        rows.push((ts, Counts { attempts, errors }));
    }
    Ok(rows)
}

/// The regression rule of a MaintenanceUpgrade's signal: the named one, or the first.
pub fn rule_from_spec(yaml: &str, signal: Option<&str>) -> Result<RegressionRule, String> {
    let mu: MaintenanceUpgrade =
        serde_yaml::from_str(yaml).map_err(|e| format!("the spec is not a MaintenanceUpgrade: {e}"))?;
    let signals = mu.spec.effective_signals();
    let s = match signal {
        Some(name) => signals
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| format!("the spec has no signal {name:?}"))?,
        None => &signals[0],
    };
    Ok(s.regression.clone())
}

#[derive(Clone, Debug, Serialize)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub rate: f64,
    pub baseline: f64,
    pub statistic: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// "rollback" or "pass".
    pub verdict: &'static str,
    pub decided_at: Option<DateTime<Utc>>,
    pub change_at: DateTime<Utc>,
    pub hours_after_change: Option<f64>,
    /// No rollback, but evidence was building at the end of the trace: the operator would not
    /// have promoted yet.
    pub suspect: bool,
    /// When the signal first became Suspect (the warning before a rollback), if it did.
    pub suspect_at: Option<DateTime<Utc>>,
    pub baseline_rate: f64,
    pub baseline_dispersion: f64,
    pub hour_of_day_profile: bool,
    pub observed_rate: f64,
    pub statistic: f64,
    pub threshold: f64,
    pub excess_errors: f64,
    pub reason: String,
    /// What the baseline cannot tell, when it is too short to know the time of day.
    pub baseline_limit: Option<String>,
    pub soak_intervals: usize,
    #[serde(skip)]
    pub points: Vec<Point>,
    #[serde(skip)]
    pub baseline: BaselineStatus,
}

/// A soak fed through the detector.
pub struct Run {
    pub points: Vec<Point>,
    /// The assessment of the last row fed: the rollback's, if there was one.
    pub last: Assessment,
    /// Indexes into the soak of the rollback and of the first Suspect verdict.
    pub rollback: Option<usize>,
    pub first_suspect: Option<usize>,
}

/// Feed the soak's rows (at least one) to the detector one by one, exactly as the controller
/// feeds its reads, stopping at the first regression as the operator would.
pub fn run(detector: &Cusum, baseline: &BaselineStatus, soak: &[Row]) -> Run {
    let mut state = DetectorState::default();
    let mut points = Vec::with_capacity(soak.len());
    let mut first_suspect = None;
    for (i, (t, c)) in soak.iter().enumerate() {
        let why = detector.advance(&mut state, baseline, *t, *c);
        if why.verdict() == Verdict::Suspect {
            first_suspect.get_or_insert(i);
        }
        points.push(Point {
            at: *t,
            rate: c.rate(),
            baseline: rate_at(baseline, *t),
            statistic: state.statistic,
        });
        if why.verdict() == Verdict::Regression || i + 1 == soak.len() {
            let rollback = (why.verdict() == Verdict::Regression).then_some(i);
            let last = detector.explain(&state, baseline, *t, *c, why, 1.0);
            return Run { points, last, rollback, first_suspect };
        }
    }
    panic!("run needs at least one soak row")
}

/// Rows up to `change_at` are the baseline; later rows the soak, fed one by one to the detector
/// exactly as the controller feeds its reads. Stops at the first regression, as the operator would.
pub fn replay(rows: &[Row], change_at: DateTime<Utc>, rule: &RegressionRule) -> Result<Outcome, String> {
    replay_with(rows, change_at, &Cusum::from_rule(rule))
}

/// [`replay`] with a detector built by hand (the benchmark tries thresholds no rule sets).
pub fn replay_with(rows: &[Row], change_at: DateTime<Utc>, detector: &Cusum) -> Result<Outcome, String> {
    let (history, soak): (Vec<Row>, Vec<Row>) = rows.iter().partition(|(t, _)| *t <= change_at);
    if history.is_empty() {
        return Err(format!(
            "no rows at or before --change-at {}: nothing to learn the baseline from",
            change_at.to_rfc3339()
        ));
    }
    if soak.is_empty() {
        return Err(format!("no rows after --change-at {}: nothing to judge", change_at.to_rfc3339()));
    }
    let baseline = fit_baseline(&history, detector.bucket);
    let Run { points, last: a, rollback, first_suspect } = run(detector, &baseline, &soak);
    let at = points.last().expect("the soak has rows").at;
    let suspect_at = first_suspect.map(|i| soak[i].0);
    let rollback = rollback.is_some();
    Ok(Outcome {
        verdict: if rollback { "rollback" } else { "pass" },
        decided_at: rollback.then_some(at),
        change_at,
        hours_after_change: rollback.then(|| (at - change_at).num_seconds() as f64 / 3600.0),
        suspect: a.verdict == Verdict::Suspect,
        suspect_at,
        baseline_rate: baseline.rate,
        baseline_dispersion: baseline.dispersion,
        hour_of_day_profile: baseline.hourly.len() == 24,
        observed_rate: a.observed_rate,
        statistic: a.statistic,
        threshold: a.threshold,
        excess_errors: a.excess_errors,
        reason: a.reason,
        baseline_limit: detector.baseline_words(&baseline),
        soak_intervals: points.len(),
        points,
        baseline,
    })
}

pub fn summary(o: &Outcome) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "baseline: {} error rate (dispersion {:.2}{})",
        pct(o.baseline_rate),
        o.baseline_dispersion,
        if o.hour_of_day_profile { ", hour-of-day profile" } else { "" }
    );
    match o.decided_at {
        Some(t) => {
            let _ = writeln!(
                s,
                "verdict:  ROLL BACK at {} ({:.1} h after the change)",
                t.to_rfc3339(),
                o.hours_after_change.unwrap_or_default()
            );
        }
        None if o.suspect => {
            let _ = writeln!(
                s,
                "verdict:  no rollback, but suspect at the end ({} intervals judged): the soak would be extended",
                o.soak_intervals
            );
        }
        None => {
            let _ = writeln!(s, "verdict:  pass ({} intervals judged, no regression)", o.soak_intervals);
        }
    }
    if let (Some(t), Some(_)) = (o.suspect_at, o.decided_at) {
        let _ = writeln!(
            s,
            "warned:   suspect from {} ({:.1} h after the change)",
            t.to_rfc3339(),
            (t - o.change_at).num_seconds() as f64 / 3600.0
        );
    }
    if let Some(limit) = &o.baseline_limit {
        let _ = writeln!(s, "limit:    {limit}");
    }
    let _ = writeln!(s, "why:      {}", o.reason);
    s
}

/// The error rate (per bucket), its baseline, the statistic against its threshold, and the
/// decision, as an SVG an on-call engineer can read.
pub fn plot_svg(o: &Outcome, bucket_minutes: usize) -> String {
    let (w, h, left, right) = (1000.0, 560.0, 70.0, 20.0);
    let (top1, bottom1, top2, bottom2) = (40.0, 300.0, 350.0, 510.0);
    let t0 = o.change_at;
    let t_end = o.points.last().map(|p| p.at).unwrap_or(t0);
    let hours = |t: DateTime<Utc>| (t - t0).num_seconds() as f64 / 3600.0;
    let span = hours(t_end).max(1e-6);
    let x = |hh: f64| left + (w - left - right) * hh / span;
    // Bucketed rates: per-minute rates are too noisy to read.
    let step = bucket_minutes.max(1);
    let buckets: Vec<(f64, f64, f64)> = o
        .points
        .chunks(step)
        .map(|c| {
            let mid = hours(c[c.len() / 2].at);
            (
                mid,
                c.iter().map(|p| p.rate).sum::<f64>() / c.len() as f64,
                c.iter().map(|p| p.baseline).sum::<f64>() / c.len() as f64,
            )
        })
        .collect();
    let ymax = buckets.iter().map(|b| b.1.max(b.2)).fold(0.0f64, f64::max).max(1e-4) * 1.15;
    let y1 = |r: f64| bottom1 - (bottom1 - top1) * r / ymax;
    let smax = o.points.iter().map(|p| p.statistic).fold(o.threshold, f64::max) * 1.1;
    let y2 = |v: f64| bottom2 - (bottom2 - top2) * v / smax;
    let path = |pts: Vec<(f64, f64)>| {
        pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect::<Vec<_>>().join(" ")
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = match o.decided_at {
        Some(_) => format!("rolled back {:.1} h after the change", o.hours_after_change.unwrap_or_default()),
        None => "no regression: the soak passes".to_string(),
    };
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="22" font-size="15" font-weight="bold">Error rate after the change — {title}</text>"#
    );
    for (top, bottom, label) in [(top1, bottom1, "error rate (%)"), (top2, bottom2, "CUSUM statistic")] {
        let _ = writeln!(
            s,
            r##"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
            w - left - right,
            bottom - top
        );
        let _ = writeln!(
            s,
            r#"<text x="12" y="{}" transform="rotate(-90 12 {})" text-anchor="middle">{label}</text>"#,
            (top + bottom) / 2.0,
            (top + bottom) / 2.0
        );
    }
    for i in 0..=4 {
        let r = ymax * i as f64 / 4.0;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{:.2}</text>"#,
            left - 4.0,
            y1(r) + 4.0,
            r * 100.0
        );
        let v = smax * i as f64 / 4.0;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{:.0}</text>"#,
            left - 4.0,
            y2(v) + 4.0,
            v
        );
    }
    for i in 0..=6 {
        let hh = span * i as f64 / 6.0;
        let label = if span < 12.0 { format!("{hh:.1} h") } else { format!("{hh:.0} h") };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{label}</text>"#,
            x(hh),
            bottom2 + 18.0
        );
    }
    let _ = writeln!(
        s,
        r##"<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{}"/>"##,
        path(buckets.iter().map(|b| (x(b.0), y1(b.1))).collect())
    );
    let _ = writeln!(
        s,
        r##"<polyline fill="none" stroke="#2ca02c" stroke-width="1.5" stroke-dasharray="6 3" points="{}"/>"##,
        path(buckets.iter().map(|b| (x(b.0), y1(b.2))).collect())
    );
    let _ = writeln!(
        s,
        r##"<polyline fill="none" stroke="#d62728" stroke-width="1.5" points="{}"/>"##,
        path(o.points.iter().map(|p| (x(hours(p.at)), y2(p.statistic))).collect())
    );
    let _ = writeln!(
        s,
        r##"<line x1="{left}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#d62728" stroke-dasharray="4 4"/>"##,
        w - right,
        y2(o.threshold),
        y2(o.threshold)
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#d62728">threshold {:.1}</text>"##,
        w - right - 4.0,
        y2(o.threshold) - 4.0,
        o.threshold
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" fill="#1f77b4">— error rate ({step}-interval mean)</text>"##,
        left + 8.0,
        top1 + 16.0
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" fill="#2ca02c">- - baseline before the change</text>"##,
        left + 8.0,
        top1 + 32.0
    );
    if let Some(t) = o.suspect_at {
        let xs = x(hours(t));
        let _ = writeln!(
            s,
            r##"<line x1="{xs:.1}" x2="{xs:.1}" y1="{top1}" y2="{bottom2}" stroke="#ff7f0e" stroke-dasharray="5 3"/>"##
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{}" text-anchor="end" fill="#ff7f0e">suspect</text>"##,
            xs - 4.0,
            top1 + 64.0
        );
    }
    if let Some(t) = o.decided_at {
        let xd = x(hours(t));
        let _ = writeln!(
            s,
            r#"<line x1="{xd:.1}" x2="{xd:.1}" y1="{top1}" y2="{bottom2}" stroke="black" stroke-width="1.5"/>"#
        );
        let _ =
            writeln!(s, r#"<text x="{:.1}" y="{}" text-anchor="end">rollback</text>"#, xd - 4.0, top1 + 48.0);
    }
    let _ = writeln!(s, "</svg>");
    s
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
