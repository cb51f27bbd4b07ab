//! A member's main process runs the scripts it is handed, so that daemons started
//! at bring-up and at each restart are children of the member itself (its cgroup,
//! its reaper) without an engine exec each: a short-lived courier, entered into the
//! member by the observer, hands a script over through two FIFOs and waits for
//! its answer.

/// Where a member's runner keeps its FIFOs, scripts and answers.
pub const RUNNER_DIR: &str = "/run/calico-lab/runner";

/// The exit code of a courier that found no runner in its member (distinct from
/// the batch's own codes, `batch::STALE` among them).
pub const NO_RUNNER: i64 = 86;

/// The member's main process: waits for a request id on `go`, runs `<id>.sh` with
/// its output in `<id>.out` and `<id>.err`, and answers `<id> <code>` on `done`.
/// The shell waiting for each script also reaps what ended beneath it.
pub fn main_process(dir: &str) -> String {
    format!(
        "d={dir}\n\
         trap '' PIPE\n\
         mkdir -p \"$d\" || exit 1\n\
         for f in go done; do [ -p \"$d/$f\" ] || mkfifo \"$d/$f\" || exit 1; done\n\
         while :; do\n\
         read -r id <\"$d/go\" || continue\n\
         case $id in ''|*[!0-9a-z]*) continue;; esac\n\
         sh \"$d/$id.sh\" </dev/null >\"$d/$id.out\" 2>\"$d/$id.err\"\n\
         echo \"$id $?\" >\"$d/done\"\n\
         done\n"
    )
}

/// The courier's command line, run in the member's namespaces: hands `script` to
/// the runner as request `id` (lowercase letters and digits), prints its output,
/// exits with its code. Couriers take turns (a lock); each opens `done` for reading
/// and writing first, so neither end ever blocks on the other's absence, and
/// skips answers to requests whose courier was killed.
pub fn courier(dir: &str, id: &str, script: &str) -> Vec<String> {
    let body = format!(
        "d={dir}; id=$1\n\
         case $id in ''|*[!0-9a-z]*) echo \"bad request id '$id'\" >&2; exit 2;; esac\n\
         i=0\n\
         until [ -p \"$d/go\" ] && [ -p \"$d/done\" ]; do\n\
         i=$((i + 1))\n\
         if [ $i -gt 300 ]; then echo \"no runner in this member ($d)\" >&2; exit {NO_RUNNER}; fi\n\
         sleep 0.01\n\
         done\n\
         exec 9>\"$d/lock\" && flock 9 || exit 1\n\
         printf '%s\\n' \"$2\" >\"$d/$id.sh\" || exit 1\n\
         exec 8<>\"$d/done\" || exit 1\n\
         echo \"$id\" >\"$d/go\" || exit 1\n\
         while read -r got code <&8; do [ \"$got\" = \"$id\" ] && break; done\n\
         cat \"$d/$id.out\"; cat \"$d/$id.err\" >&2\n\
         rm -f \"$d/$id.sh\" \"$d/$id.out\" \"$d/$id.err\"\n\
         exit \"$code\"\n"
    );
    ["sh", "-c", &body, "courier", id, script]
        .map(String::from)
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    struct Runner(Child);

    impl Drop for Runner {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn runner(dir: &str) -> Runner {
        Runner(
            Command::new("sh")
                .args(["-c", &main_process(dir)])
                .stdin(Stdio::null())
                .spawn()
                .expect("sh runs"),
        )
    }

    fn hand(dir: &str, id: &str, script: &str) -> (i32, String, String) {
        let argv = courier(dir, id, script);
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .expect("sh runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The runner runs each script as its own child (the same process as the
    /// runner's parent of everything it started), with its output, errors and code
    /// back; several couriers at once each get their own answer.
    #[test]
    fn scripts_run_by_the_runner_answer_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("r").to_str().unwrap().to_string();
        let runner = runner(&dir);
        let (code, out, err) = hand(
            &dir,
            "a1",
            "echo out; echo err >&2; echo \"$PPID\"; cat; exit 3",
        );
        assert_eq!(code, 3, "{err}");
        assert_eq!(err, "err\n");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "out");
        // The script's parent is the runner: what it starts belongs to the member.
        assert_eq!(lines[1], runner.0.id().to_string());
        // Its stdin is empty: it cannot wait on the courier.
        assert_eq!(lines.len(), 2, "{out}");
        let handles: Vec<_> = (0..12)
            .map(|n| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    hand(
                        &dir,
                        &format!("c{n}"),
                        &format!("sleep 0.0{}; echo {n}", n % 3),
                    )
                })
            })
            .collect();
        for (n, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), (0, format!("{n}\n"), String::new()));
        }
        // Nothing left behind but the FIFOs and the lock.
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["done", "go", "lock"]);
    }

    /// A courier killed while its script runs leaves an answer nobody reads: the
    /// next courier skips it and gets its own.
    #[test]
    fn an_answer_to_a_killed_courier_is_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("r").to_str().unwrap().to_string();
        let _runner = runner(&dir);
        let argv = courier(&dir, "k1", "sleep 0.5; echo late");
        let mut killed = Command::new(&argv[0])
            .args(&argv[1..])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        killed.kill().unwrap();
        killed.wait().unwrap();
        let started = Instant::now();
        assert_eq!(
            hand(&dir, "k2", "echo mine"),
            (0, "mine\n".into(), String::new())
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// A member without a runner is said so, not waited on forever; a request id
    /// the runner would drop is refused before it is sent.
    #[test]
    fn no_runner_and_a_bad_id_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("none").to_str().unwrap().to_string();
        let (code, _, err) = hand(&dir, "x1", "echo never");
        assert_eq!(i64::from(code), NO_RUNNER);
        assert!(err.contains("no runner"), "{err}");
        let (code, _, err) = hand(&dir, "X; rm -rf /", "echo never");
        assert_eq!(code, 2);
        assert!(err.contains("bad request id"), "{err}");
    }
}
