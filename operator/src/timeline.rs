//! How an upgrade reads in a terminal, pure: one timeline row per change (the demo and
//! `kubectl maintenance status -w` print the same rows) and the whole view of one upgrade
//! (`kubectl maintenance status`): the window, each stage and component, each signal, and what
//! happens next.

use crate::crd::*;
use crate::timefmt;
use crate::window::{Schedule, WindowState};
use chrono::{DateTime, Utc};

/// The column titles of `row`.
pub fn header() -> String {
    format!(
        "{:<18} {:<8} {:>8} {:>9} {:>11}  what the operator says",
        "phase", "stage", "errors", "baseline", "CUSUM/limit"
    )
}

/// How many names a canary's line spells out before "and N more" (a canary of a quarter of
/// thousands of nodes is a long list).
const NAMED: usize = 6;

/// `names`, the first `NAMED` of them and how many more.
fn named(names: &[String]) -> String {
    let shown = names.iter().take(NAMED).cloned().collect::<Vec<_>>().join(", ");
    match names.len().saturating_sub(NAMED) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// Where a canary inside the component's workload runs, or what its stage will change.
fn canary_line(mu: &MaintenanceUpgrade, si: usize, ci: usize, c: &ComponentStatus) -> Option<String> {
    let asked = mu.spec.stages.get(si)?.components.get(ci)?.canary.as_ref();
    let stage_phase = mu.status.as_ref()?.stages.get(si).map(|s| s.phase);
    match (&c.canary, asked) {
        (Some(k), _) if k.total > 0 => {
            let on = if c.kind == WorkloadKind::DaemonSet { &k.nodes } else { &k.pods };
            let (n, of, names) = (on.len(), k.total, named(on));
            if c.phase == ComponentPhase::Reverted {
                return Some(match c.kind {
                    WorkloadKind::DaemonSet => format!(
                        "reverted: it ran on {n} of {of} nodes ({names}), whose pods were made again from the known-good image"
                    ),
                    WorkloadKind::StatefulSet => format!(
                        "reverted: it ran on the top {n} of {of} replicas ({names}), made again from the known-good image"
                    ),
                    WorkloadKind::Deployment => {
                        format!("reverted: its {n} new replicas ({names}), beside the {of}, were scaled away")
                    }
                });
            }
            // Taken: a node whose pod is being replaced counts before its new pod serves.
            let taken = match c.kind {
                WorkloadKind::DaemonSet => format!("{n} of {of} nodes taken for the desired image"),
                WorkloadKind::StatefulSet => format!("the top {n} of {of} replicas on the desired image"),
                WorkloadKind::Deployment => format!("{n} new replicas beside its {of}"),
            };
            let joined = match k.joined.as_slice() {
                [] => String::new(),
                joined => format!("; the DaemonSet's own, not judged by its signals: {}", named(joined)),
            };
            Some(match stage_phase {
                Some(StagePhase::Passed) => format!("{taken}, its stage passed: {names}{joined}"),
                _ => format!("{taken} (this stage wants {}): {names}{joined}", k.wanted),
            })
        }
        (_, Some(asked)) => Some(match asked.selector_text() {
            Some(selector) => format!("{} of its nodes with {selector}", asked.portion()),
            None if c.kind == WorkloadKind::Deployment => match asked.portion() {
                Portion::Percent(p) => format!("new replicas, {p} of its count, beside its own"),
                n => format!("{n} new replicas beside its own"),
            },
            None if asked.replicas.is_some() => format!("its top {} of its replicas", asked.portion()),
            None => format!("{} of its nodes", asked.portion()),
        }),
        // The stage after a canary of the same workload: it hands the rest over.
        (None, None) if canaried_before(mu, si, c) => Some(match c.kind {
            WorkloadKind::DaemonSet => "the rest of its nodes, by its own updateStrategy".into(),
            WorkloadKind::StatefulSet => "the rest of its replicas, its partition restored".into(),
            WorkloadKind::Deployment => "the rest of its replicas, by its own strategy".into(),
        }),
        _ => None,
    }
}

/// Whether a stage before `si` runs a canary inside `c`'s workload.
fn canaried_before(mu: &MaintenanceUpgrade, si: usize, c: &ComponentStatus) -> bool {
    let Some(st) = mu.status.as_ref() else { return false };
    st.stages.iter().take(si).enumerate().any(|(i, s)| {
        s.components.iter().enumerate().any(|(j, o)| {
            (o.kind, &o.namespace, &o.name) == (c.kind, &c.namespace, &c.name)
                && mu.spec.stages.get(i).and_then(|s| s.components.get(j)).is_some_and(|k| k.canary.is_some())
        })
    })
}

/// One line of the timeline: phase, stage, the first signal's last error rate against its
/// baseline, the statistic against its threshold, and the message.
pub fn row(st: Option<&MaintenanceUpgradeStatus>, width: usize) -> String {
    let Some(st) = st else { return "waiting for the operator".into() };
    let a = st.first_signal();
    // A rate of nothing counted yet is not shown (the baseline's is smoothed, so it would read 50 %).
    let observed = a.and_then(|a| a.last.as_ref().filter(|l| l.attempts > 0).map(|l| l.rate));
    let baseline = a.and_then(|a| a.baseline.as_ref().filter(|b| b.attempts > 0).map(|b| b.rate));
    let cusum = match (a.and_then(|a| a.statistic), a.and_then(|a| a.threshold)) {
        (Some(s), Some(t)) => format!("{s:.1}/{t:.0}"),
        _ => "-".into(),
    };
    format!(
        "{:<18} {:<8} {:>8} {:>9} {:>11}  {}",
        format!("{:?}", st.phase),
        st.current_stage.clone().unwrap_or_default(),
        pct(observed),
        pct(baseline),
        cusum,
        shorten(&st.message, width)
    )
}

/// `d` to the second, in words: a clock read now has nanoseconds no one needs to see.
fn whole_seconds(d: chrono::Duration) -> String {
    timefmt::duration(chrono::Duration::seconds(d.num_seconds()))
}

/// The whole picture of one upgrade at `now`; `statistics` is the first signal's statistic as
/// a watch has seen it change, drawn as a sparkline when there are a few.
pub fn view(mu: &MaintenanceUpgrade, now: DateTime<Utc>, statistics: &[f64]) -> String {
    let ns = mu.metadata.namespace.clone().unwrap_or_default();
    let name = mu.metadata.name.clone().unwrap_or_default();
    let st = mu.status.clone().unwrap_or_default();
    let mut out = vec![format!("MaintenanceUpgrade {ns}/{name}: {:?}", st.phase)];
    if mu.status.is_none() {
        out.push(format!(
            "  no status yet: the operator has not looked at it (is it running and leading, and does it \
             watch namespace {ns}?)"
        ));
    }
    if !st.message.is_empty() {
        out.push(format!("  {}", st.message));
    }
    out.push(format!("Window:   {}", window(mu.spec.window.as_ref(), now)));
    let next = match &st.next_action {
        Some(NextAction { summary, at: Some(t) }) if *t < now => {
            format!("{summary} at {} (due {} ago)", timefmt::at(*t), whole_seconds(now - *t))
        }
        Some(NextAction { summary, at: Some(t) }) => {
            format!("{summary} at {} (in {})", timefmt::at(*t), whole_seconds(*t - now))
        }
        Some(NextAction { summary, at: None }) => summary.clone(),
        None if st.phase.is_terminal() => "nothing: the upgrade has ended".into(),
        None if mu.status.is_none() => "the operator's first look".into(),
        None => "-".into(),
    };
    out.push(format!("Next:     {next}"));
    if let Some(r) = &st.rollback {
        out.push(format!("Rollback: {} ({}), since {}", r.message, r.reason, timefmt::at(r.started_at)));
    }
    out.push(String::new());
    out.push(format!("{:<10} {:<10} {:<46} {:<9} since", "STAGE", "", "COMPONENT", "PHASE"));
    for (si, s) in st.stages.iter().enumerate() {
        let stage_time = [
            (s.reverted_at, "reverted"),
            (s.passed_at, "passed"),
            (s.soak_ends_at, "soaks until"),
            (s.rolled_out_at, "rolled out"),
            (s.started_at, "started"),
        ]
        .into_iter()
        .find_map(|(t, what)| t.map(|t| format!("{what} {}", timefmt::at(t))))
        .unwrap_or_default();
        for (i, c) in s.components.iter().enumerate() {
            let (stage, phase) = if i == 0 {
                (s.name.clone(), format!("{:?}", s.phase))
            } else {
                (String::new(), String::new())
            };
            let when = c
                .reverted_at
                .map(|t| format!("reverted {}", timefmt::at(t)))
                .or(c.applied_at.map(|t| format!("applied {}", timefmt::at(t))))
                .unwrap_or_else(|| if i == 0 { stage_time.clone() } else { String::new() });
            out.push(format!(
                "{:<10} {:<10} {:<46} {:<9} {when}",
                shorten(&stage, 10),
                phase,
                shorten(&format!("{:?} {}/{}", c.kind, c.namespace, c.name), 46),
                format!("{:?}", c.phase),
            ));
            // Images in full: they are what a human compares.
            let known_good = c.known_good_image.as_deref().unwrap_or("(recorded when claimed)");
            out.push(format!("{:<21}   known-good {known_good}", ""));
            out.push(format!("{:<21}   desired    {}", "", c.desired_image));
            for a in &c.also_containers {
                let known_good = a.known_good_image.as_deref().unwrap_or("(recorded when claimed)");
                out.push(format!(
                    "{:<21}   and container {}: {known_good} -> {}",
                    "", a.container, a.desired_image
                ));
            }
            if let Some(line) = canary_line(mu, si, i, c) {
                out.push(format!("{:<21}   canary     {line}", ""));
            }
            if let Some(m) = &c.message {
                out.push(format!("{:<21}   {m}", ""));
            }
        }
    }
    out.push(String::new());
    out.push(format!("{:<22} {:<18} {:<18} {:<22} verdict", "SIGNAL", "BASELINE", "OBSERVED", "STATISTIC"));
    for a in &st.analysis {
        let counted = |rate: f64, attempts: i64| format!("{} of {attempts}", pct(Some(rate)));
        let stat = match (a.statistic, a.threshold) {
            (Some(s), Some(t)) => format!("{s:.1} / {t:.1}"),
            _ => "-".into(),
        };
        let followed = st.first_signal().is_some_and(|f| f.name == a.name);
        let line = if followed && statistics.len() >= 3 {
            format!("{stat} {}", sparkline(statistics, a.threshold.unwrap_or(1.0)))
        } else {
            stat
        };
        out.push(format!(
            "{:<22} {:<18} {:<18} {:<22} {:?}",
            shorten(&a.name, 22),
            a.baseline.as_ref().map_or("-".into(), |b| counted(b.rate, b.attempts)),
            a.last.as_ref().map_or("-".into(), |l| counted(l.rate, l.attempts)),
            line,
            a.verdict
        ));
        if !a.reason.is_empty() {
            out.push(format!("{:<22} {}", "", a.reason));
        }
        if let Some(limit) = &a.baseline_limit {
            out.push(format!("{:<22} {limit}", ""));
        }
    }
    if st.analysis.is_empty() {
        out.push("(no analysis yet)".into());
    }
    out.join("\n")
}

/// Whether the window is open now, and until or from when.
fn window(spec: Option<&Window>, now: DateTime<Utc>) -> String {
    match Schedule::parse(spec) {
        Err(e) => format!("cannot be read: {e}"),
        Ok(s) => match s.state_at(now) {
            WindowState::Open { closes_at: None } if spec.is_none() => "open (no window: always open)".into(),
            WindowState::Open { closes_at: None } => "open (it does not close)".into(),
            WindowState::Open { closes_at: Some(t) } => format!("open until {}", timefmt::at(t)),
            WindowState::Closed { opens_at: Some(t), why } => {
                format!("closed ({why}); opens at {} (in {})", timefmt::at(t), whole_seconds(t - now))
            }
            WindowState::Closed { opens_at: None, why } => format!("closed ({why}); never opens again"),
        },
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "-".into())
}

/// At most `max` characters, with an ellipsis when cut.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The last values, scaled to the threshold: how close the statistic came.
fn sparkline(values: &[f64], threshold: f64) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let top = threshold.max(f64::EPSILON);
    values
        .iter()
        .rev()
        .take(20)
        .rev()
        .map(|v| BARS[((v / top).clamp(0.0, 1.0) * 7.0).round() as usize])
        .collect()
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
mod tests;
