//! A backend that answers from recorded outputs, so that observation, checks,
//! scenarios and diagnoses can be tested without a lab. A command nobody recorded
//! is an error, never an empty answer.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;

use super::{emulated, Backend, ExecOutput, Flavor, Member, Pod, Running, Target};
use crate::calico::resources::Resource;
use crate::calico::Resources;
use crate::error::{Error, Result};
use crate::lab::birdc;
use crate::topology::Topology;

/// What a recorded command gave.
#[derive(Debug, Clone)]
enum Answer {
    Output(ExecOutput),
    /// The command could not be run (a stopped container, say).
    Error(String),
}

/// Recorded answers by target and command.
#[derive(Debug, Clone)]
pub struct Replay {
    members: Vec<Member>,
    pods: Vec<Pod>,
    answers: BTreeMap<(Target, String), Answer>,
}

/// How a command is keyed: a BIRD client call as `birdc <args>`, anything else as
/// its words joined by spaces.
pub fn command_key(cmd: &[&str]) -> String {
    let prefix = birdc(&[]);
    if cmd.len() >= prefix.len() && cmd[..prefix.len()] == prefix[..] {
        let mut key = vec!["birdc"];
        key.extend_from_slice(&cmd[prefix.len()..]);
        return key.join(" ");
    }
    cmd.join(" ")
}

impl Replay {
    /// A replay of `topology`'s lab holding `pods`, with nothing recorded yet.
    pub fn new(topology: &Topology, pods: Vec<Pod>) -> Replay {
        Replay {
            members: emulated::members(topology, "replay"),
            pods,
            answers: BTreeMap::new(),
        }
    }

    /// `command` on `target` prints `stdout` and exits 0.
    pub fn answer(self, target: Target, command: &str, stdout: &str) -> Self {
        self.output(
            target,
            command,
            ExecOutput {
                exit_code: 0,
                stdout: stdout.into(),
                stderr: String::new(),
            },
        )
    }

    /// `command` on `target` gives `output`.
    pub fn output(mut self, target: Target, command: &str, output: ExecOutput) -> Self {
        self.answers
            .insert((target, command.to_string()), Answer::Output(output));
        self
    }

    /// `command` on `target` cannot run: `message` says why.
    pub fn error(mut self, target: Target, command: &str, message: &str) -> Self {
        self.answers
            .insert((target, command.to_string()), Answer::Error(message.into()));
        self
    }

    /// Reads an artifact folder (`<dir>/<device>/<file>`, each file a `$ command`
    /// line, then `# exit N` or `# error: ...` when it failed, then the output), as
    /// [`crate::artifacts::collect`] writes it.
    pub fn from_artifacts(mut self, topology: &Topology, dir: &Path) -> Result<Self> {
        let read_dir = |d: &Path| {
            std::fs::read_dir(d).map_err(|source| Error::Read {
                path: d.to_path_buf(),
                source,
            })
        };
        for entry in read_dir(dir)?.flatten() {
            let device = entry.file_name().to_string_lossy().into_owned();
            if !entry.path().is_dir() {
                continue;
            }
            for file in read_dir(&entry.path())?.flatten() {
                let text = std::fs::read_to_string(file.path()).map_err(|source| Error::Read {
                    path: file.path(),
                    source,
                })?;
                let Some(rest) = text.strip_prefix("$ ") else {
                    continue;
                };
                let (command, body) = rest.split_once('\n').unwrap_or((rest, ""));
                let target = if topology.router(&device).is_some() {
                    Target::Router(device.clone())
                } else if command.starts_with("birdc ") {
                    Target::CalicoNode(device.clone())
                } else if self.pods.iter().any(|p| p.name == device) {
                    Target::Pod(device.clone())
                } else {
                    Target::Node(device.clone())
                };
                let answer = if let Some(message) = body.strip_prefix("# error: ") {
                    Answer::Error(message.trim_end().to_string())
                } else if let Some(rest) = body.strip_prefix("# exit ") {
                    let (code, output) = rest.split_once('\n').unwrap_or((rest, ""));
                    Answer::Output(ExecOutput {
                        exit_code: code.trim().parse().unwrap_or(1),
                        stdout: output.to_string(),
                        stderr: String::new(),
                    })
                } else {
                    Answer::Output(ExecOutput {
                        exit_code: 0,
                        stdout: body.to_string(),
                        stderr: String::new(),
                    })
                };
                self.answers.insert((target, command.to_string()), answer);
            }
        }
        Ok(self)
    }
}

#[async_trait]
impl Backend for Replay {
    fn flavor(&self) -> Flavor {
        Flavor::EMULATED
    }

    fn members(&self) -> &[Member] {
        &self.members
    }

    fn run_id(&self) -> &str {
        "replay"
    }

    async fn exec(&self, target: &Target, cmd: &[&str]) -> Result<ExecOutput> {
        let key = command_key(cmd);
        match self.answers.get(&(target.clone(), key.clone())) {
            Some(Answer::Output(out)) => Ok(out.clone()),
            Some(Answer::Error(message)) => Err(Error::Lab {
                lab: "replay".into(),
                message: format!("{target}: {message}"),
            }),
            None => Err(Error::Lab {
                lab: "replay".into(),
                message: format!("{target}: nothing recorded for `{key}`"),
            }),
        }
    }

    async fn spawn(&self, target: &Target, cmd: &[&str]) -> Result<Box<dyn Running>> {
        Err(Error::Lab {
            lab: "replay".into(),
            message: format!(
                "{target}: a replay cannot run `{}` in the background",
                cmd.join(" ")
            ),
        })
    }

    async fn pods(&self) -> Result<Vec<Pod>> {
        Ok(self.pods.clone())
    }

    async fn apply(
        &mut self,
        _source: &str,
        _yaml: &str,
        _objects: &[Resource],
        _next: &Resources,
    ) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn member_states(&self) -> Result<Vec<(Member, String)>> {
        Ok(self
            .members
            .iter()
            .map(|m| (m.clone(), "running".to_string()))
            .collect())
    }

    async fn collect(&self, _member: &Member, _dir: &Path) -> Result<()> {
        Ok(())
    }

    async fn teardown(&mut self) -> Result<()> {
        Ok(())
    }

    fn teardown_blocking(&mut self) {}

    fn release(&mut self) {}
}
