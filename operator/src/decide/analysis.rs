//! Decide step, pure: signal reads become baselines, soak totals and detector verdicts; which
//! signals the observe step should read next.

use super::{Decider, ReadError, plan::Plan};
use crate::constants::reason;
use crate::crd::*;
use crate::detector::level::{LEVEL_WINDOW, add_control, level};
use crate::detector::reach::{self, Judged};
use crate::detector::{Counts, Cusum, Detector, add_live_interval, fit_baseline, pct, rate_at};
use crate::timefmt::{at, clock, duration};
use chrono::{DateTime, Duration, Utc};

/// The most entries of signals taken out of the spec that `status.analysis` keeps.
const MAX_TAKEN_OUT: usize = 10;

/// The most reads a catch-up takes before each of them covers more than an interval.
const CATCH_UP_READS: i32 = 60;

/// Which signals should be read now, and which span (the observe step reads `[from, to)`).
/// `watched_since`: since when the watches of pods have run without a break (`Observed`).
pub fn analysis_due(
    spec: &MaintenanceUpgradeSpec,
    status: &MaintenanceUpgradeStatus,
    now: DateTime<Utc>,
    watched_since: Option<DateTime<Utc>>,
) -> Vec<(Signal, DateTime<Utc>, DateTime<Utc>)> {
    let Ok((plan, _)) = Plan::for_upgrade(spec, status) else { return vec![] };
    let Some(started) = status.baseline_started_at else { return vec![] };
    if status.phase.is_terminal() || status.rollback.is_some() {
        return vec![];
    }
    plan.signals
        .into_iter()
        .filter_map(|s| {
            let a = status.analysis.iter().find(|a| a.name == s.name);
            let from = a.and_then(|a| a.sampled_to).unwrap_or(started);
            let to = read_until(&s, from, now, plan.interval, watched_since);
            (now >= last_read(a, started) + plan.interval).then_some((s, from, to))
        })
        .collect()
}

/// Where the next read of `s` from `from` ends: now; or, when the looks missed more (a restart,
/// a new leader, Prometheus down), the next piece of what they missed, one look after another:
/// an interval, longer when more than `CATCH_UP_READS` are behind, never longer than one of the
/// detector's buckets. Hours read at once would be judged as one bucket: one capped step of the
/// statistic and one read of the ceiling, whatever failed in them. What the watches of pods did
/// not see is not judged (`unjudged_until`): a built-in signal reads it in one piece.
fn read_until(
    s: &Signal,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
    interval: Duration,
    watched_since: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    if let Some(since) = watched_since.filter(|w| s.prometheus.is_none() && *w > from) {
        return since.min(now);
    }
    if !behind_on_reads(s, from, now, interval) {
        return now;
    }
    let bucket = Cusum::from_rule(&s.regression).bucket.max(interval);
    let piece = ((now - from) / CATCH_UP_READS).max(interval).min(bucket);
    (from + piece).min(now)
}

/// Whether the looks fell behind on `s`, read up to `read_to`: its next read is a piece of what
/// they missed (`read_until`), not a read up to now. A signal so behind has not caught up: its
/// unread part may hold a regression.
pub(super) fn behind_on_reads(
    s: &Signal,
    read_to: DateTime<Utc>,
    now: DateTime<Utc>,
    interval: Duration,
) -> bool {
    let behind = now - read_to;
    behind >= interval * 2 || behind > Cusum::from_rule(&s.regression).bucket.max(interval)
}

/// What to fix, when a read failed in a way reading again cannot help.
fn permanent<T>(result: &Result<T, ReadError>) -> Option<String> {
    result.as_ref().err().filter(|e| e.is_permanent()).map(ToString::to_string)
}

/// When a signal was last read, whether the read succeeded or not: a failed read is tried
/// again an interval later, not at once (a Prometheus that fails, or answers too much, would
/// otherwise be asked again on every look, ten times a second).
fn last_read(a: Option<&SignalStatus>, started: DateTime<Utc>) -> DateTime<Utc> {
    let sampled_to = a.and_then(|a| a.sampled_to).unwrap_or(started);
    a.and_then(|a| a.analysed_at).map_or(sampled_to, |t| t.max(sampled_to))
}

/// Which signals need their pre-change history read now, once the baseline period has begun:
/// Prometheus signals, and built-in ones (from what the operator recorded between upgrades),
/// whose baseline is not there yet. A built-in signal whose recording is missing or short is
/// observed live meanwhile, and asked for again until the change: a scope named for the first
/// time is counted back from the pod watch within seconds, and that beats the live minutes.
/// A baseline from history that leaves no room (`no_room`) is read again once a bucket, until
/// the history moves on.
pub fn history_due(
    spec: &MaintenanceUpgradeSpec,
    status: &MaintenanceUpgradeStatus,
    now: DateTime<Utc>,
) -> Vec<Signal> {
    if status.baseline_started_at.is_none() || status.changed_at.is_some() || status.phase.is_terminal() {
        return vec![];
    }
    let read_again = |s: &Signal| {
        let Some(b) = status.analysis.iter().find(|a| a.name == s.name).and_then(|a| a.baseline.as_ref())
        else {
            return false;
        };
        if no_room(s, b).is_none() {
            return false;
        }
        let interval = Plan::for_upgrade(spec, status).map_or(Duration::minutes(1), |(p, _)| p.interval);
        let every = Cusum::from_rule(&s.regression).bucket.max(interval);
        b.to.is_none_or(|to| now >= to + every)
    };
    spec.effective_signals()
        .into_iter()
        .chain(spec.canary_signals(status))
        .filter(|s| !baseline_from_history(s, status) || read_again(s))
        .collect()
}

/// Whether a signal's baseline leaves no room to tell a regression (`Cusum::no_room`), judged
/// as the signal is (a canary's copy at its control's level): in words, when so.
pub(super) fn no_room(s: &Signal, b: &BaselineStatus) -> Option<String> {
    let judged = if s.canary_parent().is_some() { Judged::AtAControl } else { Judged::Alone };
    Cusum { judged, ..Cusum::from_rule(&s.regression) }.no_room_words(b)
}

/// Whether signal `s` has its baseline from history: Prometheus's, or a recording of a built-in
/// signal (kept only when it spans at least `observe`), not one observed live.
pub(super) fn baseline_from_history(s: &Signal, status: &MaintenanceUpgradeStatus) -> bool {
    let baseline = status.analysis.iter().find(|a| a.name == s.name).and_then(|a| a.baseline.as_ref());
    baseline.is_some_and(|b| s.prometheus.is_some() || b.recorded)
}

impl Decider<'_> {
    pub(super) fn analyse(&mut self, plan: &Plan) {
        let now = self.now();
        // A signal taken out of the spec is retired: its entry would otherwise go on holding a
        // soak (Suspect) or a rollback waiting for a human (Regression) that no read revisits.
        // Kept, so that one put back (a GitOps revert) goes on from its baseline.
        let listed = self.o.spec.effective_signals();
        let in_spec = |a: &SignalStatus| {
            listed.iter().any(|s| {
                a.name == s.name
                    || (s.kubernetes.is_some() && a.name == crate::crd::canary_signal_name(&s.name))
            })
        };
        for a in self.st.analysis.iter_mut() {
            a.taken_out_at = if in_spec(a) { None } else { a.taken_out_at.or(Some(now)) };
        }
        // At most `MAX_TAKEN_OUT` of them, the latest.
        let mut out: Vec<DateTime<Utc>> = self.st.analysis.iter().filter_map(|a| a.taken_out_at).collect();
        out.sort();
        if let Some(oldest_kept) =
            out.len().checked_sub(MAX_TAKEN_OUT).and_then(|skip| out.get(skip)).copied()
        {
            self.st.analysis.retain(|a| a.taken_out_at.is_none_or(|t| t >= oldest_kept));
        }
        let redefined = self.follow_definitions(plan);
        for s in &plan.signals {
            if !self.st.analysis.iter().any(|a| a.name == s.name) && self.st.baseline_started_at.is_some() {
                let definition = s.canary_parent().is_none().then(|| self.definition_of(s));
                self.st.analysis.push(SignalStatus {
                    name: s.name.clone(),
                    definition,
                    ..Default::default()
                });
            }
        }
        // Pre-change history becomes the baseline of signals that have it.
        for s in &plan.signals {
            let Some(result) = self.o.history.get(&s.name) else { continue };
            let Some(a) = self.st.analysis.iter_mut().find(|a| a.name == s.name) else { continue };
            let live = s.prometheus.is_none();
            // A built-in signal without a recording is observed live instead: never unreadable.
            if !live {
                a.unreadable = permanent(result);
            }
            // Asked again while observed live: only a recording long enough changes anything.
            let observing = a.baseline.as_ref().is_some_and(|b| !b.recorded);
            match result {
                Ok(points) if !points.is_empty() => {
                    let mut b = fit_baseline(points, Cusum::from_rule(&s.regression).bucket);
                    let span = reach::span(&b);
                    // A recording shorter than the live observation would tell less than it.
                    if live && span < plan.observe {
                        if observing {
                            continue;
                        }
                        a.reason = format!(
                            "the operator has recorded this signal for {} only; observing the baseline live for {}",
                            duration(span),
                            duration(plan.observe)
                        );
                        continue;
                    }
                    b.recorded = live;
                    a.reason = format!(
                        "baseline {} over {} attempts before the change{}",
                        pct(b.rate),
                        b.attempts,
                        if live {
                            format!(", recorded by the operator over {}", duration(span))
                        } else {
                            String::new()
                        }
                    );
                    a.baseline = Some(b);
                }
                _ if observing => {}
                Ok(_) if live => {
                    a.reason = format!(
                        "nothing recorded yet; observing the baseline live for {}",
                        duration(plan.observe)
                    )
                }
                Ok(_) => a.reason = "the baseline history is empty; retrying".into(),
                Err(e) if live => a.reason = format!("observing the baseline live: {e}"),
                Err(e) if e.is_permanent() => {
                    a.reason = format!("the baseline history cannot be read until this is fixed: {e}")
                }
                Err(e) => a.reason = format!("could not read the baseline history: {e}; retrying"),
            }
        }
        let changed = self.st.changed_at.is_some();
        // The soak of the first DaemonSet canary's stage, until it passes: what a canary's own
        // signal has to go on there, said while its baseline is measured, before anything changes.
        let first_canary = self.first_daemonset_canary().and_then(|(si, pool)| {
            Some((self.o.spec.stages.get(si)?.name.clone(), *plan.soak.get(si)?, pool))
        });
        let mut notes = vec![];
        for s in &plan.signals {
            let Some(result) = self.o.samples.get(&s.name) else { continue };
            // A canary's copy of a built-in signal is judged at its control's level: the rest's
            // failures in the same span, against what its parent's baseline expects of them.
            let control = s.canary_parent().map(|parent| {
                let read = self.o.samples.get(&control_signal_name(parent))?.as_ref().ok()?;
                let parent = self.st.analysis.iter().find(|a| a.name == parent)?.baseline.as_ref()?;
                Some((read.0, read.0.attempts as f64 * rate_at(parent, read.2)))
            });
            let Some(a) = self.st.analysis.iter_mut().find(|a| a.name == s.name) else { continue };
            if redefined.iter().any(|r| *r == s.canary_parent().unwrap_or(&s.name)) {
                if a.verdict != Verdict::Regression {
                    a.verdict = Verdict::Inconclusive;
                }
                a.reason = "its query, selector, namespaces or pending limit were changed after the first change: \
                            its baseline is of what it counted before, and nothing it counts now was measured before \
                            the change, so it is not judged and holds the next stage; put them back to judge it \
                            again (what was not judged meanwhile is read then), or take the signal out"
                    .into();
                a.analysed_at = Some(now);
                continue;
            }
            a.unreadable = permanent(result);
            let (counts, from, to) = match result {
                Ok(ok) => *ok,
                Err(ReadError::Gap { to, why }) => {
                    // Passed over, unjudged: only how far it was read moves (the next piece is
                    // due at once); its verdict and when it was last judged stay, so a stage
                    // waits for a read with data, without a warning.
                    let from = a.sampled_to.map(clock).unwrap_or_default();
                    a.reason = format!("{why}: from {from} to {} not judged; reading on", clock(*to));
                    a.sampled_to = Some(*to);
                    continue;
                }
                Err(e) => {
                    // Never counted as a pass nor a failure: the span is read again next time.
                    // A read that says nothing does not erase a regression already found.
                    if a.verdict != Verdict::Regression {
                        a.verdict = Verdict::Inconclusive;
                    }
                    a.reason = if e.is_permanent() {
                        format!(
                            "the signal cannot be read until this is fixed: {e}; neither promoting nor reverting meanwhile"
                        )
                    } else {
                        format!(
                            "could not read the signal: {e}; neither promoting nor reverting until it can be read"
                        )
                    };
                    a.analysed_at = Some(now);
                    continue;
                }
            };
            a.sampled_to = Some(to);
            // A live read from before the watches of pods last (re)listed covers a span the
            // operator could not see (API server or operator down). Pods created during such a
            // gap were held up by whatever hid it, not by the upgrade, or were never seen, so
            // they are not judged. A long span the watches did see (a follower taking over) is
            // judged. Prometheus keeps history, so a long span there is simply read late.
            // Pods are judged `pendingLimit` after creation, so the cohorts of the next reads
            // still hold pods created during the gap: those are not judged either.
            let pending_limit = s
                .kubernetes
                .as_ref()
                .and_then(|k| k.pending_limit.parse().ok())
                .unwrap_or_else(Duration::zero);
            let blind = s.prometheus.is_none() && self.o.pods_watched_since.is_none_or(|since| since > from);
            if blind {
                a.unjudged_until = Some(to + pending_limit);
            }
            if blind || a.unjudged_until.is_some_and(|u| from < u) {
                if a.verdict != Verdict::Regression {
                    a.verdict = Verdict::Inconclusive;
                }
                let until = a.unjudged_until.unwrap_or(to);
                a.reason = format!(
                    "the signal could not be read from {} to {} (API server or operator unavailable); pods created until then are not judged, analysis resumes at {}",
                    clock(from),
                    clock(until - pending_limit),
                    at(until)
                );
                a.analysed_at = Some(to);
                continue;
            }
            a.last = Some(rate_window(counts, Some(from), Some(to)));
            // A piece from before the first change, read after it (a new leader catching up):
            // not the soak's, and the baseline was complete at the change.
            if self.st.changed_at.is_some_and(|c| to <= c) {
                a.analysed_at = Some(to);
                continue;
            }
            let first_soak_read = changed && a.soak.is_none();
            // Before the change, live reads build the baseline of signals without history.
            if !changed && s.prometheus.is_none() && !a.baseline.as_ref().is_some_and(|b| b.recorded) {
                let b = a.baseline.get_or_insert_with(Default::default);
                add_live_interval(b, to, from, counts);
                a.reason =
                    format!("measuring the baseline: {} over {} attempts so far", pct(b.rate), b.attempts);
            }
            // In status while the baseline is measured; in an Event once, when the soak begins
            // and the baseline is complete.
            let judged = if control.is_some() { Judged::AtAControl } else { Judged::Alone };
            let d = Cusum { judged, ..Cusum::from_rule(&s.regression) };
            a.baseline_limit = a.baseline.as_ref().and_then(|b| {
                let floor = d.baseline_words(b);
                // A canary's own signal: are its nodes busy enough over their stage's soak? Said
                // of a live observation once it has run its course, not of its first minutes.
                let complete = b.recorded || b.observed_seconds >= plan.observe.num_seconds() as f64;
                let quiet = first_canary.as_ref().filter(|_| control.is_some() && complete).and_then(
                    |(name, soak, (may_take, runs_on))| {
                        let (nodes, may_take, runs_on) = (a.nodes.len(), *may_take, *runs_on);
                        let stage = reach::CanaryStage { name, soak: *soak, nodes, may_take, runs_on };
                        reach::quiet_words(b, d.smallest_increase(b), &stage)
                    },
                );
                let said: Vec<String> = floor.into_iter().chain(quiet).collect();
                (!said.is_empty()).then(|| said.join("; "))
            });
            if !changed {
                continue;
            }
            let soak = a
                .soak
                .as_ref()
                .map(|b| Counts { attempts: b.attempts.max(0) as u64, errors: b.errors.max(0) as u64 })
                .unwrap_or_default();
            let soak_from = a.soak.as_ref().and_then(|b| b.from).unwrap_or(from);
            a.soak = Some(rate_window(soak + counts, Some(soak_from), Some(to)));
            let Some(b) = a.baseline.clone() else {
                a.verdict = Verdict::Inconclusive;
                a.reason = "no baseline was measured for this signal".into();
                a.analysed_at = Some(to);
                continue;
            };
            if first_soak_read && let Some(words) = &a.baseline_limit {
                notes.push((true, reason::BASELINE_LIMIT, format!("signal {}: {words}", a.name)));
            }
            let was_suspect = a.detector.suspect_since.is_some();
            // A read spanning several intervals (the first after a restart or a new leader
            // reads what it missed) starts a bucket where looks every interval would have:
            // at the end of its first interval, not its last, so the bucket does not stretch.
            a.detector.bucket_from.get_or_insert((from + plan.interval).min(to));
            let r = match &control {
                None => d.update(&mut a.detector, &b, to, counts),
                Some(control) => {
                    let l = a.detector.control.get_or_insert_with(Default::default);
                    if let Some((c, expected)) = control {
                        add_control(l, to, c.errors as f64, *expected, LEVEL_WINDOW);
                    }
                    let at = level(Some(l));
                    let mut r = d.update_at_level(&mut a.detector, &b, to, counts, at);
                    r.reason = format!(
                        "on the canary's nodes ({}): {}; the rest of the cluster runs at {at:.2}x its baseline, \
                         so the canary's own baseline is taken at that level too",
                        a.nodes.join(", "),
                        r.reason
                    );
                    r
                }
            };
            match (was_suspect, r.verdict) {
                (false, Verdict::Suspect) => {
                    notes.push((true, reason::SUSPECTED, format!("signal {}: {}", a.name, r.reason)))
                }
                (true, Verdict::Pass) => {
                    notes.push((false, reason::SUSPICION_CLEARED, format!("signal {}: {}", a.name, r.reason)))
                }
                _ => {}
            }
            a.verdict = r.verdict;
            a.reason = r.reason;
            a.statistic = Some(r.statistic);
            a.threshold = Some(r.threshold);
            a.excess_errors = Some(r.excess_errors);
            a.analysed_at = Some(to);
        }
        for (warning, reason, message) in notes {
            self.note(warning, reason, "Analyse", message);
        }
    }

    /// What signal `s` counts as this upgrade reads it (`Signal::as_read`: an untrusted one's
    /// built-in signal counts its own namespace whatever the spec says), as a fingerprint.
    pub(super) fn definition_of(&self, s: &Signal) -> String {
        s.clone().as_read(&self.o.namespace, self.trusted()).definition()
    }

    /// Follow each signal's definition (`definition_of`). Before the first change, one edited
    /// in place is measured again from scratch, with its canary's copy; after it, it is left as
    /// it was, and named in what this returns: not judged until it is put back as it was (an
    /// edit that fixes a problem `InvalidSpec` named counts too: nothing tells a fix from a new
    /// signal, and the baseline is of what was counted before). An entry without a fingerprint
    /// (written before they were kept) takes the spec's.
    fn follow_definitions(&mut self, plan: &Plan) -> Vec<String> {
        let changed = self.st.changed_at.is_some();
        let mut redefined = vec![];
        for s in plan.signals.iter().filter(|s| s.canary_parent().is_none()) {
            let definition = self.definition_of(s);
            let Some(a) = self.st.analysis.iter_mut().find(|a| a.name == s.name) else { continue };
            match &a.definition {
                Some(d) if *d == definition => {}
                None => a.definition = Some(definition),
                Some(_) if changed => redefined.push(s.name.clone()),
                Some(_) => {
                    let family = |a: &SignalStatus| a.name == s.name || a.name == canary_signal_name(&s.name);
                    for a in self.st.analysis.iter_mut().filter(|a| family(a)) {
                        *a = SignalStatus {
                            name: a.name.clone(),
                            nodes: a.nodes.clone(),
                            sampled_to: a.sampled_to,
                            unjudged_until: a.unjudged_until,
                            definition: (a.name == s.name).then(|| definition.clone()),
                            reason: "its query, selector, namespaces or pending limit were changed: measuring its \
                                     baseline again"
                                .into(),
                            ..Default::default()
                        };
                    }
                }
            }
        }
        redefined
    }

    pub(super) fn next_sample_at(&self, plan: &Plan) -> Option<DateTime<Utc>> {
        let started = self.st.baseline_started_at?;
        plan.signals
            .iter()
            .map(|s| last_read(self.st.analysis.iter().find(|a| a.name == s.name), started) + plan.interval)
            .min()
    }

    /// A signal of the plan that no read can give until the spec or the settings change.
    pub(super) fn unreadable(&self, plan: &Plan) -> Vec<String> {
        let unreadable = |s: &Signal| {
            let a = self.st.analysis.iter().find(|a| a.name == s.name)?;
            Some(format!("signal {}: {}", s.name, a.unreadable.as_ref()?))
        };
        plan.signals.iter().filter_map(unreadable).collect()
    }

    pub(super) fn regression(&self) -> Option<String> {
        self.st
            .analysis
            .iter()
            .find(|a| a.verdict == Verdict::Regression && !a.retired())
            .map(|a| format!("signal {}: {}", a.name, a.reason))
    }
}

fn rate_window(c: Counts, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> RateWindow {
    RateWindow { attempts: c.attempts as i64, errors: c.errors as i64, rate: c.rate(), from, to }
}

#[cfg(test)]
#[path = "analysis_tests.rs"]
mod tests;
