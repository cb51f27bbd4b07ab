//! Progress on a terminal (a spinner per step), plain lines otherwise (CI logs).

use std::io::IsTerminal;
use std::time::Duration;

use calico_lab::lab::{Event, Progress};

pub struct Display {
    bar: Option<indicatif::ProgressBar>,
}

impl Display {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Display { bar }
    }

    /// A listener that shows every event as it happens.
    pub fn listener(&self) -> Progress {
        let bar = self.bar.clone();
        Progress::new(move |event| {
            let (line, keep) = match event {
                Event::Step(step) => (format!("-- {step}"), false),
                Event::Member { step, member } => (format!("   {step}: {member}"), false),
                Event::Outcome(o) => {
                    let result = match (&o.failure, &o.skipped) {
                        (Some(_), _) => "FAIL",
                        (None, Some(_)) => "skip",
                        (None, None) => "pass",
                    };
                    let line =
                        format!("   {result} {} ({:.1} s)", o.name, o.duration.as_secs_f64());
                    (line, true)
                }
            };
            match &bar {
                Some(bar) if keep => bar.println(line),
                Some(bar) => bar.set_message(line.trim_start().to_string()),
                None => eprintln!("{line}"),
            }
        })
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
