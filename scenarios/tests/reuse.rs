//! `CALICO_LAB_REUSE=1`: test processes share one running lab per topology; a process
//! joins the lab an earlier one brought up, and a shared lab that went stale (a
//! member stopped) is refused rather than trusted.

use calico_lab::backend::{docker, ownership};
use calico_lab_scenarios::shared_lab;

#[tokio::test(flavor = "multi_thread")]
async fn a_shared_lab_is_joined_and_a_stale_one_refused() {
    std::env::set_var("CALICO_LAB_REUSE", "1");
    std::env::set_var("CALICO_LAB_WAIT", "20");
    let topology = calico_lab_scenarios::topology().unwrap();
    let name = format!("reuse-{}", &topology.hash()[..12]);
    let spine = topology.spines[0].name.clone();
    // Start from nothing, as a first test process would.
    ownership::down(&name).await.unwrap();

    let first = shared_lab().await;
    assert_eq!(first.name(), name);
    let run = first.run_id().to_string();
    drop(first);
    // The handle did not tear it down; the next process joins the same run.
    let second = shared_lab().await;
    assert_eq!(second.name(), name);
    assert_eq!(second.run_id(), run, "joined, not brought up again");
    drop(second);

    // A member stops: the next process must not take the lab as healthy.
    let engine = docker::connect().await.unwrap();
    engine
        .stop_container(&format!("{name}-{spine}"), None)
        .await
        .unwrap();
    let stale = tokio::spawn(shared_lab()).await;
    ownership::down(&name).await.unwrap();
    let err = stale.err().expect("a stale shared lab is refused");
    assert!(err.is_panic());
    let message = err.into_panic();
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("the lab did not come up"), "{text}");
    // Refused for what it is, not after a convergence wait.
    assert!(
        text.contains(&format!("is stale ({name}-{spine} is exited)")),
        "{text}"
    );
}
