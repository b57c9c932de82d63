use super::Cli;

#[path = "../tests/reference/page.rs"]
mod page;

/// docs/src/reference/operator.md: every subcommand and flag of the binary, from clap.
#[test]
fn reference_of_the_operator_flags_is_current() {
    page::check_or_write(
        "operator.md",
        "Operator flags",
        "the binary's clap definitions",
        &page::clap_markdown::<Cli>(),
    );
}

/// A lease duration the fence cannot work with is refused at start, saying what is allowed: at
/// 0s a leader's term would end as soon as its renewal was sent, so it would hold the Lease and
/// never write, and no follower would take over.
#[test]
fn a_lease_duration_out_of_bounds_is_refused_at_start() {
    use clap::Parser;
    let run = |d: &str| Cli::try_parse_from(["maintenance-operator", "run", "--lease-duration", d]);
    for bad in ["0s", "100ms", "4s", "11m"] {
        let e = run(bad).err().unwrap_or_else(|| panic!("{bad} accepted")).to_string();
        assert!(e.contains("at least 5s") && e.contains("at most 10m"), "{bad}: {e}");
    }
    for good in ["5s", "15s", "10m"] {
        assert!(run(good).is_ok(), "{good}");
    }
}
