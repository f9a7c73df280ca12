//! Storm statistics: how many phones reached each step, failures by reason, and latency
//! percentiles per step and end to end.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use journal::Step;
use serde::Serialize;

use crate::report::{step_name, PhoneReport, ALL_STEPS};

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub min: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// Nearest-rank percentile (`q` in 0..=100) of an ascending slice; None when empty.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let q = q.clamp(0.0, 100.0);
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    let idx = rank.saturating_sub(1).min(sorted.len() - 1);
    Some(sorted[idx])
}

impl Percentiles {
    /// None for an empty sample; NaNs are ignored.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let sum: f64 = v.iter().sum();
        Some(Percentiles {
            count: v.len(),
            min: v[0],
            p50: percentile(&v, 50.0)?,
            p95: percentile(&v, 95.0)?,
            p99: percentile(&v, 99.0)?,
            max: v[v.len() - 1],
            mean: sum / v.len() as f64,
        })
    }
}

/// The end-of-storm summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub phones: usize,
    pub registered: usize,
    pub failed: usize,
    /// Phones whose step finished ok (or degraded), per step name.
    pub reached: BTreeMap<&'static str, usize>,
    /// Failures grouped by `kind`.
    pub failures: BTreeMap<String, usize>,
    /// One example reason per failure kind.
    pub failure_examples: BTreeMap<String, String>,
    /// Wall time of the storm (first start to last registration/failure), seconds.
    pub wall_secs: f64,
    /// Registered phones per second of wall time.
    pub registered_per_sec: f64,
    /// Per-step durations of the phones that finished that step.
    pub per_step: BTreeMap<&'static str, Percentiles>,
    pub end_to_end: Option<Percentiles>,
}

impl Summary {
    pub fn from_reports(reports: &[PhoneReport], wall_secs: f64) -> Self {
        let mut reached = BTreeMap::new();
        let mut per_step = BTreeMap::new();
        for s in ALL_STEPS {
            let n = reports.iter().filter(|r| r.reached(s)).count();
            reached.insert(step_name(s), n);
            let d: Vec<f64> = reports
                .iter()
                .filter_map(|r| r.step(s).filter(|_| r.reached(s)).map(|x| x.duration_ms()))
                .collect();
            if let Some(p) = Percentiles::of(&d) {
                per_step.insert(step_name(s), p);
            }
        }
        let mut failures = BTreeMap::new();
        let mut failure_examples = BTreeMap::new();
        for r in reports {
            if let Some(f) = &r.failure {
                *failures.entry(f.kind.clone()).or_insert(0) += 1;
                failure_examples
                    .entry(f.kind.clone())
                    .or_insert_with(|| format!("{}: {}", r.device, f.reason));
            } else if !r.registered {
                *failures.entry("not_finished".to_string()).or_insert(0) += 1;
            }
        }
        let registered = reports.iter().filter(|r| r.registered).count();
        let e2e: Vec<f64> = reports.iter().filter_map(|r| r.total_ms).collect();
        Summary {
            phones: reports.len(),
            registered,
            failed: reports.len() - registered,
            reached,
            failures,
            failure_examples,
            wall_secs,
            registered_per_sec: if wall_secs > 0.0 {
                registered as f64 / wall_secs
            } else {
                0.0
            },
            per_step,
            end_to_end: Percentiles::of(&e2e),
        }
    }

    /// A readable summary table.
    pub fn render_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "phones {}  registered {}  failed {}  wall {:.2} s  {:.1} registered/s",
            self.phones, self.registered, self.failed, self.wall_secs, self.registered_per_sec
        );
        let _ = writeln!(
            o,
            "{:<13} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "step", "reached", "p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms"
        );
        let row = |o: &mut String, name: &str, n: usize, p: Option<&Percentiles>| {
            let f = |x: Option<f64>| x.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                o,
                "{:<13} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
                name,
                n,
                f(p.map(|p| p.p50)),
                f(p.map(|p| p.p95)),
                f(p.map(|p| p.p99)),
                f(p.map(|p| p.max)),
                f(p.map(|p| p.mean)),
            );
        };
        for s in ALL_STEPS {
            let name = step_name(s);
            row(
                &mut o,
                name,
                self.reached.get(name).copied().unwrap_or(0),
                self.per_step.get(name),
            );
        }
        row(
            &mut o,
            "end-to-end",
            self.registered,
            self.end_to_end.as_ref(),
        );
        if !self.failures.is_empty() {
            let _ = writeln!(o, "failures by reason:");
            for (k, n) in &self.failures {
                let ex = self.failure_examples.get(k).cloned().unwrap_or_default();
                let _ = writeln!(o, "  {n:>7}  {k}  (e.g. {ex})");
            }
        }
        o
    }
}

/// The step a storm progress bar shows a phone at, from its partial report.
pub fn furthest_step(r: &PhoneReport) -> Option<Step> {
    ALL_STEPS.iter().rev().copied().find(|s| r.reached(*s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Failure, Outcome, StepRecord};
    use journal::Protocol;
    use proptest::prelude::*;
    use std::time::SystemTime;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&v).unwrap();
        assert_eq!(
            (p.min, p.p50, p.p95, p.p99, p.max),
            (1.0, 50.0, 95.0, 99.0, 100.0)
        );
        assert_eq!(p.mean, 50.5);
        assert_eq!(Percentiles::of(&[7.0]).unwrap().p99, 7.0);
        assert!(Percentiles::of(&[]).is_none());
        assert!(Percentiles::of(&[f64::NAN]).is_none());
    }

    proptest! {
        #[test]
        fn percentiles_are_ordered_and_within_range(v in proptest::collection::vec(0.0f64..1e6, 1..200)) {
            let p = Percentiles::of(&v).unwrap();
            prop_assert!(p.min <= p.p50 && p.p50 <= p.p95 && p.p95 <= p.p99 && p.p99 <= p.max);
            prop_assert!(v.contains(&p.p50) && v.contains(&p.p99));
        }
    }

    #[test]
    fn summary_counts_steps_and_groups_failures() {
        let mac: mac::Mac = "001b54000000".parse().unwrap();
        let mut reports = Vec::new();
        for i in 0..10u64 {
            let mut r = crate::report::PhoneReport::new(
                mac.offset(i),
                "CP-8845",
                Protocol::Sip,
                SystemTime::now(),
            );
            r.steps.push(StepRecord {
                step: Step::Dhcp,
                start_ms: 0.0,
                end_ms: 10.0 + i as f64,
                outcome: if i < 8 { Outcome::Ok } else { Outcome::Failed },
                detail: String::new(),
            });
            if i < 8 {
                r.registered = true;
                r.total_ms = Some(100.0 + i as f64);
            } else {
                r.failure = Some(Failure::new(Step::Dhcp, "dhcp_timeout", "no offer"));
            }
            reports.push(r);
        }
        let s = Summary::from_reports(&reports, 2.0);
        assert_eq!(s.registered, 8);
        assert_eq!(s.failed, 2);
        assert_eq!(s.reached["dhcp"], 8);
        assert_eq!(s.failures["dhcp_timeout"], 2);
        assert_eq!(s.registered_per_sec, 4.0);
        assert_eq!(s.per_step["dhcp"].max, 17.0);
        assert_eq!(s.end_to_end.unwrap().count, 8);
        let t = s.render_text();
        assert!(t.contains("dhcp_timeout"));
        assert!(t.contains("end-to-end"));
    }
}
