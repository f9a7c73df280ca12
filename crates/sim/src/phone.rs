//! One emulated phone walking the boot chain over the wire, recording its timeline.
//!
//! Layer 2 (CDP/LLDP, DHCP) goes through the shared [`RawPort`] with the phone's own MAC and
//! its own 802.1Q tag. Once leased, the address is added to the IP interface and every
//! later socket (TFTP, HTTP 6970, SCCP, SIP) is a kernel socket bound to it.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use discovery::{PhoneAgent, PhoneEvent};
use journal::{Protocol, SharedSink, Step, Transport, VlanVia};
use mac::Mac;
use tokio::sync::watch;

use crate::cnf::{self, PhoneConfig};
use crate::dhcp::{DhcpClient, DhcpConfig, Lease, State as DhcpState};
use crate::discover;
use crate::http::{HttpClient, HttpError, HttpOptions};
use crate::model::Model;
use crate::netlink::{self, Netlink};
use crate::rawport::{PortHandle, RawPort};
use crate::register::{self, RegDone, Registration};
use crate::report::*;
use crate::tftp::{self, TftpOptions, TftpOutcome};
use l2::udp as eth;

/// Per-step time limits.
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// Wait for a CDP/LLDP-MED voice VLAN before going on untagged.
    pub discovery: Duration,
    /// Interval between the phone's CDP/LLDP announcements while waiting.
    pub discovery_interval: Duration,
    pub dhcp: Duration,
    /// First DHCP retransmission (doubles).
    pub dhcp_retransmit: Duration,
    /// Per TFTP packet retransmission.
    pub tftp: Duration,
    pub tftp_retries: u32,
    pub http: Duration,
    /// Whole file step.
    pub files: Duration,
    /// TCP connect / first answer of one CallManager.
    pub register: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            discovery: Duration::from_secs(5),
            discovery_interval: Duration::from_secs(1),
            dhcp: Duration::from_secs(30),
            dhcp_retransmit: Duration::from_secs(4),
            tftp: Duration::from_secs(1),
            tftp_retries: 4,
            http: Duration::from_secs(5),
            files: Duration::from_secs(120),
            register: Duration::from_secs(5),
        }
    }
}

/// How phones behave (shared by a whole storm).
#[derive(Debug, Clone)]
pub struct BootOptions {
    pub timeouts: Timeouts,
    /// A voice VLAN configured on the phone: skip discovery.
    pub static_vlan: Option<u16>,
    /// Send CDP and LLDP-MED and wait for a voice VLAN.
    pub discovery: bool,
    /// Fetch the optional files (locale, tones, rings, load manifest...).
    pub optional_files: bool,
    /// Prefix length used for leased addresses on the ip-if (32 recommended).
    pub addr_prefix: u8,
    /// Remove the address when the phone stops.
    pub remove_address: bool,
    /// SIP registration expiry asked for.
    pub sip_expires: u32,
    /// Prefixes made local to the ip-if as a whole (AnyIP local routes) for the run: a
    /// lease inside one is used without adding its address. The kernel's per-address work
    /// (duplicate check, local route, `fib_sync_up`) walks every address of the interface,
    /// so a storm adding one address per phone is quadratic (a quarter of the emulator's
    /// CPU at 10,000 phones). Must not contain a server's address.
    pub anyip: Vec<(Ipv4Addr, u8)>,
    /// A trust list every phone starts out holding (`sim boot --itl FILE`), e.g. one from
    /// another cluster.
    pub itl: Option<Arc<crate::trust::PhoneTrust>>,
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            timeouts: Timeouts::default(),
            static_vlan: None,
            discovery: true,
            optional_files: true,
            addr_prefix: 32,
            remove_address: true,
            sip_expires: 3600,
            anyip: Vec::new(),
            itl: None,
        }
    }
}

/// What a whole run shares: the raw port, the IP interface, the netlink socket.
pub struct Env {
    pub raw: Arc<RawPort>,
    pub ip_if: String,
    pub ip_ifindex: u32,
    pub netlink: Netlink,
    routes: Mutex<HashSet<(Ipv4Addr, u8)>>,
    pub opts: BootOptions,
    pub sink: Option<SharedSink>,
}

/// Why the environment could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("raw interface {0}: {1}")]
    Raw(String, std::io::Error),
    #[error("ip interface {0}: {1}")]
    Ip(String, std::io::Error),
    #[error("netlink: {0}")]
    Netlink(std::io::Error),
}

impl Env {
    /// Opens the raw port on `raw_if` and prepares `ip_if`. Needs CAP_NET_RAW/ADMIN.
    pub fn open(
        raw_if: &str,
        ip_if: &str,
        opts: BootOptions,
        sink: Option<SharedSink>,
    ) -> Result<Arc<Env>, EnvError> {
        // A storm holds a socket or two per phone.
        let _ = sccp_server::raise_nofile_limit(0);
        let raw = RawPort::open(raw_if).map_err(|e| EnvError::Raw(raw_if.to_string(), e))?;
        let ip_ifindex = netlink::ifindex(ip_if).map_err(|e| EnvError::Ip(ip_if.to_string(), e))?;
        let netlink = Netlink::open().map_err(EnvError::Netlink)?;
        for (i, &(dst, prefix)) in opts.anyip.iter().enumerate() {
            if let Err(e) = netlink.replace_local_route(ip_ifindex, dst, prefix) {
                for &(d, p) in &opts.anyip[..i] {
                    let _ = netlink.del_local_route(ip_ifindex, d, p);
                }
                return Err(EnvError::Ip(
                    ip_if.to_string(),
                    std::io::Error::new(e.kind(), format!("local route {dst}/{prefix}: {e}")),
                ));
            }
        }
        Ok(Arc::new(Env {
            raw,
            ip_if: ip_if.to_string(),
            ip_ifindex,
            netlink,
            routes: Mutex::new(HashSet::new()),
            opts,
            sink,
        }))
    }

    /// Is `ip` inside one of the run's AnyIP prefixes (no address of its own)?
    fn anyip_covers(&self, ip: Ipv4Addr) -> bool {
        self.opts
            .anyip
            .iter()
            .any(|&(d, p)| netlink::contains(d, p, ip))
    }

    /// Adds the lease's address (and its subnet route, once) to the ip-if.
    fn add_address(&self, lease: &Lease) -> std::io::Result<()> {
        let prefix = self.opts.addr_prefix.min(32);
        if !self.anyip_covers(lease.ip) {
            self.netlink.add_addr(self.ip_ifindex, lease.ip, prefix)?;
        }
        let sub = (
            netlink::mask(lease.ip, lease.prefix_len()),
            lease.prefix_len(),
        );
        let need = self
            .routes
            .lock()
            .map(|mut r| r.insert(sub))
            .unwrap_or(true);
        if need && prefix > sub.1 {
            if let Err(e) = self.netlink.replace_route(self.ip_ifindex, sub.0, sub.1) {
                if let Ok(mut r) = self.routes.lock() {
                    r.remove(&sub);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn remove_address(&self, ip: Ipv4Addr) {
        if self.anyip_covers(ip) {
            return;
        }
        let _ = self
            .netlink
            .del_addr(self.ip_ifindex, ip, self.opts.addr_prefix.min(32));
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for &(d, p) in &self.opts.anyip {
            let _ = self.netlink.del_local_route(self.ip_ifindex, d, p);
        }
    }
}

/// One phone to emulate.
#[derive(Debug, Clone, Copy)]
pub struct PhoneSpec {
    pub mac: Mac,
    pub model: &'static Model,
    pub protocol: Protocol,
}

/// Clock of one boot: milliseconds since the phone started.
#[derive(Debug, Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn ms(&self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1000.0
    }
}

/// Progress notifications for a storm's live display.
pub trait Progress: Send + Sync {
    fn step_done(&self, step: Step, ok: bool);
}

/// Runs one phone: boots, reports the boot through `booted`, then (if `hold` is set) stays
/// registered until `stop` turns true, obeying resets. Returns the final report.
pub async fn run_phone(
    env: Arc<Env>,
    spec: PhoneSpec,
    mut stop: watch::Receiver<bool>,
    progress: Option<Arc<dyn Progress>>,
    booted: Option<tokio::sync::oneshot::Sender<PhoneReport>>,
    hold: bool,
) -> PhoneReport {
    let mut ph = Phone::new(env, spec, progress);
    let reg = ph.boot(&mut stop).await;
    if let Some(tx) = booted {
        let _ = tx.send(ph.report.clone());
    }
    if let Some(mut reg) = reg {
        if hold {
            ph.hold(&mut reg, &mut stop).await;
        }
        reg.stop().await;
    }
    ph.cleanup();
    ph.emit_journal();
    ph.report
}

struct Phone {
    env: Arc<Env>,
    spec: PhoneSpec,
    clock: Clock,
    report: PhoneReport,
    progress: Option<Arc<dyn Progress>>,
    port: Option<PortHandle>,
    vlan: Option<u16>,
    lease: Option<Lease>,
    address_added: bool,
    config: Option<PhoneConfig>,
    tftp_servers: Vec<Ipv4Addr>,
    /// The trust list held (kept across the resets of a hold).
    trust: crate::trust::PhoneTrust,
}

enum StepEnd {
    Ok(String),
    Degraded(String),
    Fail(Failure),
}

impl Phone {
    fn new(env: Arc<Env>, spec: PhoneSpec, progress: Option<Arc<dyn Progress>>) -> Phone {
        let report = PhoneReport::new(spec.mac, spec.model.name, spec.protocol, SystemTime::now());
        let trust = env.opts.itl.as_deref().cloned().unwrap_or_default();
        Phone {
            trust,
            env,
            spec,
            clock: Clock(Instant::now()),
            report,
            progress,
            port: None,
            vlan: None,
            lease: None,
            address_added: false,
            config: None,
            tftp_servers: Vec::new(),
        }
    }

    fn record(&mut self, step: Step, start: f64, end: StepEnd) -> bool {
        let now = self.clock.ms();
        let (outcome, detail, ok) = match end {
            StepEnd::Ok(d) => (Outcome::Ok, d, true),
            StepEnd::Degraded(d) => (Outcome::Degraded, d, true),
            StepEnd::Fail(f) => {
                let d = f.reason.clone();
                self.report.failure = Some(f);
                (Outcome::Failed, d, false)
            }
        };
        self.report.steps.push(StepRecord {
            step,
            start_ms: start,
            end_ms: now,
            outcome,
            detail,
        });
        if let Some(p) = &self.progress {
            p.step_done(step, ok);
        }
        ok
    }

    /// The boot chain. Some(registration) when registered.
    async fn boot(&mut self, stop: &mut watch::Receiver<bool>) -> Option<Registration> {
        self.report.started_at = SystemTime::now();
        self.clock = Clock(Instant::now());
        if !self.spec.model.supports(self.spec.protocol) {
            let f = Failure::new(
                Step::Power,
                "unsupported_protocol",
                format!(
                    "{} does not run {}",
                    self.spec.model.name,
                    proto_name(self.spec.protocol)
                ),
            );
            self.record(Step::Power, 0.0, StepEnd::Fail(f));
            return None;
        }
        self.port = Some(self.env.raw.subscribe(self.spec.mac, 256));
        // Power: hardware classification is immediate; CDP refines it during discovery.
        let m = self.spec.model;
        self.report.power = PowerInfo {
            class: m.poe_class,
            requested_mw: m.power_request_mw,
            granted_mw: None,
        };
        let power_start = self.clock.ms();
        let disc = self.discovery(stop).await;
        let power_detail = match self.report.power.granted_mw {
            Some(g) => format!(
                "class {} + CDP request {} mW, granted {} mW",
                m.poe_class, m.power_request_mw, g
            ),
            None => format!(
                "class {} (no CDP Power Available; class allocation)",
                m.poe_class
            ),
        };
        // Power is recorded first in the timeline although its CDP part overlaps discovery.
        let dstart = power_start;
        self.record(Step::Power, power_start, StepEnd::Ok(power_detail));
        if !self.record(Step::Discovery, dstart, disc) {
            return None;
        }
        if *stop.borrow() {
            return None;
        }
        let start = self.clock.ms();
        let d = self.dhcp(stop).await;
        if !self.record(Step::Dhcp, start, d) {
            return None;
        }
        // Layer 2 is done: stop receiving raw frames for this phone.
        self.port = None;
        self.files_and_register(stop).await
    }

    /// Files then registration (also what a Reset/Restart re-runs).
    async fn files_and_register(
        &mut self,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Registration> {
        let start = self.clock.ms();
        let limit = self.env.opts.timeouts.files;
        let f = match tokio::time::timeout(limit, self.files()).await {
            Ok(r) => r,
            Err(_) => StepEnd::Fail(Failure::new(
                Step::Files,
                "files_timeout",
                format!("file step over {} s", limit.as_secs()),
            )),
        };
        if !self.record(Step::Files, start, f) {
            return None;
        }
        if *stop.borrow() {
            return None;
        }
        let start = self.clock.ms();
        let (end, reg) = self.register(stop).await;
        let ok = self.record(Step::Registration, start, end);
        if ok {
            self.report.registered = true;
            self.report.total_ms = Some(self.clock.ms());
        }
        reg
    }

    async fn discovery(&mut self, stop: &mut watch::Receiver<bool>) -> StepEnd {
        let o = &self.env.opts;
        if let Some(v) = o.static_vlan {
            self.vlan = if v == 4095 { None } else { Some(v) };
            self.report.discovery = Some(DiscoveryInfo {
                vlan: Some(v),
                via: VlanSource::Static,
                cdp_sent: 0,
                lldp_sent: 0,
                switch: None,
            });
            return StepEnd::Ok(format!("voice VLAN {v} (configured on the phone)"));
        }
        if !o.discovery {
            self.report.discovery = Some(DiscoveryInfo {
                vlan: None,
                via: VlanSource::None,
                cdp_sent: 0,
                lldp_sent: 0,
                switch: None,
            });
            return StepEnd::Degraded("discovery off: untagged".into());
        }
        let Some(port) = self.port.as_mut() else {
            return StepEnd::Fail(Failure::new(Step::Discovery, "internal", "no port"));
        };
        port.listen_discovery(true);
        let (mac, model) = (self.spec.mac, self.spec.model);
        let deadline = tokio::time::Instant::now() + o.timeouts.discovery;
        let mut agent = PhoneAgent::new(
            discover::agent_config(mac, model, self.spec.protocol, &o.timeouts),
            Instant::now(),
        );
        let mut switch: Option<String> = None;
        let mut send_err = None;
        // (VLAN, 4095 = untagged; how) once learned, None at the timeout.
        let result = 'discovery: loop {
            while let Some(f) = agent.poll_transmit() {
                if let Err(e) = port.send(&f).await {
                    send_err = Some(e.to_string());
                }
            }
            while let Some(ev) = agent.poll_event() {
                match ev {
                    PhoneEvent::SwitchSeen {
                        device_id, port_id, ..
                    } => {
                        switch.get_or_insert(match port_id {
                            Some(p) => format!("{device_id} {p}"),
                            None => device_id,
                        });
                    }
                    PhoneEvent::PowerGranted { milliwatts } => {
                        self.report.power.granted_mw = Some(milliwatts);
                    }
                    PhoneEvent::VoiceVlan { vlan, via } => {
                        let via = match via {
                            VlanVia::Cdp => VlanSource::Cdp,
                            VlanVia::LldpMed => VlanSource::LldpMed,
                            _ => break 'discovery None,
                        };
                        break 'discovery Some((vlan.unwrap_or(4095), via));
                    }
                }
            }
            let wake = agent
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or(deadline)
                .min(deadline);
            tokio::select! {
                f = port.rx.recv() => match f {
                    Some(f) => agent.handle_frame(&f.data, Instant::now()),
                    None => break None,
                },
                _ = tokio::time::sleep_until(wake) => {
                    if tokio::time::Instant::now() >= deadline {
                        break None;
                    }
                    agent.handle_timeout(Instant::now());
                }
                _ = stop_requested(stop) => break None,
            }
        };
        port.listen_discovery(false);
        let counters = agent.counters();
        let (cdp_sent, lldp_sent) = (counters.tx_cdp as u32, counters.tx_lldp as u32);
        let info = DiscoveryInfo {
            vlan: result.map(|r| r.0),
            via: result.map(|r| r.1).unwrap_or(VlanSource::None),
            cdp_sent,
            lldp_sent,
            switch: switch.clone(),
        };
        self.report.discovery = Some(info);
        match result {
            Some((v, via)) => {
                self.vlan = if v == 4095 { None } else { Some(v) };
                let how = match via {
                    VlanSource::Cdp => "CDP VoIP VLAN Reply",
                    _ => "LLDP-MED Network Policy",
                };
                StepEnd::Ok(format!(
                    "voice VLAN {v} via {how}{}",
                    switch.map(|s| format!(" from {s}")).unwrap_or_default()
                ))
            }
            None => {
                self.vlan = None;
                let mut d = format!(
                    "no voice VLAN after {:.1} s ({cdp_sent} CDP, {lldp_sent} LLDP sent): untagged",
                    o.timeouts.discovery.as_secs_f64()
                );
                if counters.rx_bad > 0 {
                    d.push_str(&format!("; {} malformed discovery frames", counters.rx_bad));
                }
                if let Some(e) = send_err {
                    d.push_str(&format!("; send error: {e}"));
                }
                StepEnd::Degraded(d)
            }
        }
    }

    async fn dhcp(&mut self, stop: &mut watch::Receiver<bool>) -> StepEnd {
        let m = self.spec.model;
        let mac = self.spec.mac;
        let to = self.env.opts.timeouts.clone();
        let xid =
            u32::from_be_bytes([mac.0[2], mac.0[3], mac.0[4], mac.0[5]]) ^ rand::random::<u32>();
        let mut cfg = DhcpConfig::new(mac, xid, m.vendor_class, m.param_request_list);
        cfg.retransmit = to.dhcp_retransmit;
        let mut client = DhcpClient::new(cfg, Instant::now());
        let vlan = self.vlan;
        let tag = discover::voice_tag(vlan, 0).map(|t| t.vid);
        let Some(port) = self.port.as_mut() else {
            return StepEnd::Fail(Failure::new(Step::Dhcp, "internal", "no port"));
        };
        let deadline = tokio::time::Instant::now() + to.dhcp;
        let (mut wrong_vlan, mut bad, mut offers_seen) = (0u32, 0u32, 0u32);
        let mut last_bad = String::new();
        let mut wrong_vlan_seen = None;
        let res = loop {
            while let Some(p) = client.poll_transmit() {
                let f = eth::build_udp(
                    mac,
                    Mac::BROADCAST,
                    tag,
                    0,
                    (Ipv4Addr::UNSPECIFIED, 68),
                    (Ipv4Addr::BROADCAST, 67),
                    &p,
                );
                if let Err(e) = port.send(&f).await {
                    break_err(&mut last_bad, &e.to_string());
                }
            }
            match client.state() {
                DhcpState::Bound(l) => break Ok(l.clone()),
                DhcpState::Failed(r) => break Err(("dhcp_nak", r.clone())),
                _ => {}
            }
            let wake = client
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or(deadline)
                .min(deadline);
            if tokio::time::Instant::now() >= deadline {
                break Err(("dhcp_timeout", String::new()));
            }
            tokio::select! {
                f = port.rx.recv() => {
                    let Some(f) = f else { break Err(("internal", "port closed".into())) };
                    let fv = f.vlan();
                    let Some(u) = eth::parse_udp(&f.data) else { continue };
                    if u.dst_port != 68 || u.src_port != 67 {
                        continue;
                    }
                    let same = match (fv, tag) {
                        // Untagged and priority-tagged (VID 0) frames share the native VLAN.
                        (None | Some(0), None | Some(0)) => true,
                        (Some(a), Some(b)) => a == b,
                        _ => false,
                    };
                    if !same {
                        wrong_vlan += 1;
                        wrong_vlan_seen = Some(fv);
                        continue;
                    }
                    let before = client.state().clone();
                    match client.handle_reply(u.payload, Instant::now()) {
                        Ok(()) => {
                            if matches!(before, DhcpState::Selecting) {
                                offers_seen += 1;
                            }
                        }
                        Err(crate::dhcp::DhcpError::NotOurs) => {}
                        Err(e) => { bad += 1; last_bad = e.to_string(); }
                    }
                }
                _ = tokio::time::sleep_until(wake) => client.handle_timeout(Instant::now()),
                _ = stop_requested(stop) => break Err(("stopped", "stopped".into())),
            }
        };
        let vc = String::from_utf8_lossy(m.vendor_class)
            .trim_end_matches('\0')
            .to_string();
        let mut info = LeaseInfo {
            vendor_class: vc,
            discovers: client.discovers,
            requests: client.requests,
            ..Default::default()
        };
        match res {
            Ok(l) => {
                info.ip = Some(l.ip);
                info.mask = l.mask;
                info.router = l.routers.first().copied();
                info.server = Some(l.server_id);
                info.lease_secs = l.lease_secs;
                info.option150 = l.option150.clone();
                info.option66 = l.option66.clone();
                info.next_server = (!l.siaddr.is_unspecified()).then_some(l.siaddr);
                // TFTP server: option 150 (list), else 66, else next-server.
                let (servers, source) = if !l.option150.is_empty() {
                    (l.option150.clone(), "option 150")
                } else if let Some(n) = &l.option66 {
                    match resolve_v4(n).await {
                        Some(a) => (vec![a], "option 66"),
                        None => (Vec::new(), "option 66 (unresolvable)"),
                    }
                } else if !l.siaddr.is_unspecified() {
                    (vec![l.siaddr], "next-server")
                } else {
                    (Vec::new(), "none")
                };
                info.tftp_server = servers.first().copied();
                info.tftp_source = Some(source.to_string());
                self.tftp_servers = servers;
                self.report.lease = Some(info);
                if self.tftp_servers.is_empty() {
                    return StepEnd::Fail(Failure::new(
                        Step::Dhcp,
                        "no_tftp_server",
                        format!(
                            "lease {} has no usable TFTP server (150, 66, next-server: {source})",
                            l.ip
                        ),
                    ));
                }
                if let Err(e) = self.env.add_address(&l) {
                    self.lease = Some(l.clone());
                    return StepEnd::Fail(Failure::new(
                        Step::Dhcp,
                        "address_setup",
                        format!("cannot add {} to {}: {e}", l.ip, self.env.ip_if),
                    ));
                }
                self.address_added = true;
                let detail = format!(
                    "{}/{} from {} lease {} s, option 150 {:?}, TFTP {} ({source}){}",
                    l.ip,
                    l.prefix_len(),
                    l.server_id,
                    l.lease_secs.unwrap_or(0),
                    l.option150,
                    self.tftp_servers[0],
                    match tag {
                        Some(v) => format!(", tagged VLAN {v}"),
                        None => ", untagged".into(),
                    }
                );
                self.lease = Some(l);
                StepEnd::Ok(detail)
            }
            Err((kind, why)) => {
                self.report.lease = Some(info);
                let mut reason = match kind {
                    "dhcp_timeout" => format!(
                        "no lease after {:.1} s ({} DISCOVER, {} REQUEST, {offers_seen} OFFER)",
                        to.dhcp.as_secs_f64(),
                        client.discovers,
                        client.requests
                    ),
                    _ => why,
                };
                let mut kind = kind;
                if wrong_vlan > 0 {
                    reason.push_str(&format!(
                        "; {wrong_vlan} replies in the wrong VLAN ({}, expected {})",
                        vlan_name(wrong_vlan_seen.flatten()),
                        vlan_name(tag)
                    ));
                    if kind == "dhcp_timeout" && offers_seen == 0 {
                        kind = "dhcp_wrong_vlan";
                    }
                }
                if bad > 0 {
                    reason.push_str(&format!("; {bad} unusable replies, last: {last_bad}"));
                    if kind == "dhcp_timeout" && offers_seen == 0 && wrong_vlan == 0 {
                        kind = "dhcp_bad_reply";
                    }
                }
                StepEnd::Fail(Failure::new(Step::Dhcp, kind, reason))
            }
        }
    }

    /// Fetches one file, by the model's transports in order. Returns the body when ok.
    async fn fetch(
        &mut self,
        name: &str,
        http: &mut Option<HttpClient>,
        http_down: &mut bool,
    ) -> (FileResult, Option<Vec<u8>>) {
        let Some(lease_ip) = self.lease.as_ref().map(|l| l.ip) else {
            return (FileResult::Failed, None);
        };
        let server = self
            .tftp_servers
            .first()
            .copied()
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let to = self.env.opts.timeouts.clone();
        for t in self.spec.model.transports() {
            let start = self.clock.ms();
            match t {
                Transport::Http => {
                    if *http_down {
                        continue;
                    }
                    let c = http.get_or_insert_with(|| {
                        HttpClient::new(
                            lease_ip,
                            SocketAddrV4::new(server, 6970),
                            HttpOptions {
                                connect_timeout: to.http.min(Duration::from_secs(2)),
                                timeout: to.http,
                                max_body: 64 << 20,
                            },
                        )
                    });
                    match c.get(name).await {
                        Ok(r) if r.status == 200 => {
                            self.push_file(
                                name,
                                Transport::Http,
                                server,
                                FileResult::Ok,
                                r.body.len() as u64,
                                start,
                                String::new(),
                            );
                            return (FileResult::Ok, Some(r.body));
                        }
                        Ok(r) if r.status == 404 => {
                            self.push_file(
                                name,
                                Transport::Http,
                                server,
                                FileResult::Missing,
                                0,
                                start,
                                "404".into(),
                            );
                            return (FileResult::Missing, None);
                        }
                        Ok(r) => {
                            // Other status (503 under load...): try TFTP for this file.
                            self.push_file(
                                name,
                                Transport::Http,
                                server,
                                FileResult::Failed,
                                0,
                                start,
                                format!("HTTP {}", r.status),
                            );
                        }
                        Err(e) => {
                            if matches!(e, HttpError::Connect(_)) {
                                *http_down = true;
                            }
                            self.push_file(
                                name,
                                Transport::Http,
                                server,
                                FileResult::Failed,
                                0,
                                start,
                                e.to_string(),
                            );
                        }
                    }
                }
                Transport::Tftp => {
                    let opts = TftpOptions {
                        timeout: to.tftp,
                        retries: to.tftp_retries,
                        ..Default::default()
                    };
                    let r = tftp::fetch(lease_ip, server, 69, name, opts).await;
                    let (res, body, detail) = match r {
                        Ok(TftpOutcome::Done(b)) => (FileResult::Ok, Some(b), String::new()),
                        Ok(TftpOutcome::NotFound(m)) => (FileResult::Missing, None, m),
                        Ok(TftpOutcome::ServerError(c, m)) => {
                            (FileResult::Failed, None, format!("TFTP error {c}: {m}"))
                        }
                        Ok(TftpOutcome::Timeout { got_any }) => (
                            FileResult::Failed,
                            None,
                            if got_any {
                                "transfer timed out".into()
                            } else {
                                "no answer".into()
                            },
                        ),
                        Ok(TftpOutcome::Protocol(m)) => (FileResult::Failed, None, m),
                        Err(e) => (FileResult::Failed, None, format!("socket: {e}")),
                    };
                    let n = body.as_ref().map(|b| b.len() as u64).unwrap_or(0);
                    self.push_file(name, Transport::Tftp, server, res, n, start, detail);
                    return (res, body);
                }
            }
        }
        (FileResult::Failed, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn push_file(
        &mut self,
        name: &str,
        transport: Transport,
        server: Ipv4Addr,
        result: FileResult,
        bytes: u64,
        start: f64,
        detail: String,
    ) {
        let end = self.clock.ms();
        self.report.files.push(FileRecord {
            name: name.to_string(),
            transport,
            server,
            result,
            bytes,
            start_ms: start,
            end_ms: end,
            detail,
        });
    }

    async fn files(&mut self) -> StepEnd {
        let m = self.spec.model;
        let proto = self.spec.protocol;
        let device = self.spec.mac.device_name();
        let mut http: Option<HttpClient> = None;
        let mut http_down = false;
        let optional = self.env.opts.optional_files;
        // A phone holding a trust list always asks for the lists (it may be offered a new one).
        let mut itl_rejected = None;
        if optional || self.trust.holds_list() {
            for f in m.security_files(&device) {
                let (r, b) = self.fetch(&f, &mut http, &mut http_down).await;
                if let (FileResult::Ok, Some(b), true) = (r, b, crate::trust::is_itl(&f)) {
                    let note = crate::trust::offer_itl(&mut self.trust, &b);
                    if let Err(e) = &note {
                        itl_rejected = Some(format!("; {f}: {e}"));
                    }
                    if let Some(rec) = self.report.files.last_mut() {
                        rec.detail = note.map(str::to_string).unwrap_or_else(|e| e);
                    }
                }
            }
        }
        // The configuration: SEP<MAC>.cnf.xml, else XMLDefault.cnf.xml; on "no answer" move
        // along the option 150 list. A phone holding a trust list asks for the `.sgn`.
        let signed = self.trust.holds_list();
        let sgn = |n: &str| {
            if signed {
                format!("{n}.sgn")
            } else {
                n.to_string()
            }
        };
        let sep = sgn(&format!("{device}.cnf.xml"));
        let xml_default = sgn("XMLDefault.cnf.xml");
        let mut body = None;
        let mut unreachable = Vec::new();
        while !self.tftp_servers.is_empty() {
            let (r, b) = self.fetch(&sep, &mut http, &mut http_down).await;
            match r {
                FileResult::Ok => {
                    self.report.config_file = Some(sep.clone());
                    body = b;
                    break;
                }
                FileResult::Missing => {
                    let (r2, b2) = self.fetch(&xml_default, &mut http, &mut http_down).await;
                    match r2 {
                        FileResult::Ok => {
                            self.report.config_file = Some(xml_default.clone());
                            body = b2;
                        }
                        FileResult::Missing => {
                            let (kind, why) = if signed {
                                ("config_unsigned", ": this phone holds a trust list and accepts only signed (.sgn) configuration")
                            } else {
                                ("no_config", "")
                            };
                            return StepEnd::Fail(Failure::new(
                                Step::Files,
                                kind,
                                format!(
                                    "neither {sep} nor {xml_default} exists on {}{why}",
                                    self.tftp_servers[0]
                                ),
                            ));
                        }
                        FileResult::Failed => {
                            return StepEnd::Fail(Failure::new(
                                Step::Files,
                                "config_failed",
                                format!("{xml_default}: {}", self.last_file_detail()),
                            ));
                        }
                    }
                    break;
                }
                FileResult::Failed => {
                    unreachable.push(format!(
                        "{}: {}",
                        self.tftp_servers[0],
                        self.last_file_detail()
                    ));
                    self.tftp_servers.remove(0);
                    http = None;
                    http_down = false;
                    if let Some(next) = self.tftp_servers.first() {
                        if let Some(l) = self.report.lease.as_mut() {
                            l.tftp_server = Some(*next);
                        }
                    }
                }
            }
        }
        let Some(body) = body else {
            return StepEnd::Fail(Failure::new(
                Step::Files,
                "tftp_unreachable",
                format!(
                    "no TFTP/HTTP server answered for {sep}: {}",
                    unreachable.join("; ")
                ),
            ));
        };
        let body = if signed {
            let name = self.report.config_file.clone().unwrap_or_default();
            match crate::trust::check_config(&self.trust, &name, &body) {
                Ok(payload) => payload,
                Err((kind, reason)) => {
                    let reason = reason + itl_rejected.as_deref().unwrap_or("");
                    return StepEnd::Fail(Failure::new(Step::Files, kind, reason));
                }
            }
        } else {
            body
        };
        let cfg = match cnf::parse_config(&body, m.sccp_device_type) {
            Ok(c) => c,
            Err(e) => {
                let kind = match e {
                    cnf::CnfError::NotXml(_) => "config_not_xml",
                    cnf::CnfError::WrongRoot(_) => "config_wrong_root",
                    cnf::CnfError::NoCallManager => "config_no_callmanager",
                };
                let name = self.report.config_file.clone().unwrap_or_default();
                return StepEnd::Fail(Failure::new(Step::Files, kind, format!("{name}: {e}")));
            }
        };
        if optional {
            let mut list = Vec::new();
            if let Some(load) = &cfg.load {
                if load != m.running_load(proto) {
                    list.push(format!("{load}.loads"));
                }
            }
            list.extend(m.locale_files(proto, cfg.user_locale.as_deref().unwrap_or("")));
            if let Some(n) = &cfg.network_locale {
                list.push(m.tone_file(n));
            }
            if proto == Protocol::Sip {
                list.extend(cfg.dial_template.clone());
                list.extend(cfg.softkey_file.clone());
            }
            list.extend(m.ring_lists(proto));
            for f in list {
                self.fetch(&f, &mut http, &mut http_down).await;
            }
        }
        let ok = self
            .report
            .files
            .iter()
            .filter(|f| f.result == FileResult::Ok)
            .count();
        let missing = self
            .report
            .files
            .iter()
            .filter(|f| f.result == FileResult::Missing)
            .count();
        let detail = format!(
            "{} from {} ({} CallManager{}), {ok} ok, {missing} missing, {} requests",
            self.report.config_file.clone().unwrap_or_default(),
            self.tftp_servers
                .first()
                .map(|s| s.to_string())
                .unwrap_or_default(),
            cfg.call_managers.len(),
            if cfg.call_managers.len() == 1 {
                ""
            } else {
                "s"
            },
            self.report.files.len()
        );
        self.config = Some(cfg);
        StepEnd::Ok(detail)
    }

    fn last_file_detail(&self) -> String {
        self.report
            .files
            .last()
            .map(|f| f.detail.clone())
            .unwrap_or_default()
    }

    async fn register(
        &mut self,
        stop: &mut watch::Receiver<bool>,
    ) -> (StepEnd, Option<Registration>) {
        let (Some(cfg), Some(lease)) = (self.config.clone(), self.lease.clone()) else {
            return (
                StepEnd::Fail(Failure::new(Step::Registration, "internal", "no config")),
                None,
            );
        };
        let ctx = register::Ctx {
            mac: self.spec.mac,
            model: self.spec.model,
            protocol: self.spec.protocol,
            ip: lease.ip,
            timeout: self.env.opts.timeouts.register,
            sip_expires: self.env.opts.sip_expires,
        };
        let (done, reg) = register::register(&ctx, &cfg, stop).await;
        let RegDone { info, failure } = done;
        let detail = match (&info.registered_to, &failure) {
            (Some(to), _) => format!("registered to {to}: {}", info.detail),
            (None, Some((_, r))) => r.clone(),
            (None, None) => "not registered".into(),
        };
        self.report.registration = Some(info);
        match failure {
            None if reg.is_some() => (StepEnd::Ok(detail), reg),
            None => (
                StepEnd::Fail(Failure::new(Step::Registration, "not_registered", detail)),
                None,
            ),
            Some((kind, reason)) => (
                StepEnd::Fail(Failure::new(Step::Registration, &kind, reason)),
                None,
            ),
        }
    }

    /// Stays registered; on a reset from the server re-fetches the files and re-registers.
    async fn hold(&mut self, reg: &mut Registration, stop: &mut watch::Receiver<bool>) {
        loop {
            let ev = reg.run(stop).await;
            let at = self.clock.ms();
            match ev {
                register::HoldEnd::Stopped => return,
                register::HoldEnd::Event(what) => {
                    self.report.later.push(LaterEvent { at_ms: at, what });
                }
                register::HoldEnd::Restart(what) => {
                    self.report.later.push(LaterEvent {
                        at_ms: at,
                        what: format!("{what}: re-fetching files and re-registering"),
                    });
                    reg.stop().await;
                    // A new boot record starts at the files step.
                    self.report.files.clear();
                    self.report.steps.retain(|s| s.step < Step::Files);
                    self.report.registered = false;
                    self.report.failure = None;
                    match self.files_and_register(stop).await {
                        Some(r) => {
                            *reg = r;
                            self.report.later.push(LaterEvent {
                                at_ms: self.clock.ms(),
                                what: "re-registered".into(),
                            });
                        }
                        None => {
                            self.report.later.push(LaterEvent {
                                at_ms: self.clock.ms(),
                                what: "re-registration failed".into(),
                            });
                            return;
                        }
                    }
                }
            }
        }
    }

    fn cleanup(&mut self) {
        self.port = None;
        if self.address_added && self.env.opts.remove_address {
            if let Some(l) = &self.lease {
                self.env.remove_address(l.ip);
            }
            self.address_added = false;
        }
    }

    fn emit_journal(&self) {
        if let Some(s) = &self.env.sink {
            for e in self.report.journal_events() {
                s.emit(e);
            }
        }
    }
}

/// Resolves once `stop` is true. A dropped sender means nobody will ever ask: never resolves
/// (rather than spinning on a closed channel).
pub(crate) async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn break_err(last: &mut String, e: &str) {
    *last = format!("send: {e}");
}

fn vlan_name(v: Option<u16>) -> String {
    match v {
        Some(v) => format!("VLAN {v}"),
        None => "untagged".into(),
    }
}

/// An IPv4 literal, or a name resolved by the system resolver.
pub async fn resolve_v4(name: &str) -> Option<Ipv4Addr> {
    if let Ok(a) = name.trim().parse() {
        return Some(a);
    }
    let addrs = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::lookup_host((name.trim(), 0u16)),
    )
    .await
    .ok()?
    .ok()?;
    for a in addrs {
        if let SocketAddr::V4(v) = a {
            return Some(*v.ip());
        }
    }
    None
}
