//! Unit tests of `node_cache.rs`.

use super::selects;
use std::collections::BTreeMap;

#[test]
fn a_node_is_selected_when_it_has_every_label_of_the_selector() {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let labels = map(&[("zone", "a"), ("pool", "system")]);
    assert!(selects(&map(&[("zone", "a")]), Some(&labels)));
    assert!(selects(&map(&[("zone", "a"), ("pool", "system")]), Some(&labels)));
    assert!(!selects(&map(&[("zone", "b")]), Some(&labels)));
    assert!(!selects(&map(&[("zone", "a"), ("gpu", "yes")]), Some(&labels)));
    assert!(!selects(&map(&[("zone", "a")]), None));
    assert!(selects(&map(&[]), None), "an empty selector (the CRD refuses one) selects every node");
}
