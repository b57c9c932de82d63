//! Unit tests of `health.rs`.

use super::*;

#[test]
fn a_look_that_runs_too_long_or_an_elector_that_stopped_stepping_is_unhealthy() {
    let t = Instant::now();
    let mut looks = HashMap::new();
    assert!(healthy(&looks, None, t).is_ok());
    looks.insert("ops/up".to_string(), t);
    assert!(healthy(&looks, None, t + WEDGED).is_ok());
    let wedged = healthy(&looks, None, t + WEDGED + Duration::from_secs(1)).unwrap_err();
    assert!(wedged.contains("MaintenanceUpgrade ops/up has run for 301s"), "{wedged}");
    let elector = Some((t, Duration::from_secs(45)));
    assert!(healthy(&HashMap::new(), elector, t + Duration::from_secs(45)).is_ok());
    let stuck = healthy(&HashMap::new(), elector, t + Duration::from_secs(46)).unwrap_err();
    assert!(stuck.contains("leader election has not stepped for 46s"), "{stuck}");
}

#[test]
fn ready_once_the_crd_is_installed_and_the_watches_have_listed() {
    let h = Health::default();
    let not = h.ready().unwrap_err();
    assert!(not.contains("CRD") && not.contains("watches"), "{not}");
    h.crd_installed(true);
    assert!(h.ready().unwrap_err().contains("the watches to start"));
    let pods = Arc::new(AtomicBool::new(false));
    let nodes = Arc::new(AtomicBool::new(false));
    let (p, n) = (pods.clone(), nodes.clone());
    h.watch("pods and Warning Events", move || p.load(Ordering::Relaxed));
    h.watch("nodes", move || n.load(Ordering::Relaxed));
    assert_eq!(
        h.ready().unwrap_err(),
        "not ready: waiting for the watches of pods and Warning Events and of nodes to list"
    );
    pods.store(true, Ordering::Relaxed);
    // Each watch counts: a replica that may not watch nodes is not ready (its canaries by
    // nodeSelector would wait for ever).
    assert_eq!(h.ready().unwrap_err(), "not ready: waiting for the watches of nodes to list");
    nodes.store(true, Ordering::Relaxed);
    assert_eq!(h.ready().unwrap(), "ok: following");
    h.leading(true);
    assert_eq!(h.ready().unwrap(), "ok: leading");
    // A look in flight ends with its guard.
    let look = h.look("ops/up".into());
    assert_eq!(h.0.looks.lock().unwrap().len(), 1);
    drop(look);
    assert!(h.0.looks.lock().unwrap().is_empty());
}
