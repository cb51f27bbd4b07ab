//! What the kind flavor checks before it creates anything, each problem with its fix.

use std::fmt;

use async_trait::async_trait;

/// The oldest kind whose `kubeadmConfigPatches` set kubelet's `node-ip` as the seed
/// does (kind v0.20 ran the seed).
pub const MIN_KIND: (u32, u32) = (0, 20);
/// kind's documented minimums for multi-node clusters.
pub const MIN_INOTIFY_WATCHES: u64 = 524_288;
pub const MIN_INOTIFY_INSTANCES: u64 = 512;

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub check: &'static str,
    pub found: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}\n    fix: {}", self.check, self.found, self.fix)
    }
}

/// What the checks ask of the machine (the real one, or a fake in tests).
#[async_trait]
pub trait Environment: Send + Sync {
    /// `kind version`'s output, or why it could not be had.
    async fn kind_version(&self) -> Result<String, String>;
    /// The kind clusters that exist (`kind get clusters`).
    async fn kind_clusters(&self) -> Result<Vec<String>, String>;
    /// Whether the engine creates a privileged container (`Err` says why not).
    async fn privileged_allowed(&self) -> Result<(), String>;
    /// `fs.inotify.max_user_watches` and `max_user_instances`.
    fn inotify(&self) -> Option<(u64, u64)>;
    /// Whether the manifest is cached, or else whether its URL answers.
    async fn manifest_reachable(&self, url: &str) -> Result<(), String>;
    /// Whether the image is present or can be pulled.
    async fn image_available(&self, image: &str) -> Result<(), String>;
}

/// What to check.
#[derive(Debug, Clone)]
pub struct Needs {
    /// The cluster name the lab takes.
    pub cluster: String,
    pub manifest_url: String,
    /// Router and node images (the node image kind pulls itself, but a clear
    /// early answer beats kind's).
    pub images: Vec<String>,
}

/// Runs every check; returns every problem found (empty: go ahead).
pub async fn check(env: &dyn Environment, needs: &Needs) -> Vec<Problem> {
    let mut problems = Vec::new();
    match env.kind_version().await {
        Err(why) => problems.push(Problem {
            check: "kind",
            found: format!("`kind version` failed: {why}"),
            fix: "install kind v0.20 or later on PATH (https://kind.sigs.k8s.io/docs/user/quick-start/#installation; on GitHub Actions: helm/kind-action with install_only: true)".into(),
        }),
        Ok(text) => match parse_kind_version(&text) {
            Some(v) if v >= MIN_KIND => match env.kind_clusters().await {
                Ok(clusters) if clusters.contains(&needs.cluster) => problems.push(Problem {
                    check: "kind cluster",
                    found: format!("a kind cluster named {} exists already", needs.cluster),
                    fix: format!(
                        "calico-lab never takes over a cluster: if it is a lab of yours, `calico-lab down --name {0}`; otherwise `kind delete cluster --name {0}` or rename the topology",
                        needs.cluster
                    ),
                }),
                Ok(_) => {}
                Err(why) => problems.push(Problem {
                    check: "kind cluster",
                    found: format!("`kind get clusters` failed: {why}"),
                    fix: "check that kind can reach the Docker engine".into(),
                }),
            },
            found => problems.push(Problem {
                check: "kind",
                found: match found {
                    Some((major, minor)) => format!("kind v{major}.{minor} is too old"),
                    None => format!("cannot read kind's version from {:?}", text.trim()),
                },
                fix: format!("install kind v{}.{} or later", MIN_KIND.0, MIN_KIND.1),
            }),
        },
    }
    if let Err(why) = env.privileged_allowed().await {
        problems.push(Problem {
            check: "privileged containers",
            found: format!("the Docker engine refuses them: {why}"),
            fix: "kind nodes and VyOS routers need privileged containers: use an engine that allows them (GitHub's hosted runners do), or the emulated flavor".into(),
        });
    }
    match env.inotify() {
        Some((watches, instances))
            if watches >= MIN_INOTIFY_WATCHES && instances >= MIN_INOTIFY_INSTANCES => {}
        found => problems.push(Problem {
            check: "inotify limits",
            found: match found {
                Some((w, i)) => format!("max_user_watches {w}, max_user_instances {i}"),
                None => "cannot read /proc/sys/fs/inotify".into(),
            },
            fix: format!(
                "sudo sysctl fs.inotify.max_user_watches={MIN_INOTIFY_WATCHES} fs.inotify.max_user_instances={MIN_INOTIFY_INSTANCES}"
            ),
        }),
    }
    if let Err(why) = env.manifest_reachable(&needs.manifest_url).await {
        problems.push(Problem {
            check: "Calico manifest",
            found: format!("{} does not answer: {why}", needs.manifest_url),
            fix: "check the network, or set calico.manifestUrl in the topology to a copy you host"
                .into(),
        });
    }
    for image in &needs.images {
        if let Err(why) = env.image_available(image).await {
            problems.push(Problem {
                check: "image",
                found: format!("{image} is not present and cannot be pulled: {why}"),
                fix: format!("`docker pull {image}` (or `docker load` it), or name another image in the topology"),
            });
        }
    }
    problems
}

/// `kind v0.27.0 go1.23.4 linux/amd64` -> (0, 27).
pub fn parse_kind_version(text: &str) -> Option<(u32, u32)> {
    let word = text
        .split_whitespace()
        .find(|w| w.starts_with('v') && w[1..].starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = word[1..].split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        kind: Option<&'static str>,
        clusters: Vec<&'static str>,
        privileged: Result<(), String>,
        inotify: Option<(u64, u64)>,
        manifest: Result<(), String>,
        missing_image: Option<&'static str>,
    }

    impl Default for Fake {
        fn default() -> Self {
            Fake {
                kind: Some("kind v0.27.0 go1.23.4 linux/amd64"),
                clusters: vec!["someone-elses"],
                privileged: Ok(()),
                inotify: Some((524_288, 512)),
                manifest: Ok(()),
                missing_image: None,
            }
        }
    }

    #[async_trait]
    impl Environment for Fake {
        async fn kind_version(&self) -> Result<String, String> {
            self.kind
                .map(String::from)
                .ok_or_else(|| "No such file or directory".to_string())
        }
        async fn kind_clusters(&self) -> Result<Vec<String>, String> {
            Ok(self.clusters.iter().map(|c| c.to_string()).collect())
        }
        async fn privileged_allowed(&self) -> Result<(), String> {
            self.privileged.clone()
        }
        fn inotify(&self) -> Option<(u64, u64)> {
            self.inotify
        }
        async fn manifest_reachable(&self, _: &str) -> Result<(), String> {
            self.manifest.clone()
        }
        async fn image_available(&self, image: &str) -> Result<(), String> {
            match self.missing_image {
                Some(m) if m == image => Err("not found".into()),
                _ => Ok(()),
            }
        }
    }

    fn needs() -> Needs {
        Needs {
            cluster: "lab1".into(),
            manifest_url: "https://example.invalid/calico.yaml".into(),
            images: vec!["burlyluo/vyos:1.4.9".into(), "kindest/node:v1.27.3".into()],
        }
    }

    async fn checks(fake: Fake) -> Vec<&'static str> {
        check(&fake, &needs())
            .await
            .iter()
            .map(|p| p.check)
            .collect()
    }

    #[tokio::test]
    async fn a_ready_machine_passes() {
        assert!(checks(Fake::default()).await.is_empty());
    }

    #[tokio::test]
    async fn each_problem_is_found_with_its_fix() {
        let cases: Vec<(Fake, &str, &str)> = vec![
            (
                Fake {
                    kind: None,
                    ..Fake::default()
                },
                "kind",
                "install kind",
            ),
            (
                Fake {
                    kind: Some("kind v0.17.0 go1.19 linux/amd64"),
                    ..Fake::default()
                },
                "kind",
                "v0.20 or later",
            ),
            (
                Fake {
                    privileged: Err("refused".into()),
                    ..Fake::default()
                },
                "privileged containers",
                "emulated flavor",
            ),
            (
                Fake {
                    inotify: Some((8192, 128)),
                    ..Fake::default()
                },
                "inotify limits",
                "max_user_watches=524288",
            ),
            (
                Fake {
                    manifest: Err("timed out".into()),
                    ..Fake::default()
                },
                "Calico manifest",
                "manifestUrl",
            ),
            (
                Fake {
                    missing_image: Some("burlyluo/vyos:1.4.9"),
                    ..Fake::default()
                },
                "image",
                "docker pull burlyluo/vyos:1.4.9",
            ),
        ];
        for (fake, which, fix) in cases {
            let problems = check(&fake, &needs()).await;
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].check, which);
            assert!(problems[0].to_string().contains(fix), "{}", problems[0]);
        }
    }

    #[tokio::test]
    async fn every_problem_is_reported_at_once() {
        let fake = Fake {
            kind: None,
            privileged: Err("refused".into()),
            inotify: None,
            ..Fake::default()
        };
        assert_eq!(
            checks(fake).await,
            ["kind", "privileged containers", "inotify limits"]
        );
    }

    #[test]
    fn kind_versions() {
        assert_eq!(
            parse_kind_version("kind v0.20.0 go1.20.4 linux/amd64"),
            Some((0, 20))
        );
        assert_eq!(
            parse_kind_version("kind v0.31.0-alpha+abc go1.24"),
            Some((0, 31))
        );
        assert_eq!(parse_kind_version("garbage"), None);
    }
}
