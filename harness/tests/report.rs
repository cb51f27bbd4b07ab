//! The run reports: terminal table, Markdown, JUnit XML and JSON, from hand-built outcomes.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use calico_lab::diagnosis::{Diagnosis, Role};
use calico_lab::report::Report;
use calico_lab::scenario::{Failure, Outcome, SCENARIOS};

const MATRIX: &str = "from \\ to |    1    2\n 1 pod-a    |    -    x\n 2 pod-b    |    x    -\nhost: same host, rack: same rack, x: cross rack; ! marks a pair that did not answer\n";
const DIAGNOSIS: &str =
    "route missing on leaf leaf-1: 10.0.0.0/26 (<pod-a> & more | see detail) via 10.1.0.2, found no route";

fn diagnosis() -> Diagnosis {
    Diagnosis::RouteMissing {
        role: Role::Leaf,
        device: "leaf-1".into(),
        prefix: "10.0.0.0/26".parse().unwrap(),
        of: "<pod-a> & more | see detail".into(),
        want: "via 10.1.0.2".into(),
        found: "no route".into(),
    }
}

fn proves(name: &str) -> String {
    SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .map_or(String::new(), |s| s.proves.to_string())
}

fn pass(name: &str, millis: u64, report: &str) -> Outcome {
    Outcome {
        name: name.into(),
        proves: proves(name),
        duration: Duration::from_millis(millis),
        report: report.into(),
        skipped: None,
        failure: None,
        artifacts: None,
    }
}

fn report() -> Report {
    Report {
        lab: "ci-42".into(),
        topology: "two-racks".into(),
        flavor: "frr".into(),
        started: "2025-01-02T03:04:05Z".parse().unwrap(),
        outcomes: vec![
            pass("all_pairs_reachability", 12_345, MATRIX),
            Outcome {
                name: "routes_match_topology".into(),
                proves: proves("routes_match_topology"),
                duration: Duration::from_millis(3_210),
                report: String::new(),
                skipped: None,
                failure: Some(Failure {
                    diagnosis: diagnosis(),
                    detail: "leaf-1 table:\n10.0.1.0/26 via 10.1.0.2 <proto bgp> & \"x\" 'y'"
                        .into(),
                }),
                artifacts: Some(PathBuf::from("/tmp/calico-lab/ci-42/routes_match_topology")),
            },
            pass("same_host_ping", 80, "pod-a -> pod-c (10.0.0.3): 3/3\n"),
        ],
    }
}

/// The byte column (all header cells are ASCII) where `word` starts in `line`.
fn col(line: &str, word: &str) -> usize {
    line.find(word)
        .unwrap_or_else(|| panic!("{word:?} not in {line:?}"))
}

#[test]
fn table_aligns_columns_and_counts() {
    let table = report().table();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 6, "{table}");
    let header = lines[0];
    let (result, duration, diagnosis) = (
        col(header, "RESULT"),
        col(header, "DURATION"),
        col(header, "DIAGNOSIS"),
    );
    let duration_end = duration + "DURATION".len();
    let rows = [lines[1], lines[2], lines[4]];
    for (row, name) in rows.iter().zip([
        "all_pairs_reachability",
        "routes_match_topology",
        "same_host_ping",
    ]) {
        assert!(row.starts_with(name), "{row}");
        let at_result = &row[result..];
        assert!(
            at_result.starts_with("pass") || at_result.starts_with("FAIL"),
            "{row}"
        );
        assert!(row[..duration_end].ends_with(" s"), "{row}");
        assert_ne!(&row[duration_end - 3..duration_end - 2], " ", "{row}");
        assert_eq!(row, &row.trim_end(), "trailing blanks: {row:?}");
    }
    assert!(lines[1][result..].starts_with("pass"));
    assert!(lines[1].contains("12.3 s"));
    assert!(lines[4].contains("0.1 s"));
    assert!(lines[2][result..].starts_with("FAIL"));
    assert_eq!(&lines[2][diagnosis..], DIAGNOSIS);
    assert!(lines[2].contains("3.2 s"));
    assert_eq!(
        lines[3],
        format!(
            "{}artifacts: /tmp/calico-lab/ci-42/routes_match_topology",
            " ".repeat(diagnosis)
        )
    );
    assert_eq!(lines[5], "2 passed, 1 failed");
    assert!(!table.contains('\u{1b}'), "colour codes in {table}");
}

#[test]
fn markdown_has_table_and_matrix() {
    let md = report().markdown();
    assert!(md.starts_with("## "), "{md}");
    let heading = md.lines().next().unwrap();
    for part in ["ci-42", "two-racks", "frr"] {
        assert!(heading.contains(part), "{heading}");
    }
    assert!(md.contains("**2 passed, 1 failed**"), "{md}");
    assert!(md.contains("| Scenario | Result | Duration | Diagnosis |\n| --- |"));
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| `")).collect();
    assert_eq!(rows.len(), 3, "{md}");
    for row in &rows {
        // Every row has exactly the five cell borders: pipes in text are escaped.
        let borders = row
            .char_indices()
            .filter(|&(i, c)| c == '|' && !row[..i].ends_with('\\'))
            .count();
        assert_eq!(borders, 5, "{row}");
    }
    assert!(rows[0].contains("`all_pairs_reachability` | ✅ pass | 12.3 s |"));
    assert!(rows[1].contains("❌ FAIL"), "{}", rows[1]);
    assert!(
        rows[1].contains("10.0.0.0/26 (&lt;pod-a&gt; &amp; more \\| see detail)"),
        "{}",
        rows[1]
    );
    assert!(rows[1].contains("artifacts: /tmp/calico-lab/ci-42/routes\\_match\\_topology"));
    assert!(rows[2].contains("✅ pass"));

    let details = &md[md.find("<details>").expect("a <details> block")..];
    assert!(details.contains("<summary>"), "{details}");
    let fenced = format!("```text\n{}\n```", MATRIX.trim_end());
    assert!(details.contains(&fenced), "{details}");
    assert!(details.trim_end().ends_with("</details>"));
    assert_eq!(
        md.matches("<details>").count(),
        1,
        "only the matrix is shown"
    );
}

/// Asks python3's XML parser whether `xml` is well-formed.
fn assert_well_formed(xml: &str) {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import sys,xml.dom.minidom;xml.dom.minidom.parseString(sys.stdin.buffer.read())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run python3 ({e}): it is needed to check the JUnit XML is well-formed")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "JUnit XML is not well-formed: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn junit_is_well_formed_and_escaped() {
    let xml = report().junit();
    assert_well_formed(&xml);
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "{xml}"
    );
    assert!(
        xml.contains(
            "<testsuite name=\"calico-lab\" tests=\"3\" skipped=\"0\" errors=\"0\" failures=\"1\" timestamp=\"2025-01-02T03:04:05.000+00:00\" time=\"15.635\">"
        ),
        "{xml}"
    );
    assert!(
        xml.contains(
            "<testcase name=\"routes_match_topology\" classname=\"two-racks\" time=\"3.210\">"
        ),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"route missing on leaf leaf-1: 10.0.0.0/26 (&lt;pod-a&gt; &amp; more | see detail) via 10.1.0.2, found no route\" type=\"failure\">"),
        "{xml}"
    );
    assert!(
        xml.contains("&lt;proto bgp&gt; &amp; &quot;x&quot; &apos;y&apos;\nartifacts: /tmp/calico-lab/ci-42/routes_match_topology</failure>"),
        "{xml}"
    );
    assert!(
        xml.contains("<property name=\"lab\" value=\"ci-42\"/>"),
        "{xml}"
    );
    assert!(xml.contains("<system-out>from \\ to |"), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 3);
    assert_eq!(xml.matches("<failure ").count(), 1);
    assert_eq!(xml.matches("<system-out>").count(), 2);
}

#[test]
fn junit_strips_characters_xml_forbids() {
    let mut r = report();
    r.topology = "odd\"<'&>".into();
    r.outcomes[1].failure.as_mut().unwrap().detail = "bell\u{7} nul\u{0} esc\u{1b}\nnext".into();
    r.outcomes[0].report = "\u{FFFE}ok\u{1F}\r\n".into();
    let xml = r.junit();
    assert_well_formed(&xml);
    for bad in ['\u{0}', '\u{7}', '\u{1b}', '\u{1f}', '\u{FFFE}'] {
        assert!(!xml.contains(bad), "{bad:?} kept");
    }
    assert!(
        xml.contains("classname=\"odd&quot;&lt;&apos;&amp;&gt;\""),
        "{xml}"
    );
    assert!(xml.contains("bell nul esc\nnext"), "{xml}");
}

#[test]
fn a_skipped_scenario_is_reported_as_skipped_everywhere() {
    let mut r = report();
    r.outcomes.push(Outcome {
        skipped: Some("the topology has no same-rack pod pair to ping".into()),
        ..pass("same_rack_ping", 2, "")
    });
    assert!(!r.all_passed(), "the failure still fails the run");
    let table = r.table();
    let row = table
        .lines()
        .find(|l| l.starts_with("same_rack_ping"))
        .unwrap();
    assert!(
        row.contains("skip") && row.contains("no same-rack pod pair"),
        "{row}"
    );
    assert_eq!(table.lines().last(), Some("2 passed, 1 failed, 1 skipped"));
    assert!(r.markdown().contains("**2 passed, 1 failed, 1 skipped**"));
    let xml = r.junit();
    assert_well_formed(&xml);
    assert!(
        xml.contains("<skipped message=\"the topology has no same-rack pod pair to ping\"/>"),
        "{xml}"
    );
    let v = r.json();
    assert_eq!(v["skipped"], 1);
    assert_eq!(v["scenarios"][3]["result"], "skipped");
    r.outcomes.remove(1);
    assert!(r.all_passed(), "a skip alone does not fail a run");
}

#[test]
fn json_lists_every_scenario_and_round_trips() {
    let mut r = report();
    r.outcomes.push(pass("not_a_scenario", 1, ""));
    let v = r.json();
    assert_eq!(v["lab"], "ci-42");
    assert_eq!(v["topology"], "two-racks");
    assert_eq!(v["flavor"], "frr");
    assert_eq!(v["started"], "2025-01-02T03:04:05Z");
    assert_eq!(v["passed"], 3);
    assert_eq!(v["failed"], 1);
    let scenarios = v["scenarios"].as_array().unwrap();
    let names: Vec<&str> = scenarios
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "all_pairs_reachability",
            "routes_match_topology",
            "same_host_ping",
            "not_a_scenario"
        ]
    );
    let results: Vec<&str> = scenarios
        .iter()
        .map(|s| s["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["passed", "failed", "passed", "passed"]);

    assert_eq!(scenarios[0]["proves"], proves("all_pairs_reachability"));
    assert_eq!(scenarios[0]["report"], MATRIX);
    assert_eq!(scenarios[0]["seconds"], 12.345);
    assert!(scenarios[0]["diagnosis"].is_null());
    assert!(scenarios[0]["artifacts"].is_null());
    assert_eq!(scenarios[1]["proves"], proves("routes_match_topology"));
    assert_eq!(scenarios[1]["diagnosis"], DIAGNOSIS);
    assert_eq!(scenarios[1]["cause"]["kind"], "route_missing");
    assert_eq!(scenarios[1]["cause"]["device"], "leaf-1");
    assert_eq!(
        scenarios[1]["artifacts"],
        "/tmp/calico-lab/ci-42/routes_match_topology"
    );
    assert_eq!(scenarios[1]["seconds"], 3.21);
    assert_eq!(scenarios[3]["proves"], "");

    let text = serde_json::to_string_pretty(&v).unwrap();
    let back: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back, v);
}

#[test]
fn all_passed_follows_the_outcomes() {
    let mut r = report();
    assert!(!r.all_passed());
    r.outcomes.remove(1);
    assert!(r.all_passed());
    assert_eq!(r.table().lines().last(), Some("2 passed, 0 failed"));
    r.outcomes.clear();
    assert!(r.all_passed());
}
