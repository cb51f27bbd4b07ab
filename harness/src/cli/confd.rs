//! `calico-lab confd`: what calico-node's confd writes for one node.

use std::path::PathBuf;
use std::process::ExitCode;

use calico_lab::calico::{self, confd, CalicoError, CalicoVersion, Resources};
use calico_lab::Error;

#[derive(clap::Args)]
pub struct Args {
    /// The calico-node version whose output to reproduce (v3.23.0 to v3.32.x).
    #[arg(long, default_value = "v3.23.2")]
    calico_version: CalicoVersion,
    /// The Calico Node to render for.
    #[arg(long)]
    node: String,
    /// Folder to write the three files to.
    #[arg(long, short)]
    out: PathBuf,
    /// Adapt the files for upstream BIRD 1.6 (drop Calico's `krt_tunnel`).
    #[arg(long)]
    upstream_bird: bool,
    /// calico-node's environment, KEY=VALUE (repeatable): CALICO_ROUTER_ID (an
    /// address, or `hash`).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Calico v3 resources (BGPConfiguration, BGPPeer, BGPFilter, Node, IPPool),
    /// BlockAffinity objects and Kubernetes Nodes, Secrets, Services, Endpoints and
    /// EndpointSlices (YAML, `---` separated, `*List` forms too), applied in order.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut resources = Resources::default();
    for file in &args.files {
        resources
            .apply(calico::resources::load(file).map_err(Error::from)?)
            .map_err(Error::from)?;
    }
    let env = confd::NodeEnv::parse(args.env.iter().map(String::as_str))
        .map_err(|e| Error::from(CalicoError::from(e)))?;
    let mut bird = confd::render_with(&resources, &args.node, args.calico_version, &env)
        .map_err(|e| Error::from(CalicoError::from(e)))?;
    if args.upstream_bird {
        bird = calico::bird::upstream(&bird);
    }
    // An output folder that cannot be written is the user's input: exit 2.
    std::fs::create_dir_all(&args.out).map_err(|source| Error::Write {
        path: args.out.clone(),
        source,
    })?;
    for (name, text) in bird.files() {
        let path = args.out.join(name);
        std::fs::write(&path, text).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
