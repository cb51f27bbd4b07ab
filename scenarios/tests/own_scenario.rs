use calico_lab::expect::{path, path_matches};
use calico_lab::PathClass;
use calico_lab_scenarios::{shared_lab, SharedLab};
use rstest::rstest;

/// Pods in different racks answer, along the path the fabric design gives.
#[rstest]
#[tokio::test(flavor = "multi_thread")]
async fn cross_rack_pods_answer_along_the_designed_path(#[future(awt)] shared_lab: SharedLab) {
    let lab = &*shared_lab;
    for (from, to) in lab.pod_pairs(PathClass::CrossRack) {
        let ping = lab.ping(&from, &to).await.unwrap();
        assert!(ping.all_received(), "{} -> {}", from.name, to.name);
        let want = path(lab.topology(), &from, &to).unwrap();
        let seen = lab.path(&from, &to).await.unwrap();
        let (pod, hops) = seen.split_last().unwrap();
        assert!(
            pod == &to.name && path_matches(lab.topology(), &want, hops),
            "{seen:?}"
        );
    }
    for leaf in &lab.topology().leafs {
        let sessions = lab.sessions(&leaf.name).await.unwrap();
        assert!(
            sessions.values().all(|s| s == "Established"),
            "{sessions:?}"
        );
    }
}
