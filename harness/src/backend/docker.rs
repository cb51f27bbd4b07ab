//! Thin, labelled access to the Docker engine: the harness's only runtime dependency.

use std::collections::HashMap;

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, ContainerSummary, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use crate::error::{Error, Result};

pub const LABEL_LAB: &str = "calico-lab.lab";
pub const LABEL_DEVICE: &str = "calico-lab.device";
pub const LABEL_ROLE: &str = "calico-lab.role";
pub const LABEL_RUN: &str = "calico-lab.run";
pub const LABEL_TOPOLOGY: &str = "calico-lab.topology";
/// Which Calico objects the lab started from (`installed` or `configured`).
/// `emulated` or `kind`: how `down`, `gc` and `attach` treat the lab.
pub const LABEL_FLAVOR: &str = "calico-lab.flavor";
pub const LABEL_CALICO: &str = "calico-lab.calico";

/// Connects to the local engine and agrees on an API version it speaks.
pub async fn connect() -> Result<Docker> {
    let unreachable = |detail: String| {
        Error::Environment {
        what: format!("no Docker engine answers ({detail})"),
        fix: "run `sudo ci/bootstrap` (installs docker.io and starts dockerd --bridge=none), or start your engine and set DOCKER_HOST".into(),
    }
    };
    let docker = Docker::connect_with_local_defaults().map_err(|e| unreachable(e.to_string()))?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    docker
        .ping()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(docker)
}

/// Every hop of a traceroute must answer, however many run at once: no ICMP error
/// limit per destination, nor the namespace's 1000 a second (bursts of 50) over the
/// types in the mask. With the kernel's defaults 64 traces at once from one pod
/// lost a third of their hops, and a 16 x 8 lab's healthy path read as a silent hop.
pub const ICMP_UNLIMITED: [(&str, &str); 2] = [
    ("net.ipv4.icmp_ratelimit", "0"),
    ("net.ipv4.icmp_ratemask", "0"),
];

/// [`ICMP_UNLIMITED`] as `sysctl -w` arguments.
pub fn icmp_unlimited_args() -> Vec<String> {
    ICMP_UNLIMITED
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// A lab container: isolated from every Docker network, with just the rights that
/// network namespaces, veths and per-interface sysctls need (`--privileged` is
/// refused on some engines and grants far more).
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub hostname: String,
    pub image: String,
    /// Empty: the image's own command.
    pub cmd: Vec<String>,
    pub labels: HashMap<String, String>,
    /// Sees host PIDs: only the short-lived wiring helper.
    pub host_pid: bool,
    /// Only where the engine allows it and the software needs it (VyOS's systemd).
    pub privileged: bool,
    pub binds: Vec<String>,
    /// Written into the container before it starts: (path, contents).
    pub files: Vec<(String, Vec<u8>)>,
    /// Folders kept in memory (tmpfs).
    pub tmpfs: Vec<String>,
    /// Joins this container's network namespace instead of a fresh one.
    pub network_of: Option<String>,
}

impl ContainerSpec {
    fn body(&self) -> ContainerCreateBody {
        let mut cap_add = vec![
            "NET_ADMIN".to_string(),
            "NET_RAW".into(),
            "SYS_ADMIN".into(),
        ];
        if self.host_pid {
            // nsenter into other containers' namespaces.
            cap_add.push("SYS_PTRACE".into());
        }
        // A joined namespace keeps its owner's sysctls.
        let sysctls = (!self.host_pid && self.network_of.is_none()).then(|| {
            [
                ("net.ipv4.ip_forward", "1"),
                ("net.ipv4.conf.all.rp_filter", "0"),
                ("net.ipv4.conf.default.rp_filter", "0"),
            ]
            .into_iter()
            .chain(ICMP_UNLIMITED)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        });
        ContainerCreateBody {
            image: Some(self.image.clone()),
            hostname: Some(self.hostname.clone()),
            cmd: (!self.cmd.is_empty()).then(|| self.cmd.clone()),
            labels: Some(self.labels.clone()),
            // No libnetwork endpoint at all, only a fresh namespace: the engine's
            // network bookkeeping (which deadlocks on Docker 20.10 when many
            // containers start and stop at once) is never involved.
            network_disabled: Some(self.network_of.is_none()),
            host_config: Some(HostConfig {
                network_mode: Some(
                    self.network_of
                        .as_ref()
                        .map_or_else(|| "none".to_string(), |c| format!("container:{c}")),
                ),
                pid_mode: self.host_pid.then(|| "host".to_string()),
                cap_add: Some(cap_add),
                security_opt: Some(vec![
                    "apparmor=unconfined".into(),
                    "seccomp=unconfined".into(),
                ]),
                // `systempaths=unconfined`: a writable /proc/sys for per-interface sysctls.
                masked_paths: Some(vec![]),
                readonly_paths: Some(vec![]),
                sysctls,
                privileged: self.privileged.then_some(true),
                binds: (!self.binds.is_empty()).then(|| self.binds.clone()),
                tmpfs: (!self.tmpfs.is_empty()).then(|| {
                    self.tmpfs
                        .iter()
                        .map(|p| (p.clone(), String::new()))
                        .collect()
                }),
                init: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// Creates a container, writes its files, starts it; returns its id.
pub async fn run(docker: &Docker, spec: &ContainerSpec) -> Result<String> {
    let id = create(docker, spec).await?;
    start(docker, &id, &spec.name).await?;
    Ok(id)
}

/// Starts the created container `id`, called `name` in errors.
pub async fn start(docker: &Docker, id: &str, name: &str) -> Result<()> {
    docker
        .start_container(id, None)
        .await
        .map_err(Error::docker(format!("start container {name}")))
}

/// Creates a container and writes its files, without starting it; returns its id.
pub async fn create(docker: &Docker, spec: &ContainerSpec) -> Result<String> {
    let options = CreateContainerOptionsBuilder::default()
        .name(&spec.name)
        .build();
    let created = docker
        .create_container(Some(options), spec.body())
        .await
        .map_err(|e| match e {
            bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            } => Error::ContainerExists(spec.name.clone()),
            e => Error::docker(format!("create container {}", spec.name))(e),
        })?;
    if !spec.files.is_empty() {
        upload_files(docker, &created.id, &spec.files).await?;
    }
    Ok(created.id)
}

/// Pulls `image` unless the engine has it.
pub async fn pull_if_absent(docker: &Docker, image: &str) -> Result<()> {
    if docker.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    let options = bollard::query_parameters::CreateImageOptionsBuilder::default()
        .from_image(image)
        .build();
    let mut stream = docker.create_image(Some(options), None, None);
    while let Some(progress) = futures_util::StreamExt::next(&mut stream).await {
        progress.map_err(Error::docker(format!("pull {image}")))?;
    }
    Ok(())
}

/// An engine error about `container`: gone (404) or stopped (409) as such, any
/// other with `context`.
pub(crate) fn member_error(
    container: &str,
    context: String,
) -> impl FnOnce(bollard::errors::Error) -> Error + '_ {
    move |e| match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => Error::NotRunning {
            container: container.to_string(),
            state: "gone (removed)",
        },
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        } => Error::NotRunning {
            container: container.to_string(),
            state: "not running (stopped)",
        },
        e => Error::docker(context)(e),
    }
}

/// The host PID of a running container's first process.
pub async fn pid(docker: &Docker, container: &str) -> Result<u32> {
    let info = docker
        .inspect_container(container, None)
        .await
        .map_err(member_error(
            container,
            format!("inspect container {container}"),
        ))?;
    info.state
        .and_then(|s| s.pid)
        .filter(|pid| *pid > 0)
        .and_then(|pid| u32::try_from(pid).ok())
        .ok_or_else(|| Error::NotRunning {
            container: container.to_string(),
            state: "not running (stopped)",
        })
}

/// What a command run in a container printed, and how it ended.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }
}

/// Runs `cmd` in `container` and waits for it.
pub async fn exec(docker: &Docker, container: &str, cmd: &[&str]) -> Result<ExecOutput> {
    let context = || format!("exec `{}` in {container}", cmd.join(" "));
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(cmd.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(member_error(container, context()))?;
    let mut out = ExecOutput::default();
    if let StartExecResults::Attached { mut output, .. } = docker
        .start_exec(&created.id, None)
        .await
        .map_err(Error::docker(context()))?
    {
        while let Some(chunk) = output.next().await {
            match chunk.map_err(Error::docker(context()))? {
                bollard::container::LogOutput::StdErr { message } => {
                    out.stderr += &String::from_utf8_lossy(&message)
                }
                other => out.stdout += &String::from_utf8_lossy(&other.into_bytes()),
            }
        }
    }
    let inspected = docker
        .inspect_exec(&created.id)
        .await
        .map_err(Error::docker(context()))?;
    out.exit_code = inspected.exit_code.unwrap_or(-1);
    Ok(out)
}

/// Runs a shell script in a short-lived helper container, then removes it.
pub async fn run_once(docker: &Docker, helper: &ContainerSpec, script: &str) -> Result<ExecOutput> {
    run(docker, helper).await?;
    let result = exec(docker, &helper.name, &["sh", "-c", script]).await;
    remove(docker, std::slice::from_ref(&helper.name)).await?;
    result
}

/// Writes files (absolute paths) into a container in one archive.
pub async fn upload_files(
    docker: &Docker,
    container: &str,
    files: &[(String, Vec<u8>)],
) -> Result<()> {
    let what = || {
        files
            .iter()
            .map(|(p, _)| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let archive = pack(files).map_err(Error::io(format!("pack {}", what())))?;
    let options = UploadToContainerOptionsBuilder::default().path("/").build();
    docker
        .upload_to_container(container, Some(options), bollard::body_full(archive.into()))
        .await
        .map_err(Error::docker(format!("write {} into {container}", what())))
}

/// A tar archive of `files` relative to `/` (the engine creates missing folders;
/// folder entries would replace a symlinked folder such as /var/run).
fn pack(files: &[(String, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let mut archive = tar::Builder::new(Vec::new());
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        archive.append_data(
            &mut header,
            path.trim_start_matches('/'),
            contents.as_slice(),
        )?;
    }
    archive.into_inner()
}

/// Every container carrying all of `labels` (`key` or `key=value`), running or not.
pub async fn list(docker: &Docker, labels: &[String]) -> Result<Vec<ContainerSummary>> {
    let filters = HashMap::from([("label".to_string(), labels.to_vec())]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .map_err(Error::docker("list containers"))
}

/// Removes containers (killing them first), all at once; already-gone ones are fine.
pub async fn remove(docker: &Docker, containers: &[String]) -> Result<()> {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    let removals = containers.iter().map(|c| {
        let options = options.clone();
        async move {
            match docker.remove_container(c, Some(options)).await {
                Ok(()) => Ok(()),
                // Gone already, or being removed by an earlier request.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404 | 409,
                    ..
                }) => Ok(()),
                Err(e) => Err(Error::docker(format!("remove container {c}"))(e)),
            }
        }
    });
    futures_util::future::join_all(removals)
        .await
        .into_iter()
        .collect()
}

/// The last lines a container logged (for artifacts and error messages).
pub async fn logs(docker: &Docker, container: &str, tail: usize) -> Result<String> {
    let options = bollard::query_parameters::LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&tail.to_string())
        .build();
    let mut stream = docker.logs(container, Some(options));
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        text += &chunk
            .map_err(Error::docker(format!("logs of {container}")))?
            .to_string();
    }
    Ok(text)
}
