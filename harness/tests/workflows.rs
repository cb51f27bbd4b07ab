//! The GitHub Actions workflows users copy and this project runs: what their
//! matrices cover and that each job runs what it claims. (ci/test lints them with
//! actionlint.)

use std::path::Path;

use calico_lab::calico::version::NEWEST_MINOR;
use calico_lab::calico::CalicoVersion;
use serde_json::Value;

fn workflow(name: &str) -> (String, Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../.github/workflows/{name}"));
    let text = std::fs::read_to_string(&path).unwrap();
    let value: Value = serde_saphyr::from_str(&text).unwrap();
    (text, value)
}

fn json_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text:?} is not a JSON list: {e}"))
}

#[test]
fn ci_runs_what_ci_run_runs_on_every_push_and_pull_request() {
    let (text, ci) = workflow("ci.yml");
    assert!(ci["on"].get("push").is_some() && ci["on"].get("pull_request").is_some());
    assert!(text.contains(".ci/run"), "ci.yml must run .ci/run");
    assert!(
        !text.contains("CALICO_LAB_FLAVOR"),
        "ci.yml runs the emulated flavor"
    );
}

#[test]
fn the_kind_matrix_covers_the_seed_two_later_minors_and_the_newest() {
    let (text, e2e) = workflow("e2e-kind.yml");
    let inputs = &e2e["on"]["workflow_dispatch"]["inputs"];
    let versions = json_list(inputs["calico-versions"]["default"].as_str().unwrap());
    // The matrix job's fallback (schedule, labelled PRs) is the same list.
    assert!(
        text.contains(&format!(
            "CALICO_INPUT:-{}",
            serde_json::to_string(&versions)
                .unwrap()
                .replace('"', "\\\"")
                .replace(",", ", ")
        )),
        "the scheduled default differs from the dispatch default"
    );
    let parsed: Vec<CalicoVersion> = versions
        .iter()
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{v}: {e}")))
        .collect();
    assert!(parsed.contains(&CalicoVersion::SEED), "{versions:?}");
    assert!(
        parsed.iter().any(|v| v.minor == NEWEST_MINOR),
        "{versions:?}"
    );
    let later_minors: std::collections::BTreeSet<u16> = parsed
        .iter()
        .map(|v| v.minor)
        .filter(|m| *m > CalicoVersion::SEED.minor && *m < NEWEST_MINOR)
        .collect();
    assert!(later_minors.len() >= 2, "{versions:?}");

    let images = json_list(inputs["node-images"]["default"].as_str().unwrap());
    assert_eq!(images.len(), 2, "{images:?}");
    assert!(images.iter().all(|i| i.starts_with("kindest/node:v1.")));

    let job = &e2e["jobs"]["scenarios"];
    assert_eq!(job["env"]["CALICO_LAB_FLAVOR"], "kind");
    let include = job["strategy"]["matrix"]["include"].as_array().unwrap();
    assert!(include.iter().any(|i| i["routers"] == "frr"), "an FRR job");
    let steps = job["steps"].to_string();
    assert!(steps.contains("cargo nextest run -p calico-lab-scenarios --profile ci"));
    assert!(steps.contains("--dry-run"));
    // The summary's header is the report's own.
    let header = calico_lab::report::MARKDOWN_HEADER.replace('\n', "\\n");
    assert!(
        text.contains(&header),
        "the job summary header differs from MARKDOWN_HEADER"
    );
}

#[test]
fn artifacts_and_junit_are_kept_even_when_a_job_fails() {
    for name in ["ci.yml", "e2e-kind.yml"] {
        let (_, wf) = workflow(name);
        for (job_name, job) in wf["jobs"].as_object().unwrap() {
            let steps = job["steps"].as_array().unwrap();
            let Some(upload) = steps.iter().find(|s| {
                s["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("actions/upload-artifact"))
            }) else {
                assert_eq!(job_name, "matrix", "{name}: job {job_name} uploads nothing");
                continue;
            };
            assert_eq!(upload["if"], "always()", "{name}: {job_name}");
        }
    }
}

#[test]
fn the_kind_jobs_trigger_on_schedule_dispatch_and_labelled_pull_requests() {
    let (_, e2e) = workflow("e2e-kind.yml");
    let on = &e2e["on"];
    assert!(on.get("schedule").is_some() && on.get("workflow_dispatch").is_some());
    assert!(on["pull_request"]["types"].to_string().contains("labeled"));
    let gate = e2e["jobs"]["matrix"]["if"].as_str().unwrap();
    assert!(gate.contains("e2e-kind"), "{gate}");
    let upgrade = e2e["jobs"]["upgrade"]["steps"].to_string();
    assert!(
        upgrade.contains(&format!("--from {}", CalicoVersion::SEED))
            && upgrade.contains(&format!("--to v3.{NEWEST_MINOR}.")),
        "{upgrade}"
    );
}
