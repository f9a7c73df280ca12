//! From one boot's events to a timeline and a verdict an operator can act on.
//!
//! Pure: the caller passes what the journal cannot know (is the device provisioned, is
//! auto-registration on, what time is it now).

use std::time::{Duration, SystemTime};

use journal::{Event, EventKind, Protocol, Side, Step, Transport, VlanVia};
use serde::Serialize;

/// What the diagnosis needs besides the events.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    /// Is the device in the database? `None` when unknown.
    pub provisioned: Option<bool>,
    /// Is auto-registration on? `None` when unknown.
    pub auto_registration: Option<bool>,
    /// The time of the diagnosis (a boot that has not moved for a while is stalled).
    pub now: Option<SystemTime>,
}

/// How an event reads in the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    Info,
    Warn,
    Fail,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub at: SystemTime,
    /// Milliseconds since the first event of the boot.
    pub offset_ms: u64,
    pub step: Step,
    pub level: Level,
    pub side: Side,
    pub text: String,
}

/// Where each boot step got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Done,
    Failed,
    Pending,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepStatus {
    pub step: Step,
    pub state: StepState,
    /// Time from the start of the boot to the step's completion.
    pub after_ms: Option<u64>,
}

/// The boot's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Registered and still registered at the end of the boot.
    Registered,
    /// Still moving: the last event is recent.
    InProgress,
    /// Stopped at a step.
    Stalled,
    /// Was registered, then lost or reset.
    Ended,
    /// Nothing recorded.
    Unknown,
}

/// A boot as a timeline with a verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub started: Option<SystemTime>,
    pub entries: Vec<Entry>,
    pub steps: Vec<StepStatus>,
    pub outcome: Outcome,
    /// The step where it stopped (for stalled or failed boots).
    pub stalled_at: Option<Step>,
    /// One sentence: what happened.
    pub verdict: String,
    /// The likely cause, in plain words, when the boot did not end registered.
    pub cause: Option<String>,
    /// Things that did not stop the boot but are worth knowing.
    pub warnings: Vec<String>,
}

/// A boot that has not moved for this long is stalled rather than in progress.
const STALL_AFTER: Duration = Duration::from_secs(30);

fn is_config_file(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let n = n.strip_suffix(".sgn").unwrap_or(&n);
    n.ends_with(".cnf.xml") || n.ends_with(".cnf") || n.ends_with("cnf.xml")
}

/// A signed configuration (`SEP<MAC>.cnf.xml.sgn`): only a phone holding a trust list asks
/// for one.
fn is_signed_config(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.strip_suffix(".sgn").is_some_and(is_config_file)
}

fn is_device_config(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    n.starts_with("SEP") && is_config_file(name)
}

/// Trust lists and dial plans a phone asks for and lives without.
fn is_optional_file(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with(".tlv")
        || n.starts_with("ctl")
        || n.starts_with("itl")
        || n.ends_with(".jpg")
        || n.ends_with(".png")
        || n.contains("dialplan")
        || n.ends_with(".xsd")
        || n.starts_with("g3-")
        || n.starts_with("ringlist")
        || n.starts_with("distinctiveringlist")
        || n.ends_with(".raw")
        || n.ends_with(".pcm")
}

fn is_load_file(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with(".loads")
        || n.ends_with(".sbn")
        || n.ends_with(".bin")
        || n.ends_with(".zz")
        || n.ends_with(".sb2")
        || n.ends_with(".k3")
        || n.ends_with(".k4")
}

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Sccp => "SCCP",
        Protocol::Sip => "SIP",
    }
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Tftp => "TFTP",
        Transport::Http => "HTTP",
    }
}

/// One event on its own: how it reads in a timeline, and how bad it is.
pub fn describe(kind: &EventKind) -> (Level, String) {
    use EventKind::*;
    match kind {
        CdpSeen {
            port,
            platform,
            power_requested_mw,
        } => {
            let mut s = format!("CDP seen on {port}");
            if let Some(p) = platform {
                s.push_str(&format!(" ({p})"));
            }
            if let Some(mw) = power_requested_mw {
                s.push_str(&format!(", asks {mw} mW"));
            }
            (Level::Info, s)
        }
        LldpSeen { port, model, med } => {
            let mut s = format!("LLDP{} seen on {port}", if *med { "-MED" } else { "" });
            if let Some(m) = model {
                s.push_str(&format!(" ({m})"));
            }
            (Level::Info, s)
        }
        NeighbourLost { port } => (
            Level::Warn,
            format!("switch lost the phone on {port} (holdtime expired or link down)"),
        ),
        PowerGranted {
            port,
            class,
            milliwatts,
        } => (
            Level::Ok,
            format!("power granted on {port}: class {class}, {milliwatts} mW"),
        ),
        VoiceVlan { vlan, via } => match (vlan, via) {
            (Some(v), VlanVia::Cdp) => (Level::Ok, format!("voice VLAN {v} given by CDP")),
            (Some(v), VlanVia::LldpMed) => (Level::Ok, format!("voice VLAN {v} given by LLDP-MED")),
            (Some(v), VlanVia::None) => (Level::Ok, format!("voice VLAN {v}")),
            (None, _) => (
                Level::Warn,
                "no voice VLAN: the phone stays untagged on the access VLAN".into(),
            ),
        },
        DhcpDiscover { vendor_class } => (
            Level::Info,
            match vendor_class {
                Some(v) => format!("DHCPDISCOVER ({v})"),
                None => "DHCPDISCOVER".into(),
            },
        ),
        DhcpOffer { ip } => (Level::Info, format!("DHCPOFFER {ip}")),
        DhcpAck {
            ip,
            lease_secs,
            tftp_servers,
            ..
        } => {
            if tftp_servers.is_empty() {
                (
                    Level::Warn,
                    format!("DHCPACK {ip} for {lease_secs} s, without option 150"),
                )
            } else {
                let list: Vec<String> = tftp_servers.iter().map(|a| a.to_string()).collect();
                (
                    Level::Ok,
                    format!(
                        "DHCPACK {ip} for {lease_secs} s, TFTP (option 150) {}",
                        list.join(", ")
                    ),
                )
            }
        }
        DhcpNak { reason } => (Level::Fail, format!("DHCPNAK: {reason}")),
        DhcpRelease { ip } => (Level::Info, format!("released {ip}")),
        DhcpDecline { ip } => (
            Level::Fail,
            format!("declined {ip} (address already in use on the network)"),
        ),
        FileServed {
            name,
            transport,
            bytes,
            duration_ms,
        } => (
            Level::Ok,
            format!(
                "{} served {name} ({bytes} bytes in {duration_ms} ms)",
                transport_name(*transport)
            ),
        ),
        FileMissing { name, transport } => {
            let level = if is_optional_file(name) {
                Level::Info
            } else {
                Level::Warn
            };
            let tail = if is_optional_file(name) {
                " (optional, the phone goes on without it)"
            } else {
                ""
            };
            (
                level,
                format!(
                    "{} asked for {name}: not found{tail}",
                    transport_name(*transport)
                ),
            )
        }
        FileFailed {
            name,
            transport,
            reason,
        } => (
            Level::Fail,
            format!(
                "{} transfer of {name} failed: {reason}",
                transport_name(*transport)
            ),
        ),
        Registered {
            protocol,
            node,
            from,
            detail,
        } => {
            let from = from.map(|a| format!(" from {a}")).unwrap_or_default();
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            };
            (
                Level::Ok,
                format!(
                    "registered with {node} over {}{from}{detail}",
                    proto_name(*protocol)
                ),
            )
        }
        RegisterRejected { protocol, reason } => (
            Level::Fail,
            format!("{} registration rejected: {reason}", proto_name(*protocol)),
        ),
        KeepaliveLost { protocol } => (
            Level::Fail,
            format!("{} keepalives stopped", proto_name(*protocol)),
        ),
        Unregistered { protocol } => (
            Level::Info,
            format!("unregistered ({})", proto_name(*protocol)),
        ),
        ResetSent { protocol, reset } => (
            Level::Info,
            format!(
                "{} sent over {}",
                match reset {
                    journal::ResetKind::Reset => "reset",
                    journal::ResetKind::Restart => "restart",
                    journal::ResetKind::ApplyConfig => "apply-config",
                },
                proto_name(*protocol)
            ),
        ),
        LoadWithheld { reason, .. } => (Level::Warn, format!("firmware: {reason}")),
        StepFailed { step, reason } => (
            Level::Fail,
            format!("phone reports {} failed: {reason}", step_word(*step)),
        ),
    }
}

fn step_word(s: Step) -> &'static str {
    match s {
        Step::Power => "power",
        Step::Discovery => "discovery",
        Step::Dhcp => "DHCP",
        Step::Files => "files",
        Step::Registration => "registration",
    }
}

/// Turns one boot (events oldest first) into a timeline with a verdict.
pub fn diagnose(events: &[Event], ctx: &Context) -> Timeline {
    use EventKind::*;
    let Some(first) = events.first() else {
        return Timeline {
            started: None,
            entries: vec![],
            steps: vec![],
            outcome: Outcome::Unknown,
            stalled_at: None,
            verdict: "nothing heard from this phone yet".into(),
            cause: Some(
                "no CDP/LLDP frame, DHCP request, file request or registration was seen: is it \
                 powered and patched into a port phoneboot watches?"
                    .into(),
            ),
            warnings: vec![],
        };
    };
    let t0 = first.at;
    let off = |t: SystemTime| {
        t.duration_since(t0)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    };
    let entries: Vec<Entry> = events
        .iter()
        .map(|e| {
            let (level, text) = describe(&e.kind);
            Entry {
                at: e.at,
                offset_ms: off(e.at),
                step: e.kind.step(),
                level,
                side: e.side,
                text,
            }
        })
        .collect();
    let last_at = events.iter().map(|e| e.at).max().unwrap_or(t0);
    let quiet = ctx
        .now
        .and_then(|n| n.duration_since(last_at).ok())
        .is_some_and(|d| d >= STALL_AFTER);

    let find = |pred: &dyn Fn(&EventKind) -> bool| events.iter().find(|e| pred(&e.kind));
    let rfind = |pred: &dyn Fn(&EventKind) -> bool| events.iter().rev().find(|e| pred(&e.kind));

    let seen = find(&|k| matches!(k, CdpSeen { .. } | LldpSeen { .. }));
    let power = find(&|k| matches!(k, PowerGranted { .. }));
    let vlan = rfind(&|k| matches!(k, VoiceVlan { .. }));
    let discover = find(&|k| matches!(k, DhcpDiscover { .. }));
    let offer = find(&|k| matches!(k, DhcpOffer { .. }));
    let ack = rfind(&|k| matches!(k, DhcpAck { .. }));
    let nak = rfind(&|k| matches!(k, DhcpNak { .. }));
    let decline = rfind(&|k| matches!(k, DhcpDecline { .. }));
    let any_file = find(&|k| {
        matches!(
            k,
            FileServed { .. } | FileMissing { .. } | FileFailed { .. }
        )
    });
    let cnf_served = rfind(&|k| matches!(k, FileServed { name, .. } if is_config_file(name)));
    let dev_cnf_missing =
        rfind(&|k| matches!(k, FileMissing { name, .. } if is_device_config(name)));
    let file_failed = rfind(&|k| matches!(k, FileFailed { .. }));
    let load_missing = rfind(&|k| matches!(k, FileMissing { name, .. } if is_load_file(name)));
    let last_reg = rfind(&|k| {
        matches!(
            k,
            Registered { .. } | KeepaliveLost { .. } | Unregistered { .. } | ResetSent { .. }
        )
    });
    let registered = find(&|k| matches!(k, Registered { .. }));
    let rejected = rfind(&|k| matches!(k, RegisterRejected { .. }));
    let phone_failed = rfind(&|k| matches!(k, StepFailed { .. }));

    let mut warnings = Vec::new();
    if let Some(e) = load_missing {
        if let FileMissing { name, .. } = &e.kind {
            warnings.push(format!(
                "load file {name} requested but missing: the phone will keep its firmware"
            ));
        }
    }
    if let Some(Event {
        kind: VoiceVlan { vlan: None, .. },
        ..
    }) = vlan
    {
        warnings.push("no voice VLAN was given: the phone stays on the data VLAN".into());
    }
    if let Some(Event {
        kind: DhcpAck { tftp_servers, .. },
        ..
    }) = ack
    {
        if tftp_servers.is_empty() && any_file.is_some() {
            warnings.push(
                "the lease had no option 150: the phone found its TFTP server another way".into(),
            );
        }
    }

    let done = |e: Option<&Event>| e.map(|e| off(e.at));
    let reg_proto = match registered.map(|e| &e.kind) {
        Some(Registered { protocol, .. }) => Some(*protocol),
        _ => None,
    };

    // The verdict: the furthest step explains the boot.
    let (outcome, stalled_at, verdict, cause): (Outcome, Option<Step>, String, Option<String>) =
        if let Some(e) = last_reg {
            match &e.kind {
                Registered { protocol, node, .. } => (
                    Outcome::Registered,
                    None,
                    format!(
                        "registered with {node} over {} {:.1} s after the boot began",
                        proto_name(*protocol),
                        off(e.at) as f64 / 1000.0
                    ),
                    None,
                ),
                KeepaliveLost { protocol } => (
                    Outcome::Ended,
                    Some(Step::Registration),
                    "was registered, then stopped sending keepalives".into(),
                    Some(format!(
                        "the phone went away or the path to {} broke: unplugged, rebooted, or \
                         the network between them dropped",
                        match protocol {
                            Protocol::Sccp => "TCP 2000",
                            Protocol::Sip => "port 5060",
                        }
                    )),
                ),
                Unregistered { .. } => (
                    Outcome::Ended,
                    None,
                    "was registered, then unregistered itself".into(),
                    Some("the phone said goodbye (restart, config change or shutdown)".into()),
                ),
                _ => (
                    Outcome::Ended,
                    None,
                    "was registered, then a reset was sent".into(),
                    Some("waiting for the phone to boot again".into()),
                ),
            }
        } else if let Some(e) = rejected {
            let RegisterRejected { protocol, reason } = &e.kind else {
                unreachable_verdict()
            };
            let cause = if ctx.provisioned == Some(false) && ctx.auto_registration != Some(true) {
                "the device is not provisioned and auto-registration is off: add it, or turn \
                 auto-registration on"
                    .to_string()
            } else {
                format!("the call manager refused it: {reason}")
            };
            (
                Outcome::Stalled,
                Some(Step::Registration),
                format!("{} registration rejected", proto_name(*protocol)),
                Some(cause),
            )
        } else if let Some(e) = phone_failed {
            let StepFailed { step, reason } = &e.kind else {
                unreachable_verdict()
            };
            (
                Outcome::Stalled,
                Some(*step),
                format!("the phone reports its {} step failed", step_word(*step)),
                Some(reason.clone()),
            )
        } else if let Some(e) = file_failed.filter(|_| cnf_served.is_none()) {
            let FileFailed { name, reason, .. } = &e.kind else {
                unreachable_verdict()
            };
            (
                Outcome::Stalled,
                Some(Step::Files),
                format!("transfer of {name} failed"),
                Some(format!(
                    "{reason}: check the path from the phone to the TFTP server (UDP 69 and the \
                     data ports) or HTTP 6970"
                )),
            )
        } else if let (Some(e), None) = (dev_cnf_missing, cnf_served) {
            let FileMissing { name, .. } = &e.kind else {
                unreachable_verdict()
            };
            let cause = match (ctx.provisioned, ctx.auto_registration) {
                (Some(false), Some(false)) => format!(
                    "asked for {name} but the device is not provisioned and auto-registration is off"
                ),
                (Some(false), None) => format!("asked for {name} but the device is not provisioned"),
                (Some(false), Some(true)) => format!(
                    "asked for {name}: the device is not provisioned and auto-registration is on, \
                     but XMLDefault.cnf.xml was not fetched"
                ),
                (Some(true), _) => format!(
                    "asked for {name}: the device is provisioned but its configuration file was \
                     not generated (check its device pool and template)"
                ),
                (None, _) => format!("asked for {name} but there is no such file"),
            };
            (
                Outcome::Stalled,
                Some(Step::Files),
                "configuration file missing".into(),
                Some(cause),
            )
        } else if let Some(e) = cnf_served {
            let FileServed { name, .. } = &e.kind else {
                unreachable_verdict()
            };
            if quiet && is_signed_config(name) {
                (
                    Outcome::Stalled,
                    Some(Step::Files),
                    format!("{name} served but the phone never registered"),
                    Some(
                        "this phone holds a trust list from another cluster (it asks for .sgn \
                         files and rejected the configuration): erase its trust list on the \
                         phone, or import that cluster's signing certificate (`phoneboot \
                         security import`)"
                            .into(),
                    ),
                )
            } else if quiet {
                let port = match reg_proto {
                    Some(Protocol::Sip) => "UDP/TCP 5060",
                    _ => "TCP 2000 (SCCP) or 5060 (SIP)",
                };
                (
                    Outcome::Stalled,
                    Some(Step::Registration),
                    format!("{name} served but the phone never registered"),
                    Some(format!(
                        "file served but never registered: is {port} on the call manager \
                         reachable from the phone?"
                    )),
                )
            } else {
                (
                    Outcome::InProgress,
                    None,
                    format!("{name} served; waiting for the phone to register"),
                    None,
                )
            }
        } else if any_file.is_some() {
            (
                if quiet {
                    Outcome::Stalled
                } else {
                    Outcome::InProgress
                },
                Some(Step::Files),
                "fetched files but never its configuration file".into(),
                Some(
                    "the phone asked for files but not SEP<MAC>.cnf.xml or XMLDefault.cnf.xml"
                        .into(),
                ),
            )
        } else if let Some(e) = ack {
            let DhcpAck {
                ip, tftp_servers, ..
            } = &e.kind
            else {
                unreachable_verdict()
            };
            if tftp_servers.is_empty() {
                (
                    if quiet {
                        Outcome::Stalled
                    } else {
                        Outcome::InProgress
                    },
                    Some(Step::Dhcp),
                    format!("got {ip} but never asked for a file"),
                    Some(
                        "got a lease without option 150: the phone does not know its TFTP server"
                            .into(),
                    ),
                )
            } else if quiet {
                let list: Vec<String> = tftp_servers.iter().map(|a| a.to_string()).collect();
                (
                    Outcome::Stalled,
                    Some(Step::Files),
                    format!("got {ip} with option 150 but never asked for a file"),
                    Some(format!(
                        "is UDP 69 on {} reachable from the phone's VLAN?",
                        list.join(", ")
                    )),
                )
            } else {
                (
                    Outcome::InProgress,
                    None,
                    format!("got {ip}; waiting for the first file request"),
                    None,
                )
            }
        } else if let Some(e) = nak.or(decline) {
            let cause = match &e.kind {
                DhcpNak { reason } => format!("the server refused the request: {reason}"),
                _ => "the offered address answered ARP: another host uses it".into(),
            };
            (
                Outcome::Stalled,
                Some(Step::Dhcp),
                "no lease".into(),
                Some(cause),
            )
        } else if offer.is_some() {
            (
                if quiet { Outcome::Stalled } else { Outcome::InProgress },
                Some(Step::Dhcp),
                "offered an address but the phone never took it".into(),
                Some("no DHCPREQUEST followed the offer: another DHCP server may have answered first".into()),
            )
        } else if discover.is_some() {
            (
                if quiet {
                    Outcome::Stalled
                } else {
                    Outcome::InProgress
                },
                Some(Step::Dhcp),
                "asked for an address but got no offer".into(),
                Some("no pool serves this phone's VLAN, or the pool is full".into()),
            )
        } else if seen.is_some() || power.is_some() || vlan.is_some() {
            (
                if quiet {
                    Outcome::Stalled
                } else {
                    Outcome::InProgress
                },
                Some(Step::Dhcp),
                "seen on the switch but never asked for an address".into(),
                Some(if vlan.is_none() {
                    "no voice VLAN was given and no DHCPDISCOVER reached us: is the DHCP server \
                     on the phone's VLAN?"
                        .into()
                } else {
                    "no DHCPDISCOVER reached us on the voice VLAN: check the VLAN trunk to the server"
                        .into()
                }),
            )
        } else {
            (Outcome::InProgress, None, "boot in progress".into(), None)
        };

    let reg_done = registered.map(|e| off(e.at));
    let state = |done_at: Option<u64>, step: Step| -> StepStatus {
        let state = if done_at.is_some() {
            StepState::Done
        } else if stalled_at == Some(step) {
            StepState::Failed
        } else if reg_done.is_some() || stalled_at.is_some_and(|s| s > step) {
            StepState::Skipped
        } else {
            StepState::Pending
        };
        StepStatus {
            step,
            state,
            after_ms: done_at,
        }
    };
    let vlan_done = vlan
        .filter(|e| matches!(e.kind, VoiceVlan { vlan: Some(_), .. }))
        .or(seen);
    let files_done = cnf_served.map(|e| off(e.at));
    let mut steps = vec![
        state(done(power), Step::Power),
        state(done(vlan_done), Step::Discovery),
        state(done(ack), Step::Dhcp),
        state(files_done, Step::Files),
        state(reg_done, Step::Registration),
    ];
    // A step after the stall point is pending, not skipped.
    for s in steps.iter_mut() {
        if let Some(stall) = stalled_at {
            if s.step > stall && s.state == StepState::Skipped {
                s.state = StepState::Pending;
            }
        }
    }

    Timeline {
        started: Some(t0),
        entries,
        steps,
        outcome,
        stalled_at,
        verdict,
        cause,
        warnings,
    }
}

/// The `let … else` arms above only run after a match on the same kind.
fn unreachable_verdict() -> ! {
    panic!("diagnosis matched an event kind and then found another")
}
