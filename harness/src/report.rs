//! Reports of a run's scenario outcomes: a terminal table, a Markdown summary (for a
//! CI job summary), JUnit XML (for CI test views) and JSON.

use std::fmt::Write;
use std::time::Duration;

use serde_json::{json, Value};

use crate::scenario::{Outcome, SCENARIOS};

/// The scenario whose report is the reachability matrix, shown in full in Markdown.
const MATRIX_SCENARIO: &str = "all_pairs_reachability";

/// One run of scenarios against one lab.
#[derive(Debug, Clone)]
pub struct Report {
    pub lab: String,
    pub topology: String,
    pub flavor: String,
    /// When the run started: RFC 3339, or any timestamp string the caller chooses.
    pub started: String,
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// True when every outcome passed (and so for a run with no outcomes).
    pub fn all_passed(&self) -> bool {
        self.outcomes.iter().all(Outcome::passed)
    }

    fn counts(&self) -> (usize, usize) {
        let passed = self.outcomes.iter().filter(|o| o.passed()).count();
        (passed, self.outcomes.len() - passed)
    }

    /// A plain-text table for a terminal: SCENARIO, RESULT, DURATION, DIAGNOSIS, with an
    /// `artifacts:` line under each failure and a final `N passed, M failed` line.
    pub fn table(&self) -> String {
        let rows: Vec<[String; 4]> = self
            .outcomes
            .iter()
            .map(|o| {
                [
                    one_line(&o.name),
                    if o.passed() { "pass" } else { "FAIL" }.to_string(),
                    format!("{:.1} s", o.duration.as_secs_f64()),
                    o.failure
                        .as_ref()
                        .map_or_else(String::new, |f| one_line(&f.diagnosis)),
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
        let (passed, failed) = self.counts();
        let _ = writeln!(out, "{passed} passed, {failed} failed");
        out
    }

    /// A GitHub-flavoured Markdown summary: heading, result table, and the reachability
    /// matrix in a collapsed `<details>` block.
    pub fn markdown(&self) -> String {
        let (passed, failed) = self.counts();
        let mut out = format!(
            "## calico-lab `{}`: topology `{}`, flavor `{}`\n\n",
            code_span(&self.lab),
            code_span(&self.topology),
            code_span(&self.flavor)
        );
        let mark = if failed == 0 { "✅" } else { "❌" };
        let _ = writeln!(
            out,
            "{mark} **{passed} passed, {failed} failed** (started {})\n",
            md_cell(&self.started)
        );
        out.push_str("| Scenario | Result | Duration | Diagnosis |\n");
        out.push_str("| --- | --- | ---: | --- |\n");
        for o in &self.outcomes {
            let (result, diagnosis) = match &o.failure {
                None => ("✅ pass", String::new()),
                Some(f) => {
                    let dir = o
                        .artifacts
                        .as_ref()
                        .map_or_else(|| "(none)".into(), |d| md_cell(&d.display().to_string()));
                    (
                        "❌ FAIL",
                        format!("{}<br>artifacts: {dir}", md_cell(&f.diagnosis)),
                    )
                }
            };
            let _ = writeln!(
                out,
                "| `{}` | {result} | {:.1} s | {diagnosis} |",
                code_span(&o.name).replace('|', "\\|"),
                o.duration.as_secs_f64()
            );
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

    /// JUnit XML: one `<testsuite name="calico-lab">`, one `<testcase>` per scenario.
    pub fn junit(&self) -> String {
        let (_, failed) = self.counts();
        let total: Duration = self.outcomes.iter().map(|o| o.duration).sum();
        let head = format!(
            "name=\"calico-lab\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" time=\"{}\"",
            self.outcomes.len(),
            secs(total)
        );
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(out, "<testsuites {head}>");
        let _ = writeln!(out, "  <testsuite {head} skipped=\"0\">");
        out.push_str("    <properties>\n");
        for (name, value) in [
            ("lab", &self.lab),
            ("topology", &self.topology),
            ("flavor", &self.flavor),
            ("started", &self.started),
        ] {
            let _ = writeln!(
                out,
                "      <property name=\"{name}\" value=\"{}\"/>",
                xml_attr(value)
            );
        }
        out.push_str("    </properties>\n");
        for o in &self.outcomes {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
                xml_attr(&self.topology),
                xml_attr(&o.name),
                secs(o.duration)
            );
            if o.passed() && o.report.is_empty() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            if let Some(f) = &o.failure {
                let mut body = f.detail.trim_end().to_string();
                if !body.is_empty() {
                    body.push('\n');
                }
                match &o.artifacts {
                    Some(d) => body.push_str(&format!("artifacts: {}", d.display())),
                    None => body.push_str("artifacts: (none)"),
                }
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"failure\">{}</failure>",
                    xml_attr(&f.diagnosis),
                    xml_text(&body)
                );
            }
            if !o.report.is_empty() {
                let _ = writeln!(
                    out,
                    "      <system-out>{}</system-out>",
                    xml_text(&o.report)
                );
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }

    /// The run as JSON: lab, topology, flavor, started, counts, and one object per
    /// scenario (`diagnosis` and `detail` are null when it passed).
    pub fn json(&self) -> Value {
        let (passed, failed) = self.counts();
        let scenarios: Vec<Value> = self
            .outcomes
            .iter()
            .map(|o| {
                let proves = SCENARIOS
                    .iter()
                    .find(|s| s.name == o.name)
                    .map(|s| s.proves);
                json!({
                    "name": o.name,
                    "proves": proves,
                    "result": if o.passed() { "passed" } else { "failed" },
                    // Whole milliseconds, so the number survives a text round trip.
                    "seconds": o.duration.as_millis() as f64 / 1000.0,
                    "diagnosis": o.failure.as_ref().map(|f| &f.diagnosis),
                    "detail": o.failure.as_ref().map(|f| &f.detail),
                    "artifacts": o.artifacts.as_ref().map(|d| d.display().to_string()),
                    "report": o.report,
                })
            })
            .collect();
        json!({
            "lab": self.lab,
            "topology": self.topology,
            "flavor": self.flavor,
            "started": self.started,
            "passed": passed,
            "failed": failed,
            "scenarios": scenarios,
        })
    }
}

/// Seconds with millisecond precision, as JUnit's `time` attributes carry them.
fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// Text on one terminal line: line breaks and other control characters become spaces.
fn one_line(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
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

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for x in s.chars() {
        run = if x == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Characters XML 1.0 allows in a document.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn xml_escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().filter(|&c| xml_char(c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Parsers normalise a literal CR away, and whitespace in attributes to spaces.
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

fn xml_attr(s: &str) -> String {
    xml_escape(s, true)
}

fn xml_text(s: &str) -> String {
    xml_escape(s, false)
}
