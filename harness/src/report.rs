//! Reports of a run's scenario outcomes: a terminal table, a Markdown summary (for a
//! CI job summary), JUnit XML (for CI test views) and JSON.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
use serde_json::{json, Value};

use crate::scenario::Outcome;

/// The scenario whose report is the reachability matrix, shown in full in Markdown.
const MATRIX_SCENARIO: &str = "all_pairs_reachability";

/// One run of scenarios against one lab.
#[derive(Debug, Clone)]
pub struct Report {
    pub lab: String,
    pub topology: String,
    pub flavor: String,
    pub started: DateTime<Utc>,
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// True when no outcome failed (and so for a run with no outcomes).
    pub fn all_passed(&self) -> bool {
        self.outcomes.iter().all(Outcome::passed)
    }

    /// Passed, failed and skipped scenarios.
    pub fn counts(&self) -> (usize, usize, usize) {
        let skipped = self.outcomes.iter().filter(|o| o.skipped.is_some()).count();
        let failed = self.outcomes.iter().filter(|o| !o.passed()).count();
        (self.outcomes.len() - failed - skipped, failed, skipped)
    }

    /// `N passed, M failed` (`, K skipped` when some were).
    pub fn summary(&self) -> String {
        let (passed, failed, skipped) = self.counts();
        let mut line = format!("{passed} passed, {failed} failed");
        if skipped > 0 {
            let _ = write!(line, ", {skipped} skipped");
        }
        line
    }

    fn started_text(&self) -> String {
        self.started
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// A plain-text table for a terminal: SCENARIO, RESULT, DURATION, DIAGNOSIS (a
    /// skip's reason there), with an `artifacts:` line under each failure and the
    /// summary line last.
    pub fn table(&self) -> String {
        let rows: Vec<[String; 4]> = self
            .outcomes
            .iter()
            .map(|o| {
                let (result, note) = match (&o.failure, &o.skipped) {
                    (Some(f), _) => ("FAIL", one_line(&f.diagnosis.to_string())),
                    (None, Some(reason)) => ("skip", one_line(reason)),
                    (None, None) => ("pass", String::new()),
                };
                [
                    one_line(&o.name),
                    result.to_string(),
                    format!("{:.1} s", o.duration.as_secs_f64()),
                    note,
                ]
            })
            .collect();
        let header = ["SCENARIO", "RESULT", "DURATION", "DIAGNOSIS"].map(String::from);
        let mut widths = [0; 3];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |row: &[String; 4]| {
            let [name, result, duration, diagnosis] = row;
            let (w0, w1, w2) = (widths[0], widths[1], widths[2]);
            let text = format!("{name:<w0$}  {result:<w1$}  {duration:>w2$}  {diagnosis}");
            text.trim_end().to_string()
        };
        let indent = " ".repeat(widths.iter().sum::<usize>() + 6);
        let mut out = line(&header) + "\n";
        for (row, o) in rows.iter().zip(&self.outcomes) {
            out.push_str(&line(row));
            out.push('\n');
            if !o.passed() {
                let dir = o
                    .artifacts
                    .as_ref()
                    .map_or_else(|| "(none)".into(), |d| one_line(&d.display().to_string()));
                let _ = writeln!(out, "{indent}artifacts: {dir}");
            }
        }
        let _ = writeln!(out, "{}", self.summary());
        out
    }

    /// A GitHub-flavoured Markdown summary: heading, result table, and the reachability
    /// matrix in a collapsed `<details>` block.
    pub fn markdown(&self) -> String {
        let (_, failed, _) = self.counts();
        let mut out = format!(
            "## calico-lab `{}`: topology `{}`, flavor `{}`\n\n",
            code_span(&self.lab),
            code_span(&self.topology),
            code_span(&self.flavor)
        );
        let mark = if failed == 0 { "✅" } else { "❌" };
        let _ = writeln!(
            out,
            "{mark} **{}** (started {})\n",
            self.summary(),
            md_cell(&self.started_text())
        );
        out.push_str(MARKDOWN_HEADER);
        for o in &self.outcomes {
            out.push_str(&markdown_row(o));
        }
        for o in &self.outcomes {
            // A failed run keeps its matrix in the failure's detail.
            let matrix = o.failure.as_ref().map_or(&o.report, |f| &f.detail);
            if o.name == MATRIX_SCENARIO && !matrix.is_empty() {
                let fence = "`".repeat(longest_run(matrix, '`').max(2) + 1);
                let _ = write!(
                    out,
                    "\n<details>\n<summary>Reachability matrix ({})</summary>\n\n{fence}text\n{}\n{fence}\n\n</details>\n",
                    o.name,
                    matrix.trim_end_matches('\n')
                );
            }
        }
        out
    }

    /// JUnit XML (quick-junit): one `<testsuite name="calico-lab">` with the run's
    /// properties, one `<testcase>` per scenario; a failure's message is its
    /// diagnosis, its body the detail and artifact folder.
    pub fn junit(&self) -> String {
        let mut report = quick_junit::Report::new("calico-lab");
        report.set_timestamp(self.started);
        report.add_test_suite(self.junit_suite("calico-lab"));
        report
            .to_string()
            .unwrap_or_else(|e| format!("<!-- JUnit report not serialised: {e} -->\n"))
    }

    /// The scenarios as one JUnit test suite named `name`.
    pub fn junit_suite(&self, name: &str) -> TestSuite {
        let mut suite = TestSuite::new(name);
        suite.add_properties([
            Property::new("lab", self.lab.as_str()),
            Property::new("topology", self.topology.as_str()),
            Property::new("flavor", self.flavor.as_str()),
            Property::new("started", self.started_text()),
        ]);
        suite.set_timestamp(self.started);
        suite.set_time(self.outcomes.iter().map(|o| o.duration).sum());
        for o in &self.outcomes {
            let status = match (&o.failure, &o.skipped) {
                (Some(f), _) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(xml_safe(&f.diagnosis.to_string()));
                    status.set_type("failure");
                    let artifacts = o
                        .artifacts
                        .as_ref()
                        .map_or_else(|| "(none)".into(), |d| d.display().to_string());
                    let detail = f.detail.trim_end();
                    status.set_description(xml_safe(&if detail.is_empty() {
                        format!("artifacts: {artifacts}")
                    } else {
                        format!("{detail}\nartifacts: {artifacts}")
                    }));
                    status
                }
                (None, Some(reason)) => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(xml_safe(reason));
                    status
                }
                (None, None) => TestCaseStatus::success(),
            };
            let mut case = TestCase::new(o.name.as_str(), status);
            case.set_classname(self.topology.as_str());
            case.set_time(o.duration);
            if !o.report.is_empty() {
                case.set_system_out(xml_safe(&o.report));
            }
            suite.add_test_case(case);
        }
        suite
    }

    /// The run as JSON: lab, topology, flavor, started, counts, and one object per
    /// scenario (`diagnosis`, `cause` and `detail` are null unless it failed).
    pub fn json(&self) -> Value {
        let (passed, failed, skipped) = self.counts();
        let scenarios: Vec<Value> = self
            .outcomes
            .iter()
            .map(|o| {
                let result = match (&o.failure, &o.skipped) {
                    (Some(_), _) => "failed",
                    (None, Some(_)) => "skipped",
                    (None, None) => "passed",
                };
                json!({
                    "name": o.name,
                    "proves": o.proves,
                    "result": result,
                    // Whole milliseconds, so the number survives a text round trip.
                    "seconds": o.duration.as_millis() as f64 / 1000.0,
                    "diagnosis": o.failure.as_ref().map(|f| f.diagnosis.to_string()),
                    "cause": o.failure.as_ref().map(|f| &f.diagnosis),
                    "detail": o.failure.as_ref().map(|f| &f.detail),
                    "skipped": o.skipped,
                    "artifacts": o.artifacts.as_ref().map(|d| d.display().to_string()),
                    "report": o.report,
                })
            })
            .collect();
        json!({
            "lab": self.lab,
            "topology": self.topology,
            "flavor": self.flavor,
            "started": self.started_text(),
            "passed": passed,
            "failed": failed,
            "skipped": skipped,
            "scenarios": scenarios,
        })
    }
}

/// Text on one terminal line: line breaks and other control characters become spaces.
fn one_line(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The header of the Markdown scenario table.
pub const MARKDOWN_HEADER: &str =
    "| Scenario | Result | Duration | Diagnosis |\n| --- | --- | ---: | --- |\n";

/// One scenario's row of the Markdown table (a test runner appends rows to a job
/// summary as scenarios end).
pub fn markdown_row(o: &Outcome) -> String {
    let (result, diagnosis) = match (&o.failure, &o.skipped) {
        (Some(f), _) => {
            let dir = o
                .artifacts
                .as_ref()
                .map_or_else(|| "(none)".into(), |d| md_cell(&d.display().to_string()));
            (
                "❌ FAIL",
                format!("{}<br>artifacts: {dir}", md_cell(&f.diagnosis.to_string())),
            )
        }
        (None, Some(reason)) => ("⏭️ skip", md_cell(reason)),
        (None, None) => ("✅ pass", String::new()),
    };
    format!(
        "| `{}` | {result} | {:.1} s | {diagnosis} |\n",
        code_span(&o.name).replace('|', "\\|"),
        o.duration.as_secs_f64()
    )
}

/// Text safe in a backtick code span (inside a table cell, pipes need escaping too).
fn code_span(s: &str) -> String {
    one_line(s).replace('`', "'")
}

/// Text safe in a Markdown table cell: pipes, HTML and inline markup escaped.
fn md_cell(s: &str) -> String {
    let mut out = String::new();
    for c in one_line(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Text without the characters XML 1.0 forbids (control characters but tab, newline
/// and carriage return).
pub(crate) fn xml_safe(s: &str) -> String {
    s.chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..))
        .collect()
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for x in s.chars() {
        run = if x == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}
