//! `make robustness`: the robustness run (e2e::robustness) over many seeds on the local control
//! plane, with a table of runs × faults × violations and the seed of each failing run, which
//! `make robustness ROBUSTNESS_ARGS="--seeds N"` replays.
//!
//! Usage: robustness [--seeds FIRST[-LAST]] [--faults N] [--per-class N]

use anyhow::{Context, Result, bail};
use e2e::robustness::{Config, run};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let (mut seeds, mut faults, mut per_class) = ((1u64, 10u64), 20usize, 1usize);
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).with_context(|| format!("{} needs a value", pair[0]))?;
        match pair[0].as_str() {
            "--seeds" => {
                seeds = match value.split_once('-') {
                    Some((a, b)) => (a.parse()?, b.parse()?),
                    None => (value.parse()?, value.parse()?),
                }
            }
            "--faults" => faults = value.parse()?,
            "--per-class" => per_class = value.parse()?,
            other => bail!("unknown argument {other} (--seeds FIRST[-LAST], --faults N, --per-class N)"),
        }
    }
    let mut rows = vec![];
    for seed in seeds.0..=seeds.1 {
        let report = run(Config { seed, faults, per_class }).await;
        for v in &report.violations {
            eprintln!("seed {seed}: VIOLATION {v}");
        }
        eprintln!(
            "seed {seed}: {} faults, {} violations, {:.0} s",
            report.injected.len(),
            report.violations.len(),
            report.took.as_secs_f64()
        );
        rows.push(report);
    }
    let (faults, violations): (usize, usize) =
        rows.iter().fold((0, 0), |(f, v), r| (f + r.injected.len(), v + r.violations.len()));
    println!("| seed | faults | violations | seconds |\n|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.0} |",
            r.seed,
            r.injected.len(),
            r.violations.len(),
            r.took.as_secs_f64()
        );
    }
    println!("\n{} runs × {faults} faults × {violations} violations", rows.len());
    let failed: Vec<String> =
        rows.iter().filter(|r| !r.violations.is_empty()).map(|r| r.seed.to_string()).collect();
    if !failed.is_empty() {
        bail!(
            "violations in the runs of seeds {} (replay one: make robustness ROBUSTNESS_ARGS=\"--seeds N\")",
            failed.join(", ")
        );
    }
    Ok(())
}
