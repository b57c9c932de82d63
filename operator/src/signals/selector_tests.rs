//! Unit tests of `selector.rs`.

use super::*;
use kube::core::SelectorExt;
use std::collections::BTreeMap;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn parses_every_form_kubectl_takes() {
    let s =
        parse("app=web, tier!=db,env in (prod, staging),team notin (x),example.com/owner,!legacy").unwrap();
    let yes =
        labels(&[("app", "web"), ("tier", "api"), ("env", "prod"), ("team", "y"), ("example.com/owner", "")]);
    assert!(s.matches(&yes));
    let mut no = yes.clone();
    no.insert("legacy".into(), "true".into());
    assert!(!s.matches(&no));
    assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev"), ("example.com/owner", "")])));
    assert!(parse("app==web").unwrap().matches(&labels(&[("app", "web")])));
    assert!(parse("").unwrap().matches(&labels(&[])), "an empty selector selects everything");
}

#[test]
fn a_selector_the_api_server_would_refuse_says_what_to_fix() {
    for (text, says) in [
        ("app=web,,tier=db", "empty term"),
        ("app in (a,b", "parenthesis open"),
        ("app in a,b", "in parentheses"),
        ("app=we b", "label value"),
        ("-app=web", "label key"),
        ("Example.com/app=web", "invalid prefix"),
        ("app is web", "is not a term"),
        ("env in ()", "lists no values"),
    ] {
        let err = parse(text).unwrap_err();
        assert!(err.contains(says), "{text:?}: expected {says:?} in {err}");
    }
}
