//! One phone's boot, as the phone saw it: steps with times, results and details.
//!
//! Step names are journal's [`Step`]s so the emulator's view lines up with the server's
//! journal; [`PhoneReport::journal_events`] turns a report into journal events (`Side::Phone`).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use journal::{Event, EventKind, Protocol, Side, Step, Transport, VlanVia};
use mac::Mac;
use serde::{Deserialize, Serialize};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// Finished, but not the preferred way (e.g. untagged after no discovery answer).
    Degraded,
    Failed,
    /// Never reached because an earlier step failed or the phone was stopped.
    Skipped,
}

/// One step of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: Step,
    /// Milliseconds since the phone started booting.
    pub start_ms: f64,
    pub end_ms: f64,
    pub outcome: Outcome,
    /// One readable line.
    pub detail: String,
}

impl StepRecord {
    pub fn duration_ms(&self) -> f64 {
        self.end_ms - self.start_ms
    }
}

/// Why a phone did not register. `kind` groups failures in storm summaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub step: Step,
    /// Short stable key, e.g. `dhcp_timeout`, `register_rejected`, `config_not_xml`.
    pub kind: String,
    /// Human sentence with the specifics.
    pub reason: String,
}

impl Failure {
    pub fn new(step: Step, kind: &str, reason: impl Into<String>) -> Self {
        Failure {
            step,
            kind: kind.to_string(),
            reason: reason.into(),
        }
    }
}

/// How the voice VLAN was learnt (journal's [`VlanVia`] plus a static setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VlanSource {
    Cdp,
    LldpMed,
    /// Configured on the phone (Admin VLAN ID / `--voice-vlan`).
    Static,
    /// Nothing learnt before the timeout: untagged.
    None,
}

impl VlanSource {
    pub fn as_journal(self) -> VlanVia {
        match self {
            VlanSource::Cdp => VlanVia::Cdp,
            VlanSource::LldpMed => VlanVia::LldpMed,
            VlanSource::Static | VlanSource::None => VlanVia::None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PowerInfo {
    pub class: u8,
    pub requested_mw: u32,
    /// Power Available from the switch's CDP answer, if any.
    pub granted_mw: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryInfo {
    pub vlan: Option<u16>,
    pub via: VlanSource,
    pub cdp_sent: u32,
    pub lldp_sent: u32,
    /// The switch's device id / port, when heard.
    pub switch: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LeaseInfo {
    pub ip: Option<Ipv4Addr>,
    pub mask: Option<Ipv4Addr>,
    pub router: Option<Ipv4Addr>,
    pub server: Option<Ipv4Addr>,
    pub lease_secs: Option<u32>,
    /// Option 150, in the order given.
    pub option150: Vec<Ipv4Addr>,
    pub option66: Option<String>,
    pub next_server: Option<Ipv4Addr>,
    /// The TFTP server chosen (150, else 66, else next-server) and from which source.
    pub tftp_server: Option<Ipv4Addr>,
    pub tftp_source: Option<String>,
    pub vendor_class: String,
    pub discovers: u32,
    pub requests: u32,
}

/// How one file request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileResult {
    Ok,
    Missing,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub name: String,
    pub transport: Transport,
    pub server: Ipv4Addr,
    pub result: FileResult,
    pub bytes: u64,
    pub start_ms: f64,
    pub end_ms: f64,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallManagerAttempt {
    pub node: String,
    pub port: u16,
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationInfo {
    pub protocol: Protocol,
    /// Where it registered (host:port), if it did.
    pub registered_to: Option<String>,
    pub attempts: Vec<CallManagerAttempt>,
    /// SCCP: negotiated version / keepalive; SIP: AOR and expiry.
    pub detail: String,
    pub keepalive_secs: Option<u32>,
}

/// Something that happened after registration (server-initiated reset, keepalive loss...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaterEvent {
    pub at_ms: f64,
    pub what: String,
}

/// Everything about one phone's boot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhoneReport {
    pub mac: Mac,
    pub device: String,
    pub model: String,
    pub protocol: Protocol,
    /// Wall-clock start.
    #[serde(with = "unix_ms")]
    pub started_at: SystemTime,
    pub steps: Vec<StepRecord>,
    pub registered: bool,
    /// Milliseconds from start to registered.
    pub total_ms: Option<f64>,
    pub failure: Option<Failure>,
    pub power: PowerInfo,
    pub discovery: Option<DiscoveryInfo>,
    pub lease: Option<LeaseInfo>,
    /// Which configuration file was used (`SEP…cnf.xml` or `XMLDefault.cnf.xml`).
    pub config_file: Option<String>,
    pub files: Vec<FileRecord>,
    pub registration: Option<RegistrationInfo>,
    pub later: Vec<LaterEvent>,
}

mod unix_ms {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        s.serialize_u64(ms)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let ms = u64::deserialize(d)?;
        Ok(UNIX_EPOCH + Duration::from_millis(ms))
    }
}

impl PhoneReport {
    pub fn new(mac: Mac, model: &str, protocol: Protocol, started_at: SystemTime) -> Self {
        PhoneReport {
            mac,
            device: mac.device_name(),
            model: model.to_string(),
            protocol,
            started_at,
            steps: Vec::new(),
            registered: false,
            total_ms: None,
            failure: None,
            power: PowerInfo::default(),
            discovery: None,
            lease: None,
            config_file: None,
            files: Vec::new(),
            registration: None,
            later: Vec::new(),
        }
    }

    /// The record of `step`, if the phone got there.
    pub fn step(&self, step: Step) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.step == step)
    }

    /// Whether `step` finished well enough to go on.
    pub fn reached(&self, step: Step) -> bool {
        self.step(step)
            .map(|s| matches!(s.outcome, Outcome::Ok | Outcome::Degraded))
            .unwrap_or(false)
    }

    /// A readable timeline: one line per step, then files, then the verdict.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} {} ({}, {})",
            self.device,
            self.model,
            proto_name(self.protocol),
            self.mac
        );
        let _ = writeln!(
            out,
            "  {:<13} {:>9} {:>9}  {:<8} detail",
            "step", "start ms", "took ms", "result"
        );
        for s in &self.steps {
            let _ = writeln!(
                out,
                "  {:<13} {:>9.1} {:>9.1}  {:<8} {}",
                step_name(s.step),
                s.start_ms,
                s.duration_ms(),
                outcome_name(s.outcome),
                s.detail
            );
            if s.step == Step::Files {
                for f in &self.files {
                    let _ = writeln!(
                        out,
                        "      {:<7} {:<4} {:>9.1} {:>8} B  {} {}",
                        file_result_name(f.result),
                        transport_name(f.transport),
                        f.end_ms - f.start_ms,
                        f.bytes,
                        f.name,
                        if f.detail.is_empty() {
                            String::new()
                        } else {
                            format!("({})", f.detail)
                        }
                    );
                }
            }
        }
        for l in &self.later {
            let _ = writeln!(out, "  later @{:.1} ms: {}", l.at_ms, l.what);
        }
        match (&self.failure, self.total_ms) {
            (None, Some(t)) if self.registered => {
                let _ = writeln!(out, "  REGISTERED in {t:.1} ms");
            }
            (Some(f), _) => {
                let _ = writeln!(
                    out,
                    "  FAILED at {}: {} ({})",
                    step_name(f.step),
                    f.reason,
                    f.kind
                );
            }
            _ => {
                let _ = writeln!(out, "  NOT REGISTERED");
            }
        }
        out
    }

    /// The phone-side journal events of this boot, stamped from `started_at`.
    pub fn journal_events(&self) -> Vec<Event> {
        let at = |ms: f64| self.started_at + Duration::from_micros((ms.max(0.0) * 1000.0) as u64);
        let mut ev = Vec::new();
        let mut push = |ms: f64, kind: EventKind| {
            ev.push(Event {
                at: at(ms),
                mac: self.mac,
                side: Side::Phone,
                kind,
            })
        };
        for s in &self.steps {
            match s.step {
                Step::Power => {
                    if let Some(g) = self.power.granted_mw {
                        push(
                            s.end_ms,
                            EventKind::PowerGranted {
                                port: "phone".into(),
                                class: self.power.class,
                                milliwatts: g,
                            },
                        );
                    }
                }
                Step::Discovery => {
                    if let Some(d) = &self.discovery {
                        push(
                            s.end_ms,
                            EventKind::VoiceVlan {
                                vlan: d.vlan,
                                via: d.via.as_journal(),
                            },
                        );
                    }
                }
                Step::Dhcp => {
                    if let Some(l) = &self.lease {
                        push(
                            s.start_ms,
                            EventKind::DhcpDiscover {
                                vendor_class: Some(l.vendor_class.clone()),
                            },
                        );
                        if let Some(ip) = l.ip {
                            push(
                                s.end_ms,
                                EventKind::DhcpAck {
                                    ip,
                                    lease_secs: l.lease_secs.unwrap_or(0),
                                    tftp_servers: l.option150.clone(),
                                    vendor_class: Some(l.vendor_class.clone()),
                                },
                            );
                        }
                    }
                }
                Step::Files => {
                    for f in &self.files {
                        let kind = match f.result {
                            FileResult::Ok => EventKind::FileServed {
                                name: f.name.clone(),
                                transport: f.transport,
                                bytes: f.bytes,
                                duration_ms: (f.end_ms - f.start_ms).max(0.0) as u64,
                            },
                            FileResult::Missing => EventKind::FileMissing {
                                name: f.name.clone(),
                                transport: f.transport,
                            },
                            FileResult::Failed => EventKind::FileFailed {
                                name: f.name.clone(),
                                transport: f.transport,
                                reason: f.detail.clone(),
                            },
                        };
                        push(f.end_ms, kind);
                    }
                }
                Step::Registration => {
                    if let Some(r) = &self.registration {
                        if let Some(node) = &r.registered_to {
                            push(
                                s.end_ms,
                                EventKind::Registered {
                                    protocol: r.protocol,
                                    node: node.clone(),
                                    from: self.lease.as_ref().and_then(|l| l.ip).map(IpAddr::V4),
                                    detail: r.detail.clone(),
                                },
                            );
                        }
                    }
                }
            }
            if s.outcome == Outcome::Failed {
                push(
                    s.end_ms,
                    EventKind::StepFailed {
                        step: s.step,
                        reason: self
                            .failure
                            .as_ref()
                            .map(|f| f.reason.clone())
                            .unwrap_or_else(|| s.detail.clone()),
                    },
                );
            }
        }
        ev
    }
}

pub fn step_name(s: Step) -> &'static str {
    match s {
        Step::Power => "power",
        Step::Discovery => "discovery",
        Step::Dhcp => "dhcp",
        Step::Files => "files",
        Step::Registration => "registration",
    }
}

pub const ALL_STEPS: [Step; 5] = [
    Step::Power,
    Step::Discovery,
    Step::Dhcp,
    Step::Files,
    Step::Registration,
];

pub fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Degraded => "degraded",
        Outcome::Failed => "FAILED",
        Outcome::Skipped => "skipped",
    }
}

pub fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Sccp => "sccp",
        Protocol::Sip => "sip",
    }
}

pub fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Tftp => "tftp",
        Transport::Http => "http",
    }
}

pub fn file_result_name(r: FileResult) -> &'static str {
    match r {
        FileResult::Ok => "ok",
        FileResult::Missing => "missing",
        FileResult::Failed => "failed",
    }
}

/// One CSV row per phone: the timeline flattened (for `--csv`).
#[derive(Debug, Clone, Serialize)]
pub struct CsvRow {
    pub mac: String,
    pub device: String,
    pub model: String,
    pub protocol: &'static str,
    pub registered: bool,
    pub total_ms: Option<f64>,
    pub failure_step: Option<&'static str>,
    pub failure_kind: Option<String>,
    pub failure_reason: Option<String>,
    pub power_start_ms: Option<f64>,
    pub power_end_ms: Option<f64>,
    pub discovery_start_ms: Option<f64>,
    pub discovery_end_ms: Option<f64>,
    pub dhcp_start_ms: Option<f64>,
    pub dhcp_end_ms: Option<f64>,
    pub files_start_ms: Option<f64>,
    pub files_end_ms: Option<f64>,
    pub registration_start_ms: Option<f64>,
    pub registration_end_ms: Option<f64>,
    pub voice_vlan: Option<u16>,
    pub vlan_via: Option<String>,
    pub ip: Option<Ipv4Addr>,
    pub tftp_server: Option<Ipv4Addr>,
    pub files_ok: usize,
    pub files_missing: usize,
    pub files_failed: usize,
    pub bytes: u64,
    pub config_file: Option<String>,
    pub registered_to: Option<String>,
}

impl From<&PhoneReport> for CsvRow {
    fn from(r: &PhoneReport) -> Self {
        let se = |s: Step| r.step(s).map(|x| (x.start_ms, x.end_ms));
        let start = |s| se(s).map(|x| x.0);
        let end = |s| se(s).map(|x| x.1);
        let count = |k: FileResult| r.files.iter().filter(|f| f.result == k).count();
        CsvRow {
            mac: r.mac.to_string(),
            device: r.device.clone(),
            model: r.model.clone(),
            protocol: proto_name(r.protocol),
            registered: r.registered,
            total_ms: r.total_ms,
            failure_step: r.failure.as_ref().map(|f| step_name(f.step)),
            failure_kind: r.failure.as_ref().map(|f| f.kind.clone()),
            failure_reason: r.failure.as_ref().map(|f| f.reason.clone()),
            power_start_ms: start(Step::Power),
            power_end_ms: end(Step::Power),
            discovery_start_ms: start(Step::Discovery),
            discovery_end_ms: end(Step::Discovery),
            dhcp_start_ms: start(Step::Dhcp),
            dhcp_end_ms: end(Step::Dhcp),
            files_start_ms: start(Step::Files),
            files_end_ms: end(Step::Files),
            registration_start_ms: start(Step::Registration),
            registration_end_ms: end(Step::Registration),
            voice_vlan: r.discovery.as_ref().and_then(|d| d.vlan),
            vlan_via: r
                .discovery
                .as_ref()
                .and_then(|d| serde_json::to_value(d.via).ok())
                .and_then(|v| v.as_str().map(str::to_string)),
            ip: r.lease.as_ref().and_then(|l| l.ip),
            tftp_server: r.lease.as_ref().and_then(|l| l.tftp_server),
            files_ok: count(FileResult::Ok),
            files_missing: count(FileResult::Missing),
            files_failed: count(FileResult::Failed),
            bytes: r.files.iter().map(|f| f.bytes).sum(),
            config_file: r.config_file.clone(),
            registered_to: r
                .registration
                .as_ref()
                .and_then(|g| g.registered_to.clone()),
        }
    }
}

/// Writes one CSV row per phone.
pub fn write_csv<W: std::io::Write>(w: W, reports: &[PhoneReport]) -> Result<(), csv::Error> {
    let mut wr = csv::Writer::from_writer(w);
    for r in reports {
        wr.serialize(CsvRow::from(r))?;
    }
    wr.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PhoneReport {
        let mac: Mac = "001b54aabbcc".parse().unwrap();
        let mut r = PhoneReport::new(mac, "CP-7965", Protocol::Sccp, SystemTime::UNIX_EPOCH);
        r.steps.push(StepRecord {
            step: Step::Power,
            start_ms: 0.0,
            end_ms: 1.0,
            outcome: Outcome::Ok,
            detail: "class 3".into(),
        });
        r.steps.push(StepRecord {
            step: Step::Dhcp,
            start_ms: 1.0,
            end_ms: 20.5,
            outcome: Outcome::Ok,
            detail: "198.18.100.10".into(),
        });
        r.lease = Some(LeaseInfo {
            ip: Some(Ipv4Addr::new(198, 18, 100, 10)),
            option150: vec![
                Ipv4Addr::new(198, 18, 100, 1),
                Ipv4Addr::new(198, 18, 100, 2),
            ],
            vendor_class: "Cisco Systems, Inc. IP Phone CP-7965".into(),
            ..Default::default()
        });
        r.steps.push(StepRecord {
            step: Step::Files,
            start_ms: 20.5,
            end_ms: 40.0,
            outcome: Outcome::Failed,
            detail: "config".into(),
        });
        r.failure = Some(Failure::new(Step::Files, "config_not_xml", "not XML"));
        r
    }

    #[test]
    fn text_timeline_names_every_step_and_the_failure() {
        let t = sample().render_text();
        assert!(t.contains("SEP001B54AABBCC CP-7965 (sccp"));
        assert!(t.contains("power"));
        assert!(t.contains("dhcp"));
        assert!(t.contains("FAILED at files: not XML (config_not_xml)"));
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["steps"][1]["step"], "dhcp");
        assert_eq!(v["lease"]["option150"][1], "198.18.100.2");
        let back: PhoneReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn journal_events_use_the_shared_vocabulary() {
        let ev = sample().journal_events();
        assert!(ev.iter().all(|e| e.side == Side::Phone));
        assert!(ev.iter().any(|e| matches!(
            &e.kind,
            EventKind::DhcpAck { tftp_servers, .. } if tftp_servers.len() == 2
        )));
        assert!(ev.iter().any(|e| matches!(
            &e.kind,
            EventKind::StepFailed {
                step: Step::Files,
                ..
            }
        )));
    }

    #[test]
    fn csv_has_one_row_per_phone() {
        let mut buf = Vec::new();
        write_csv(&mut buf, &[sample(), sample()]).unwrap();
        let s = String::from_utf8(buf).unwrap();
        assert_eq!(s.lines().count(), 3);
        assert!(s.lines().next().unwrap().starts_with("mac,device,model"));
        assert!(s.contains("config_not_xml"));
    }
}
