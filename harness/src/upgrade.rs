//! The Calico upgrade gate: the lab at version A and the scenarios, calico-node rolled
//! to version B node by node under continuous traffic, the scenarios again, and what
//! changed in every device's routes, grouped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write};
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::Serialize;
use serde_json::{json, Value};

use crate::calico::CalicoVersion;
use crate::check;
use crate::error::Result;
use crate::expect::PathClass;
use crate::job::check_lab;
use crate::lab::{Lab, LabOptions, Progress};
use crate::observe::{self, RouteAttributes, RoutingState};
use crate::report::Report;
use crate::scenario::Scenario;
use crate::topology::Topology;
use crate::traffic::{self, PairLoss, Traffic};

/// One upgrade to gate.
#[derive(Debug, Clone)]
pub struct Upgrade {
    /// The lab, at the version upgraded from (`calico.version`).
    pub topology: Topology,
    pub to: CalicoVersion,
    pub options: LabOptions,
    pub scenarios: Vec<&'static Scenario>,
    /// The budget of each convergence wait.
    pub wait: Duration,
    /// The longest window without replies any pair may see during the rollout.
    pub loss_budget: Duration,
    /// Differences in the routes fail the gate too.
    pub strict: bool,
}

/// A change in the routes between the two versions, over every route it touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// `LOCAL_PREF`, `MED`, `AS path`, `next hops`, `kernel metric`, `presence`.
    pub attribute: String,
    /// `leafs`, `spines`, `nodes`.
    pub devices: String,
    /// `node blocks`, `service CIDRs`, `fabric subnets`, `pod addresses`, `other routes`.
    pub routes: String,
    pub before: String,
    pub after: String,
    pub count: usize,
    /// A few of them, as `device prefix`.
    pub examples: Vec<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} on {}: {} -> {} ({} route{}, e.g. {})",
            self.attribute,
            self.routes,
            self.devices,
            self.before,
            self.after,
            self.count,
            if self.count == 1 { "" } else { "s" },
            self.examples.join(", ")
        )
    }
}

/// What the gate saw.
#[derive(Debug, Clone)]
pub struct UpgradeReport {
    pub from: CalicoVersion,
    pub to: CalicoVersion,
    pub before: Report,
    pub after: Report,
    /// Each traffic pair during the rollout.
    pub rollout: Vec<PairLoss>,
    pub loss_budget: Duration,
    pub differences: Vec<Difference>,
    pub strict: bool,
}

impl UpgradeReport {
    /// The worst loss window of the rollout is within budget.
    pub fn loss_within_budget(&self) -> bool {
        traffic::worst(&self.rollout)
            .is_none_or(|w| u128::from(w.longest_gap_ms) <= self.loss_budget.as_millis())
    }

    /// The scenarios pass at the new version, loss stays within budget, and (strict)
    /// nothing changed.
    pub fn passed(&self) -> bool {
        self.after.all_passed()
            && self.loss_within_budget()
            && (!self.strict || self.differences.is_empty())
    }

    /// The terminal report.
    pub fn text(&self) -> String {
        let mut out = format!("Calico {} -> {}\n\nat {}:\n", self.from, self.to, self.from);
        out.push_str(&self.before.table());
        let _ = writeln!(
            out,
            "\nrollout, node by node, under traffic (budget {} ms):",
            self.loss_budget.as_millis()
        );
        for l in &self.rollout {
            let _ = writeln!(
                out,
                "  {} -> {}: {}/{} answered, longest window without replies {} ms",
                l.from, l.to, l.received, l.sent, l.longest_gap_ms
            );
        }
        let _ = writeln!(out, "\nat {}:", self.to);
        out.push_str(&self.after.table());
        let _ = writeln!(
            out,
            "\ndifferences in the routes ({}):",
            self.differences.len()
        );
        if self.differences.is_empty() {
            out.push_str("  none\n");
        }
        for d in &self.differences {
            let _ = writeln!(out, "  {d}");
        }
        let _ = writeln!(
            out,
            "\nupgrade {}",
            if self.passed() { "passed" } else { "FAILED" }
        );
        out
    }

    pub fn json(&self) -> Value {
        json!({
            "from": self.from.to_string(),
            "to": self.to.to_string(),
            "passed": self.passed(),
            "before": self.before.json(),
            "after": self.after.json(),
            "loss_budget_ms": self.loss_budget.as_millis() as u64,
            "rollout": self.rollout,
            "differences": self.differences,
            "strict": self.strict,
        })
    }

    /// JUnit: the scenarios at each version as a suite each, and a suite `upgrade`
    /// whose cases are the rollout's loss (each pair's longest window as a
    /// property) and the differences in the routes (failing only with `strict`).
    pub fn junit(&self) -> String {
        use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
        let failure = |message: String| {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(crate::report::xml_safe(&message));
            status
        };
        let mut suite = TestSuite::new("upgrade");
        suite.add_properties([
            Property::new("from", self.from.to_string()),
            Property::new("to", self.to.to_string()),
            Property::new("loss budget ms", self.loss_budget.as_millis().to_string()),
        ]);
        let worst = traffic::worst(&self.rollout).map_or(0, |w| w.longest_gap_ms);
        let mut loss = TestCase::new(
            "rollout_loss_within_budget",
            if self.loss_within_budget() {
                TestCaseStatus::success()
            } else {
                failure(format!(
                    "longest window without replies {worst} ms > budget {} ms",
                    self.loss_budget.as_millis()
                ))
            },
        );
        for l in &self.rollout {
            loss.add_property(Property::new(
                format!("{} -> {}", l.from, l.to),
                format!(
                    "{}/{} answered, longest window {} ms",
                    l.received, l.sent, l.longest_gap_ms
                ),
            ));
        }
        suite.add_test_case(loss);
        let listed: Vec<String> = self.differences.iter().map(|d| d.to_string()).collect();
        let mut diffs = TestCase::new(
            "route_differences",
            if self.strict && !listed.is_empty() {
                failure(format!("{} difference(s) with --strict", listed.len()))
            } else {
                TestCaseStatus::success()
            },
        );
        diffs.set_system_out(crate::report::xml_safe(&if listed.is_empty() {
            "none".to_string()
        } else {
            listed.join("\n")
        }));
        suite.add_test_case(diffs);
        let mut report = quick_junit::Report::new("calico-lab upgrade");
        report.add_test_suite(self.before.junit_suite(&format!("at {}", self.from)));
        report.add_test_suite(self.after.junit_suite(&format!("at {}", self.to)));
        report.add_test_suite(suite);
        report
            .to_string()
            .unwrap_or_else(|e| format!("<!-- JUnit report not serialised: {e} -->\n"))
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "## Calico upgrade {} -> {}: {}\n\n",
            self.from,
            self.to,
            if self.passed() {
                "✅ passed"
            } else {
                "❌ FAILED"
            }
        );
        let _ = writeln!(out, "### At {}\n\n{}", self.from, self.before.markdown());
        let _ = writeln!(
            out,
            "### Rollout under traffic (budget {} ms)\n\n| From | To | Answered | Longest window without replies |\n| --- | --- | ---: | ---: |",
            self.loss_budget.as_millis()
        );
        for l in &self.rollout {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {}/{} | {} ms |",
                l.from, l.to, l.received, l.sent, l.longest_gap_ms
            );
        }
        let _ = writeln!(out, "\n### At {}\n\n{}", self.to, self.after.markdown());
        out.push_str("### Differences in the routes\n\n");
        if self.differences.is_empty() {
            out.push_str("none\n");
        }
        for d in &self.differences {
            let _ = writeln!(out, "- {d}");
        }
        out
    }
}

impl Upgrade {
    /// Runs the gate. The lab is torn down at the end unless the keep policy says
    /// otherwise.
    pub async fn run(self) -> Result<UpgradeReport> {
        let from = self.topology.calico_version();
        let progress = self.options.progress.clone();
        let mut lab = Lab::up(self.topology.clone(), self.options).await?;
        progress.step(&format!("at {from}"));
        let before = check_lab(&mut lab, &self.scenarios, self.wait, &progress).await?;
        let state_before = observe::routing_state(&lab).await?;
        let rollout = roll_under_traffic(&mut lab, self.to, self.wait, &progress).await?;
        progress.step(&format!("at {}", self.to));
        let after = check_lab(&mut lab, &self.scenarios, self.wait, &progress).await?;
        let state_after = observe::routing_state(&lab).await?;
        let differences = differences(&lab, &state_before, &state_after);
        let report = UpgradeReport {
            from,
            to: self.to,
            before,
            after,
            rollout,
            loss_budget: self.loss_budget,
            differences,
            strict: self.strict,
        };
        if !report.passed() {
            lab.mark_failed();
        }
        Ok(report)
    }
}

/// The longest window without replies a pair may see while calico-node rolls,
/// unless the caller says otherwise. A stopped BIRD closes its sessions (the leaf
/// withdraws the node's block); the new one connects after Calico's `connect delay
/// time 2`, and after `connect retry time 5` more when that first attempt
/// collides: about 7 s at worst (measured 1.6 to 5.9 s on the seed).
pub const LOSS_BUDGET: Duration = Duration::from_secs(10);

/// Rolls calico-node to `to` node by node, as a DaemonSet does (each node's
/// sessions back before the next), under continuous cross-rack traffic (same-rack
/// on a one-rack lab); returns what each pair lost.
pub async fn roll_under_traffic(
    lab: &mut Lab,
    to: CalicoVersion,
    wait: Duration,
    progress: &Progress,
) -> Result<Vec<PairLoss>> {
    let mut pairs = lab.pod_pairs(PathClass::CrossRack);
    if pairs.is_empty() {
        pairs = lab.pod_pairs(PathClass::SameRack);
    }
    let running = Traffic::start(lab, &pairs, traffic::INTERVAL).await?;
    if let Some(note) = running.spread_note() {
        progress.step(&note);
    }
    let nodes: Vec<String> = lab
        .topology()
        .nodes()
        .map(|(_, n)| n.name.clone())
        .collect();
    let rolled = async {
        for node in &nodes {
            progress.step(&format!("rolling calico-node on {node} to {to}"));
            lab.roll_calico_node(node, to).await?;
            lab.wait_for_calico(wait).await?;
        }
        Ok::<_, crate::Error>(())
    }
    .await;
    let rollout = running.stop().await?;
    rolled?;
    Ok(rollout)
}

/// What kind of route a prefix is, as differences name it.
fn route_kind(lab: &Lab, prefix: &str) -> &'static str {
    // `ip -j route` shows a host route without its `/32`.
    let net = match (
        prefix.parse::<Ipv4Net>(),
        prefix.parse::<std::net::Ipv4Addr>(),
    ) {
        (Ok(net), _) => net,
        (_, Ok(ip)) => Ipv4Net::from(ip),
        _ => return "other routes",
    };
    let t = lab.topology();
    if check::pools(lab.calico()).iter().any(|p| p.contains(&net)) {
        return if net.prefix_len() == 32 {
            "pod addresses"
        } else {
            "node blocks"
        };
    }
    let services = t
        .calico
        .service_cluster_ips
        .iter()
        .chain(&t.calico.service_external_ips);
    if services.into_iter().any(|s| s.contains(&net)) {
        return "service CIDRs";
    }
    if t.routers()
        .any(|(_, r)| t.announced_networks(&r.name).contains(&net))
    {
        return "fabric subnets";
    }
    "other routes"
}

/// The values of one attribute over a route's paths, as one text.
fn values(paths: &[RouteAttributes], attribute: &str) -> String {
    let set: BTreeSet<String> = paths
        .iter()
        .map(|p| match attribute {
            "LOCAL_PREF" => p.local_pref.map_or("-".into(), |v| v.to_string()),
            "MED" => p.med.map_or("-".into(), |v| v.to_string()),
            "AS path" => p.as_path.clone(),
            "next hops" => p.next_hops.join(" "),
            _ => p.metric.map_or("-".into(), |v| v.to_string()),
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(", ")
}

/// Every change between two routing states, grouped by attribute, device role, kind
/// of route and the change itself.
pub fn differences(lab: &Lab, before: &RoutingState, after: &RoutingState) -> Vec<Difference> {
    type Key = (String, String, &'static str, String, String);
    let mut groups: BTreeMap<Key, Vec<String>> = BTreeMap::new();
    let devices: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let empty = BTreeMap::new();
    for device in devices {
        let role = match check::role(lab.topology(), device) {
            crate::diagnosis::Role::Leaf => "leafs",
            crate::diagnosis::Role::Spine => "spines",
            crate::diagnosis::Role::Node => "nodes",
        };
        let (a, b) = (
            before.get(device).unwrap_or(&empty),
            after.get(device).unwrap_or(&empty),
        );
        let prefixes: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for prefix in prefixes {
            let kind = route_kind(lab, prefix);
            let mut note = |attribute: &str, was: String, now: String| {
                groups
                    .entry((attribute.to_string(), role.to_string(), kind, was, now))
                    .or_default()
                    .push(format!("{device} {prefix}"));
            };
            match (a.get(prefix), b.get(prefix)) {
                (Some(x), Some(y)) => {
                    for attribute in ["LOCAL_PREF", "MED", "AS path", "next hops", "kernel metric"]
                    {
                        let (was, now) = (values(x, attribute), values(y, attribute));
                        if was != now {
                            note(attribute, was, now);
                        }
                    }
                }
                (Some(_), None) => note("presence", "present".into(), "absent".into()),
                (None, Some(_)) => note("presence", "absent".into(), "present".into()),
                (None, None) => {}
            }
        }
    }
    groups
        .into_iter()
        .map(
            |((attribute, devices, routes, before, after), list)| Difference {
                attribute,
                devices,
                routes: routes.to_string(),
                before,
                after,
                count: list.len(),
                examples: list.into_iter().take(3).collect(),
            },
        )
        .collect()
}
