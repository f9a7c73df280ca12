//! A boot storm: many phones from one namespace, started at an arrival rate with at most
//! `concurrency` phones booting at once; registered phones keep their registrations until
//! the storm is told to stop.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use journal::Step;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use crate::phone::{run_phone, Env, PhoneSpec, Progress};
use crate::report::{step_name, PhoneReport, ALL_STEPS};
use crate::stats::Summary;

/// How the storm is shaped.
#[derive(Debug, Clone)]
pub struct StormConfig {
    pub phones: Vec<PhoneSpec>,
    /// Phones started per second; None = all at once (a true boot storm).
    pub rate: Option<f64>,
    /// Most phones booting at the same time.
    pub concurrency: usize,
    /// Draw a progress line on stderr.
    pub progress: bool,
}

/// Live counters, shared with the phones.
#[derive(Debug, Default)]
pub struct Counters {
    pub started: AtomicUsize,
    pub booted: AtomicUsize,
    ok: [AtomicUsize; 5],
    failed: [AtomicUsize; 5],
}

fn step_index(s: Step) -> usize {
    ALL_STEPS.iter().position(|x| *x == s).unwrap_or(0)
}

impl Counters {
    pub fn ok(&self, s: Step) -> usize {
        self.ok[step_index(s)].load(Ordering::Relaxed)
    }
    pub fn failed(&self, s: Step) -> usize {
        self.failed[step_index(s)].load(Ordering::Relaxed)
    }
}

impl Progress for Counters {
    fn step_done(&self, step: Step, ok: bool) {
        let i = step_index(step);
        if ok {
            self.ok[i].fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One progress line: a bar of booted phones, then per-step counts.
pub fn progress_line(c: &Counters, total: usize, elapsed: Duration) -> String {
    let booted = c.booted.load(Ordering::Relaxed);
    let width = 24usize;
    let filled = (booted * width)
        .checked_div(total)
        .unwrap_or(width)
        .min(width);
    let mut bar = "=".repeat(filled);
    if filled < width {
        bar.push('>');
        bar.push_str(&" ".repeat(width - filled - 1));
    }
    let failed: usize = ALL_STEPS.iter().map(|s| c.failed(*s)).sum();
    let reg = c.ok(Step::Registration);
    let rate = reg as f64 / elapsed.as_secs_f64().max(0.001);
    let steps: Vec<String> = ALL_STEPS
        .iter()
        .map(|s| format!("{} {}", short(*s), c.ok(*s)))
        .collect();
    format!(
        "[{bar}] {booted}/{total} started {} | {} | failed {failed} | {rate:.1} reg/s | {:.1} s",
        c.started.load(Ordering::Relaxed),
        steps.join(" "),
        elapsed.as_secs_f64()
    )
}

fn short(s: Step) -> &'static str {
    match s {
        Step::Power => "pwr",
        Step::Discovery => "vlan",
        Step::Dhcp => "dhcp",
        Step::Files => "files",
        Step::Registration => "reg",
    }
}

/// A running storm: boot reports now, final reports after [`Storm::stop`].
pub struct Storm {
    /// Boot reports in phone order.
    pub boots: Vec<PhoneReport>,
    /// From the first phone's start to the last phone's boot end.
    pub wall: Duration,
    pub counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<PhoneReport>>,
}

impl Storm {
    pub fn summary(&self) -> Summary {
        Summary::from_reports(&self.boots, self.wall.as_secs_f64())
    }

    /// Registered phones right now (boot reports).
    pub fn registered(&self) -> usize {
        self.boots.iter().filter(|r| r.registered).count()
    }

    /// Tells every phone to unregister and stop; returns the final reports (with anything
    /// that happened while holding).
    pub async fn stop(self) -> Vec<PhoneReport> {
        let _ = self.stop.send(true);
        let mut out = Vec::with_capacity(self.tasks.len());
        for (i, t) in self.tasks.into_iter().enumerate() {
            match t.await {
                Ok(r) => out.push(r),
                Err(_) => {
                    if let Some(b) = self.boots.get(i) {
                        out.push(b.clone());
                    }
                }
            }
        }
        out
    }
}

/// Starts the phones and returns once every phone has registered or failed; the registered
/// ones keep their registrations until [`Storm::stop`].
pub async fn run(env: Arc<Env>, cfg: StormConfig) -> Storm {
    let total = cfg.phones.len();
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let sem = Arc::new(Semaphore::new(cfg.concurrency.max(1)));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(usize, PhoneReport)>();
    let started = Instant::now();
    let show = cfg.progress;
    let progress_task = show.then(|| {
        let c = Arc::clone(&counters);
        tokio::spawn(async move {
            let tty = std::io::stderr().is_terminal();
            let mut tick =
                tokio::time::interval(Duration::from_millis(if tty { 250 } else { 2000 }));
            loop {
                tick.tick().await;
                let line = progress_line(&c, total, started.elapsed());
                let mut e = std::io::stderr().lock();
                if tty {
                    let _ = write!(e, "\r{line}\x1b[K");
                } else {
                    let _ = writeln!(e, "{line}");
                }
                let _ = e.flush();
            }
        })
    });
    let mut tasks = Vec::with_capacity(total);
    let mut last_end = started;
    let mut boots: Vec<Option<PhoneReport>> = vec![None; total];
    let mut received = 0usize;
    for (i, spec) in cfg.phones.iter().copied().enumerate() {
        if let Some(r) = cfg.rate.filter(|r| *r > 0.0) {
            let at = started + Duration::from_secs_f64(i as f64 / r);
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        }
        let permit = loop {
            // Collect finished boots while waiting for a slot.
            tokio::select! {
                p = Arc::clone(&sem).acquire_owned() => break p.ok(),
                Some((idx, r)) = done_rx.recv() => {
                    last_end = Instant::now();
                    boots[idx] = Some(r);
                    received += 1;
                }
            }
        };
        counters.started.fetch_add(1, Ordering::Relaxed);
        let (btx, brx) = oneshot::channel();
        let progress: Arc<dyn Progress> = counters.clone();
        tasks.push(tokio::spawn(run_phone(
            Arc::clone(&env),
            spec,
            stop_rx.clone(),
            Some(progress),
            Some(btx),
            true,
        )));
        let done = done_tx.clone();
        let c = Arc::clone(&counters);
        tokio::spawn(async move {
            if let Ok(r) = brx.await {
                c.booted.fetch_add(1, Ordering::Relaxed);
                let _ = done.send((i, r));
            }
            drop(permit);
        });
    }
    drop(done_tx);
    while received < total {
        match done_rx.recv().await {
            Some((idx, r)) => {
                last_end = Instant::now();
                boots[idx] = Some(r);
                received += 1;
            }
            None => break,
        }
    }
    if let Some(t) = progress_task {
        t.abort();
        let mut e = std::io::stderr().lock();
        let _ = writeln!(
            e,
            "\r{}\x1b[K",
            progress_line(&counters, total, started.elapsed())
        );
    }
    let boots = boots
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                let s = cfg.phones[i];
                PhoneReport::new(
                    s.mac,
                    s.model.name,
                    s.protocol,
                    std::time::SystemTime::now(),
                )
            })
        })
        .collect();
    Storm {
        boots,
        wall: last_end.duration_since(started),
        counters,
        stop: stop_tx,
        tasks,
    }
}

/// Names of the steps, for help texts.
pub fn step_names() -> Vec<&'static str> {
    ALL_STEPS.iter().map(|s| step_name(*s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_shows_counts() {
        let c = Counters::default();
        c.started.store(10, Ordering::Relaxed);
        c.booted.store(5, Ordering::Relaxed);
        c.step_done(Step::Dhcp, true);
        c.step_done(Step::Registration, false);
        let l = progress_line(&c, 10, Duration::from_secs(1));
        assert!(l.starts_with("[============>           ] 5/10"));
        assert!(l.contains("dhcp 1"));
        assert!(l.contains("failed 1"));
    }
}
