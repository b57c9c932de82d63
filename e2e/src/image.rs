//! The operator run from its image (`make image`), as a kubelet would run it: the OCI archive
//! unpacked into a bundle that runc starts with the image's own entrypoint and user, a
//! read-only root filesystem, and the ServiceAccount's token, CA and namespace where every
//! in-cluster client looks for them (`/var/run/secrets/kubernetes.io/serviceaccount`), with
//! `KUBERNETES_SERVICE_HOST`/`PORT` set. It shares the host's network, not a pod's: the API
//! server listens on loopback here, and no CNI is installed.
//!
//! runc, not crun: crun 1.8 (Debian) refuses this machine's hybrid cgroup layout (a controller
//! on the cgroup2 hierarchy), and the bundle asks for no cgroup of its own.

use crate::Env;
use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// The image, unpacked once per test process.
pub struct Image {
    pub rootfs: PathBuf,
    /// Its ENTRYPOINT, which a pod's `args` follow (they replace its CMD).
    pub entrypoint: Vec<String>,
    /// Its USER, `uid:gid`.
    pub uid: u32,
    pub gid: u32,
}

static IMAGE: OnceCell<Arc<Image>> = OnceCell::const_new();

impl Image {
    /// The archive `make image` wrote for the operator's version, unpacked under the logs.
    pub async fn unpacked(env: &Env) -> Result<Arc<Image>> {
        IMAGE.get_or_try_init(|| async { Self::unpack(env).map(Arc::new) }).await.cloned()
    }

    fn unpack(env: &Env) -> Result<Image> {
        let version = maintenance_operator::constants::VERSION;
        let archive = env.root.join(format!("dist/maintenance-operator-{version}.oci.tar"));
        if !archive.exists() {
            bail!("{} is missing: run make image (make e2e does, first)", archive.display());
        }
        let dir = env.logs.join("image");
        run(Command::new(env.root.join("image/unpack.sh")).arg(&archive).arg(&dir))?;
        let config: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("image.json"))?)?;
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(String::from)).collect()
        };
        let entrypoint = strings(&config["config"]["Entrypoint"]);
        let user = config["config"]["User"].as_str().context("the image names its USER")?;
        let (uid, gid) = user.split_once(':').context("USER is uid:gid")?;
        if entrypoint.is_empty() {
            bail!("the image has no ENTRYPOINT: {config}");
        }
        Ok(Image { rootfs: dir.join("rootfs"), entrypoint, uid: uid.parse()?, gid: gid.parse()? })
    }

    /// Write `bundle/config.json` for one run of the image: `args` after its entrypoint, `env`,
    /// the ServiceAccount files of `secrets` mounted read-only, everything else read-only too.
    pub fn write_bundle(
        &self,
        bundle: &Path,
        args: &[String],
        env: &[(String, String)],
        secrets: &Path,
    ) -> Result<()> {
        std::fs::create_dir_all(bundle)?;
        let _ = std::fs::remove_file(bundle.join("config.json"));
        run(Command::new("runc").args(["spec", "--bundle"]).arg(bundle))?;
        let path = bundle.join("config.json");
        let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        c["root"] = json!({"path": self.rootfs, "readonly": true});
        let p = &mut c["process"];
        p["terminal"] = json!(false);
        p["args"] = json!(self.entrypoint.iter().chain(args).collect::<Vec<_>>());
        p["env"] = json!(env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>());
        p["user"] = json!({"uid": self.uid, "gid": self.gid});
        p["cwd"] = json!("/");
        // As config/manager asks of the kubelet: every capability dropped, no privilege gained.
        p["capabilities"] = json!({});
        p["noNewPrivileges"] = json!(true);
        // The host's network (the API server is on its loopback), and no cgroup of its own.
        let namespaces = c["linux"]["namespaces"].as_array_mut().context("runc spec has namespaces")?;
        namespaces.retain(|n| n["type"] != "network");
        c["linux"].as_object_mut().context("runc spec has linux")?.remove("resources");
        let mounts = c["mounts"].as_array_mut().context("runc spec has mounts")?;
        mounts.retain(|m| m["destination"] != "/sys/fs/cgroup");
        mounts.push(json!({
            "destination": "/var/run/secrets/kubernetes.io/serviceaccount",
            "type": "bind",
            "source": secrets,
            "options": ["rbind", "ro"]
        }));
        std::fs::write(&path, serde_json::to_string_pretty(&c)?)?;
        Ok(())
    }
}

/// The ServiceAccount files a pod of the operator gets, in `dir`: a token the API server
/// issued for `maintenance-operator/maintenance-operator`, the cluster's CA and the namespace,
/// owned by the image's user and readable by it alone, as the kubelet's projected volume makes
/// them for a pod with `runAsUser`.
pub fn service_account_files(env: &Env, dir: &Path, uid: u32, gid: u32) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let token = env.kubectl(&[
        "create",
        "token",
        "maintenance-operator",
        "-n",
        "maintenance-operator",
        "--duration=2h",
    ])?;
    std::fs::write(dir.join("token"), token.trim())?;
    std::fs::copy(env.cluster_dir.join("pki/ca.crt"), dir.join("ca.crt"))?;
    std::fs::write(dir.join("namespace"), "maintenance-operator")?;
    for f in ["token", "ca.crt", "namespace"] {
        let path = dir.join(f);
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The container's process as the host sees it: its PID, from runc.
pub fn container_pid(id: &str) -> Result<u32> {
    let out = Command::new("runc").args(["state", id]).output()?;
    let state: Value = serde_json::from_slice(&out.stdout).with_context(|| format!("runc state {id}"))?;
    state["pid"].as_u64().map(|p| p as u32).context("runc state has a pid")
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}
