//! The docs' own commands, read from their pages (`docs/src`): the tests run them as they are
//! written, so that a page cannot drift from what works. A block is marked in its page with
//! `<!-- e2e: NAME -->` just before its ```sh fence (invisible in the book).

use crate::Env;

/// The shell block right after `<!-- e2e: {marker} -->` in `docs/src/{page}`.
pub fn block(env: &Env, page: &str, marker: &str) -> String {
    let text = std::fs::read_to_string(env.root.join("docs/src").join(page)).unwrap();
    let after = text
        .split(&format!("<!-- e2e: {marker} -->"))
        .nth(1)
        .unwrap_or_else(|| panic!("docs/src/{page} has no block marked {marker}"));
    let mut lines = after.lines().skip_while(|l| l.trim() != "```sh").skip(1);
    let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
    assert!(!block.is_empty(), "docs/src/{page}: the block marked {marker} is empty");
    block.join("\n")
}

/// Run a block with bash, as an installer with the admin kubeconfig would: its output, or what
/// it printed when it failed.
pub fn run(env: &Env, script: &str) -> Result<String, String> {
    let path = format!("{}:{}", env.bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(&env.root)
        .env("KUBECONFIG", &env.kubeconfig)
        .env("PATH", path)
        .output()
        .expect("bash runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() { Ok(text) } else { Err(text) }
}
