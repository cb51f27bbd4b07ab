//! The `calico-lab` binary's offline commands and exit codes.

use std::process::Command;

fn calico_lab(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_calico-lab"))
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_accepts_the_embedded_seed_without_arguments() {
    let (code, stdout, _) = calico_lab(&["validate"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains(
            "topology 'calico-bgp-rr' is valid: 2 spines, 2 leafs, 2 racks, 4 nodes, 4 links"
        ),
        "{stdout}"
    );
}

#[test]
fn invalid_topology_exits_2_naming_file_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    let seed = calico_lab::topology::SEED_TOPOLOGY_YAML
        .replace("address: 10.1.8.11", "address: 10.1.9.11");
    std::fs::write(&file, seed).unwrap();
    for command in ["validate", "render", "up"] {
        let mut args = vec![command, "--topology", file.to_str().unwrap()];
        if command == "render" {
            args.extend(["--out", dir.path().to_str().unwrap()]);
        }
        let (code, _, stderr) = calico_lab(&args);
        assert_eq!(code, 2, "{command}: {stderr}");
        assert!(stderr.contains("broken.yaml: racks[1].nodes[1].address: 10.1.9.11 is outside rack subnet 10.1.8.0/24"), "{command}: {stderr}");
    }
}

#[test]
fn unparsable_topology_exits_2_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("garbage.yaml");
    std::fs::write(&file, "name: x\nspines: [\n").unwrap();
    let (code, _, stderr) = calico_lab(&["validate", "-t", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("garbage.yaml:2:"), "{stderr}");
}

#[test]
fn bad_lab_name_and_missing_file_exit_2() {
    let (code, _, stderr) = calico_lab(&["up", "--name", "Not_A_Name"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("lab name 'Not_A_Name'"), "{stderr}");
    let (code, _, stderr) = calico_lab(&["validate", "-t", "/nonexistent/lab.yaml"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("/nonexistent/lab.yaml: cannot read"),
        "{stderr}"
    );
}

#[test]
fn render_writes_every_derived_file() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = calico_lab(&["render", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 10, "{stdout}");
    let leaf0 = std::fs::read_to_string(dir.path().join("frr/leaf0.conf")).unwrap();
    assert!(leaf0.contains("router bgp 65005"));
    let boot = std::fs::read_to_string(dir.path().join("vyos/spine1/config.boot")).unwrap();
    assert!(boot.contains("system-as \"800\""));
}
