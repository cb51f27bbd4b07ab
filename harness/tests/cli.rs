//! The `calico-lab` binary's offline commands and exit codes.

use std::path::Path;
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
    for command in ["validate", "render", "up", "run", "status", "graph"] {
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

#[test]
fn status_and_exec_on_a_lab_that_is_not_running_exit_2() {
    for args in [
        vec!["status", "--name", "no-such-lab"],
        vec!["exec", "--name", "no-such-lab", "leaf0", "--", "true"],
    ] {
        let (code, _, stderr) = calico_lab(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("no lab named 'no-such-lab' is running"),
            "{stderr}"
        );
    }
}

#[test]
fn unknown_scenario_pattern_exits_2_listing_the_scenarios() {
    let (code, _, stderr) = calico_lab(&["run", "--scenario", "no-such-scenario"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("known: bgp_neighbors_match_topology"),
        "{stderr}"
    );
}

#[test]
fn graph_dot_is_accepted_by_graphviz_and_mermaid_names_every_device() {
    let (code, dot, stderr) = calico_lab(&["graph", "--format", "dot"]);
    assert_eq!(code, 0, "{stderr}");
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("graphviz `dot` (installed by ci/bootstrap) runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
    let (code, mermaid, _) = calico_lab(&["graph"]);
    assert_eq!(code, 0);
    for device in [
        "spine0",
        "spine1",
        "leaf0",
        "leaf1",
        "calico-bgp-rr-worker3",
    ] {
        assert!(mermaid.contains(device), "{device}");
    }
}

fn unique(test: &str) -> String {
    format!("c{}-{test}", std::process::id())
}

/// The main job on the seed lab: every scenario passes and every report format lists
/// every scenario.
#[test]
fn lab_cli_run_passes_on_the_seed_and_writes_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (json, junit, markdown) = (path("r.json"), path("r.xml"), path("r.md"));
    let name = unique("run");
    let (code, stdout, stderr) = calico_lab(&[
        "run",
        "--name",
        &name,
        "--json",
        &json,
        "--junit",
        &junit,
        "--markdown",
        &markdown,
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let all = calico_lab::scenario::SCENARIOS.len();
    assert!(
        stdout.contains(&format!("{all} passed, 0 failed")),
        "{stdout}"
    );
    let names = report_names(&json);
    let all: Vec<&str> = calico_lab::scenario::SCENARIOS
        .iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, all);
    let xml = std::fs::read_to_string(&junit).unwrap();
    let check = Command::new("python3")
        .args(["-c", "import sys,xml.dom.minidom;d=xml.dom.minidom.parse(sys.argv[1]);print(len(d.getElementsByTagName('testcase')))", &junit])
        .output()
        .expect("python3 runs");
    assert!(check.status.success(), "{xml}");
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        calico_lab::scenario::SCENARIOS.len().to_string()
    );
    let md = std::fs::read_to_string(&markdown).unwrap();
    for name in all {
        assert!(md.contains(name), "{name} not in the Markdown report");
    }
    let (status, left, status_err) = calico_lab(&["status", "--name", &name]);
    assert_eq!(status, 2, "the lab was torn down: {left}{status_err}");
    assert!(status_err.contains("no lab named"), "{status_err}");
    // Any machine runs the seed's labs several at once: the scenarios that change the
    // lab ran on labs beside the main one, as many as the plan says and no more (a
    // lab serves several in turn), and each is gone.
    let all: Vec<&calico_lab::scenario::Scenario> =
        calico_lab::scenario::SCENARIOS.iter().collect();
    let labs = calico_lab::job::default_labs(
        &calico_lab::topology::Topology::seed(),
        calico_lab::backend::Flavor::EMULATED,
    );
    let plan = calico_lab::job::plan(&all, labs);
    assert!(plan.labs > 1, "{plan:?}");
    let ups = stderr.matches("-- bringing up lab '").count();
    assert_eq!(ups, plan.labs, "{stderr}");
    for n in 1..plan.labs {
        let sibling = format!("{name}-{n}");
        assert!(
            stderr.contains(&format!("bringing up lab '{sibling}'")),
            "{stderr}"
        );
        let (status, _, _) = calico_lab(&["status", "--name", &sibling]);
        assert_eq!(status, 2, "{sibling} was torn down");
    }
}

/// A job whose sibling lab's name is in use is refused before any lab starts: no
/// verdict of the labs that would have run first is thrown away.
#[test]
fn lab_cli_run_refuses_a_sibling_name_in_use_before_starting() {
    let name = unique("sib");
    let taken = format!("{name}-1");
    let (code, _, stderr) = calico_lab(&["up", "--name", &taken]);
    assert_eq!(code, 0, "{stderr}");
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = calico_lab(&[
        "run", "--name", &name, "--labs", "2", "-s", "spine", "-s", "uplink",
    ]);
    let took = started.elapsed();
    let (main_status, _, _) = calico_lab(&["status", "--name", &name]);
    calico_lab(&["down", "--name", &taken]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&taken) && stderr.contains("already running"),
        "{stderr}"
    );
    assert!(!stderr.contains("bringing up lab"), "{stderr}");
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    assert_eq!(main_status, 2, "no lab '{name}' was left");
}

/// A name valid alone but too long for `<name>-1` runs as one lab, saying so, where
/// a refusal would break a run that worked before labs ran side by side. Two report
/// options on one file are refused before anything starts.
#[test]
fn lab_cli_run_with_a_name_too_long_for_siblings_runs_one_lab() {
    let mut name = unique("long");
    while name.len() < 40 {
        name.push('x');
    }
    let (code, stdout, stderr) = calico_lab(&[
        "run",
        "--name",
        &name,
        "--labs",
        "4",
        "-s",
        "spine_failure",
        "-s",
        "uplink_cut",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("one lab at a time"), "{stderr}");
    assert!(!stderr.contains(&format!("'{name}-1'")), "{stderr}");
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
    let dir = tempfile::tempdir().unwrap();
    let same = dir.path().join("r").to_str().unwrap().to_string();
    let (code, _, stderr) = calico_lab(&["run", "--json", &same, "--junit", &same]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("a different file for each report"),
        "{stderr}"
    );
    assert!(!stderr.contains("bringing up lab"), "{stderr}");
}

/// The scenario names of a JSON report, in its order.
fn report_names(json: &str) -> Vec<String> {
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn lab_cli_scenario_filter_runs_only_the_matching_ones() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json").to_str().unwrap().to_string();
    let name = unique("filter");
    let (code, stdout, stderr) = calico_lab(&[
        "run",
        "--name",
        &name,
        "--scenario",
        "same_host",
        "--scenario",
        "spine",
        "--read-only",
        "--json",
        &json,
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let names = report_names(&json);
    // `spine` also matches spine_failure_keeps_cross_rack_traffic, which --read-only
    // leaves out.
    assert_eq!(
        names,
        ["same_host_ping", "cross_rack_path_crosses_one_spine"]
    );
}

#[test]
fn lab_cli_status_and_exec_on_a_running_lab() {
    let name = unique("status");
    let (code, _, stderr) = calico_lab(&["up", "--name", &name]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = calico_lab(&["status", "--name", &name, "--json"]);
    let (exec_code, pod_addr, _) = calico_lab(&[
        "exec",
        "--name",
        &name,
        "calico-bgp-rr-worker-pod1",
        "--",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    let (false_code, _, _) =
        calico_lab(&["exec", "--name", &name, "leaf0", "--", "sh", "-c", "exit 7"]);
    let (down, _, _) = calico_lab(&["down", "--name", &name]);
    assert_eq!(down, 0);
    assert_eq!(code, 0, "{stderr}");
    let status: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(status["members"].as_array().unwrap().len(), 9, "{stdout}");
    assert!(
        status["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "running"),
        "{stdout}"
    );
    let worker = status["nodes"]["calico-bgp-rr-worker"].as_array().unwrap();
    assert_eq!(worker.len(), 1, "{stdout}");
    assert_eq!(worker[0]["peer_address"], "10.1.5.1");
    assert_eq!(worker[0]["peer_type"], "node specific");
    assert!(worker[0]["info"]
        .as_str()
        .unwrap()
        .starts_with("Established"));
    assert_eq!(
        status["routers"]["leaf0"].as_array().unwrap().len(),
        4,
        "{stdout}"
    );
    assert_eq!(status["missing"].as_array().unwrap().len(), 0, "{stdout}");
    assert_eq!(exec_code, 0);
    assert!(pod_addr.contains("/32"), "{pod_addr}");
    assert_eq!(false_code, 7, "exec passes the command's exit code on");
}

/// Resources applied to a running lab from the command line reconfigure BIRD in
/// place, and a later `apply` (a new process) still holds the earlier ones, whatever
/// their files are called.
#[test]
fn lab_cli_apply_reconfigures_a_running_lab() {
    let name = unique("apply");
    let (code, _, stderr) = calico_lab(&["up", "--name", &name]);
    assert_eq!(code, 0, "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    // A name a shell would split and expand: the lab records it as it is.
    let mesh = dir.path().join("mesh on 'quoted' $(x).yaml");
    std::fs::write(
        &mesh,
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: true}\n",
    )
    .unwrap();
    let peer = dir.path().join("extra-peer.yaml");
    std::fs::write(
        &peer,
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: extra}\nspec: {peerIP: 10.1.5.1, asNumber: 65005, node: calico-bgp-rr-worker3}\n",
    )
    .unwrap();
    let seed_off = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/calico/1-disable-full-mesh.yaml"
    );
    let protocols_of = |node: &str| {
        calico_lab(&[
            "exec",
            "--name",
            &name,
            node,
            "--",
            "birdc",
            "-s",
            "/var/run/calico/bird.ctl",
            "show",
            "protocols",
        ])
        .1
    };
    let protocols = || protocols_of("calico-bgp-rr-worker");
    let (on, on_out, on_err) = calico_lab(&["apply", "--name", &name, mesh.to_str().unwrap()]);
    let with_mesh = protocols();
    let (more, _, _) = calico_lab(&["apply", "--name", &name, peer.to_str().unwrap()]);
    let still_mesh = protocols();
    let (off, _, _) = calico_lab(&["apply", "--name", &name, seed_off]);
    let without = protocols();
    let (bad, _, bad_err) = calico_lab(&["apply", "--name", &name, "/nonexistent.yaml"]);
    let worker3 = || protocols_of("calico-bgp-rr-worker3");
    let with_extra = worker3();
    let (deleted, deleted_out, deleted_err) =
        calico_lab(&["delete", "--name", &name, peer.to_str().unwrap()]);
    let (twice, _, twice_err) = calico_lab(&["delete", "--name", &name, peer.to_str().unwrap()]);
    // A later process replays the delete too: the peer stays gone.
    let (later, _, _) = calico_lab(&["apply", "--name", &name, seed_off]);
    let without_extra = worker3();
    calico_lab(&["down", "--name", &name]);
    assert!(with_extra.contains("Node_10_1_5_1"), "{with_extra}");
    assert_eq!(deleted, 0, "{deleted_err}");
    assert!(
        deleted_out.contains("reconfigured calico-bgp-rr-worker3"),
        "{deleted_out}"
    );
    assert_eq!(twice, 2, "an object already gone: {twice_err}");
    assert!(twice_err.contains("does not exist"), "{twice_err}");
    assert_eq!(later, 0);
    assert!(!without_extra.contains("Node_10_1_5_1"), "{without_extra}");
    assert_eq!(on, 0, "{on_err}");
    assert!(
        on_out.contains("reconfigured calico-bgp-rr-control-plane"),
        "{on_out}"
    );
    assert_eq!(with_mesh.matches("Mesh_").count(), 3, "{with_mesh}");
    assert_eq!(more, 0);
    assert_eq!(
        still_mesh.matches("Mesh_").count(),
        3,
        "the second apply kept the first: {still_mesh}"
    );
    assert_eq!(off, 0);
    assert_eq!(without.matches("Mesh_").count(), 0, "{without}");
    assert!(without.contains("Node_10_1_5_1"), "{without}");
    assert_eq!(bad, 2, "{bad_err}");
}

/// Input `run` can judge before it starts anything: exit 2, no lab brought up.
#[test]
fn bad_run_input_exits_2_before_any_lab_starts() {
    for (args, want) in [
        (
            &["--junit", "/nonexistent-dir/report.xml"][..],
            "/nonexistent-dir/report.xml: cannot write",
        ),
        (
            &["--read-only", "--scenario", "leaf_failure"][..],
            "--read-only leaves no scenario",
        ),
    ] {
        let name = unique("badrun");
        let mut all = vec!["run", "--name", &name];
        all.extend(args);
        let (code, _, stderr) = calico_lab(&all);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
        assert!(
            !stderr.contains("bringing up"),
            "no lab was started: {stderr}"
        );
    }
}

#[test]
fn invalid_input_is_exit_2_everywhere() {
    let (code, _, stderr) = calico_lab(&["down", "--name", "Not_A_Name"]);
    assert_eq!(code, 2, "down: {stderr}");
    assert!(stderr.contains("lab name 'Not_A_Name'"), "{stderr}");
    for command in ["up", "run"] {
        let (code, _, stderr) = calico_lab(&[command, "--wait", "0"]);
        assert_eq!(code, 2, "{command} --wait 0: {stderr}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = file.join("renders");
    let (code, _, stderr) = calico_lab(&["render", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 2, "render into a file: {stderr}");
    assert!(stderr.contains("cannot write"), "{stderr}");
}

#[test]
fn messages_name_each_cause_once_and_carry_no_colour_codes() {
    let (code, _, stderr) = calico_lab(&["validate", "-t", "/nonexistent/lab.yaml"]);
    assert_eq!(code, 2);
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "colour codes: {stderr:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("twice.yaml");
    std::fs::write(&file, "name: a\nname: b\n").unwrap();
    let (code, _, stderr) = calico_lab(&["validate", "-t", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("twice.yaml:2:"), "{stderr}");
    assert!(stderr.contains("duplicate"), "{stderr}");
    for advice in ["DuplicateKeyPolicy", "from_str_multiple", "Options"] {
        assert!(!stderr.contains(advice), "parser advice in {stderr}");
    }
}

#[test]
fn down_of_a_lab_that_does_not_exist_says_so() {
    let (code, stdout, stderr) = calico_lab(&["down", "--name", &unique("never-was")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("no container found"), "{stdout}");
}

#[test]
fn confd_refuses_an_unsupported_calico_version_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let (code, _, stderr) = calico_lab(&[
        "confd",
        "--calico-version",
        "v3.22.0",
        "--node",
        "n",
        "--out",
        out,
        "/dev/null",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("v3.23.0 to v3.32.x"), "{stderr}");
    let (code, _, stderr) = calico_lab(&["run", "--topology", "/nonexistent", "--wait", "5"]);
    assert_eq!(code, 2, "{stderr}");
}

/// `confd` reproduces one of Calico's own cases from the command line, environment
/// and Kubernetes objects included, and refuses what that calico-node would not take.
#[test]
fn confd_renders_a_calico_case_with_its_environment_and_refuses_bad_input() {
    let fixtures =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/conformance/calico-confd/v3.32.1");
    let case = fixtures.join("cases/mesh/static-routes-no-ipv4-address");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let files: Vec<String> = [
        fixtures.join("kdd/nodes.yaml"),
        fixtures.join("kdd/ipam.yaml"),
        case.join("input.yaml"),
        case.join("kubectl-input.yaml"),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect();
    let mut args = vec![
        "confd",
        "--calico-version",
        "v3.32.1",
        "--node",
        "kube-master",
        "--out",
        out,
        "--env",
        "CALICO_ROUTER_ID=10.10.10.10",
    ];
    args.extend(files.iter().map(String::as_str));
    let (code, _, stderr) = calico_lab(&args);
    assert_eq!(code, 0, "{stderr}");
    for name in ["bird.cfg", "bird_aggr.cfg", "bird_ipam.cfg"] {
        let got = std::fs::read_to_string(dir.path().join(name)).unwrap();
        let want = std::fs::read_to_string(case.join("expected").join(name)).unwrap();
        assert_eq!(
            calico_lab::calico::confd::normalize(&got),
            calico_lab::calico::confd::normalize(&want),
            "{name}"
        );
    }
    // An environment variable the emulated calico-node does not read.
    let mut bad = args.clone();
    bad[8] = "NODENAME=x";
    let (code, _, stderr) = calico_lab(&bad);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("CALICO_ROUTER_ID"), "{stderr}");
    // An output path that is a file: exit 2, naming it.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let mut to_file = args.clone();
    to_file[6] = file.to_str().unwrap();
    let (code, _, stderr) = calico_lab(&to_file);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("a-file"), "{stderr}");
    // A field that version does not have: localASNumber came with v3.31.
    let peer = dir.path().join("peer.yaml");
    std::fs::write(&peer, "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.9, asNumber: 65001, localASNumber: 65002}\n").unwrap();
    let node = dir.path().join("node.yaml");
    std::fs::write(&node, "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: a}\nspec: {bgp: {ipv4Address: 10.0.0.1/24}}\n").unwrap();
    let (code, _, stderr) = calico_lab(&[
        "confd",
        "--calico-version",
        "v3.30.7",
        "--node",
        "a",
        "--out",
        out,
        node.to_str().unwrap(),
        peer.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("localASNumber") && stderr.contains("v3.31"),
        "{stderr}"
    );
}

/// The upgrade gate from the seed's v3.23.2 to v3.32.1: the suite passes at both,
/// the rollout's loss windows are reported, and so is the LOCAL_PREF change on the
/// leafs.
#[test]
fn lab_cli_upgrade_reports_the_local_pref_change_and_the_loss_windows() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("upgrade.json");
    let junit = dir.path().join("upgrade.xml");
    let name = unique("upgrade");
    let (code, stdout, stderr) = calico_lab(&[
        "upgrade",
        "--from",
        "v3.23.2",
        "--to",
        "v3.32.1",
        "--name",
        &name,
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    for needle in [
        "<testsuite name=\"at v3.23.2\"",
        "<testsuite name=\"at v3.32.1\"",
        "<testsuite name=\"upgrade\"",
        "<testcase name=\"rollout_loss_within_budget\"",
        "<testcase name=\"route_differences\"",
        "LOCAL_PREF of node blocks on leafs: 100 -&gt; 2147482623",
    ] {
        assert!(xml.contains(needle), "{needle} not in\n{xml}");
    }
    assert!(!xml.contains("<failure"), "{xml}");
    assert!(
        stdout.contains("LOCAL_PREF of node blocks on leafs: 100 -> 2147482623"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["from"], "v3.23.2");
    assert_eq!(report["to"], "v3.32.1");
    // Every scenario but the upgrade scenario itself runs around the upgrade.
    let all = calico_lab::scenario::SCENARIOS.len() - 1;
    assert_eq!(report["before"]["passed"], all);
    assert_eq!(report["after"]["passed"], all);
    let rollout = report["rollout"].as_array().unwrap();
    assert!(!rollout.is_empty());
    for pair in rollout {
        assert!(pair["sent"].as_u64().unwrap() > 0, "{pair}");
        assert!(pair["longest_gap_ms"].is_u64(), "{pair}");
    }
    assert!(report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["attribute"] == "LOCAL_PREF"
            && d["devices"] == "leafs"
            && d["routes"] == "node blocks"
            && d["after"] == "2147482623"));
    let (status, _, _) = calico_lab(&["status", "--name", &name]);
    assert_eq!(status, 2, "the lab was torn down");
}

#[test]
fn upgrade_refuses_an_unsupported_version_with_exit_2() {
    let (code, _, stderr) = calico_lab(&["upgrade", "--to", "v4.0.0"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("v3.23.0 to v3.32.x"), "{stderr}");
}

/// The kind flavor's dry run prints every step and creates nothing; what it cannot
/// run is refused with exit 2.
#[test]
fn kind_dry_run_prints_every_step_and_bad_combinations_exit_2() {
    let (code, stdout, stderr) = calico_lab(&["run", "--flavor", "kind", "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    for needle in [
        "preflight: kind v0.20 or later",
        "run: kind create cluster --name calico-bgp-rr",
        "create container calico-bgp-rr-leaf0 (device leaf0, image burlyluo/vyos:1.4.9",
        "projectcalico.org/ASNumber: \"65005\"",
        "kind: BGPPeer",
        "DaemonSet kube-system/calico-node rolled out",
        "kind delete cluster",
    ] {
        assert!(stdout.contains(needle), "{needle} not in\n{stdout}");
    }
    let (code, stdout, _) =
        calico_lab(&["up", "--flavor", "kind", "--routers", "frr", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("write /etc/frr/frr.conf before start"),
        "{stdout}"
    );
    for (args, message) in [
        (&["run", "--dry-run"][..], "add --flavor kind"),
        (
            &["run", "--flavor", "kind", "--dry-run", "--name", "other"],
            "differs from the topology's name",
        ),
        (
            &["run", "--routers", "vyos", "--scenario", "same_host"],
            "VyOS routers run on the kind flavor",
        ),
        (
            &["run", "--flavor", "kind", "--routers", "bird", "--dry-run"],
            "unknown router kind",
        ),
    ] {
        let (code, _, stderr) = calico_lab(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// A fault is read before any lab is looked for: a wrong one exits 2.
#[test]
fn fault_words_are_checked_before_any_lab() {
    for words in [
        &["explode", "spine0"][..],
        &["link-down", "leaf0"],
        &["session-blocked", "leaf0", "x"],
    ] {
        let mut args = vec!["fault", "--name", "no-such-lab"];
        args.extend_from_slice(words);
        let (code, _, stderr) = calico_lab(&args);
        assert_eq!(code, 2, "{words:?}: {stderr}");
        assert!(stderr.contains("router-down ROUTER"), "{stderr}");
    }
}

/// `fault` breaks a running lab from another process and `restore` mends it: a
/// spine down takes its sessions down on the leafs; restored, they come back.
#[test]
fn lab_cli_fault_and_restore_a_spine() {
    let name = unique("fault");
    let (code, _, stderr) = calico_lab(&["up", "--name", &name]);
    assert_eq!(code, 0, "{stderr}");
    let spine_session = |expect_up: bool| {
        for _ in 0..50 {
            let (_, out, _) = calico_lab(&[
                "exec",
                "--name",
                &name,
                "leaf0",
                "--",
                "vtysh",
                "-c",
                "show bgp summary json",
            ]);
            let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            let state = v["ipv4Unicast"]["peers"]["10.1.10.2"]["state"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if (state == "Established") == expect_up {
                return state;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!(
            "leaf0's session to spine0 never became {}",
            if expect_up { "Established" } else { "down" }
        );
    };
    spine_session(true);
    let (code, stdout, stderr) = calico_lab(&["fault", "--name", &name, "router-down", "spine0"]);
    let down = (code == 0).then(|| spine_session(false));
    let (restored, _, restore_err) =
        calico_lab(&["restore", "--name", &name, "router-down", "spine0"]);
    let up = (restored == 0).then(|| spine_session(true));
    calico_lab(&["down", "--name", &name]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("in force"), "{stdout}");
    assert_ne!(down.as_deref(), Some("Established"));
    assert_eq!(restored, 0, "{restore_err}");
    assert_eq!(up.as_deref(), Some("Established"));
}

/// `generate` writes a topology every other command takes; bad sizes exit 2.
#[test]
fn generate_writes_a_valid_topology_and_refuses_bad_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.yaml");
    let (code, _, stderr) = calico_lab(&[
        "generate",
        "--racks",
        "4",
        "--nodes-per-rack",
        "3",
        "--spines",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stdout, stderr) = calico_lab(&["validate", "--topology", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("3 spines, 4 leafs, 4 racks, 12 nodes, 12 links"),
        "{stdout}"
    );
    for bad in [
        &["--racks", "0", "--nodes-per-rack", "1", "--spines", "1"][..],
        &["--racks", "1", "--nodes-per-rack", "1", "--spines", "40"],
        &[
            "--racks",
            "1",
            "--nodes-per-rack",
            "1",
            "--spines",
            "1",
            "--leafs-per-rack",
            "2",
        ],
        &[
            "--racks",
            "1",
            "--nodes-per-rack",
            "1",
            "--spines",
            "1",
            "--name",
            "No_Good",
        ],
    ] {
        let mut args = vec!["generate"];
        args.extend_from_slice(bad);
        let (code, _, stderr) = calico_lab(&args);
        assert_eq!(code, 2, "{bad:?}: {stderr}");
    }
}

/// Without `kind` on PATH, the kind flavor stops in preflight with exit 3 and the
/// fix, before any lab container exists.
#[test]
fn lab_cli_kind_without_kind_exits_3_before_creating_anything() {
    let out = Command::new(env!("CARGO_BIN_EXE_calico-lab"))
        .args(["run", "--flavor", "kind"])
        .env("PATH", "/nonexistent")
        .output()
        .expect("calico-lab runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("preflight found"), "{stderr}");
    assert!(stderr.contains("kind: `kind version` failed"), "{stderr}");
    assert!(
        stderr.contains("fix: install kind v0.20 or later"),
        "{stderr}"
    );
    let (_, listed, _) = calico_lab(&["status", "--name", "calico-bgp-rr"]);
    assert!(!listed.contains("running"), "{listed}");
}
