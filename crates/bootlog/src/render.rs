//! The `phoneboot phone trace` text: a boot as a terminal timeline.

use std::fmt::Write;

use journal::{Mac, Side, Step};

use crate::diagnose::{Level, Outcome, StepState, Timeline};
use crate::time::format_utc;

fn step_label(s: Step) -> &'static str {
    match s {
        Step::Power => "power",
        Step::Discovery => "discovery",
        Step::Dhcp => "dhcp",
        Step::Files => "files",
        Step::Registration => "register",
    }
}

/// Renders a diagnosed boot for a terminal: a header, one line per event with its offset from
/// the start, the step ladder and the verdict.
pub fn render_trace(mac: Mac, t: &Timeline) -> String {
    let mut out = String::new();
    let _ = write!(out, "{} ({mac})", mac.device_name());
    match t.started {
        Some(s) => {
            let _ = writeln!(out, ", last boot began {} UTC", format_utc(s));
        }
        None => {
            let _ = writeln!(out);
        }
    }
    out.push('\n');
    for e in &t.entries {
        let mark = match e.level {
            Level::Ok => "ok  ",
            Level::Info => "    ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        let side = match e.side {
            Side::Server => "",
            Side::Phone => " [phone]",
        };
        let _ = writeln!(
            out,
            "  +{:>8.3}s  {:<9}  {mark}  {}{side}",
            e.offset_ms as f64 / 1000.0,
            step_label(e.step),
            e.text
        );
    }
    if !t.entries.is_empty() {
        out.push('\n');
    }
    let ladder: Vec<String> = t
        .steps
        .iter()
        .map(|s| {
            let m = match s.state {
                StepState::Done => "✓",
                StepState::Failed => "✗",
                StepState::Pending => "…",
                StepState::Skipped => "-",
            };
            format!("{} {m}", step_label(s.step))
        })
        .collect();
    if !ladder.is_empty() {
        let _ = writeln!(out, "  steps: {}", ladder.join("  →  "));
    }
    let head = match t.outcome {
        Outcome::Registered => "REGISTERED".to_string(),
        Outcome::InProgress => "IN PROGRESS".to_string(),
        Outcome::Ended => "ENDED".to_string(),
        Outcome::Unknown => "NO DATA".to_string(),
        Outcome::Stalled => match t.stalled_at {
            Some(s) => format!("STALLED at {}", step_label(s)),
            None => "STALLED".to_string(),
        },
    };
    let _ = writeln!(out, "  verdict: {head}: {}", t.verdict);
    if let Some(c) = &t.cause {
        let _ = writeln!(out, "  likely cause: {c}");
    }
    for w in &t.warnings {
        let _ = writeln!(out, "  note: {w}");
    }
    out
}
