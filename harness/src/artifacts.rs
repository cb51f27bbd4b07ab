//! What a failing scenario leaves behind: every device's state, configs and logs in
//! `<root>/<lab>/<scenario>/`, each command's output under a `$ command` line and a
//! failed command marked `# exit N` or `# error: ...`.

use std::path::{Path, PathBuf};

use crate::backend::{ExecOutput, MemberRole, Target};
use crate::diagnosis::Diagnosis;
use crate::error::{Error, Result};
use crate::lab::{birdc, Lab};

/// `CALICO_LAB_ARTIFACTS`, else `<target dir>/calico-lab/artifacts` of the workspace
/// the process runs in (`CARGO_TARGET_DIR` honoured).
pub fn root() -> PathBuf {
    if let Some(dir) = std::env::var_os("CALICO_LAB_ARTIFACTS") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("calico-lab").join("artifacts")
}

/// The nearest folder upwards holding `Cargo.lock` (tests run in their package's
/// folder), else the current folder.
fn workspace_root() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors()
        .find(|d| d.join("Cargo.lock").exists())
        .map(Path::to_path_buf)
        .unwrap_or(cwd)
}

/// Writes `text` to `dir/name`, creating folders.
pub(crate) fn write_text(dir: &Path, name: &str, text: &str) -> Result<()> {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(Error::io(format!("creating {}", parent.display())))?;
    }
    std::fs::write(&path, text).map_err(Error::io(format!("writing {}", path.display())))
}

/// A command's output as a record: a `$ command` line, then `# exit N` when it
/// failed or `# error: ...` when it could not run, then what it printed on stdout,
/// then `# stderr` and what it printed there. [`crate::backend::replay::Replay`]
/// reads records back.
pub fn record(command: &str, out: &Result<ExecOutput>) -> String {
    match out {
        Ok(out) => {
            let mut text = format!("$ {command}\n");
            if !out.success() {
                text += &format!("# exit {}\n", out.exit_code);
            }
            text += &out.stdout;
            if !out.stderr.is_empty() {
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text += "# stderr\n";
                text += &out.stderr;
            }
            text
        }
        Err(e) => format!(
            "$ {command}\n# error: {}\n",
            e.to_string().replace('\n', " ")
        ),
    }
}

/// Writes a command's output to `dir/name` as a [`record`].
pub(crate) fn write_output(
    dir: &Path,
    name: &str,
    command: &str,
    out: Result<ExecOutput>,
) -> Result<()> {
    write_text(dir, name, &record(command, &out))
}

/// Writes everything worth reading about `lab` to `<root>/<lab>/<scenario>/`,
/// replacing what an earlier run of the same lab and scenario left, and returns the
/// folder.
pub async fn collect(lab: &Lab, scenario: &str, diagnosis: &Diagnosis) -> Result<PathBuf> {
    let dir = root().join(lab.name()).join(scenario);
    write_state(lab, &dir).await?;
    write_text(&dir, "diagnosis.txt", &format!("{diagnosis}\n"))?;
    let json = serde_json::to_string_pretty(diagnosis).unwrap_or_default();
    write_text(&dir, "diagnosis.json", &format!("{json}\n"))?;
    Ok(dir)
}

/// Writes every member's state, configs and logs to `dir` (emptied first): one
/// folder per member, one file per command. [`crate::backend::replay::Replay`]
/// reads such a folder back.
pub async fn write_state(lab: &Lab, dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(Error::io(format!("clearing {}", dir.display())))?;
    }
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    for m in lab.members() {
        let d = &m.device;
        let (target, commands): (Target, Vec<(&str, Vec<&str>)>) = match m.role {
            MemberRole::Router => (
                Target::Router(d.clone()),
                vec![
                    (
                        "bgp-summary.json",
                        vec!["vtysh", "-c", "show bgp summary json"],
                    ),
                    (
                        "bgp-ipv4-unicast.json",
                        vec!["vtysh", "-c", "show bgp ipv4 unicast json"],
                    ),
                    (
                        "running-config.txt",
                        vec!["vtysh", "-c", "show running-config"],
                    ),
                    ("ip-route.txt", vec!["ip", "-4", "route"]),
                    ("ip-route.json", vec!["ip", "-j", "-4", "route"]),
                ],
            ),
            MemberRole::Node => (
                Target::Node(d.clone()),
                vec![
                    ("ip-route.txt", vec!["ip", "-4", "route"]),
                    ("ip-route.json", vec!["ip", "-j", "-4", "route"]),
                    ("ip-addr.txt", vec!["ip", "-4", "addr"]),
                    ("netns.txt", vec!["ip", "netns"]),
                ],
            ),
            MemberRole::Fabric => (
                Target::Node(d.clone()),
                vec![(
                    "bridges.txt",
                    vec!["ip", "-d", "link", "show", "type", "bridge"],
                )],
            ),
        };
        let member_dir = dir.join(d);
        for (file, cmd) in commands {
            let out = lab.exec(&target, &cmd).await;
            write_output(&member_dir, file, &cmd.join(" "), out)?;
        }
        if m.role == MemberRole::Node {
            let calico_node = Target::CalicoNode(d.clone());
            for (file, args) in [
                ("bird-protocols.txt", vec!["show", "protocols"]),
                ("bird-protocols-all.txt", vec!["show", "protocols", "all"]),
                ("bird-routes.txt", vec!["show", "route"]),
            ] {
                let out = lab.exec(&calico_node, &birdc(&args)).await;
                write_output(&member_dir, file, &format!("birdc {}", args.join(" ")), out)?;
            }
        }
        lab.collect(m, &member_dir).await?;
    }
    Ok(())
}
