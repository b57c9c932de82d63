//! What the benchmarks share: the operator run from the release build, as its ServiceAccount,
//! cluster-wide, with leader election; its figures read from /proc and its own /metrics.

use crate::{Env, peak_rss_mib};
use anyhow::{Context as _, Result};
use std::process::{Child, Command};

/// The operator's process, killed when dropped: a bench that fails half-way (its `?`) leaves
/// no operator running after its cluster is gone.
pub struct Operator(Child);

impl std::ops::Deref for Operator {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Operator {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The release build of the operator, started as `name`, its log in the run's logs; it answers
/// /metrics and /readyz on the port returned.
pub fn start_operator(env: &Env, name: &str) -> Result<(Operator, u16)> {
    let bin = env.root.join("target/release/maintenance-operator");
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
    let log = std::fs::File::create(env.logs.join(format!("{name}.operator.log")))?;
    let child = Command::new(&bin)
        .args(["run", "--listen", &format!("127.0.0.1:{port}"), "--instance", name, "--leader-elect=true"])
        .env("KUBECONFIG", &env.operator_kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {} (the bench's make target builds it)", bin.display()))?;
    Ok((Operator(child), port))
}

/// Peak resident memory (MiB) and CPU seconds of a process, from /proc.
pub fn usage(pid: u32) -> Result<(f64, f64)> {
    let peak = peak_rss_mib(pid)?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("/proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok((peak, ticks / 100.0))
}

pub async fn metrics_text(port: u16) -> Result<String> {
    Ok(reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await?.text().await?)
}
