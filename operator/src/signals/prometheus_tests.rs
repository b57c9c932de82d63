//! Unit tests of `prometheus.rs`.

use super::*;

#[test]
fn prometheus_queries_get_the_span_and_counts_are_rounded() {
    assert_eq!(render_query("sum(increase(x[$interval]))", Duration::minutes(2)), "sum(increase(x[120s]))");
    assert_eq!(counts(99.6, 3.4), Counts { attempts: 100, errors: 3 });
    assert_eq!(counts(2.0, 5.0), Counts { attempts: 2, errors: 2 });
}
