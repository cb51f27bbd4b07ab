//! The lab engine against a real Docker engine: real containers, veths, FRR.
//! Test names start with `lab_` so nextest runs them in the `labs` group.

use std::collections::HashMap;
use std::time::Duration;

use calico_lab::backend::docker::{
    self, ContainerSpec, ExecOutput, LABEL_FLAVOR, LABEL_LAB, LABEL_RUN,
};
use calico_lab::backend::emulated::members;
use calico_lab::backend::ownership::{self, RunId};
use calico_lab::{KeepPolicy, Lab, LabOptions, Target, Topology};

const FABRIC_BUDGET: Duration = Duration::from_secs(60);

/// A lab name unique to this test process.
fn lab_name(test: &str) -> String {
    format!("t{}-{test}", std::process::id())
}

async fn up(name: &str) -> Lab {
    let options = LabOptions {
        name: Some(name.to_string()),
        keep: KeepPolicy::from_env().expect("CALICO_LAB_KEEP"),
        ..LabOptions::default()
    };
    Lab::up(Topology::seed(), options)
        .await
        .expect("lab comes up")
}

/// The command lines of the processes the engine counts as `container`'s (its
/// cgroup): what the member runs itself.
async fn processes_of(container: &str) -> Vec<String> {
    let engine = docker::connect().await.unwrap();
    let top = engine
        .top_processes(container, None::<bollard::query_parameters::TopOptions>)
        .await
        .unwrap();
    let column = top
        .titles
        .unwrap_or_default()
        .iter()
        .position(|t| t == "CMD")
        .expect("ps shows CMD");
    top.processes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.get(column).cloned())
        .collect()
}

async fn containers_of_lab(name: &str) -> Vec<String> {
    let docker = docker::connect().await.unwrap();
    docker::list(&docker, &[format!("{LABEL_LAB}={name}")])
        .await
        .unwrap()
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

/// The containers of the lab `name` and of the labs a job runs beside it
/// (`<name>-1`, `<name>-2`, ...).
async fn containers_of_job(name: &str) -> Vec<String> {
    let docker = docker::connect().await.unwrap();
    docker::list(&docker, &[LABEL_LAB.to_string()])
        .await
        .unwrap()
        .into_iter()
        .filter(|c| {
            let lab = c.labels.as_ref().and_then(|l| l.get(LABEL_LAB));
            lab.is_some_and(|lab| {
                lab == name
                    || lab
                        .strip_prefix(&format!("{name}-"))
                        .is_some_and(|n| n.parse::<usize>().is_ok())
            })
        })
        .filter_map(|c| c.names.and_then(|n| n.into_iter().next()))
        .collect()
}

async fn ping(lab: &Lab, from: &str, to: &str) -> ExecOutput {
    let target = lab.target(from).unwrap();
    lab.exec(&target, &["ping", "-c", "2", "-W", "2", "-i", "0.2", to])
        .await
        .unwrap()
}

#[tokio::test]
async fn lab_seed_fabric_comes_up_with_every_router_session_established() {
    let name = lab_name("seed");
    let lab = up(&name).await;
    lab.wait_for_fabric(FABRIC_BUDGET)
        .await
        .expect("fabric converges");

    // Every leaf reports both spine sessions, every spine both leafs, by address.
    for (leaf, spines) in [
        ("leaf0", ["10.1.10.2", "10.1.12.2"]),
        ("leaf1", ["10.1.34.2", "10.1.11.2"]),
    ] {
        let sessions = lab.sessions(leaf).await.unwrap();
        for spine in spines {
            assert_eq!(
                sessions.get(spine).map(String::as_str),
                Some("Established"),
                "{leaf} -> {spine}: {sessions:?}"
            );
        }
    }
    for (spine, leafs) in [
        ("spine0", ["10.1.10.1", "10.1.34.1"]),
        ("spine1", ["10.1.12.1", "10.1.11.1"]),
    ] {
        let sessions = lab.sessions(spine).await.unwrap();
        assert_eq!(
            sessions.len(),
            2,
            "{spine} has exactly its two leafs: {sessions:?}"
        );
        for leaf in leafs {
            assert_eq!(
                sessions.get(leaf).map(String::as_str),
                Some("Established"),
                "{spine} -> {leaf}: {sessions:?}"
            );
        }
    }

    // A node reaches its leaf over the rack bridge, and the other rack through a spine.
    let out = ping(&lab, "calico-bgp-rr-control-plane", "10.1.5.1").await;
    assert!(out.success(), "node -> leaf0: {}{}", out.stdout, out.stderr);
    let out = ping(&lab, "calico-bgp-rr-worker", "10.1.8.11").await;
    assert!(
        out.success(),
        "rack0 node -> rack1 node: {}{}",
        out.stdout,
        out.stderr
    );
    let route = lab
        .exec(
            &Target::Node("calico-bgp-rr-worker2".into()),
            &["ip", "-4", "route", "show", "default"],
        )
        .await
        .unwrap();
    assert!(
        route.stdout.contains("via 10.1.8.1 dev net0"),
        "default route via the leaf: {}",
        route.stdout
    );

    // Leafs spread traffic to the other rack over both spines (multipath-relax).
    let route = lab
        .exec(
            &Target::Router("leaf0".into()),
            &["ip", "-4", "route", "show", "10.1.8.0/24"],
        )
        .await
        .unwrap();
    assert!(
        route.stdout.contains("via 10.1.10.2") && route.stdout.contains("via 10.1.12.2"),
        "ECMP on leaf0: {}",
        route.stdout
    );

    lab.down().await.unwrap();
    assert!(
        containers_of_lab(&name).await.is_empty(),
        "down leaves no container"
    );
}

#[tokio::test]
async fn lab_two_labs_of_one_topology_run_side_by_side() {
    let (a, b) = (lab_name("a"), lab_name("b"));
    let (lab_a, lab_b) = tokio::join!(up(&a), up(&b));
    let (ready_a, ready_b) = tokio::join!(
        lab_a.wait_for_fabric(FABRIC_BUDGET),
        lab_b.wait_for_fabric(FABRIC_BUDGET)
    );
    ready_a.expect("lab a converges");
    ready_b.expect("lab b converges");
    for lab in [&lab_a, &lab_b] {
        let out = ping(lab, "calico-bgp-rr-worker3", "10.1.5.10").await;
        assert!(
            out.success(),
            "{}: cross-rack ping: {}",
            lab.name(),
            out.stdout
        );
    }
    let containers_a: Vec<_> = lab_a
        .members()
        .iter()
        .map(|m| m.container.clone())
        .collect();
    assert!(
        lab_b
            .members()
            .iter()
            .all(|m| !containers_a.contains(&m.container)),
        "container names do not collide"
    );
    assert!(
        containers_a.contains(&format!("{a}-control-plane")),
        "nodes are named as kind names them: {containers_a:?}"
    );
    lab_a.down().await.unwrap();
    // b is unaffected by a's teardown.
    let out = ping(&lab_b, "calico-bgp-rr-control-plane", "10.1.8.10").await;
    assert!(out.success(), "lab b still routes after lab a is gone");
    drop(lab_b);
    assert!(containers_of_lab(&a).await.is_empty());
    assert!(containers_of_lab(&b).await.is_empty(), "drop tears down");
}

#[test]
fn lab_panicking_test_leaves_no_container() {
    let name = lab_name("panic");
    let thread_name = name.clone();
    let result = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let options = LabOptions {
                name: Some(thread_name),
                keep: KeepPolicy::Never,
                ..LabOptions::default()
            };
            let lab = Lab::up(Topology::seed(), options).await.unwrap();
            assert!(!lab.members().is_empty());
            panic!("a scenario fails while its lab is up");
        })
    })
    .join();
    // It panicked where the test meant it to: with the lab up.
    let payload = result.expect_err("the test body panicked");
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert_eq!(message, "a scenario fails while its lab is up");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert!(
        runtime.block_on(containers_of_lab(&name)).is_empty(),
        "unwinding tore the lab down"
    );
}

/// What a killed run leaves: containers labelled with a run whose process is gone.
async fn leftover(docker: &bollard::Docker, lab: &str, device: &str) -> String {
    // PID 4194303 (the kernel's maximum) started at tick 1: no such process runs.
    let host = RunId::current()
        .0
        .rsplitn(4, '-')
        .last()
        .unwrap()
        .to_string();
    let dead_run = format!("{host}-4194303-1-0");
    assert!(!RunId(dead_run.clone()).is_alive());
    let image = calico_lab::backend::image::ensure_image(docker)
        .await
        .unwrap()
        .tag;
    let spec = ContainerSpec {
        name: format!("{lab}-{device}"),
        hostname: device.into(),
        image,
        cmd: vec!["sleep".into(), "infinity".into()],
        labels: HashMap::from([
            (LABEL_LAB.to_string(), lab.to_string()),
            (LABEL_RUN.to_string(), dead_run),
        ]),
        ..ContainerSpec::default()
    };
    docker::run(docker, &spec).await.unwrap()
}

#[tokio::test]
async fn lab_startup_sweeps_what_a_killed_run_left() {
    let name = lab_name("sweep");
    let docker = docker::connect().await.unwrap();
    // Same names as the new lab's, so without the sweep its containers would collide.
    leftover(&docker, &name, "spine0").await;
    leftover(&docker, &name, "fabric").await;
    let lab = up(&name).await;
    lab.wait_for_fabric(FABRIC_BUDGET)
        .await
        .expect("fabric converges after the sweep");
    let run = lab.run_id().to_string();
    let docker_list = docker::list(&docker, &[format!("{LABEL_LAB}={name}")])
        .await
        .unwrap();
    assert!(
        docker_list
            .iter()
            .all(|c| c.labels.as_ref().and_then(|l| l.get(LABEL_RUN)) == Some(&run)),
        "only the new run's containers remain"
    );
    lab.down().await.unwrap();
}

#[tokio::test]
async fn lab_down_of_a_kind_lab_removes_its_cluster_and_no_other() {
    let name = lab_name("kind-down");
    let docker = docker::connect().await.unwrap();
    let image = calico_lab::backend::image::ensure_image(&docker)
        .await
        .unwrap()
        .tag;
    let start = |container: String, labels: HashMap<String, String>| {
        let spec = ContainerSpec {
            name: container,
            hostname: "x".into(),
            image: image.clone(),
            cmd: vec!["sleep".into(), "infinity".into()],
            labels,
            ..ContainerSpec::default()
        };
        let docker = docker.clone();
        async move { docker::run(&docker, &spec).await.unwrap() }
    };
    let kind_label =
        |cluster: &str| HashMap::from([("io.x-k8s.kind.cluster".to_string(), cluster.to_string())]);
    let router_labels = HashMap::from([
        (LABEL_LAB.to_string(), name.clone()),
        (LABEL_RUN.to_string(), "detached-1-1".to_string()),
        (LABEL_FLAVOR.to_string(), "kind".to_string()),
    ]);
    let gone = |id: String| {
        let docker = docker.clone();
        async move { docker.inspect_container(&id, None).await.is_err() }
    };
    // A kind lab's router, and two kind node containers: its cluster's and another's.
    let node = start(format!("{name}-control-plane"), kind_label(&name)).await;
    let other = start(
        format!("{name}x-control-plane"),
        kind_label(&format!("{name}x")),
    )
    .await;

    // Not marked as created by calico-lab: the cluster is never touched.
    let router = start(format!("{name}-leaf0"), router_labels.clone()).await;
    let unmarked = ownership::down(&name).await;
    let (router_gone, node_kept) = (gone(router).await, !gone(node.clone()).await);

    // Marked: `down` deletes it (kind, or without kind its nodes by kind's label).
    calico_lab::backend::kind::mark_created(&name, "test").unwrap();
    let router = start(format!("{name}-leaf0"), router_labels).await;
    let marked = ownership::down(&name).await;
    let (router2_gone, node_gone, other_gone) = (
        gone(router).await,
        gone(node.clone()).await,
        gone(other.clone()).await,
    );
    let _ = docker::remove(&docker, &[node, other]).await;

    let unmarked = unmarked.unwrap();
    assert!(router_gone && node_kept, "unmarked: {unmarked:?}");
    let marked = marked.unwrap();
    assert!(router2_gone && node_gone, "marked: {marked:?}");
    assert!(!other_gone, "another cluster's node was removed");
    assert!(
        marked.contains(&format!("{name}-control-plane")),
        "{marked:?}"
    );
    assert!(
        !calico_lab::backend::kind::created_here(&name),
        "the state folder is removed with the cluster"
    );
}

#[tokio::test]
async fn lab_gc_removes_dead_runs_only_and_never_unlabelled_containers() {
    let name = lab_name("gc");
    let docker = docker::connect().await.unwrap();
    let dead = leftover(&docker, &name, "leaf0").await;
    let image = calico_lab::backend::image::ensure_image(&docker)
        .await
        .unwrap()
        .tag;
    let unlabelled = docker::run(
        &docker,
        &ContainerSpec {
            name: format!("{name}-not-ours"),
            hostname: "x".into(),
            image,
            cmd: vec!["sleep".into(), "infinity".into()],
            labels: HashMap::new(),
            ..ContainerSpec::default()
        },
    )
    .await
    .unwrap();
    let live = up(&lab_name("gc-live")).await;

    let removed = ownership::gc().await.unwrap();
    // Observe everything first, then clean up, then assert: a failed assertion must
    // not leak the unlabelled container (no harness label would ever find it).
    let dead_gone = docker.inspect_container(&dead, None).await.is_err();
    let unlabelled_kept = docker.inspect_container(&unlabelled, None).await.is_ok();
    let mut live_removed = Vec::new();
    for m in live.members() {
        if docker.inspect_container(&m.container, None).await.is_err() {
            live_removed.push(m.container.clone());
        }
    }
    docker::remove(&docker, &[unlabelled]).await.unwrap();
    live.down().await.unwrap();

    // Another test process may run gc concurrently and remove the dead run first,
    // so what counts is that it is gone, and that gc never names anything live.
    assert!(dead_gone, "gc removed the dead run");
    assert!(unlabelled_kept, "gc never touches unlabelled containers");
    assert!(
        live_removed.is_empty(),
        "gc leaves live runs alone: {live_removed:?}"
    );
    assert!(
        !removed.contains(&format!("{name}-not-ours")),
        "{removed:?}"
    );
}

#[tokio::test]
async fn lab_a_live_lab_name_is_refused() {
    let name = lab_name("busy");
    let first = up(&name).await;
    let options = LabOptions {
        name: Some(name.clone()),
        ..Default::default()
    };
    let err = Lab::up(Topology::seed(), options)
        .await
        .err()
        .expect("a second lab of that name is refused");
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("already running"), "{err}");
    assert_eq!(
        containers_of_lab(&name).await.len(),
        first.members().len() + 1,
        "the first lab is untouched (its members and its observer)"
    );
    first.down().await.unwrap();
}

/// Starts `calico-lab <command> --name <name>`, sends `signal` once that many of its
/// containers exist and `settle` has passed, and asserts the command stops with
/// "interrupted by <signal>", exit 128 + its number, and leaves no container.
async fn interrupt_leaves_no_container(
    command: &str,
    name: &str,
    members_before_signal: usize,
    settle: Duration,
    (signal, number): (&str, i32),
) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_calico-lab"))
        .args([command, "--name", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while containers_of_lab(name).await.len() < members_before_signal {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{command}: the lab's containers did not appear"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(settle).await;
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + number), "{stderr}");
    assert!(
        stderr.contains(&format!("interrupted by SIG{signal}")),
        "{stderr}"
    );
    let left = containers_of_job(name).await;
    assert!(
        left.is_empty(),
        "{command}: SIG{signal} tore every lab down, left: {left:?}"
    );
}

#[tokio::test]
async fn lab_ctrl_c_during_up_leaves_no_container() {
    // Interrupt as soon as the first container exists, mid bring-up.
    interrupt_leaves_no_container("up", &lab_name("sigint"), 1, Duration::ZERO, ("INT", 2)).await;
}

#[tokio::test]
async fn lab_sighup_during_up_leaves_no_container() {
    interrupt_leaves_no_container("up", &lab_name("sighup"), 3, Duration::ZERO, ("HUP", 1)).await;
}

#[tokio::test]
async fn lab_ctrl_c_during_run_leaves_no_container() {
    // Interrupt once the whole lab exists: during the waits or the scenarios.
    let name = lab_name("sigint-run");
    let members = members(&Topology::seed(), &name).len();
    interrupt_leaves_no_container("run", &name, members, Duration::from_secs(3), ("INT", 2)).await;
}

/// What `timeout`, a cancelled CI job and `docker stop` send.
#[tokio::test]
async fn lab_sigterm_during_run_leaves_no_container() {
    let name = lab_name("sigterm-run");
    let members = members(&Topology::seed(), &name).len();
    interrupt_leaves_no_container("run", &name, members, Duration::from_secs(2), ("TERM", 15))
        .await;
}

fn calico_lab(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_calico-lab"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `status` must work exactly when something is broken: a stopped router is shown
/// as stopped, the rest as they are, and the sessions it takes down as missing;
/// `exec` into a removed member says so.
#[tokio::test]
async fn lab_status_shows_a_stopped_router_and_exec_names_a_removed_member() {
    let name = lab_name("status-broken");
    let (code, _, stderr) = calico_lab(&["up", "--name", &name]);
    assert_eq!(code, 0, "{stderr}");
    let docker = docker::connect().await.unwrap();
    docker
        .stop_container(&format!("{name}-spine0"), None)
        .await
        .unwrap();
    docker::remove(&docker, &[format!("{name}-spine1")])
        .await
        .unwrap();
    let (status_code, stdout, status_err) = calico_lab(&["status", "--name", &name, "--json"]);
    let (exec_code, _, exec_err) = calico_lab(&["exec", "--name", &name, "spine1", "--", "true"]);
    let (text_code, text, _) = calico_lab(&["status", "--name", &name]);
    calico_lab(&["down", "--name", &name]);

    assert_eq!(status_code, 0, "{status_err}");
    let status: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let state = |device: &str| {
        status["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["device"] == device)
            .map(|m| m["state"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(state("spine0"), "exited");
    assert_eq!(state("spine1"), "absent");
    assert_eq!(state("leaf0"), "running");
    assert!(status["routers"]["spine0"]["error"].is_string(), "{stdout}");
    assert_eq!(status["routers"]["leaf0"].as_array().unwrap().len(), 4);
    let missing: Vec<&str> = status["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        missing
            .iter()
            .any(|m| m.starts_with("leaf0: 10.1.10.2 (spine0)")),
        "{missing:?}"
    );
    assert!(
        missing
            .iter()
            .any(|m| m.starts_with("spine0: ") && m.contains("not answering")),
        "{missing:?}"
    );
    assert_eq!(exec_code, 1, "{exec_err}");
    assert!(
        exec_err.contains(&format!("container {name}-spine1 is gone (removed)")),
        "{exec_err}"
    );
    assert_eq!(text_code, 0);
    assert!(
        text.contains("missing sessions: leaf0: 10.1.10.2 (spine0)"),
        "{text}"
    );
}

/// Two runs that claim one name at once: exactly one gets it, the other is refused
/// as input (exit 2), never with a raw engine conflict.
#[tokio::test]
async fn lab_two_runs_racing_for_one_name_one_wins_one_is_refused() {
    for round in 0..2 {
        let name = lab_name(&format!("race{round}"));
        let start = || {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_calico-lab"))
                .args(["up", "--name", &name])
                .output()
        };
        let (a, b) = tokio::join!(start(), start());
        let (a, b) = (a.unwrap(), b.unwrap());
        calico_lab(&["down", "--name", &name]);
        let mut codes = [a.status.code(), b.status.code()];
        codes.sort();
        let loser = if a.status.code() == Some(2) { &a } else { &b };
        let loser_err = String::from_utf8_lossy(&loser.stderr);
        assert_eq!(codes, [Some(0), Some(2)], "round {round}: {loser_err}");
        assert!(loser_err.contains("is already running"), "{loser_err}");
        assert!(containers_of_lab(&name).await.is_empty());
    }
}

/// A lab removed while a scenario runs is reported as gone, not as a missing session.
#[tokio::test]
async fn lab_removed_under_a_scenario_is_diagnosed_as_gone() {
    let name = lab_name("gone");
    let mut lab = up(&name).await;
    lab.converge(FABRIC_BUDGET).await.unwrap();
    ownership::down(&name).await.unwrap();
    let bgp = calico_lab::scenario::find("bgp_neighbors_match_topology").unwrap();
    let outcome = calico_lab::scenario::run(&mut lab, bgp).await;
    let diagnosis = outcome.failure.expect("fails").diagnosis;
    assert!(
        matches!(diagnosis, calico_lab::Diagnosis::LabGone { .. }),
        "{diagnosis}"
    );
    assert!(
        diagnosis.to_string().starts_with("lab gone: "),
        "{diagnosis}"
    );
    let _ = std::fs::remove_dir_all(calico_lab::artifacts::root().join(&name));
}

/// A command started in the background runs until stopped, and its output is kept.
#[tokio::test]
async fn lab_spawned_command_runs_until_stopped() {
    let name = lab_name("spawn");
    let lab = up(&name).await;
    let (a, b) = lab.pod_pairs(calico_lab::PathClass::SameHost)[0].clone();
    let ip = b.ip.to_string();
    let running = lab
        .spawn(&Target::Pod(a.name.clone()), &["ping", "-i", "0.2", &ip])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let out = running.stop().await.unwrap();
    lab.down().await.unwrap();
    let result = calico_lab::probe::parse_ping(&out.stdout).unwrap();
    assert!(result.sent >= 5, "{}", out.stdout);
    // A probe in flight when it was stopped may miss its reply.
    assert!(result.received + 1 >= result.sent, "{}", out.stdout);
}

/// Commands go through the observer's long-lived shells: many at once each get
/// their own answer, a command that reads its stdin finds it empty (it does not
/// eat the next script), a spawned command ends on SIGINT and one deaf to it is
/// killed, saying so, with nothing of it left behind.
#[tokio::test]
async fn lab_commands_through_the_observer_shells_answer_apart() {
    let name = lab_name("shells");
    let lab = up(&name).await;
    let node = Target::Node(lab.topology().racks[0].nodes[0].name.clone());
    let answers = futures_util::future::join_all((0..40).map(|i| {
        let (lab, node) = (&lab, &node);
        async move {
            let script = format!("sleep 0.0{}; echo {i}", i % 7);
            lab.exec(node, &["sh", "-c", &script]).await
        }
    }))
    .await;
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer.as_ref().unwrap().stdout, format!("{i}\n"));
    }
    let cat = tokio::time::timeout(Duration::from_secs(10), lab.exec(&node, &["cat"]))
        .await
        .expect("cat ends: its stdin is empty")
        .unwrap();
    assert_eq!((cat.exit_code, cat.stdout.as_str()), (0, ""));
    let next = lab.exec(&node, &["echo", "next"]).await.unwrap();
    assert_eq!(next.stdout, "next\n");
    // A background job starts with SIGINT ignored: a spawned command gets it back.
    let plain = lab.spawn(&node, &["sleep", "60"]).await.unwrap();
    let started = std::time::Instant::now();
    let stopped = plain.stop().await.unwrap();
    assert_eq!(stopped.exit_code, 130, "killed by SIGINT: {stopped:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "{stopped:?}");
    let deaf = lab
        .spawn(&node, &["sh", "-c", "trap '' INT; exec sleep 60"])
        .await
        .unwrap();
    let stopped = deaf.stop().await.unwrap();
    assert_eq!(stopped.exit_code, 124, "{stopped:?}");
    assert!(stopped.stderr.contains("did not end"), "{stopped:?}");
    let left = lab
        .exec(
            &node,
            &[
                "sh",
                "-c",
                "ls /run | grep calico-lab-spawned; pgrep -fx 'sleep 60'; true",
            ],
        )
        .await
        .unwrap();
    assert_eq!(left.stdout, "", "left behind");
    lab.down().await.unwrap();
}

/// Every hop answers however many traceroutes run at once: routers, nodes and pods
/// do not rate-limit ICMP errors (a leaf of a 16 x 8 lab answered no more than 50
/// at once, and a healthy path read as a silent hop: a path check failing on a
/// healthy fabric).
#[tokio::test]
async fn lab_every_hop_answers_when_many_traceroutes_run_at_once() {
    let name = lab_name("traces");
    let lab = up(&name).await;
    let converged = lab.converge(FABRIC_BUDGET).await;
    // One pair traced 64 times at once: every router on the way gets 64 probes of
    // each TTL from one pod in a burst.
    let pair = lab.pod_pairs(calico_lab::PathClass::CrossRack)[0].clone();
    let pairs = vec![pair; 64];
    let paths = lab.paths(&pairs).await;
    lab.down().await.unwrap();
    converged.expect("the lab converges");
    assert_eq!(paths.len(), 64);
    let silent: Vec<String> = pairs
        .iter()
        .zip(&paths)
        .filter_map(|((a, b), path)| {
            let path = path.as_ref().expect("traced");
            path.iter()
                .any(|hop| hop == "*")
                .then(|| format!("{} -> {}: {}", a.name, b.name, path.join(" > ")))
        })
        .collect();
    assert!(
        silent.is_empty(),
        "{} of {} traces had a silent hop:\n{}",
        silent.len(),
        pairs.len(),
        silent.join("\n")
    );
}

/// An apply a node's BIRD cannot take (BIRD is down there) fails naming the node;
/// once BIRD is back, applying the design writes every node again (which of them
/// took the failed apply's files is unknown) and the lab is as designed.
#[tokio::test]
async fn lab_an_apply_a_bird_cannot_take_fails_naming_its_node() {
    use calico_lab::fault::Fault;
    let name = lab_name("apply");
    let mut lab = up(&name).await;
    let t = lab.topology().clone();
    let node = t.racks[0].nodes[0].name.clone();
    let fault = lab
        .fault(Fault::BirdDown { node: node.clone() })
        .await
        .unwrap()
        .leave_in_force();
    let mesh = calico_lab::render::full_mesh(&t);
    let refused = lab.apply("full-mesh.yaml", &mesh).await;
    let restored = lab.restore(&fault).await;
    // The restored BIRD is the node's own (its cgroup), as the first one was.
    let container = |device: &str| {
        members(&t, &name)
            .into_iter()
            .find(|m| m.device == device)
            .map(|m| m.container)
            .unwrap()
    };
    let restored_bird = processes_of(&container(&node)).await;
    let router = processes_of(&container(&t.leafs[0].name)).await;
    let designed = calico_lab::render::calico_resources(&t);
    let again = lab.apply("calico-resources.yaml", &designed).await;
    let converged = lab.converge(FABRIC_BUDGET).await;
    lab.down().await.unwrap();
    let err = refused.expect_err("a node without BIRD cannot take the mesh");
    assert!(
        err.to_string().contains(&format!(
            "BIRD on {node} did not take the new configuration"
        )),
        "{err}"
    );
    restored.unwrap();
    assert!(
        restored_bird.iter().any(|c| c.starts_with("bird ")),
        "{restored_bird:?}"
    );
    for daemon in ["zebra", "bgpd"] {
        assert!(
            router.iter().any(|c| c.contains(&format!("/{daemon} "))),
            "{daemon}: {router:?}"
        );
    }
    let changed = again.expect("the apply goes through once BIRD is back");
    assert_eq!(changed.len(), t.nodes().count(), "{changed:?}");
    converged.expect("the lab is as designed again");
}

/// Many reads as one batch in the observer answer exactly as one exec each: exit
/// codes, both streams, a pod's namespace, FRR's answers; a member restarted
/// since its pid was read is found again, a stopped one is an error for its reads
/// only.
#[tokio::test]
async fn lab_batched_reads_answer_as_single_execs_do() {
    let name = lab_name("batch");
    let lab = up(&name).await;
    let t = lab.topology().clone();
    let node = t.racks[0].nodes[0].name.clone();
    let other = t.racks[1].nodes[0].name.clone();
    let pod = lab.pods()[0].name.clone();
    let commands: Vec<(Target, Vec<String>)> = [
        (Target::Router(t.leafs[0].name.clone()), "ip -j -4 route"),
        (Target::Node(node.clone()), "hostname"),
        (Target::Pod(pod.clone()), "ip -4 -o addr show dev eth0"),
        (
            Target::Node(node.clone()),
            "echo 'out'\"'\"'s'; echo err >&2; exit 3",
        ),
    ]
    .into_iter()
    .map(|(target, script)| (target, vec!["sh".into(), "-c".into(), script.into()]))
    .collect();
    // Read once the lab has converged: its routes stand still between the reads.
    lab.converge(FABRIC_BUDGET).await.unwrap();
    let batched = lab.exec_all(&commands).await;
    let engine = docker::connect().await.unwrap();
    let container = |device: &str| {
        lab.members()
            .iter()
            .find(|m| m.device == device)
            .unwrap()
            .container
            .clone()
    };
    for ((target, cmd), got) in commands.iter().zip(&batched) {
        // The engine's own exec in the member is the reference.
        let (device, mut argv) = match target {
            Target::Pod(p) => {
                let node = lab
                    .pods()
                    .iter()
                    .find(|x| &x.name == p)
                    .unwrap()
                    .node
                    .clone();
                (node, vec!["ip", "netns", "exec", p.as_str()])
            }
            Target::Router(d) | Target::Node(d) | Target::CalicoNode(d) => (d.clone(), vec![]),
        };
        argv.extend(cmd.iter().map(String::as_str));
        let single = docker::exec(&engine, &container(&device), &argv)
            .await
            .unwrap();
        let got = got.as_ref().unwrap();
        assert_eq!(
            (got.exit_code, &got.stdout, &got.stderr),
            (single.exit_code, &single.stdout, &single.stderr),
            "{target}"
        );
    }
    assert_eq!(batched[3].as_ref().unwrap().stdout, "out's\n");
    // `vtysh -c 'show bgp ...'` goes to bgpd through the image's vty client: the
    // same answer as vtysh itself gives (run through a shell, not rewritten),
    // compared once the lab has converged and its tables stand still.
    let leaf = Target::Router(t.leafs[0].name.clone());
    for command in ["show bgp ipv4 unicast json", "show bgp no-such-thing"] {
        let client = lab.exec(&leaf, &["vtysh", "-c", command]).await.unwrap();
        let vtysh = lab
            .exec(&leaf, &["sh", "-c", &format!("vtysh -c '{command}'")])
            .await
            .unwrap();
        assert_eq!(client.success(), vtysh.success(), "{command}");
        if vtysh.success() {
            assert_eq!(client.stdout, vtysh.stdout, "{command}");
            assert!(client.stdout.contains("\"routes\""), "{}", client.stdout);
        } else {
            assert!(client.stdout.contains("Unknown command"), "{client:?}");
        }
    }
    // Restarted: a new process, found again. Stopped: an error for it alone.
    engine
        .restart_container(&container(&node), None)
        .await
        .unwrap();
    engine
        .stop_container(&container(&other), None)
        .await
        .unwrap();
    let hostname = |device: &str| {
        (
            Target::Node(device.to_string()),
            vec!["hostname".to_string()],
        )
    };
    let after = lab.exec_all(&[hostname(&node), hostname(&other)]).await;
    assert_eq!(after[0].as_ref().unwrap().stdout.trim(), node);
    let err = after[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("not running"), "{err}");
    lab.down().await.unwrap();
}

/// A lab that does not converge within the wait still gets a report: every
/// scenario failed with the wait's diagnosis (in JSON too), and an artifact folder.
/// The lab is kept from converging for certain: a leaf drops one node's session
/// from the start (a lab this fast often converges within any wait short enough).
#[tokio::test]
async fn lab_a_lab_that_does_not_converge_fails_every_scenario_with_the_wait() {
    use calico_lab::fault::Fault;
    use calico_lab::job::check_lab;
    use calico_lab::lab::Progress;
    use calico_lab::scenario::SCENARIOS;
    let name = lab_name("noconv");
    let mut lab = up(&name).await;
    let t = lab.topology().clone();
    lab.fault(Fault::SessionBlocked {
        device: t.racks[0].leaf.clone(),
        peer: t.racks[0].nodes[0].address,
    })
    .await
    .unwrap()
    .leave_in_force();
    let scenarios: Vec<_> = SCENARIOS.iter().collect();
    let report = check_lab(
        &mut lab,
        &scenarios,
        Duration::from_secs(3),
        &Progress::default(),
    )
    .await
    .unwrap();
    let json = report.json();
    let outcomes = json["scenarios"].as_array().unwrap();
    assert_eq!(outcomes.len(), SCENARIOS.len());
    for s in outcomes {
        assert_eq!(s["result"], "failed", "{s}");
        let diagnosis = s["diagnosis"].as_str().unwrap();
        assert!(diagnosis.starts_with("not converged: "), "{s}");
        assert!(diagnosis.contains(&t.racks[0].nodes[0].name), "{s}");
        assert_eq!(s["cause"]["kind"], "not_converged");
        let artifacts = s["artifacts"].as_str().unwrap();
        assert!(
            std::path::Path::new(artifacts)
                .join("diagnosis.txt")
                .exists(),
            "{artifacts}"
        );
    }
    let _ = std::fs::remove_dir_all(outcomes[0]["artifacts"].as_str().unwrap());
    lab.down().await.unwrap();
}

/// Which lab each of the job test's scenarios ran on.
static RAN_ON: std::sync::Mutex<Vec<(&str, String)>> = std::sync::Mutex::new(Vec::new());

fn ran(scenario: &'static str, lab: &Lab) {
    RAN_ON
        .lock()
        .unwrap()
        .push((scenario, lab.name().to_string()));
}

static BREAKS_ITS_LAB: calico_lab::scenario::Scenario = calico_lab::scenario::Scenario {
    name: "breaks_its_lab",
    proves: "nothing: fails on purpose",
    disrupts: true,
    typical_duration: Duration::from_secs(3),
    check: |lab| {
        Box::pin(async move {
            ran("breaks_its_lab", lab);
            Err(calico_lab::scenario::Failure::new(
                calico_lab::Diagnosis::PingFailed {
                    from: "a".into(),
                    to: "b".into(),
                    class: calico_lab::PathClass::SameHost,
                    summary: "failed on purpose".into(),
                },
                "",
            ))
        })
    },
};

static SLOW: calico_lab::scenario::Scenario = calico_lab::scenario::Scenario {
    name: "slow",
    proves: "nothing: passes after a while",
    disrupts: true,
    typical_duration: Duration::from_secs(2),
    check: |lab| {
        Box::pin(async move {
            ran("slow", lab);
            // Long enough for the failed lab's slot to take the next scenario.
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(calico_lab::scenario::Pass::Report("slept".into()))
        })
    },
};

static QUICK: calico_lab::scenario::Scenario = calico_lab::scenario::Scenario {
    name: "quick",
    proves: "nothing: passes at once",
    disrupts: true,
    typical_duration: Duration::from_secs(1),
    check: |lab| {
        Box::pin(async move {
            ran("quick", lab);
            Ok(calico_lab::scenario::Pass::Report("done".into()))
        })
    },
};

/// Several labs at once: the scenarios queue longest first; a lab where one failed
/// takes no more (what it left must not judge the next), a fresh lab takes the next;
/// the report keeps the job's order and every lab is gone.
#[tokio::test]
async fn lab_job_replaces_a_lab_whose_scenario_failed() {
    let name = lab_name("job");
    let job = calico_lab::job::Job {
        topology: Topology::seed(),
        options: LabOptions {
            name: Some(name.clone()),
            ..LabOptions::default()
        },
        scenarios: vec![&QUICK, &BREAKS_ITS_LAB, &SLOW],
        wait: Duration::from_secs(60),
        labs: 2,
    };
    let report = job.run().await.expect("the job runs");
    let verdicts: Vec<(&str, bool)> = report
        .outcomes
        .iter()
        .map(|o| (o.name.as_str(), o.passed()))
        .collect();
    assert_eq!(
        verdicts,
        vec![("quick", true), ("breaks_its_lab", false), ("slow", true)]
    );
    let ran_on = RAN_ON.lock().unwrap().clone();
    let lab_of = |s: &str| {
        ran_on
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, lab)| lab.clone())
    };
    assert_eq!(ran_on.len(), 3, "{ran_on:?}");
    // The longest first: the main lab's slot took the failing one, the other slot
    // the slow one; the quick one went to a fresh lab, not the failed one.
    assert_eq!(lab_of("breaks_its_lab"), Some(name.clone()), "{ran_on:?}");
    assert_eq!(lab_of("slow"), Some(format!("{name}-1")), "{ran_on:?}");
    assert_eq!(lab_of("quick"), Some(format!("{name}-2")), "{ran_on:?}");
    for lab in [name.clone(), format!("{name}-1"), format!("{name}-2")] {
        assert!(containers_of_lab(&lab).await.is_empty(), "{lab} is gone");
    }
}
