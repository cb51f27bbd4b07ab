//! Long-lived shells in the observer that run batch scripts sent on their stdin:
//! an exec costs the engine tens of ms of CPU (dockerd, containerd, runc), a
//! script sent to a shell that is already running costs only its own processes.

use std::pin::Pin;
use std::sync::Mutex;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::Docker;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::ExecOutput;
use crate::error::{Error, Result};

/// What each shell runs: a header line (`NONCE SIZE`), then SIZE bytes of script,
/// run with stdin closed (so that no command of it eats the next request); its
/// stdout streams back as it comes, its stderr and exit code follow, framed by
/// the nonce. The shell ends when its stdin closes (the harness went away).
const SERVE: &str = "d=$(mktemp -d) || exit 1\n\
    trap 'rm -rf \"$d\"' EXIT\n\
    while read -r nonce size; do\n\
    dd bs=\"$size\" count=1 iflag=fullblock status=none of=\"$d/s\" || exit 1\n\
    sh \"$d/s\" </dev/null 2>\"$d/e\"; code=$?\n\
    printf '\\n@@%s session-stderr\\n' \"$nonce\"; cat \"$d/e\"\n\
    printf '\\n@@%s session-done %s\\n' \"$nonce\" \"$code\"\n\
    done\n";

type Output =
    Pin<Box<dyn Stream<Item = std::result::Result<LogOutput, bollard::errors::Error>> + Send>>;

/// How often a running script's shell is asked whether it still runs: the engine
/// keeps a stream whose stdin is attached open after its container is gone.
const LIVENESS: std::time::Duration = std::time::Duration::from_secs(1);

/// One shell, waiting for a script.
struct Shell {
    exec: String,
    input: Pin<Box<dyn AsyncWrite + Send>>,
    output: Output,
}

/// The shells of one container.
pub struct Sessions {
    docker: Docker,
    container: String,
    idle: Mutex<Vec<Shell>>,
}

impl Sessions {
    pub fn new(docker: Docker, container: String) -> Sessions {
        Sessions {
            docker,
            container,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `script` with `sh` in an idle shell, or a new one. A shell whose
    /// script did not answer completely (the container went away, or this call
    /// was dropped midway) is never reused.
    pub async fn run(&self, script: &str) -> Result<ExecOutput> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut shell = match idle {
            Some(shell) => shell,
            None => self.open().await?,
        };
        let exec = shell.exec.clone();
        let answered = tokio::select! {
            answered = shell.run(script) => answered,
            ended = self.ended(&exec) => Err(ended),
        };
        let out = answered.map_err(|message| {
            // The container's other shells likely went with this one.
            if let Ok(mut idle) = self.idle.lock() {
                idle.clear();
            }
            Error::Lab {
                lab: self.container.clone(),
                message: format!("the shell in {} failed: {message}", self.container),
            }
        })?;
        if let Ok(mut idle) = self.idle.lock() {
            // As many as the callers run at once: more are opened while scripts overlap.
            if idle.len() < super::parallelism() {
                idle.push(shell);
            }
        }
        Ok(out)
    }

    /// Returns once the shell `exec` no longer runs (or the engine forgot it).
    async fn ended(&self, exec: &str) -> String {
        loop {
            tokio::time::sleep(LIVENESS).await;
            match self.docker.inspect_exec(exec).await {
                // Not started yet (no exit code) counts as running.
                Ok(state) if state.running == Some(true) || state.exit_code.is_none() => continue,
                Ok(state) => {
                    return format!(
                        "it ended (exit {}) before the script answered",
                        state.exit_code.unwrap_or(-1)
                    )
                }
                Err(e) => return format!("the engine lost it ({e})"),
            }
        }
    }

    async fn open(&self) -> Result<Shell> {
        let context = || format!("open a shell in {}", self.container);
        let created = self
            .docker
            .create_exec(
                &self.container,
                CreateExecOptions {
                    cmd: Some(vec!["sh", "-c", SERVE]),
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(super::docker::member_error(&self.container, context()))?;
        match self
            .docker
            .start_exec(&created.id, None)
            .await
            .map_err(Error::docker(context()))?
        {
            StartExecResults::Attached { output, input } => Ok(Shell {
                exec: created.id,
                input,
                output,
            }),
            StartExecResults::Detached => Err(Error::Lab {
                lab: self.container.clone(),
                message: format!(
                    "the engine did not attach to the shell in {}",
                    self.container
                ),
            }),
        }
    }
}

impl Shell {
    async fn run(&mut self, script: &str) -> std::result::Result<ExecOutput, String> {
        if script.is_empty() {
            return Ok(ExecOutput::default());
        }
        let nonce = super::batch::nonce();
        let mut request = format!("{nonce} {}\n", script.len()).into_bytes();
        request.extend_from_slice(script.as_bytes());
        self.input
            .write_all(&request)
            .await
            .map_err(|e| format!("cannot send the script: {e}"))?;
        self.input
            .flush()
            .await
            .map_err(|e| format!("cannot send the script: {e}"))?;
        let done = format!("\n@@{nonce} session-done ");
        let mut stdout: Vec<u8> = Vec::new();
        let mut shell_errors: Vec<u8> = Vec::new();
        loop {
            // The marker may straddle two chunks: look back by its length.
            let from = stdout.len().saturating_sub(done.len() + 16);
            match self.output.next().await {
                Some(Ok(LogOutput::StdErr { message })) => shell_errors.extend_from_slice(&message),
                Some(Ok(other)) => stdout.extend_from_slice(&other.into_bytes()),
                Some(Err(e)) => return Err(e.to_string()),
                None => {
                    return Err(format!(
                        "it ended before the script answered{}",
                        trailer(&shell_errors)
                    ))
                }
            }
            if let Some(answer) = answered(&stdout, from, &nonce) {
                return answer;
            }
        }
    }
}

/// The script's output once `stdout` holds its end (searched from `from`); an
/// error when that end is not what the shell writes.
fn answered(
    stdout: &[u8],
    from: usize,
    nonce: &str,
) -> Option<std::result::Result<ExecOutput, String>> {
    let done = format!("\n@@{nonce} session-done ");
    let at = find(&stdout[from.min(stdout.len())..], done.as_bytes())? + from;
    let tail = &stdout[at + done.len()..];
    let line_end = tail.iter().position(|&b| b == b'\n')?;
    let malformed = || {
        Err(format!(
            "its answer's end is malformed: {}",
            String::from_utf8_lossy(&tail[..line_end])
        ))
    };
    let Some(exit_code) = std::str::from_utf8(&tail[..line_end])
        .ok()
        .and_then(|code| code.trim().parse().ok())
    else {
        return Some(malformed());
    };
    let body = &stdout[..at];
    let middle = format!("\n@@{nonce} session-stderr\n");
    let Some(split) = find(body, middle.as_bytes()) else {
        return Some(malformed());
    };
    Some(Ok(ExecOutput {
        exit_code,
        stdout: String::from_utf8_lossy(&body[..split]).into_owned(),
        stderr: String::from_utf8_lossy(&body[split + middle.len()..]).into_owned(),
    }))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trailer(errors: &[u8]) -> String {
    let text = String::from_utf8_lossy(errors);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_splits_into_stdout_stderr_and_code() {
        let raw = b"line one\nline two\n@@n1 session-stderr\noops\n\n@@n1 session-done 3\n";
        let out = answered(raw, 0, "n1")
            .expect("complete")
            .expect("well formed");
        assert_eq!(out.stdout, "line one\nline two");
        assert_eq!(out.stderr, "oops\n");
        assert_eq!(out.exit_code, 3);
    }

    #[test]
    fn an_answer_is_incomplete_until_its_code_line_ends() {
        let raw = b"x\n@@n1 session-stderr\n\n@@n1 session-done 0";
        assert!(answered(raw, 0, "n1").is_none());
        assert!(answered(b"x\n@@n1 session-stderr\n", 0, "n1").is_none());
    }

    #[test]
    fn another_nonce_is_not_the_end() {
        let raw = b"\n@@n0 session-stderr\n\n@@n0 session-done 0\n";
        assert!(answered(raw, 0, "n1").is_none());
    }

    #[test]
    fn an_end_the_shell_does_not_write_is_an_error_not_a_wait() {
        let bad_code = b"\n@@n1 session-stderr\n\n@@n1 session-done x\n";
        assert!(answered(bad_code, 0, "n1").expect("ended").is_err());
        let no_stderr = b"out\n@@n1 session-done 0\n";
        assert!(answered(no_stderr, 0, "n1").expect("ended").is_err());
    }

    #[test]
    fn an_end_split_across_chunks_is_found_from_the_lookback() {
        // What `Shell::run` does: search from before the last chunk by the
        // marker's length, however the stream cut it.
        let raw: &[u8] = b"some output\n@@n1 session-stderr\n\n@@n1 session-done 0\n";
        let marker = "\n@@n1 session-done ".len();
        for cut in 1..raw.len() {
            let from = cut.saturating_sub(marker + 16);
            assert!(answered(&raw[..cut], from, "n1").is_none(), "cut at {cut}");
            let out = answered(raw, from, "n1")
                .expect("whole")
                .expect("well formed");
            assert_eq!(out.stdout, "some output");
        }
    }
}
