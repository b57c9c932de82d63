//! The API server's audit log (cluster-up.sh sets its policy), read as the ground truth of what
//! the operator's replicas wrote: each replica impersonates the operator's ServiceAccount with
//! its name as the extra `instance`.

use crate::{Env, OPERATOR_SA};
use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

/// One write a replica made, as the API server received it.
#[derive(Clone, Debug)]
pub struct Write {
    pub instance: String,
    pub at: DateTime<Utc>,
    pub verb: String,
    /// `resource` or `resource/subresource`.
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub code: i64,
    /// For a Lease: the holder the request asked for.
    pub holder: Option<String>,
    /// The request's body (a patch, or the object written), as the API server logged it.
    pub request: Value,
}

/// As a finding says it: who, what, which object, when, and the answer's code.
impl std::fmt::Display for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = self;
        write!(
            f,
            "{} {} {} {}/{} at {} ({})",
            w.instance, w.verb, w.resource, w.namespace, w.name, w.at, w.code
        )
    }
}

impl Env {
    pub fn audit_log(&self) -> std::path::PathBuf {
        self.cluster_dir.join("logs").join("audit.log")
    }

    /// Every write the operator's replicas made, in the order the API server received them.
    pub fn operator_writes(&self) -> Result<Vec<Write>> {
        let text = std::fs::read_to_string(self.audit_log())?;
        let mut writes: Vec<Write> =
            text.lines().filter_map(|l| write(&serde_json::from_str(l).ok()?)).collect();
        writes.sort_by_key(|w| w.at);
        Ok(writes)
    }

    /// How many writes to Lease `lease` the API server took from `user` in its own name, with a
    /// token of its own rather than by impersonation.
    pub fn own_lease_writes(&self, user: &str, lease: &str) -> Result<usize> {
        let text = std::fs::read_to_string(self.audit_log())?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["user"]["username"] == user && e["impersonatedUser"].is_null())
            .filter(|e| e["responseStatus"]["code"].as_i64().is_some_and(|c| (200..300).contains(&c)))
            .filter(|e| e["objectRef"]["resource"] == "leases" && e["objectRef"]["name"] == lease)
            .count())
    }
}

fn write(e: &Value) -> Option<Write> {
    let who = &e["impersonatedUser"];
    if who["username"] != OPERATOR_SA || e["stage"] != "ResponseComplete" {
        return None;
    }
    let instance = who["extra"]["instance"][0].as_str()?.to_string();
    let r = &e["objectRef"];
    let resource = match r["subresource"].as_str() {
        Some(sub) => format!("{}/{sub}", r["resource"].as_str()?),
        None => r["resource"].as_str()?.to_string(),
    };
    Some(Write {
        instance,
        at: e["requestReceivedTimestamp"].as_str()?.parse().ok()?,
        verb: e["verb"].as_str()?.to_string(),
        resource,
        namespace: r["namespace"].as_str().unwrap_or_default().to_string(),
        name: r["name"].as_str().unwrap_or_default().to_string(),
        code: e["responseStatus"]["code"].as_i64().unwrap_or_default(),
        holder: e["requestObject"]["spec"]["holderIdentity"].as_str().map(String::from),
        request: e["requestObject"].clone(),
    })
}

/// The writes (but the Lease's own) that a replica sent outside every term its Lease writes
/// proved: a term runs from a successful renewal or take-over, as the API server received it,
/// for two thirds of `duration` (the operator's term), plus `slack` for the request's own
/// travel. Each is said as a line to print.
pub fn writes_past_term(writes: &[Write], duration: Duration, slack: Duration) -> Vec<String> {
    let term = duration * 2 / 3 + slack;
    let renewals = |instance: &str| -> Vec<DateTime<Utc>> {
        writes
            .iter()
            .filter(|w| w.instance == instance && w.resource == "leases" && (200..300).contains(&w.code))
            .filter(|w| w.holder.as_deref() == Some(instance))
            .map(|w| w.at)
            .collect()
    };
    writes
        .iter()
        .filter(|w| w.resource != "leases")
        .filter(|w| !renewals(&w.instance).iter().any(|r| *r <= w.at && w.at <= *r + term))
        .map(|w| {
            let last = renewals(&w.instance).into_iter().filter(|r| *r <= w.at).max();
            format!(
                "{w}, last renewal {}",
                last.map_or("none".into(), |l| format!("{l} ({} ms before)", (w.at - l).num_milliseconds()))
            )
        })
        .collect()
}

/// Fails, saying each one, if any of these replicas wrote outside its terms (a 15 s Lease, one
/// second of travel); and if the log shows no status write of theirs at all, which would make
/// the check empty.
pub fn assert_no_write_past_term(env: &Env, instances: &[&str]) {
    let writes: Vec<Write> = env
        .operator_writes()
        .expect("the API server's audit log (cluster-up.sh) is readable")
        .into_iter()
        .filter(|w| instances.contains(&w.instance.as_str()))
        .collect();
    assert!(
        writes.iter().any(|w| w.resource == "maintenanceupgrades/status"),
        "the audit log holds no status write of {instances:?}: nothing was checked"
    );
    let past = writes_past_term(&writes, Duration::seconds(15), Duration::seconds(1));
    assert!(past.is_empty(), "writes past the writer's term:\n{}", past.join("\n"));
    eprintln!("audit: {} writes of {instances:?}, none past its term", writes.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(instance: &str, secs: i64, resource: &str, holder: Option<&str>) -> Write {
        let t0: DateTime<Utc> = "2026-12-04T10:00:00Z".parse().unwrap();
        Write {
            instance: instance.into(),
            at: t0 + Duration::seconds(secs),
            verb: "patch".into(),
            resource: resource.into(),
            namespace: "ns".into(),
            name: "x".into(),
            code: 200,
            holder: holder.map(String::from),
            request: Value::Null,
        }
    }

    #[test]
    fn a_write_outside_every_term_its_writer_proved_is_caught() {
        let writes = vec![
            w("a", 0, "leases", Some("a")),
            w("a", 5, "maintenanceupgrades/status", None),
            // A release names no holder: it proves no term.
            w("a", 6, "leases", None),
            w("a", 12, "daemonsets", None),
            w("b", 1, "events", None),
        ];
        let past = writes_past_term(&writes, Duration::seconds(15), Duration::seconds(1));
        assert_eq!(past.len(), 2, "{past:?}");
        assert!(past[0].starts_with("a patch daemonsets ns/x"), "{}", past[0]);
        assert!(past[0].contains("12000 ms before"), "{}", past[0]);
        assert!(
            past[1].starts_with("b patch events") && past[1].contains("last renewal none"),
            "{}",
            past[1]
        );
    }
}
