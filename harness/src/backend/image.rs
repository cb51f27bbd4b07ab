//! The emulated flavor's one image (FRR, BIRD 1.6, network tools), built locally and
//! tagged by a hash of its recipe.

use std::path::Path;
use std::time::Instant;

use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncBufReadExt;

use crate::error::{Error, Result};

/// Debian release the image is built from: FRR 8.4 and BIRD 1.6.8.
pub const DEBIAN_SUITE: &str = "bookworm";
/// A Debian base image that, where present locally, allows a Dockerfile build.
pub const DEBIAN_BASE_IMAGE: &str = "debian:bookworm-slim";
pub const PACKAGES: &[&str] = &[
    "frr",
    "bird",
    "iproute2",
    "iputils-ping",
    "traceroute",
    "tcpdump",
    "procps",
    // Faults that drop one BGP session without touching its link.
    "iptables",
];
/// Bumped when the way the image is assembled changes without the inputs changing.
const RECIPE_REVISION: u32 = 1;

/// FRR's daemons file: zebra and bgpd, in the datacenter profile.
pub const FRR_DAEMONS: &str = "bgpd=yes
vtysh_enable=yes
zebra_options=\"  -A 127.0.0.1 -s 90000000\"
bgpd_options=\"   -A 127.0.0.1\"
staticd_options=\"-A 127.0.0.1\"
frr_profile=\"datacenter\"
";

/// Where the image keeps [`FRR_VTY_CLIENT`], from its root.
pub const FRR_VTY_CLIENT_FILE: &str = "usr/local/lib/calico-lab/frr-vty.pl";

/// One command to one FRR daemon over its vty socket, as vtysh sends it: the
/// command and a NUL; the answer ends with three NULs and the command's status.
/// Perl's builtins only (the `Socket` module would double the cost): a call costs
/// about 3 ms of CPU where vtysh, which builds its whole command tree each time,
/// costs 25 ms, and a wait asks every router several times a second.
pub const FRR_VTY_CLIENT: &str = r#"my ($daemon, $command) = @ARGV;
# AF_UNIX and SOCK_STREAM are 1 on Linux.
socket(my $s, 1, 1, 0) or die "socket: $!\n";
connect($s, pack("S Z108", 1, "/var/run/frr/$daemon.vty"))
  or die "$daemon is not running ($!)\n";
syswrite($s, "$command\0") or die "write to $daemon: $!\n";
my $answer = "";
while (length($answer) < 4 || substr($answer, -4, 3) ne "\0\0\0") {
  my $n = sysread($s, my $chunk, 65536);
  defined $n or die "read from $daemon: $!\n";
  $n > 0 or die "$daemon closed the connection before answering\n";
  $answer .= $chunk;
}
print substr($answer, 0, -4);
exit ord(substr($answer, -1));
"#;

/// Files written on top of the installed packages.
pub const FILES: &[(&str, &str)] = &[
    ("etc/frr/daemons", FRR_DAEMONS),
    (FRR_VTY_CLIENT_FILE, FRR_VTY_CLIENT),
];

/// `calico-lab/emulated:<hash of the recipe>`.
pub fn image_tag() -> String {
    recipe_tag(DEBIAN_SUITE, PACKAGES, FILES)
}

/// The tag of an image built from `suite`, `packages` and `files`: any change to
/// them (or to the recipe's revision) is another tag, so a stale image is never used.
pub fn recipe_tag(suite: &str, packages: &[&str], files: &[(&str, &str)]) -> String {
    let mut hash = Sha256::new();
    hash.update(format!("{RECIPE_REVISION}\n{suite}\n"));
    for package in packages {
        hash.update(format!("package {package}\n"));
    }
    for (path, contents) in files {
        hash.update(format!("file {path}\n{contents}\n"));
    }
    format!(
        "calico-lab/emulated:{}",
        &hex::encode(hash.finalize())[..12]
    )
}

/// How the image was obtained, and how long it took.
#[derive(Debug, Clone)]
pub struct ImageReport {
    pub tag: String,
    pub cached: bool,
    pub method: &'static str,
    pub seconds: f64,
}

/// Returns the image tag, building the image first when the engine lacks it.
/// Concurrent callers on one machine wait for a single build.
pub async fn ensure_image(docker: &Docker) -> Result<ImageReport> {
    let tag = image_tag();
    let started = Instant::now();
    if docker.inspect_image(&tag).await.is_ok() {
        return Ok(ImageReport {
            tag,
            cached: true,
            method: "cached",
            seconds: 0.0,
        });
    }
    let _lock = lock_builds().await?;
    if docker.inspect_image(&tag).await.is_ok() {
        return Ok(ImageReport {
            tag,
            cached: true,
            method: "built by another process",
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    let method = if docker.inspect_image(DEBIAN_BASE_IMAGE).await.is_ok() {
        build_with_dockerfile(docker, &tag).await?;
        "dockerfile"
    } else {
        build_with_debootstrap(docker, &tag).await?;
        "debootstrap"
    };
    docker
        .inspect_image(&tag)
        .await
        .map_err(Error::docker(format!("inspect freshly built image {tag}")))?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!("image {tag} built by {method} in {seconds:.1} s");
    Ok(ImageReport {
        tag,
        cached: false,
        method,
        seconds,
    })
}

/// An exclusive lock on this machine's image builds, held until dropped.
async fn lock_builds() -> Result<std::fs::File> {
    let path = std::env::temp_dir().join("calico-lab-image-build.lock");
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io(format!("open {}", path.display())))?;
        file.lock()
            .map_err(Error::io(format!("lock {}", path.display())))?;
        Ok(file)
    })
    .await
    .map_err(|e| Error::Io {
        context: "image build lock".into(),
        source: std::io::Error::other(e),
    })?
}

/// The Dockerfile of the recipe, for engines that have a Debian base image.
pub fn dockerfile() -> String {
    let mut d = format!(
        "FROM {DEBIAN_BASE_IMAGE}\nRUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {} && rm -rf /var/lib/apt/lists/*\n",
        PACKAGES.join(" ")
    );
    for (path, _) in FILES {
        d += &format!("COPY {path} /{path}\n");
    }
    d
}

async fn build_with_dockerfile(docker: &Docker, tag: &str) -> Result<()> {
    tracing::info!("image: building {tag} from {DEBIAN_BASE_IMAGE} with a Dockerfile");
    let mut context = tar::Builder::new(Vec::new());
    let mut add = |path: &str, contents: &str| {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        context.append_data(&mut header, path, contents.as_bytes())
    };
    add("Dockerfile", &dockerfile()).map_err(Error::io("pack build context"))?;
    for (path, contents) in FILES {
        add(path, contents).map_err(Error::io("pack build context"))?;
    }
    let context = context
        .into_inner()
        .map_err(Error::io("pack build context"))?;
    // apt needs the network during the build; the lab containers never get one.
    let options = BuildImageOptionsBuilder::default()
        .t(tag)
        .rm(true)
        .networkmode("host")
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(step) = stream.next().await {
        let step = step.map_err(Error::docker(format!("build image {tag}")))?;
        if let Some(line) = step
            .stream
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            tracing::info!("image: {line}");
        }
    }
    Ok(())
}

async fn build_with_debootstrap(docker: &Docker, tag: &str) -> Result<()> {
    let missing = |what: &str, fix: &str| Error::Environment {
        what: what.into(),
        fix: fix.into(),
    };
    if which("debootstrap").is_none() {
        return Err(missing(
            &format!("building image {tag} needs debootstrap (no {DEBIAN_BASE_IMAGE} image is present either)"),
            "run `sudo ci/bootstrap`, or `apt-get install debootstrap`, or `docker pull debian:bookworm-slim` where a registry is reachable",
        ));
    }
    if !is_root() {
        return Err(missing(&format!("building image {tag} with debootstrap needs root"), "run the first build as root (`sudo ci/bootstrap` builds it), later runs reuse the image"));
    }
    let mirror = debian_mirror();
    let rootfs = tempfile::Builder::new()
        .prefix("calico-lab-rootfs-")
        .tempdir()
        .map_err(Error::io("create a folder for the image root filesystem"))?;
    tracing::info!(
        "image: building {tag} with debootstrap {DEBIAN_SUITE} from {mirror} (about a minute)"
    );
    let mut child = tokio::process::Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={}", PACKAGES.join(",")),
            DEBIAN_SUITE,
        ])
        .arg(rootfs.path())
        .arg(&mirror)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(Error::io("start debootstrap"))?;
    let mut last_lines = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!("image: debootstrap: {line}");
            last_lines.push(line);
            if last_lines.len() > 20 {
                last_lines.remove(0);
            }
        }
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(Error::io("run debootstrap"))?;
    if !output.status.success() {
        return Err(missing(
            &format!(
                "debootstrap {DEBIAN_SUITE} from {mirror} failed ({}):\n{}\n{}",
                output.status,
                last_lines.join("\n"),
                String::from_utf8_lossy(&output.stderr)
            ),
            "check that the Debian mirror is reachable, or set CALICO_LAB_DEBIAN_MIRROR",
        ));
    }
    for (path, contents) in FILES {
        let target = rootfs.path().join(path);
        if let Some(folder) = target.parent() {
            std::fs::create_dir_all(folder)
                .map_err(Error::io(format!("create {}", folder.display())))?;
        }
        std::fs::write(&target, contents)
            .map_err(Error::io(format!("write {}", target.display())))?;
    }
    import_rootfs(docker, rootfs.path(), tag).await
}

/// Imports a root filesystem folder as an image through the Docker API.
async fn import_rootfs(docker: &Docker, rootfs: &Path, tag: &str) -> Result<()> {
    tracing::info!("image: importing the root filesystem as {tag}");
    let tarball = tokio::process::Command::new("tar")
        .args([
            "--numeric-owner",
            "--exclude=./proc/*",
            "--exclude=./sys/*",
            "--exclude=./dev/*",
            "--exclude=./var/cache/apt/archives/*.deb",
            "--exclude=./var/lib/apt/lists/*",
            "-C",
        ])
        .arg(rootfs)
        .args(["-cf", "-", "."])
        .output()
        .await
        .map_err(Error::io("run tar over the root filesystem"))?;
    if !tarball.status.success() {
        return Err(Error::Io {
            context: format!("tar of {}", rootfs.display()),
            source: std::io::Error::other(String::from_utf8_lossy(&tarball.stderr).to_string()),
        });
    }
    let (repo, version) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo(repo)
        .tag(version)
        .build();
    let mut stream = docker.create_image(
        Some(options),
        Some(bollard::body_full(tarball.stdout.into())),
        None,
    );
    while let Some(step) = stream.next().await {
        step.map_err(Error::docker(format!("import image {tag}")))?;
    }
    Ok(())
}

/// The Debian mirror to bootstrap from: `CALICO_LAB_DEBIAN_MIRROR`, else the one this
/// machine's apt uses for the suite, else Debian's own.
pub fn debian_mirror() -> String {
    if let Ok(mirror) = std::env::var("CALICO_LAB_DEBIAN_MIRROR") {
        if !mirror.trim().is_empty() {
            return mirror.trim().to_string();
        }
    }
    let mut texts = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "sources") {
                texts.push((
                    true,
                    std::fs::read_to_string(entry.path()).unwrap_or_default(),
                ));
            }
        }
    }
    texts.push((
        false,
        std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default(),
    ));
    texts
        .iter()
        .find_map(|(deb822, text)| {
            if *deb822 {
                mirror_from_deb822(text, DEBIAN_SUITE)
            } else {
                mirror_from_one_line(text, DEBIAN_SUITE)
            }
        })
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_string())
}

/// The first `URIs:` of a deb822 stanza that serves `suite`.
pub fn mirror_from_deb822(text: &str, suite: &str) -> Option<String> {
    text.split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        let serves = field("Suites:")?.split_whitespace().any(|s| s == suite);
        let is_deb = field("Types:").is_none_or(|t| t.split_whitespace().any(|t| t == "deb"));
        (serves && is_deb)
            .then(|| field("URIs:"))?
            .and_then(|u| u.split_whitespace().next().map(String::from))
    })
}

/// The URI of the first `deb URI suite ...` line for `suite`.
pub fn mirror_from_one_line(text: &str, suite: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim();
        if !line.starts_with("deb ") {
            return None;
        }
        // Options in brackets may hold spaces: skip up to the closing one.
        let rest = match line.find(']') {
            Some(end) if line[4..].trim_start().starts_with('[') => &line[end + 1..],
            _ => &line[4..],
        };
        let mut parts = rest.split_whitespace();
        let uri = parts.next()?;
        (parts.next()? == suite).then(|| uri.to_string())
    })
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
