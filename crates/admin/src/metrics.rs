//! Prometheus `/metrics`: what a voice engineer watches, with no per-MAC labels.
//!
//! Counters and histograms are fed by the event stream; gauges (registered phones, leases,
//! pool use, neighbours) are read from their owners at scrape time.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use journal::{Event, EventKind, Mac, Protocol, Transport};

use crate::App;

/// Upper bounds (seconds) of the boot-step duration buckets.
const BUCKETS: [f64; 11] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Boots tracked at once for step durations; beyond this the oldest are forgotten.
const MAX_TRACKED: usize = 50_000;

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// (metric, labels) -> value.
    counters: BTreeMap<(&'static str, String), u64>,
    /// Boot step -> histogram of seconds from boot start to that step.
    steps: BTreeMap<&'static str, Histogram>,
    /// Boot start per phone (kept only while the boot is in progress).
    boot_start: HashMap<Mac, SystemTime>,
}

/// Every counter series the event stream can feed, present at 0 from the start: a dashboard
/// (packaging/grafana-dashboard.json) and `rate()` see a series before its first event.
const COUNTER_SERIES: &[(&str, &str)] = &[
    ("phoneboot_discovery_frames_total", "protocol=\"cdp\""),
    ("phoneboot_discovery_frames_total", "protocol=\"lldp\""),
    ("phoneboot_discovery_neighbours_lost_total", ""),
    ("phoneboot_power_grants_total", ""),
    ("phoneboot_voice_vlan_assignments_total", "given=\"true\""),
    ("phoneboot_voice_vlan_assignments_total", "given=\"false\""),
    ("phoneboot_dhcp_messages_total", "type=\"discover\""),
    ("phoneboot_dhcp_messages_total", "type=\"offer\""),
    ("phoneboot_dhcp_messages_total", "type=\"ack\""),
    ("phoneboot_dhcp_messages_total", "type=\"nak\""),
    ("phoneboot_dhcp_messages_total", "type=\"release\""),
    ("phoneboot_dhcp_messages_total", "type=\"decline\""),
    ("phoneboot_dhcp_acks_without_option150_total", ""),
    ("phoneboot_files_served_total", "transport=\"tftp\""),
    ("phoneboot_files_served_total", "transport=\"http\""),
    ("phoneboot_file_bytes_total", "transport=\"tftp\""),
    ("phoneboot_file_bytes_total", "transport=\"http\""),
    (
        "phoneboot_files_missing_total",
        "transport=\"tftp\",kind=\"config\"",
    ),
    (
        "phoneboot_files_missing_total",
        "transport=\"http\",kind=\"config\"",
    ),
    ("phoneboot_files_failed_total", "transport=\"tftp\""),
    ("phoneboot_files_failed_total", "transport=\"http\""),
    ("phoneboot_registrations_total", "protocol=\"sccp\""),
    ("phoneboot_registrations_total", "protocol=\"sip\""),
    (
        "phoneboot_registration_rejections_total",
        "protocol=\"sccp\"",
    ),
    (
        "phoneboot_registration_rejections_total",
        "protocol=\"sip\"",
    ),
    ("phoneboot_keepalives_lost_total", "protocol=\"sccp\""),
    ("phoneboot_keepalives_lost_total", "protocol=\"sip\""),
    ("phoneboot_unregistrations_total", "protocol=\"sccp\""),
    ("phoneboot_unregistrations_total", "protocol=\"sip\""),
    ("phoneboot_resets_sent_total", "kind=\"reset\""),
    ("phoneboot_resets_sent_total", "kind=\"restart\""),
    ("phoneboot_resets_sent_total", "kind=\"apply_config\""),
];

/// The boot steps whose durations are kept (empty histograms are rendered too).
const STEPS: [&str; 3] = ["dhcp", "files", "registration"];

/// The counters the event stream feeds.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Inner>,
    lagged: AtomicU64,
    logins_failed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut inner = Inner::default();
        for (name, labels) in COUNTER_SERIES {
            inner.counters.insert((name, (*labels).to_string()), 0);
        }
        for step in STEPS {
            inner.steps.insert(step, Histogram::default());
        }
        Metrics {
            inner: Mutex::new(inner),
            lagged: AtomicU64::new(0),
            logins_failed: AtomicU64::new(0),
        }
    }
}

fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Sccp => "sccp",
        Protocol::Sip => "sip",
    }
}

fn transport(t: Transport) -> &'static str {
    match t {
        Transport::Tftp => "tftp",
        Transport::Http => "http",
    }
}

fn file_kind(name: &str) -> &'static str {
    let n = name.to_ascii_lowercase();
    if n.ends_with(".cnf.xml") || n.ends_with(".cnf") {
        "config"
    } else if n.ends_with(".loads")
        || n.ends_with(".sbn")
        || n.ends_with(".bin")
        || n.ends_with(".zz")
    {
        "load"
    } else if n.ends_with(".tlv") {
        "trust"
    } else {
        "other"
    }
}

impl Metrics {
    pub(crate) fn lagged(&self, n: u64) {
        self.lagged.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn login_failed(&self) {
        self.logins_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one event.
    pub fn observe(&self, ev: &Event) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut inc = |name: &'static str, labels: String| {
            *g.counters.entry((name, labels)).or_default() += 1;
        };
        use EventKind::*;
        match &ev.kind {
            CdpSeen { .. } => inc(
                "phoneboot_discovery_frames_total",
                "protocol=\"cdp\"".into(),
            ),
            LldpSeen { .. } => inc(
                "phoneboot_discovery_frames_total",
                "protocol=\"lldp\"".into(),
            ),
            NeighbourLost { .. } => inc("phoneboot_discovery_neighbours_lost_total", String::new()),
            PowerGranted { .. } => inc("phoneboot_power_grants_total", String::new()),
            VoiceVlan { vlan, .. } => inc(
                "phoneboot_voice_vlan_assignments_total",
                format!("given=\"{}\"", vlan.is_some()),
            ),
            DhcpDiscover { .. } => inc("phoneboot_dhcp_messages_total", "type=\"discover\"".into()),
            DhcpOffer { .. } => inc("phoneboot_dhcp_messages_total", "type=\"offer\"".into()),
            DhcpAck { tftp_servers, .. } => {
                inc("phoneboot_dhcp_messages_total", "type=\"ack\"".into());
                if tftp_servers.is_empty() {
                    inc("phoneboot_dhcp_acks_without_option150_total", String::new());
                }
            }
            DhcpNak { .. } => inc("phoneboot_dhcp_messages_total", "type=\"nak\"".into()),
            DhcpRelease { .. } => inc("phoneboot_dhcp_messages_total", "type=\"release\"".into()),
            DhcpDecline { .. } => inc("phoneboot_dhcp_messages_total", "type=\"decline\"".into()),
            FileServed {
                transport: t,
                bytes,
                ..
            } => {
                inc(
                    "phoneboot_files_served_total",
                    format!("transport=\"{}\"", transport(*t)),
                );
                *g.counters
                    .entry((
                        "phoneboot_file_bytes_total",
                        format!("transport=\"{}\"", transport(*t)),
                    ))
                    .or_default() += bytes;
            }
            FileMissing { name, transport: t } => inc(
                "phoneboot_files_missing_total",
                format!(
                    "transport=\"{}\",kind=\"{}\"",
                    transport(*t),
                    file_kind(name)
                ),
            ),
            FileFailed { transport: t, .. } => inc(
                "phoneboot_files_failed_total",
                format!("transport=\"{}\"", transport(*t)),
            ),
            Registered { protocol, .. } => inc(
                "phoneboot_registrations_total",
                format!("protocol=\"{}\"", proto(*protocol)),
            ),
            RegisterRejected { protocol, .. } => inc(
                "phoneboot_registration_rejections_total",
                format!("protocol=\"{}\"", proto(*protocol)),
            ),
            KeepaliveLost { protocol } => inc(
                "phoneboot_keepalives_lost_total",
                format!("protocol=\"{}\"", proto(*protocol)),
            ),
            Unregistered { protocol } => inc(
                "phoneboot_unregistrations_total",
                format!("protocol=\"{}\"", proto(*protocol)),
            ),
            ResetSent { reset, .. } => inc(
                "phoneboot_resets_sent_total",
                format!(
                    "kind=\"{}\"",
                    match reset {
                        journal::ResetKind::Reset => "reset",
                        journal::ResetKind::Restart => "restart",
                        journal::ResetKind::ApplyConfig => "apply_config",
                    }
                ),
            ),
            StepFailed { .. } | LoadWithheld { .. } => {}
        }
        // Step durations, from the first event of a boot.
        if ev.kind.starts_boot() && !g.boot_start.contains_key(&ev.mac) {
            if g.boot_start.len() >= MAX_TRACKED {
                g.boot_start.clear();
            }
            g.boot_start.insert(ev.mac, ev.at);
        }
        let step = match &ev.kind {
            DhcpAck { .. } => Some("dhcp"),
            FileServed { name, .. } if file_kind(name) == "config" => Some("files"),
            Registered { .. } => Some("registration"),
            _ => None,
        };
        if let (Some(step), Some(start)) = (step, g.boot_start.get(&ev.mac).copied()) {
            let secs = ev
                .at
                .duration_since(start)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            g.steps.entry(step).or_default().observe(secs);
            if step == "registration" {
                g.boot_start.remove(&ev.mac);
            }
        }
    }

    fn render_counters(&self, out: &mut String) {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = "";
        for ((name, labels), v) in &g.counters {
            if *name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {v}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
        let _ = writeln!(out, "# HELP phoneboot_boot_step_seconds Time from the start of a boot to the end of a step.");
        let _ = writeln!(out, "# TYPE phoneboot_boot_step_seconds histogram");
        for (step, h) in &g.steps {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "phoneboot_boot_step_seconds_bucket{{step=\"{step}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "phoneboot_boot_step_seconds_bucket{{step=\"{step}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "phoneboot_boot_step_seconds_sum{{step=\"{step}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "phoneboot_boot_step_seconds_count{{step=\"{step}\"}} {}",
                h.count
            );
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole exposition text.
pub fn render(app: &App) -> String {
    let mut out = String::with_capacity(4096);
    // Registered phones by protocol and model (SCCP: one row per device; SIP: per device).
    let mut by: BTreeMap<(&'static str, String), u64> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    let models: HashMap<String, String> = app
        .backend
        .list_devices()
        .unwrap_or_default()
        .into_iter()
        .map(|d| (d.name.to_ascii_uppercase(), d.model))
        .collect();
    for r in app.ris.snapshot() {
        if !seen.insert((r.device.to_ascii_uppercase(), r.protocol)) {
            continue;
        }
        let model = r
            .model
            .clone()
            .or_else(|| models.get(&r.device.to_ascii_uppercase()).cloned())
            .unwrap_or_else(|| "unknown".into());
        *by.entry((proto(r.protocol), model)).or_default() += 1;
    }
    let _ = writeln!(
        out,
        "# HELP phoneboot_registered_phones Phones registered now."
    );
    let _ = writeln!(out, "# TYPE phoneboot_registered_phones gauge");
    for p in ["sccp", "sip"] {
        if !by.keys().any(|(q, _)| *q == p) {
            let _ = writeln!(
                out,
                "phoneboot_registered_phones{{protocol=\"{p}\",model=\"any\"}} 0"
            );
        }
    }
    for ((p, m), v) in &by {
        let _ = writeln!(
            out,
            "phoneboot_registered_phones{{protocol=\"{p}\",model=\"{}\"}} {v}",
            esc(m)
        );
    }
    let _ = writeln!(out, "# TYPE phoneboot_provisioned_devices gauge");
    let _ = writeln!(out, "phoneboot_provisioned_devices {}", models.len());
    if let Ok(leases) = app.backend.leases() {
        let _ = writeln!(out, "# TYPE phoneboot_dhcp_leases gauge");
        let _ = writeln!(out, "phoneboot_dhcp_leases {}", leases.len());
    }
    if let Ok(pools) = app.backend.pool_use() {
        let _ = writeln!(out, "# TYPE phoneboot_dhcp_pool_size gauge");
        for p in &pools {
            let _ = writeln!(
                out,
                "phoneboot_dhcp_pool_size{{pool=\"{}\"}} {}",
                esc(&p.name),
                p.size
            );
        }
        let _ = writeln!(out, "# TYPE phoneboot_dhcp_pool_used gauge");
        for p in &pools {
            let _ = writeln!(
                out,
                "phoneboot_dhcp_pool_used{{pool=\"{}\"}} {}",
                esc(&p.name),
                p.used
            );
        }
    }
    if let Ok(n) = app.backend.neighbours() {
        let cdp = n
            .iter()
            .filter(|x| x.protocol == crate::NeighbourProtocol::Cdp)
            .count();
        let _ = writeln!(out, "# TYPE phoneboot_neighbours gauge");
        let _ = writeln!(out, "phoneboot_neighbours{{protocol=\"cdp\"}} {cdp}");
        let _ = writeln!(
            out,
            "phoneboot_neighbours{{protocol=\"lldp\"}} {}",
            n.len() - cdp
        );
    }
    app.metrics.render_counters(&mut out);
    let _ = writeln!(out, "# TYPE phoneboot_journal_dropped_total counter");
    let _ = writeln!(
        out,
        "phoneboot_journal_dropped_total {}",
        app.bootlog.dropped()
    );
    let _ = writeln!(out, "# TYPE phoneboot_admin_events_lagged_total counter");
    let _ = writeln!(
        out,
        "phoneboot_admin_events_lagged_total {}",
        app.metrics.lagged.load(Ordering::Relaxed)
    );
    let _ = writeln!(out, "# TYPE phoneboot_admin_failed_logins_total counter");
    let _ = writeln!(
        out,
        "phoneboot_admin_failed_logins_total {}",
        app.metrics.logins_failed.load(Ordering::Relaxed)
    );
    let _ = writeln!(out, "# TYPE phoneboot_uptime_seconds gauge");
    let _ = writeln!(
        out,
        "phoneboot_uptime_seconds {}",
        app.started.elapsed().map(|d| d.as_secs()).unwrap_or(0)
    );
    out
}

/// `GET /metrics` (no login: it carries no per-phone data).
pub(crate) async fn handler(State(app): State<Arc<App>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&app),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh node already exposes every counter series and step histogram, at zero, so a
    /// dashboard and `rate()` have a series before the first phone boots.
    #[test]
    fn every_series_is_present_at_zero_before_any_event() {
        let m = Metrics::default();
        let mut out = String::new();
        m.render_counters(&mut out);
        for (name, labels) in COUNTER_SERIES {
            let line = if labels.is_empty() {
                format!("{name} 0")
            } else {
                format!("{name}{{{labels}}} 0")
            };
            assert!(out.lines().any(|l| l == line), "missing {line}:\n{out}");
        }
        for step in STEPS {
            let line = format!("phoneboot_boot_step_seconds_count{{step=\"{step}\"}} 0");
            assert!(out.lines().any(|l| l == line), "missing {line}:\n{out}");
        }
        // One TYPE line per metric, even with several label sets.
        let types = out
            .lines()
            .filter(|l| l.starts_with("# TYPE phoneboot_dhcp_messages_total "))
            .count();
        assert_eq!(types, 1, "{out}");
    }
}
