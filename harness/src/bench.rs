//! What `calico-lab bench` measures beyond a lab's own timings: the same lab's
//! daemons brought up by a minimal script in plain network namespaces (the
//! baseline), and the memory of a lab's containers.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;

use crate::backend::docker::{
    self, ContainerSpec, LABEL_DEVICE, LABEL_FLAVOR, LABEL_LAB, LABEL_ROLE, LABEL_RUN,
};
use crate::backend::emulated::render_node;
use crate::backend::image;
use crate::backend::ownership::RunId;
use crate::calico::emulated::{pod_script, pods, starting_resources, CalicoState};
use crate::error::{Error, Result};
use crate::expect;
use crate::lab::Lab;
use crate::render::frr_conf;
use crate::topology::Topology;
use crate::wiring::{WiringPlan, FABRIC_DEVICE};

/// The baseline script, kept in the repository as `bench/minimal.sh`.
pub const MINIMAL_SCRIPT: &str = include_str!("../../bench/minimal.sh");
const BUNDLE: &str = "/bundle";

/// What the minimal script needs, rendered from the topology as the harness
/// renders it for its own containers: `(path, contents)` under `/bundle`.
pub fn minimal_bundle(t: &Topology) -> Result<Vec<(String, Vec<u8>)>> {
    let calico = starting_resources(t, CalicoState::Configured)?;
    let version = t.calico_version();
    let sessions = expect::sessions(t, &calico);
    let count = |device: &str| sessions.get(device).map_or(0, |s| s.len());
    let mut devices = format!("{FABRIC_DEVICE} fabric 0\n");
    let mut files = Vec::new();
    for (_, router) in t.routers() {
        devices += &format!("{} router {}\n", router.name, count(&router.name));
        files.push((
            format!("{BUNDLE}/frr/{}.conf", router.name),
            frr_conf(t, &router.name).into_bytes(),
        ));
    }
    let all_pods = pods(t, &calico);
    for (_, node) in t.nodes() {
        devices += &format!("{} node {}\n", node.name, count(&node.name));
        for (name, text) in render_node(&calico, &node.name, version)?.files() {
            files.push((
                format!("{BUNDLE}/bird/{}/{name}", node.name),
                text.as_bytes().to_vec(),
            ));
        }
        let mine: Vec<_> = all_pods.iter().filter(|p| p.node == node.name).collect();
        files.push((
            format!("{BUNDLE}/pods/{}.sh", node.name),
            pod_script(&mine, version.workload_route_metric()).into_bytes(),
        ));
    }
    files.push((format!("{BUNDLE}/devices"), devices.into_bytes()));
    files.push((
        format!("{BUNDLE}/wiring.sh"),
        WiringPlan::new(t).netns_script().into_bytes(),
    ));
    files.push((
        format!("{BUNDLE}/minimal.sh"),
        MINIMAL_SCRIPT.as_bytes().to_vec(),
    ));
    Ok(files)
}

/// What the minimal script reports, each from its start.
#[derive(Debug, Clone, Copy)]
pub struct Minimal {
    /// Every daemon and pod started.
    pub started: Duration,
    /// Every BGP session Established.
    pub established: Duration,
}

/// Runs the minimal script on `t` in one container named `name` (removed
/// afterwards, whatever happens); returns the times it reports.
pub async fn minimal(t: &Topology, name: &str) -> Result<Minimal> {
    let engine = docker::connect().await?;
    let image = image::ensure_image(&engine).await?;
    let spec = ContainerSpec {
        name: name.to_string(),
        hostname: "minimal".into(),
        image: image.tag,
        // Ends by itself should this process die before removing it.
        cmd: vec!["sleep".into(), "600".into()],
        labels: HashMap::from([
            (LABEL_LAB.to_string(), name.to_string()),
            (LABEL_RUN.to_string(), RunId::current().0),
            (LABEL_DEVICE.to_string(), "minimal".to_string()),
            (LABEL_ROLE.to_string(), "helper".to_string()),
            (LABEL_FLAVOR.to_string(), "emulated".to_string()),
        ]),
        files: minimal_bundle(t)?,
        ..ContainerSpec::default()
    };
    let ran = async {
        docker::run(&engine, &spec).await?;
        let script = format!("{BUNDLE}/minimal.sh");
        docker::exec(&engine, name, &["sh", &script, BUNDLE]).await
    }
    .await;
    docker::remove(&engine, std::slice::from_ref(&spec.name)).await?;
    let out = ran?;
    let failed = || Error::Lab {
        lab: name.to_string(),
        message: format!(
            "the minimal script failed ({}): {}{}",
            out.exit_code, out.stdout, out.stderr
        ),
    };
    if !out.success() {
        return Err(failed());
    }
    let figure = |what: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(what)?.strip_suffix("ms")?.parse().ok())
            .map(Duration::from_millis)
            .ok_or_else(failed)
    };
    Ok(Minimal {
        started: figure("started ")?,
        established: figure("established ")?,
    })
}

/// The memory a lab's containers hold, from the engine's one-shot statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    pub containers: usize,
    /// Anonymous memory (the processes' own: what RSS counts, less file pages).
    pub anon_bytes: u64,
    /// Everything the containers' cgroups are charged (page cache included).
    pub charged_bytes: u64,
}

/// The memory of every member of `lab`.
pub async fn memory(lab: &Lab) -> Result<Memory> {
    let engine = docker::connect().await?;
    let options = bollard::query_parameters::StatsOptionsBuilder::default()
        .stream(false)
        .one_shot(true)
        .build();
    let reads = lab.members().iter().map(|m| {
        let (engine, options) = (&engine, options.clone());
        async move {
            let mut stream = engine.stats(&m.container, Some(options));
            match stream.next().await {
                Some(Ok(stats)) => Ok(stats.memory_stats.unwrap_or_default()),
                Some(Err(e)) => Err(Error::docker(format!("stats of {}", m.container))(e)),
                None => Err(Error::Lab {
                    lab: lab.name().to_string(),
                    message: format!("no statistics for {}", m.container),
                }),
            }
        }
    });
    let mut total = Memory::default();
    for stats in futures_util::future::join_all(reads).await {
        let stats = stats?;
        let stat = |k: &str| stats.stats.as_ref().and_then(|s| s.get(k).copied());
        total.containers += 1;
        // cgroup v2 names it `anon`, v1 `rss`.
        total.anon_bytes += stat("anon").or_else(|| stat("rss")).unwrap_or(0);
        total.charged_bytes += stats.usage.unwrap_or(0);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_holds_every_device_and_the_netns_wiring() {
        let t = Topology::seed();
        let files = minimal_bundle(&t).unwrap();
        let text = |path: &str| {
            let (_, bytes) = files
                .iter()
                .find(|(p, _)| p == &format!("{BUNDLE}/{path}"))
                .unwrap_or_else(|| panic!("{path} missing"));
            String::from_utf8(bytes.clone()).unwrap()
        };
        let devices = text("devices");
        assert_eq!(
            devices.lines().count(),
            1 + t.routers().count() + t.nodes().count()
        );
        // A leaf: its spines and its racks' nodes.
        assert!(devices.contains("leaf0 router 4\n"), "{devices}");
        assert!(
            devices.contains("calico-bgp-rr-worker node 1\n"),
            "{devices}"
        );
        let wiring = text("wiring.sh");
        assert!(wiring.contains("netns leaf0 type veth"), "{wiring}");
        assert!(wiring.contains("ip -n fabric -batch -"), "{wiring}");
        assert!(!wiring.contains("nsenter"), "{wiring}");
        assert!(text("frr/spine0.conf").contains("router bgp"));
        assert!(text("bird/calico-bgp-rr-worker/bird.cfg").contains("protocol"));
        assert!(text("pods/calico-bgp-rr-worker.sh").contains("netns add"));
        assert_eq!(text("minimal.sh"), MINIMAL_SCRIPT);
    }
}
