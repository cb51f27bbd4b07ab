//! Many commands in one script: a helper container that sees the host's processes
//! enters each member's namespaces to run its command, all at once, and prints
//! every output framed so that they split apart exactly.

use super::ExecOutput;

/// One command for the batch: the member's main process, the hostname that proves
/// the process is still that member's, and the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub pid: u32,
    pub hostname: String,
    pub argv: Vec<String>,
}

/// The exit code of a command whose member's process is no longer the one given
/// (restarted, stopped or removed): its pid must be looked up again.
pub const STALE: i64 = 125;
const STALE_MESSAGE: &str = "calico-lab: the member process is gone";

/// Whether `answer` is the batch's own word that its member's process changed (a
/// command of its own that exits 125 is not).
pub fn is_stale(answer: &ExecOutput) -> bool {
    answer.exit_code == STALE && answer.stderr.trim_end() == STALE_MESSAGE
}

/// A word as the shell reads it back unchanged.
pub(crate) fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The script the helper runs; `nonce` frames the outputs (never in a command's
/// output by chance). Only `nsenter` and the commands are processes of their own
/// (shell builtins check the member; one `cat` prints every framed output): on a
/// 2-core machine the polls of a wait compete with the daemons they wait for.
pub fn script(nonce: &str, commands: &[Command]) -> String {
    let mut s = format!(
        "d=$(mktemp -d) || exit 1\n\
         printf '\\n@@{nonce} stderr\\n' >\"$d/m\"\n\
         printf '\\n@@{nonce} end\\n' >\"$d/z\"\n\
         run() {{\n\
         p=$1; h=$2; i=$3; shift 3\n\
         seen=; read -r seen 2>/dev/null <\"/proc/$p/root/etc/hostname\"\n\
         if [ \"$seen\" != \"$h\" ]; then : >\"$d/$i.o\"; echo '{STALE_MESSAGE}' >\"$d/$i.e\"; code={STALE}\n\
         else nsenter -t \"$p\" -m -u -i -n -p -r -w \"$@\" >\"$d/$i.o\" 2>\"$d/$i.e\" </dev/null; code=$?; fi\n\
         printf '@@{nonce} %s %s\\n' \"$i\" \"$code\" >\"$d/$i.h\"\n\
         }}\n"
    );
    for (i, c) in commands.iter().enumerate() {
        let argv: Vec<String> = c.argv.iter().map(|a| quote(a)).collect();
        s += &format!(
            "run {} {} {i} {} &\n",
            c.pid,
            quote(&c.hostname),
            argv.join(" ")
        );
    }
    // A command whose header is missing (its run was killed) is left out whole.
    s += &format!(
        "wait\n\
         set --\n\
         i=0\n\
         while [ $i -lt {n} ]; do\n\
         [ -e \"$d/$i.h\" ] && set -- \"$@\" \"$d/$i.h\" \"$d/$i.o\" \"$d/m\" \"$d/$i.e\" \"$d/z\"\n\
         i=$((i+1))\n\
         done\n\
         [ $# -eq 0 ] || cat \"$@\"\n\
         rm -rf \"$d\"\n",
        n = commands.len()
    );
    s
}

/// How long one batch's script may grow: a bigger read is cut into several
/// scripts, each sent to a shell of its own (see `session`), all at once.
pub const SCRIPT_BUDGET: usize = 64 * 1024;

/// `commands` cut, in order, into runs whose scripts stay within `budget` bytes
/// (a command too big alone gets a run of its own).
pub fn groups<T>(
    commands: &[T],
    size: impl Fn(&T) -> usize,
    budget: usize,
) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, c) in commands.iter().enumerate() {
        // The `run` line's own words and quotes besides the command.
        let cost = size(c) + 64;
        if i > start && used + cost > budget {
            out.push(start..i);
            (start, used) = (i, 0);
        }
        used += cost;
    }
    if start < commands.len() {
        out.push(start..commands.len());
    }
    out
}

/// Each command's output, in order; `None` where the batch's output holds none
/// (the helper died midway).
pub fn split(nonce: &str, stdout: &str, count: usize) -> Vec<Option<ExecOutput>> {
    let mut out = vec![None; count];
    let mut rest = stdout;
    let header = format!("@@{nonce} ");
    let middle = format!("\n@@{nonce} stderr\n");
    let end = format!("\n@@{nonce} end\n");
    while let Some(start) = rest.find(&header) {
        let after = &rest[start + header.len()..];
        let Some((line, body)) = after.split_once('\n') else {
            break;
        };
        let mut words = line.split_whitespace();
        let (Some(Ok(i)), Some(Ok(code))) = (
            words.next().map(str::parse::<usize>),
            words.next().map(str::parse::<i64>),
        ) else {
            break;
        };
        let (Some(m), Some(e)) = (body.find(&middle), body.find(&end)) else {
            break;
        };
        if m > e || i >= count {
            break;
        }
        out[i] = Some(ExecOutput {
            exit_code: code,
            stdout: body[..m].to_string(),
            stderr: body[m + middle.len()..e].to_string(),
        });
        rest = &body[e + end.len()..];
    }
    out
}

/// A nonce for one batch.
pub fn nonce() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:x}{:x}{seq:x}", std::process::id(), nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the batch's own word marks a member stale: a command that exits 125 by
    /// itself (a courier, `env`) is an answer like any other.
    #[test]
    fn only_the_batch_says_stale() {
        let answer = |code: i64, stderr: &str| ExecOutput {
            exit_code: code,
            stdout: String::new(),
            stderr: stderr.into(),
        };
        assert!(is_stale(&answer(STALE, &format!("{STALE_MESSAGE}\n"))));
        assert!(!is_stale(&answer(STALE, "env: cannot run\n")));
        assert!(!is_stale(&answer(1, &format!("{STALE_MESSAGE}\n"))));
    }

    #[test]
    fn words_survive_the_shell() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        let s = script(
            "n1",
            &[Command {
                pid: 42,
                hostname: "leaf0".into(),
                argv: vec!["vtysh".into(), "-c".into(), "show bgp summary json".into()],
            }],
        );
        assert!(
            s.contains("run 42 'leaf0' 0 'vtysh' '-c' 'show bgp summary json' &"),
            "{s}"
        );
        assert!(s.contains("while [ $i -lt 1 ]"), "{s}");
    }

    /// The real shell runs the whole script, `nsenter` standing in as a function
    /// that runs the command where it is: outputs with and without final newlines,
    /// an empty one, a failure and a stale member come back exactly; a command
    /// whose run is killed is left unanswered, the others are not.
    #[test]
    fn outputs_split_back_exactly() {
        let me = std::process::id();
        let hostname = std::fs::read_to_string(format!("/proc/{me}/root/etc/hostname"))
            .map(|h| h.lines().next().unwrap_or_default().to_string())
            .unwrap_or_default();
        let command = |hostname: &str, shell: &str| Command {
            pid: me,
            hostname: hostname.into(),
            argv: vec!["sh".into(), "-c".into(), shell.into()],
        };
        let commands = [
            command(&hostname, "printf 'one\\ntwo\\n'"),
            command(
                &hostname,
                "printf 'no newline'; printf 'oops\\n' >&2; exit 3",
            ),
            command(&format!("{hostname}-not"), "echo never"),
            command(&hostname, "kill -9 $PPID"),
            command(&hostname, ":"),
        ];
        // nsenter's nine words of options are dropped; the command runs in `run`.
        let s = format!(
            "nsenter() {{ shift 9; \"$@\"; }}\n{}",
            script("abc", &commands)
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &s])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let got: Vec<Option<(i64, String, String)>> = split("abc", &text, commands.len())
            .into_iter()
            .map(|o| o.map(|o| (o.exit_code, o.stdout, o.stderr)))
            .collect();
        assert_eq!(
            got,
            [
                Some((0, "one\ntwo\n".into(), "".into())),
                Some((3, "no newline".into(), "oops\n".into())),
                Some((STALE, "".into(), format!("{STALE_MESSAGE}\n"))),
                None,
                Some((0, "".into(), "".into())),
            ],
            "{text}"
        );
    }

    #[test]
    fn big_batches_are_cut_in_order_within_the_budget() {
        let sizes = [10, 30, 30, 100, 5, 5];
        let got = groups(&sizes, |s| *s, 64 + 64 + 64);
        assert_eq!(got, [0..2, 2..3, 3..4, 4..6]);
        assert!(groups(&[] as &[usize], |s| *s, 100).is_empty());
        // The observer's scripts for 2944 pings of a 16 x 8 lab fit Linux's limit.
        let words = vec!["x".repeat(60); 23];
        let many = vec![words; 128];
        for g in groups(
            &many,
            |w| w.iter().map(|a| a.len() + 3).sum(),
            SCRIPT_BUDGET,
        ) {
            let used: usize = many[g].iter().map(|w| w.len() * 63 + 64).sum();
            assert!(used <= SCRIPT_BUDGET, "{used}");
        }
    }

    #[test]
    fn a_cut_off_batch_leaves_the_rest_unanswered() {
        let text = "@@n 0 0\nok\n\n@@n stderr\n\n@@n end\n@@n 1 0\npart";
        let got = split("n", text, 3);
        assert_eq!(got[0].as_ref().unwrap().stdout, "ok\n");
        assert!(got[1].is_none() && got[2].is_none());
    }
}
