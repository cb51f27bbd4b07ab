//! Recorded answers: [`Recorder`] keeps what a real lab answered, [`Replay`] answers
//! from records, so that observation, checks, scenarios and diagnoses can be tested
//! without a lab. A command nobody recorded is an error, never an empty answer.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;

use super::{emulated, Backend, Edit, ExecOutput, Flavor, Member, Pod, Running, Target};
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

    /// What `command` on `target` was recorded to print (to derive a broken variant).
    pub fn recorded(&self, target: &Target, command: &str) -> Option<&ExecOutput> {
        match self.answers.get(&(target.clone(), command.to_string())) {
            Some(Answer::Output(out)) => Some(out),
            _ => None,
        }
    }

    /// Reads a folder of records (`<dir>/<device or pod>/<file>`, each file a
    /// [`crate::artifacts::record`]), as artifact folders, `calico-lab collect` and
    /// [`Recorder`] write them; files that are no record (logs) are left out.
    pub fn from_dir(mut self, topology: &Topology, dir: &Path) -> Result<Self> {
        let read_dir = |d: &Path| {
            std::fs::read_dir(d).map_err(|source| Error::Read {
                path: d.to_path_buf(),
                source,
            })
        };
        let mut files = Vec::new();
        for entry in read_dir(dir)?.flatten().filter(|e| e.path().is_dir()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            for file in read_dir(&entry.path())?.flatten() {
                files.push((name.clone(), file.path()));
            }
        }
        files.sort();
        for (name, path) in files {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            let Some((command, answer)) = parse_record(&text) else {
                continue;
            };
            let target = if topology.router(&name).is_some() {
                Target::Router(name.clone())
            } else if command.starts_with("birdc ") {
                Target::CalicoNode(name.clone())
            } else if self.pods.iter().any(|p| p.name == name) {
                Target::Pod(name.clone())
            } else {
                Target::Node(name.clone())
            };
            self.answers.insert((target, command), answer);
        }
        Ok(self)
    }
}

/// A record's command and answer (`None`: not a record).
fn parse_record(text: &str) -> Option<(String, Answer)> {
    let rest = text.strip_prefix("$ ")?;
    let (command, body) = rest.split_once('\n').unwrap_or((rest, ""));
    if let Some(message) = body.strip_prefix("# error: ") {
        return Some((command.into(), Answer::Error(message.trim_end().into())));
    }
    let (exit_code, body) = match body.strip_prefix("# exit ") {
        Some(rest) => {
            let (code, body) = rest.split_once('\n').unwrap_or((rest, ""));
            (code.trim().parse().unwrap_or(1), body)
        }
        None => (0, body),
    };
    let (stdout, stderr) = match body.split_once("# stderr\n") {
        Some((out, err)) => (out.to_string(), err.to_string()),
        None => (body.to_string(), String::new()),
    };
    Some((
        command.into(),
        Answer::Output(ExecOutput {
            exit_code,
            stdout,
            stderr,
        }),
    ))
}

/// A backend that forwards everything to another and keeps a record of every
/// command's answer; when dropped it writes them to its folder, where
/// [`Replay::from_dir`] reads them.
pub struct Recorder {
    inner: Box<dyn Backend>,
    dir: std::path::PathBuf,
    records: std::sync::Mutex<BTreeMap<(String, String), String>>,
}

impl Recorder {
    pub fn new(inner: Box<dyn Backend>, dir: &Path) -> Self {
        Recorder {
            inner,
            dir: dir.to_path_buf(),
            records: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// Keeps what `cmd` on `target` answered.
    fn record(&self, target: &Target, cmd: &[&str], out: &Result<ExecOutput>) {
        let key = command_key(cmd);
        let text = crate::artifacts::record(&key, out);
        if let Ok(mut records) = self.records.lock() {
            records.insert((target.name().to_string(), key), text);
        }
    }

    /// Writes every record so far to `<dir>/<device or pod>/<command>.txt`.
    pub fn save(&self) -> Result<()> {
        let dir = &self.dir;
        let records = self.records.lock().map_err(|_| {
            Error::io("recording")(std::io::Error::other("a recorder thread panicked"))
        })?;
        for ((name, key), text) in records.iter() {
            crate::artifacts::write_text(
                &dir.join(name),
                &format!("{}.txt", file_name(key)),
                text,
            )?;
        }
        Ok(())
    }
}

/// A file name for a command: its words, other characters as `-`, with a short
/// hash so that long commands cut to the same prefix stay apart.
fn file_name(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let words: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(60)
        .collect();
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    format!("{}-{}", words.trim_matches('-'), &hash[..8])
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
        _edit: Edit,
        _source: &str,
        _yaml: &str,
        _objects: &[Resource],
        _next: &Resources,
    ) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn roll_calico_node(
        &mut self,
        node: &str,
        version: crate::calico::CalicoVersion,
        _calico: &Resources,
    ) -> Result<()> {
        Err(Error::Lab {
            lab: "replay".into(),
            message: format!("a replay cannot roll calico-node on {node} to {version}"),
        })
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

#[async_trait]
impl Backend for Recorder {
    fn flavor(&self) -> Flavor {
        self.inner.flavor()
    }

    fn members(&self) -> &[Member] {
        self.inner.members()
    }

    fn run_id(&self) -> &str {
        self.inner.run_id()
    }

    async fn exec(&self, target: &Target, cmd: &[&str]) -> Result<ExecOutput> {
        let out = self.inner.exec(target, cmd).await;
        self.record(target, cmd, &out);
        out
    }

    async fn start_in(&self, target: &Target, script: &str) -> Result<ExecOutput> {
        let out = self.inner.start_in(target, script).await;
        self.record(target, &["sh", "-c", script], &out);
        out
    }

    async fn exec_all(&self, commands: &[(Target, Vec<String>)]) -> Vec<Result<ExecOutput>> {
        let outs = self.inner.exec_all(commands).await;
        for ((target, cmd), out) in commands.iter().zip(&outs) {
            let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
            self.record(target, &cmd, out);
        }
        outs
    }

    async fn spawn(&self, target: &Target, cmd: &[&str]) -> Result<Box<dyn Running>> {
        self.inner.spawn(target, cmd).await
    }

    async fn pods(&self) -> Result<Vec<Pod>> {
        self.inner.pods().await
    }

    async fn apply(
        &mut self,
        edit: Edit,
        source: &str,
        yaml: &str,
        objects: &[Resource],
        next: &Resources,
    ) -> Result<Vec<String>> {
        self.inner.apply(edit, source, yaml, objects, next).await
    }

    async fn roll_calico_node(
        &mut self,
        node: &str,
        version: crate::calico::CalicoVersion,
        calico: &Resources,
    ) -> Result<()> {
        self.inner.roll_calico_node(node, version, calico).await
    }

    async fn roll_calico_nodes(
        &mut self,
        nodes: &[String],
        version: crate::calico::CalicoVersion,
        calico: &Resources,
    ) -> Result<()> {
        self.inner.roll_calico_nodes(nodes, version, calico).await
    }

    async fn member_states(&self) -> Result<Vec<(Member, String)>> {
        self.inner.member_states().await
    }

    async fn collect(&self, member: &Member, dir: &Path) -> Result<()> {
        self.inner.collect(member, dir).await
    }

    async fn teardown(&mut self) -> Result<()> {
        self.inner.teardown().await
    }

    fn teardown_blocking(&mut self) {
        self.inner.teardown_blocking()
    }

    fn release(&mut self) {
        self.inner.release()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Err(e) = self.save() {
            eprintln!(
                "calico-lab: records not saved to {}: {e}",
                self.dir.display()
            );
        }
    }
}
