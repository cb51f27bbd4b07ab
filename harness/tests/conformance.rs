//! Calico's own confd test suites, v3.23 to v3.32 (`fixtures/conformance/calico-confd/`):
//! for every version, every case's IPv4 files rendered as that calico-node writes them,
//! statement for statement. A case is one of the suite's `cases/` (input files and a
//! step2) or one of its inline tests transcribed as `scripts/` (a list of steps).
//! Cases the emulated confd does not reproduce yet are listed with their reason in
//! `known-differences.txt`; any other failure fails the test, and so does a listed
//! case that passes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use calico_lab::calico::confd::{normalize, render_with, BirdFiles, NodeEnv};
use calico_lab::calico::resources::load;
use calico_lab::calico::{CalicoVersion, Resources};

/// Calico's suite renders for this node unless a script starts confd for another.
const NODE: &str = "kube-master";

fn suites() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/conformance/calico-confd")
}

/// The environment the suite's shell sets around a `cases/` case.
fn environment(case: &str) -> Option<&'static str> {
    match case {
        "mesh/static-routes-no-ipv4-address" => Some("CALICO_ROUTER_ID=10.10.10.10"),
        "mesh/hash" => Some("CALICO_ROUTER_ID=hash"),
        _ => None,
    }
}

/// One step of a case, as `fixtures/conformance/calico-confd/SCRIPTS.md` lists them.
#[derive(Debug, Clone)]
enum Step {
    /// The datastore before the first step: Kubernetes (its Nodes exist) or etcd.
    Datastore(&'static str),
    Node(String),
    Env(String),
    Unenv(String),
    /// `calicoctl apply` or `kubectl apply` of a file.
    Apply(PathBuf),
    Delete {
        kind: String,
        name: String,
        namespace: Option<String>,
    },
    DeleteFile(PathBuf),
    /// Compare the render with each file in this folder.
    Expect(PathBuf),
    ExpectPeerings(usize),
    /// An endpoint status file Felix writes for a workload on the node.
    EndpointStatus(String, PathBuf),
    EndpointStatusClear,
    Unmapped(String),
}

/// `<group>/<case>` of the suite's `cases/` and `scripts/<function>` of its inline
/// tests, each with its steps.
fn cases(tag: &Path) -> Vec<(String, Vec<Step>)> {
    let mut out = Vec::new();
    for group in std::fs::read_dir(tag.join("cases")).unwrap() {
        let group = group.unwrap().path();
        for case in std::fs::read_dir(&group).unwrap() {
            let dir = case.unwrap().path();
            let name = format!(
                "{}/{}",
                group.file_name().unwrap().to_string_lossy(),
                dir.file_name().unwrap().to_string_lossy()
            );
            let mut steps = vec![Step::Datastore("kubernetes")];
            steps.extend(environment(&name).map(|e| Step::Env(e.into())));
            for step in [dir.clone(), dir.join("step2")] {
                if !step.join("input.yaml").exists() {
                    continue;
                }
                steps.push(Step::Apply(step.join("input.yaml")));
                if step.join("kubectl-input.yaml").exists() {
                    steps.push(Step::Apply(step.join("kubectl-input.yaml")));
                }
                steps.push(Step::Expect(step.join("expected")));
            }
            out.push((name, steps));
        }
    }
    if let Ok(scripts) = std::fs::read_dir(tag.join("scripts")) {
        for script in scripts {
            let dir = script.unwrap().path();
            let name = format!("scripts/{}", dir.file_name().unwrap().to_string_lossy());
            out.push((name, script_steps(&dir)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Reads a script's `steps` file.
fn script_steps(dir: &Path) -> Vec<Step> {
    let text = std::fs::read_to_string(dir.join("steps")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let rest = line.split_once(' ').map(|r| r.1).unwrap_or_default();
            match words[..] {
                ["datastore", "kubernetes"] => Step::Datastore("kubernetes"),
                ["datastore", "etcdv3"] => Step::Datastore("etcdv3"),
                ["node", name] => Step::Node(name.into()),
                ["env", pair] => Step::Env(pair.into()),
                ["unenv", key] => Step::Unenv(key.into()),
                ["apply", file] | ["kubectl", file] => Step::Apply(dir.join(file)),
                ["delete", kind, name] => Step::Delete {
                    kind: kind.into(),
                    name: name.into(),
                    namespace: None,
                },
                ["delete", kind, name, ns] => Step::Delete {
                    kind: kind.into(),
                    name: name.into(),
                    namespace: Some(ns.into()),
                },
                ["delete-file", file] => Step::DeleteFile(dir.join(file)),
                ["expect", at] => Step::Expect(dir.join("expected").join(at)),
                ["expect-peerings", n] => Step::ExpectPeerings(n.parse().unwrap()),
                ["endpoint-status", name, file] => {
                    Step::EndpointStatus(name.into(), dir.join(file))
                }
                ["endpoint-status-clear"] => Step::EndpointStatusClear,
                _ if words[0] == "unmapped" => Step::Unmapped(rest.into()),
                _ => panic!("{}: unknown step {line:?}", dir.display()),
            }
        })
        .collect()
}

/// Runs a case's steps and says where it first differs; else how many renders it
/// compared. Each render made is pushed to `renders`.
fn run_case(
    tag: &Path,
    version: CalicoVersion,
    steps: &[Step],
    renders: &mut Vec<BirdFiles>,
) -> Result<usize, String> {
    let mut resources = Resources::default();
    let mut node = NODE.to_string();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut checks = 0;
    let apply = |resources: &mut Resources, file: &Path| -> Result<(), String> {
        let objects = load(file).map_err(|e| e.to_string())?;
        resources.apply(objects).map_err(|e| e.to_string())
    };
    let render = |resources: &Resources, node: &str, env: &BTreeMap<String, String>| {
        let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let env = NodeEnv::parse(pairs.iter().map(String::as_str)).map_err(|e| e.to_string())?;
        render_with(resources, node, version, &env).map_err(|e| e.to_string())
    };
    for step in steps {
        match step {
            Step::Datastore(kind) => {
                apply(&mut resources, &tag.join("kdd/ipam.yaml"))?;
                if *kind == "kubernetes" {
                    apply(&mut resources, &tag.join("kdd/nodes.yaml"))?;
                }
            }
            Step::Node(name) => node = name.clone(),
            // Where Felix's status files are: here they are steps of their own.
            Step::Env(pair) if pair.starts_with("CALICO_ENDPOINT_STATUS_PATH_PREFIX=") => {}
            Step::Env(pair) => {
                let (k, v) = pair.split_once('=').unwrap();
                env.insert(k.into(), v.into());
            }
            Step::EndpointStatus(name, file) => {
                let json = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
                resources
                    .set_endpoint_status(&node, name, &json)
                    .map_err(|e| e.to_string())?;
            }
            Step::EndpointStatusClear => resources.endpoint_status.clear(),
            Step::Unenv(key) => {
                env.remove(key);
            }
            Step::Apply(file) => apply(&mut resources, file)?,
            Step::Delete {
                kind,
                name,
                namespace,
            } => {
                // As in the suite's shell, deleting what is not there is no failure.
                resources.delete_named(kind, name, namespace.as_deref());
            }
            Step::DeleteFile(file) => {
                for object in load(file).map_err(|e| e.to_string())? {
                    resources.delete_named(object.kind(), object.name(), object.namespace());
                }
            }
            Step::Expect(dir) => {
                let files = render(&resources, &node, &env)?;
                renders.push(files.clone());
                compare(dir, &files)?;
                checks += 1;
            }
            Step::ExpectPeerings(n) => {
                let files = render(&resources, &node, &env)?;
                renders.push(files.clone());
                let got = files
                    .bird
                    .lines()
                    .filter(|l| l.contains("protocol bgp"))
                    .count();
                if got != *n {
                    return Err(format!("{got} `protocol bgp` lines, want {n}"));
                }
                checks += 1;
            }
            Step::Unmapped(line) => {
                return Err(format!("needs a step the harness does not take: {line}"))
            }
        }
    }
    Ok(checks)
}

/// Compares each expected file in `dir` with the render, token by token.
fn compare(dir: &Path, files: &BirdFiles) -> Result<(), String> {
    let label = dir
        .strip_prefix(suites())
        .unwrap_or(dir)
        .to_string_lossy()
        .into_owned();
    for (name, got) in files.files() {
        let path = dir.join(name);
        let Ok(expected) = std::fs::read_to_string(&path) else {
            continue;
        };
        let (want, got) = (normalize(&expected), normalize(got));
        if want != got {
            let at = want
                .iter()
                .zip(&got)
                .position(|(a, b)| a != b)
                .unwrap_or(want.len().min(got.len()));
            let around = |tokens: &[String]| {
                tokens[at.saturating_sub(3)..(at + 5).min(tokens.len())].join(" ")
            };
            return Err(format!(
                "{label}/{name} token {at}: want `{}`, got `{}`",
                around(&want),
                around(&got)
            ));
        }
    }
    Ok(())
}

/// `(tag, case) -> why` from `known-differences.txt`.
fn known_differences() -> BTreeMap<(String, String), String> {
    let text = std::fs::read_to_string(suites().join("known-differences.txt")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (tag, rest) = l.split_once(' ').expect("<tag> <case>: <why>");
            let (case, why) = rest.split_once(": ").expect("<tag> <case>: <why>");
            ((tag.to_string(), case.to_string()), why.to_string())
        })
        .collect()
}

/// Runs one version's suite; fails on an unlisted failure or a listed pass.
fn suite(tag: &str) {
    let dir = suites().join(tag);
    let version: CalicoVersion = tag.parse().unwrap();
    let known = known_differences();
    let all = cases(&dir);
    assert!(!all.is_empty(), "{tag}: no cases");
    let (mut passed, mut checks) = (0, 0);
    let mut problems = Vec::new();
    for (case, steps) in &all {
        let listed = known.get(&(tag.to_string(), case.clone()));
        match (run_case(&dir, version, steps, &mut Vec::new()), listed) {
            (Ok(n), None) => {
                passed += 1;
                checks += n;
            }
            (Ok(_), Some(_)) => problems.push(format!(
                "{case} passes now: remove it from known-differences.txt"
            )),
            (Err(e), None) => problems.push(format!("{case}: {e}")),
            (Err(_), Some(_)) => {}
        }
    }
    println!(
        "{tag}: {passed} of {} IPv4 cases reproduced exactly ({checks} renders compared); {} known differences",
        all.len(),
        all.len() - passed - problems.len()
    );
    for ((t, case), why) in &known {
        if t == tag {
            println!("  known: {case}: {why}");
        }
    }
    assert!(problems.is_empty(), "{tag}:\n{}", problems.join("\n"));
}

macro_rules! suites {
    ($($name:ident => $tag:literal),* $(,)?) => {
        $( #[test] fn $name() { suite($tag); } )*
        const TAGS: &[&str] = &[$($tag),*];
    };
}

suites! {
    calico_v3_23_5 => "v3.23.5",
    calico_v3_24_6 => "v3.24.6",
    calico_v3_25_2 => "v3.25.2",
    calico_v3_26_5 => "v3.26.5",
    calico_v3_27_5 => "v3.27.5",
    calico_v3_28_5 => "v3.28.5",
    calico_v3_29_7 => "v3.29.7",
    calico_v3_30_7 => "v3.30.7",
    calico_v3_31_7 => "v3.31.7",
    calico_v3_32_1 => "v3.32.1",
}

#[test]
fn every_suite_has_its_test_and_every_listed_difference_names_a_real_case() {
    let mut found: Vec<String> = std::fs::read_dir(suites())
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("cases").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(found, TAGS);
    for (tag, case) in known_differences().keys() {
        assert!(
            cases(&suites().join(tag)).iter().any(|(c, _)| c == case),
            "known-differences.txt names {tag} {case}, which is no case"
        );
    }
}

/// Every case holds an expected file for each file the render writes, so no file
/// of the render goes unchecked.
#[test]
fn every_rendered_file_has_its_expected_file_in_every_case() {
    for tag in TAGS {
        let dir = suites().join(tag);
        for (_, steps) in cases(&dir) {
            for step in steps {
                if let Step::Expect(expected) = step {
                    for name in BirdFiles::NAMES {
                        let path = expected.join(name);
                        assert!(path.exists(), "{}", path.display());
                    }
                }
            }
        }
    }
}

/// Every render of every version's cases, adapted for upstream BIRD 1.6 as the
/// emulated nodes run it, is accepted by `bird -p`.
#[test]
fn every_versions_renders_parse_on_upstream_bird() {
    let mut renders = Vec::new();
    for tag in TAGS {
        let dir = suites().join(tag);
        let version: CalicoVersion = tag.parse().unwrap();
        for (case, steps) in cases(&dir) {
            let before = renders.len();
            let _ = run_case(&dir, version, &steps, &mut renders);
            for files in &mut renders[before..] {
                files.bird = format!("# {tag} {case}\n{}", files.bird);
            }
        }
    }
    let scratch = tempfile::tempdir().unwrap();
    for files in &renders {
        let files = calico_lab::calico::bird::upstream(files);
        for (name, text) in files.files() {
            std::fs::write(scratch.path().join(name), text).unwrap();
        }
        let out = std::process::Command::new("bird")
            .args(["-p", "-c", "bird.cfg"])
            .current_dir(scratch.path())
            .output()
            .expect("`bird` (installed by ci/bootstrap) runs");
        assert!(
            out.status.success(),
            "bird -p: {}\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            files.bird,
            files.ipam
        );
    }
    println!("{} renders parsed by upstream BIRD", renders.len());
    assert!(renders.len() > 300, "{}", renders.len());
}

/// `UPDATE_KNOWN_DIFFERENCES=1 cargo nextest run --test conformance update_known`:
/// rewrites `known-differences.txt` from what fails now (a hand-written reason stays,
/// a generated one is the first difference now), then fails, so an update never
/// passes as a check. Without the variable it does nothing.
#[test]
fn update_known_differences() {
    if std::env::var_os("UPDATE_KNOWN_DIFFERENCES").is_none() {
        return;
    }
    let known = known_differences();
    let mut lines = vec![
        "# <tag> <group>/<case>: why the emulated confd does not reproduce it yet.".to_string(),
        "# The conformance test fails on a listed case that passes: remove its line then."
            .to_string(),
    ];
    for tag in TAGS {
        let dir = suites().join(tag);
        let version: CalicoVersion = tag.parse().unwrap();
        for (case, steps) in cases(&dir) {
            if let Err(e) = run_case(&dir, version, &steps, &mut Vec::new()) {
                // Hand-written reasons stay; generated ones are refreshed.
                let why = known
                    .get(&(tag.to_string(), case.clone()))
                    .filter(|why| !why.starts_with("render differs: "))
                    .cloned()
                    .unwrap_or_else(|| {
                        let e = e.replace(&format!("{}/", suites().display()), "");
                        format!("render differs: {e}")
                    });
                lines.push(format!("{tag} {case}: {why}"));
            }
        }
    }
    std::fs::write(
        suites().join("known-differences.txt"),
        lines.join("\n") + "\n",
    )
    .unwrap();
    panic!("known-differences.txt rewritten; review the diff and run again without UPDATE_KNOWN_DIFFERENCES");
}

/// The comparison tells versions apart: at least nine in ten of v3.23.5's cases fail
/// when rendered as v3.32.1 writes them, and of v3.32.1's as v3.23.5 (the renders
/// differ, or the inputs use fields v3.23 lacks; the few left only count sessions).
#[test]
fn a_case_rendered_for_another_version_fails() {
    let (old, new) = ("v3.23.5", "v3.32.1");
    for (tag, other) in [(old, new), (new, old)] {
        let dir = suites().join(tag);
        let all = cases(&dir);
        let other: CalicoVersion = other.parse().unwrap();
        let failed = all
            .iter()
            .filter(|(_, steps)| run_case(&dir, other, steps, &mut Vec::new()).is_err())
            .count();
        println!("{tag} rendered as {other}: {failed} of {} fail", all.len());
        assert!(
            failed * 10 >= all.len() * 9,
            "{tag} as {other}: only {failed} of {} fail",
            all.len()
        );
    }
}
