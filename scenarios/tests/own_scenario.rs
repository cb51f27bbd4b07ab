//! The README's "Write your own scenario" example, verbatim: it must compile and pass.

use calico_lab::PathClass;
use calico_lab_scenarios::{shared_lab, SharedLab};
use rstest::rstest;

/// Pods in different racks answer, through node, leaf, spine, leaf, node.
#[rstest]
#[tokio::test(flavor = "multi_thread")]
async fn cross_rack_pods_answer_through_one_spine(#[future(awt)] shared_lab: SharedLab) {
    let lab = &*shared_lab;
    let spines = &lab.topology().spines;
    for (from, to) in lab.pod_pairs(PathClass::CrossRack) {
        let ping = lab.ping(&from, &to).await.unwrap();
        assert!(ping.all_received(), "{} -> {}", from.name, to.name);
        // node, leaf, spine, leaf, node, then the pod itself
        let path = lab.path(&from, &to).await.unwrap();
        assert_eq!(path.len(), 6, "{path:?}");
        assert!(spines.iter().any(|s| s.name == path[2]), "{path:?}");
    }
    for leaf in &lab.topology().leafs {
        let sessions = lab.sessions(&leaf.name).await.unwrap();
        assert!(
            sessions.values().all(|s| s == "Established"),
            "{sessions:?}"
        );
    }
}
