//! The recording's rows: which bucket is due, gaps, bounds, and the text it is kept as.

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn rec() -> Recording {
    Recording { bucket: Duration::minutes(10), pending_limit: Duration::minutes(5) }
}

#[test]
fn a_bucket_is_due_once_its_last_pod_can_be_judged() {
    let mut h = Recorded::default();
    let watching = Some(t("2026-11-24T00:00:00Z"));
    // At 03:17 the pods created 03:00–03:10 have all had their 5 minutes.
    assert_eq!(
        h.due(&rec(), t("2026-11-24T03:17:00Z"), watching),
        Some((t("2026-11-24T03:00:00Z"), t("2026-11-24T03:10:00Z")))
    );
    h.push(t("2026-11-24T03:10:00Z"), Counts { attempts: 50, errors: 1 });
    assert_eq!(h.due(&rec(), t("2026-11-24T03:17:00Z"), watching), None);
    assert_eq!(
        h.due(&rec(), t("2026-11-24T03:25:00Z"), watching),
        Some((t("2026-11-24T03:10:00Z"), t("2026-11-24T03:20:00Z")))
    );
}

#[test]
fn buckets_the_watch_did_not_see_are_skipped_not_recorded_as_zero() {
    let mut h = Recorded::default();
    h.push(t("2026-11-24T03:10:00Z"), Counts { attempts: 50, errors: 1 });
    // The operator was down until 04:02 and its watch listed again then: 03:10–04:10 is a gap.
    let due = h.due(&rec(), t("2026-11-24T04:30:00Z"), Some(t("2026-11-24T04:02:00Z")));
    assert_eq!(due, Some((t("2026-11-24T04:10:00Z"), t("2026-11-24T04:20:00Z"))));
    assert_eq!(h.due(&rec(), t("2026-11-24T04:30:00Z"), None), None, "no watch, nothing due");
}

/// A watch resuming after a failure (behind: no `watched_since` for a while) misses nothing:
/// the buckets that fell due meanwhile are recorded once it has caught up, not skipped.
#[test]
fn buckets_due_while_the_watch_resumes_are_recorded_once_it_has_caught_up() {
    let mut h = Recorded::default();
    let watching = Some(t("2026-11-24T00:00:00Z"));
    h.push(t("2026-11-24T03:10:00Z"), Counts { attempts: 50, errors: 1 });
    assert_eq!(h.due(&rec(), t("2026-11-24T03:25:00Z"), None), None, "behind: nothing due yet");
    assert_eq!(
        h.due(&rec(), t("2026-11-24T03:26:00Z"), watching),
        Some((t("2026-11-24T03:10:00Z"), t("2026-11-24T03:20:00Z"))),
        "caught up, without a new list: the bucket is counted"
    );
}

#[test]
fn a_bucket_older_than_the_pod_index_remembers_is_not_counted() {
    let mut h = Recorded::default();
    h.push(t("2026-11-22T03:10:00Z"), Counts { attempts: 50, errors: 1 });
    // Two days later, with a watch that ran all along: deleted pods of two days ago are gone.
    let (from, _) = h.due(&rec(), t("2026-11-24T03:17:00Z"), Some(t("2026-11-20T00:00:00Z"))).unwrap();
    assert!(from >= t("2026-11-24T00:17:00Z"), "{from}");
}

#[test]
fn a_week_is_kept_and_the_text_reads_back() {
    let mut h = Recorded::default();
    let start = t("2026-11-01T00:10:00Z");
    for i in 0..(9 * 144) {
        h.push(start + Duration::minutes(10 * i), Counts { attempts: 100, errors: (i % 3) as u64 });
    }
    assert_eq!(h.rows.len(), 7 * 144, "bounded: {} rows", h.rows.len());
    let back = Recorded::parse(&h.to_csv()).unwrap();
    assert_eq!(back.rows, h.rows);
    let last = h.rows.last().unwrap().0;
    assert_eq!(h.since(last, Duration::hours(1)).len(), 6);
}

#[test]
fn a_damaged_recording_says_where() {
    let e = Recorded::parse("ts,attempts,errors\n2026-11-24T03:10:00Z,5,9\n").unwrap_err();
    assert!(e.starts_with("line 2:"), "{e}");
    assert!(
        Recorded::parse("ts,attempts,errors\nnonsense\n")
            .unwrap_err()
            .contains("line 2: expected 3 fields (ts,attempts,errors)")
    );
    // Where the operator could not see, there is a gap: still a recording.
    let gap = "ts,attempts,errors\n2026-11-24T03:10:00Z,5,1\n2026-11-24T04:10:00Z,5,0\n";
    assert_eq!(Recorded::parse(gap).unwrap().rows.len(), 2);
}

#[test]
fn only_a_signal_counting_what_is_recorded_is_covered() {
    let r = Recording { bucket: Duration::minutes(10), pending_limit: Duration::minutes(5) };
    let mut s = KubernetesSignal::default();
    assert!(r.covers(&s, None));
    s.namespaces = vec!["team-a".into()];
    assert!(!r.covers(&s, None), "one namespace of a cluster-wide recording");
    assert!(r.covers(&s, Some("team-a")), "the whole scope of an operator watching team-a");
    s.namespaces.clear();
    s.label_selector = Some("app=email-sync".into());
    assert!(!r.covers(&s, None));
    s.label_selector = None;
    s.pending_limit = crate::crd::Duration("10m".into());
    assert!(!r.covers(&s, None));
}

#[test]
fn a_new_scope_counts_back_as_far_as_the_pod_index_remembers() {
    let now = t("2026-11-24T03:17:00Z");
    let mut h = Recorded::backfilled(now);
    // Watching since midnight: the first bucket is the oldest the pod index still holds whole.
    let (from, _) = h.due(&rec(), now, Some(t("2026-11-24T00:00:00Z"))).unwrap();
    assert_eq!(from, t("2026-11-24T00:20:00Z"));
    // Watching for an hour only: nothing before the watch began.
    let mut h = Recorded::backfilled(now);
    let (from, _) = h.due(&rec(), now, Some(t("2026-11-24T02:15:00Z"))).unwrap();
    assert_eq!(from, t("2026-11-24T02:20:00Z"));
}

#[test]
fn a_recording_is_trimmed_to_its_newest_rows() {
    let mut h = Recorded::default();
    let start = t("2026-11-24T00:01:00Z");
    for i in 0..10 {
        h.push(start + Duration::minutes(i), Counts { attempts: 1, errors: 0 });
    }
    h.trim(4);
    assert_eq!(h.rows.len(), 4);
    assert_eq!(h.rows[0].0, start + Duration::minutes(6), "the oldest go first");
}
