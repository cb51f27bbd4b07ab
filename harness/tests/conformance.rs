//! Calico's own confd test suites, v3.23 to v3.32 (`fixtures/conformance/calico-confd/`):
//! for every version, every case's IPv4 files rendered as that calico-node writes them,
//! statement for statement. Cases the emulated confd does not reproduce yet are listed
//! with their reason in `known-differences.txt`; any other failure fails the test, and
//! so does a listed case that passes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use calico_lab::calico::confd::{normalize, render, BirdFiles};
use calico_lab::calico::resources::load;
use calico_lab::calico::{CalicoVersion, Resources};

/// Calico's suite renders for this node.
const NODE: &str = "kube-master";

fn suites() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/conformance/calico-confd")
}

/// The environment a case runs with (`test_suite_common.sh`): only these set any.
fn environment(case: &str) -> &'static [(&'static str, &'static str)] {
    match case {
        "mesh/static-routes-no-ipv4-address" => &[("CALICO_ROUTER_ID", "10.10.10.10")],
        "mesh/hash" => &[("CALICO_ROUTER_ID", "hash")],
        _ => &[],
    }
}

/// `<group>/<case>` of every case of a suite, in order.
fn cases(tag: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for group in std::fs::read_dir(tag.join("cases")).unwrap() {
        let group = group.unwrap().path();
        for case in std::fs::read_dir(&group).unwrap() {
            let case = case.unwrap().path();
            out.push(format!(
                "{}/{}",
                group.file_name().unwrap().to_string_lossy(),
                case.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    out.sort();
    out
}

/// Renders a case (and its step2) and says where it first differs.
fn run_case(tag: &Path, version: CalicoVersion, case: &str) -> Result<(), String> {
    if !environment(case).is_empty() {
        return Err(format!(
            "needs the environment {:?}, which the emulated calico-node does not take yet",
            environment(case)
        ));
    }
    let dir = tag.join("cases").join(case);
    let mut resources = Resources::default();
    let apply = |resources: &mut Resources, file: &Path| -> Result<(), String> {
        let objects = load(file).map_err(|e| e.to_string())?;
        resources.apply(objects).map_err(|e| e.to_string())
    };
    apply(&mut resources, &tag.join("kdd/ipam.yaml"))?;
    for step in [dir.clone(), dir.join("step2")] {
        if !step.join("input.yaml").exists() {
            continue;
        }
        apply(&mut resources, &step.join("input.yaml"))?;
        if step.join("kubectl-input.yaml").exists() {
            apply(&mut resources, &step.join("kubectl-input.yaml"))?;
        }
        let files = render(&resources, NODE, version).map_err(|e| e.to_string())?;
        for (name, got) in files.files() {
            let path = step.join("expected").join(name);
            let expected =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let (want, got) = (normalize(&expected), normalize(got));
            if want != got {
                let at = want
                    .iter()
                    .zip(&got)
                    .position(|(a, b)| a != b)
                    .unwrap_or(want.len().min(got.len()));
                let label = if step == dir { "" } else { "step2 " };
                let around = |tokens: &[String]| {
                    tokens[at.saturating_sub(3)..(at + 5).min(tokens.len())].join(" ")
                };
                return Err(format!(
                    "{label}{name} token {at}: want `{}`, got `{}`",
                    around(&want),
                    around(&got)
                ));
            }
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
    let mut passed = 0;
    let mut problems = Vec::new();
    for case in &all {
        let listed = known.get(&(tag.to_string(), case.clone()));
        match (run_case(&dir, version, case), listed) {
            (Ok(()), None) => passed += 1,
            (Ok(()), Some(_)) => problems.push(format!(
                "{case} passes now: remove it from known-differences.txt"
            )),
            (Err(e), None) => problems.push(format!("{case}: {e}")),
            (Err(_), Some(_)) => {}
        }
    }
    println!(
        "{tag}: {passed} of {} IPv4 cases reproduced exactly; {} known differences",
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
            cases(&suites().join(tag)).contains(case),
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
        for case in cases(&dir) {
            for name in BirdFiles::NAMES {
                let path = dir.join("cases").join(&case).join("expected").join(name);
                assert!(path.exists(), "{}", path.display());
            }
        }
    }
}

/// Every version's render of every case whose inputs it takes, adapted for
/// upstream BIRD 1.6 as the emulated nodes run it, is accepted by `bird -p`.
#[test]
fn every_versions_renders_parse_on_upstream_bird() {
    let mut parsed = 0;
    for tag in TAGS {
        let dir = suites().join(tag);
        let version: CalicoVersion = tag.parse().unwrap();
        for case in cases(&dir) {
            let mut resources = Resources::default();
            let inputs = [
                dir.join("kdd/ipam.yaml"),
                dir.join("cases").join(&case).join("input.yaml"),
            ];
            if inputs
                .iter()
                .any(|f| load(f).map(|o| resources.apply(o)).is_err())
            {
                continue;
            }
            let Ok(files) = render(&resources, NODE, version) else {
                continue;
            };
            let files = calico_lab::calico::bird::upstream(&files);
            let scratch = tempfile::tempdir().unwrap();
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
                "{tag} {case}: bird -p: {}\n{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                files.bird,
                files.ipam
            );
            parsed += 1;
        }
    }
    println!("{parsed} renders parsed by upstream BIRD");
    assert!(parsed > 100, "{parsed}");
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
        for case in cases(&dir) {
            if let Err(e) = run_case(&dir, version, &case) {
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
