//! The named scenarios, one test each, on the lab `CALICO_LAB_TOPOLOGY` names (the
//! seed lab by default). Each test's name is the claim it checks; see
//! `calico_lab::scenario::SCENARIOS` for what each proves.

use calico_lab::scenario::SCENARIOS;
use calico_lab_scenarios::{check, lab, TestLab};
use rstest::rstest;

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[rstest]
            #[tokio::test(flavor = "multi_thread")]
            async fn $name(#[future(awt)] lab: TestLab) {
                let mut lab = lab;
                check(&mut lab, stringify!($name)).await;
            }
        )*
        const TESTED: &[&str] = &[$(stringify!($name)),*];
    };
}

scenarios! {
    bgp_neighbors_match_topology,
    no_node_to_node_mesh,
    routes_match_topology,
    same_host_ping,
    same_rack_ping,
    cross_rack_ping,
    same_rack_path_stays_in_rack,
    cross_rack_path_crosses_one_spine,
    all_pairs_reachability,
    service_cidrs_advertised,
}

#[test]
fn every_scenario_has_its_test() {
    let named: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
    assert_eq!(named, TESTED);
}
