//! What a failing scenario leaves behind: every device's state, configs and logs in
//! `target/calico-lab/artifacts/<scenario>/`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::lab::{Lab, MemberRole};

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

/// Writes everything worth reading about `lab` to `<root>/<scenario>/`, replacing what
/// an earlier run left there, and returns the folder.
pub async fn collect(lab: &Lab, scenario: &str, diagnosis: &str) -> Result<PathBuf> {
    let dir = root().join(scenario);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(Error::io(format!("clearing {}", dir.display())))?;
    }
    let write = |name: &str, text: &str| -> Result<()> {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(Error::io(format!("creating {}", parent.display())))?;
        }
        std::fs::write(&path, text).map_err(Error::io(format!("writing {}", path.display())))
    };
    write("diagnosis.txt", &format!("{diagnosis}\n"))?;
    for m in lab.members() {
        let d = &m.device;
        let commands: Vec<(&str, Vec<&str>)> = match m.role {
            MemberRole::Router => vec![
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
            ],
            MemberRole::Node => vec![
                ("ip-route.txt", vec!["ip", "-4", "route"]),
                ("ip-addr.txt", vec!["ip", "-4", "addr"]),
                ("netns.txt", vec!["ip", "netns"]),
            ],
            MemberRole::Fabric => vec![(
                "bridges.txt",
                vec!["ip", "-d", "link", "show", "type", "bridge"],
            )],
        };
        for (file, cmd) in commands {
            let text = match lab.exec(d, &cmd).await {
                Ok(out) => format!("$ {}\n{}{}", cmd.join(" "), out.stdout, out.stderr),
                Err(e) => format!("$ {}\nfailed: {e}\n", cmd.join(" ")),
            };
            write(&format!("{d}/{file}"), &text)?;
        }
        if m.role == MemberRole::Node {
            let protocols = match lab.birdc(d, &["show", "protocols", "all"]).await {
                Ok(out) => out.stdout,
                Err(e) => format!("failed: {e}\n"),
            };
            write(&format!("{d}/bird-protocols.txt"), &protocols)?;
            let routes = match lab.birdc(d, &["show", "route"]).await {
                Ok(out) => out.stdout,
                Err(e) => format!("failed: {e}\n"),
            };
            write(&format!("{d}/bird-routes.txt"), &routes)?;
            if let Some(files) = lab.bird_files(d) {
                for (name, text) in files.files() {
                    write(&format!("{d}/{name}"), text)?;
                }
            }
        }
        if m.role == MemberRole::Router {
            write(
                &format!("{d}/frr.conf"),
                &crate::render::frr_conf(lab.topology(), d),
            )?;
        }
        let logs = crate::docker::logs(lab.docker(), &m.container, 2000)
            .await
            .unwrap_or_default();
        write(&format!("{d}/container.log"), &logs)?;
    }
    Ok(dir)
}
