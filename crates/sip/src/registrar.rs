//! The registrar (RFC 3261 section 10.3) as a state machine: a request and `now` in, a
//! response and binding events out. No sockets, no clock.
//!
//! Also answers OPTIONS, absorbs retransmissions with a small response cache (the
//! non-INVITE server transaction's job), rate-limits unauthenticated requests per source,
//! and builds Cisco `service-control` NOTIFYs for restart/reset.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use mac::Mac;

use crate::digest::{self, Algorithm, Credentials, NonceManager, NonceStatus};
use crate::directory::{AutoRegisterRequest, SipDirectory, SipLine};
use crate::hdr::{self, CSeq, Contacts, NameAddr, Params, Via};
use crate::msg::{Header, Message, Method, StartLine};

/// Transport a request arrived on (and bindings are reachable through).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

/// Registrar settings. Build with [`RegistrarConfig::default`] and adjust; check with
/// [`RegistrarConfig::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrarConfig {
    /// Digest realm.
    pub realm: String,
    /// Shortest non-zero expiry accepted (shorter: 423 Interval Too Brief).
    pub min_expires: u32,
    /// Longest expiry granted (longer requests are shortened).
    pub max_expires: u32,
    /// Expiry when the request names none.
    pub default_expires: u32,
    /// How long a nonce may be used; older ones get `stale=true`.
    pub nonce_lifetime: Duration,
    /// Most nonces tracked for replay protection at once.
    pub max_tracked_nonces: usize,
    /// Algorithms offered, in challenge order (one WWW-Authenticate each).
    pub algorithms: Vec<Algorithm>,
    /// Most bindings (contacts) per address-of-record.
    pub max_contacts: usize,
    /// Unauthenticated requests allowed per second per source address...
    pub unauth_rate: f64,
    /// ...with this burst. Beyond it requests are dropped silently.
    pub unauth_burst: f64,
    /// Most source addresses tracked by the limiter.
    pub max_rate_sources: usize,
    /// Create devices for unknown phones through [`SipDirectory::auto_register`].
    pub auto_register: bool,
    /// How long final responses are kept to answer retransmissions (UDP Timer J).
    pub response_linger: Duration,
    /// Most responses kept.
    pub max_cached_responses: usize,
    /// `Server` header value.
    pub server: String,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            realm: "phoneboot".into(),
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
            nonce_lifetime: Duration::from_secs(30),
            max_tracked_nonces: 1 << 20,
            algorithms: vec![Algorithm::Md5],
            max_contacts: 10,
            unauth_rate: 1000.0,
            unauth_burst: 2000.0,
            max_rate_sources: 65_536,
            auto_register: false,
            response_linger: Duration::from_secs(32),
            max_cached_responses: 65_536,
            server: "phoneboot".into(),
        }
    }
}

/// Why a configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SIP registrar configuration: {0}")]
pub struct ConfigError(pub String);

impl RegistrarConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |s: &str| Err(ConfigError(s.to_string()));
        if self.realm.is_empty() || self.realm.contains(['"', '\\', '\r', '\n']) {
            return bad("realm must be non-empty and contain no quotes or backslashes");
        }
        if self.min_expires == 0
            || self.min_expires > self.default_expires
            || self.default_expires > self.max_expires
        {
            return bad("need 0 < min_expires <= default_expires <= max_expires");
        }
        if self.nonce_lifetime < Duration::from_secs(1) {
            return bad("nonce_lifetime must be at least 1 s");
        }
        if self.algorithms.is_empty() {
            return bad("at least one digest algorithm");
        }
        if self.max_contacts == 0 || self.max_tracked_nonces == 0 || self.max_rate_sources == 0 {
            return bad("max_contacts, max_tracked_nonces and max_rate_sources must be > 0");
        }
        let rate_ok = self.unauth_rate.is_finite() && self.unauth_rate > 0.0;
        let burst_ok = self.unauth_burst.is_finite() && self.unauth_burst >= 1.0;
        if !rate_ok || !burst_ok {
            return bad("unauth_rate must be > 0 and unauth_burst >= 1");
        }
        Ok(())
    }
}

/// One contact bound to an address-of-record, with what the phone told about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The Contact as sent, without its `expires` parameter.
    pub contact: NameAddr,
    pub expires_at: SystemTime,
    pub registered_at: SystemTime,
    pub call_id: String,
    pub cseq: u32,
    /// Where the REGISTER came from (the flow to reach the phone).
    pub source: SocketAddr,
    pub transport: Transport,
    /// `+sip.instance` (RFC 5626), quotes removed.
    pub instance: Option<String>,
    pub reg_id: Option<u32>,
    /// `+u.sip!devicename.ccm.cisco.com`.
    pub device_name: Option<String>,
    /// `+u.sip!model.ccm.cisco.com`.
    pub model: Option<String>,
    pub user_agent: Option<String>,
    /// Every `X-Cisco-*` header (name, value).
    pub cisco_headers: Vec<(String, String)>,
    /// `Supported` option tags (Cisco phones list X-cisco-service-control etc.).
    pub supported: Vec<String>,
}

/// Bindings of one line.
#[derive(Debug, Clone, PartialEq)]
pub struct LineBindings {
    pub device: String,
    pub mac: Option<Mac>,
    pub dn: String,
    pub bindings: Vec<Binding>,
}

/// What changed, for RIS and the journal.
#[derive(Debug, Clone, PartialEq)]
pub enum RegEvent {
    /// A REGISTER was accepted and the line has bindings. `first` = it had none before, or
    /// the phone replaced its binding under a new Call-ID (it rebooted): a new registration
    /// rather than a refresh.
    Registered {
        device: String,
        mac: Option<Mac>,
        line: String,
        from: SocketAddr,
        transport: Transport,
        /// Latest expiry among the line's bindings.
        expires: SystemTime,
        user_agent: Option<String>,
        model: Option<String>,
        first: bool,
    },
    /// The phone removed the line's last binding.
    Unregistered {
        device: String,
        mac: Option<Mac>,
        line: String,
        from: SocketAddr,
    },
    /// The line's last binding expired without a refresh.
    Expired {
        device: String,
        mac: Option<Mac>,
        line: String,
        from: SocketAddr,
    },
    /// A REGISTER was refused (not a plain challenge).
    Rejected {
        device: Option<String>,
        mac: Option<Mac>,
        line: Option<String>,
        from: SocketAddr,
        code: u16,
        reason: String,
    },
    /// An unknown phone got a device and DN.
    AutoRegistered {
        device: String,
        mac: Mac,
        dn: String,
    },
}

/// The result of one [`Registrar::handle`] call.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Response to send back (`None`: drop silently).
    pub response: Option<Message>,
    pub events: Vec<RegEvent>,
    /// A response to one of our NOTIFYs: (Via branch, status code).
    pub notify_response: Option<(String, u16)>,
    /// The response was a retransmission answered from the cache.
    pub retransmission: bool,
}

/// Counters for metrics and logs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub requests: u64,
    pub registered: u64,
    pub challenges: u64,
    pub rejected: u64,
    pub bad_requests: u64,
    pub dropped_unanswerable: u64,
    pub rate_limited: u64,
    pub retransmissions: u64,
    pub options: u64,
    /// Cisco backup-CallManager keepalive REGISTERs answered (`cisco-keep-alive`).
    pub keepalives: u64,
    /// Phone NOTIFYs (alarms, dialog state) acknowledged.
    pub notifies: u64,
    /// Cisco out-of-dialog REFERs (remote-cc, token registration, alarm) accepted.
    pub refers: u64,
    /// SUBSCRIBE/NOTIFY/REFER refused for an event or body we do not serve.
    pub bad_events: u64,
}

/// Restart (re-read config, re-register) or reset (full reboot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAction {
    Restart,
    Reset,
}

impl fmt::Display for ServiceAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServiceAction::Restart => "restart",
            ServiceAction::Reset => "reset",
        })
    }
}

/// Version stamps carried in a service-control NOTIFY (the phone compares them with what
/// it has to decide what to re-fetch). Empty strings become an all-zero UUID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionStamps {
    pub config: String,
    pub dialplan: String,
    pub softkey: String,
    pub feature_control: String,
}

/// A request for the I/O layer to send.
#[derive(Debug, Clone, PartialEq)]
pub struct OutRequest {
    pub to: SocketAddr,
    pub transport: Transport,
    /// The Via branch, to match the response.
    pub branch: String,
    pub message: Message,
}

struct Bucket {
    tokens: f64,
    last: SystemTime,
}

/// The registrar state: bindings, nonces, limiter, response cache.
pub struct Registrar {
    cfg: RegistrarConfig,
    nonces: NonceManager,
    /// AOR user -> one binding set per device showing the line (several on a shared line).
    lines: HashMap<String, Vec<LineBindings>>,
    /// Lines (AOR users) per device, device ASCII-lowercased: `service_control` looks a
    /// device up once per restart, and scanning every line made a storm of auto-registered
    /// phones quadratic.
    by_device: HashMap<String, Vec<String>>,
    buckets: HashMap<IpAddr, Bucket>,
    cache: HashMap<String, Message>,
    cache_order: VecDeque<(SystemTime, String)>,
    tag_serial: u64,
    tag_prefix: String,
    stats: Stats,
}

const ALLOW: &str = "REGISTER, OPTIONS, NOTIFY, REFER, SUBSCRIBE, ACK";

/// Contact parameter a Cisco phone puts on the `Expires: 0` REGISTER it sends its backup
/// CallManager to check that it is alive (usecallmanager's Asterisk patch answers it with
/// a plain 200 before any authentication; CUCM does the same).
pub const CISCO_KEEPALIVE_PARAM: &str = "cisco-keep-alive";

/// Refer-To of the REFER a Cisco phone sends to ask whether it may register (CUCM's
/// registration token, usecallmanager's patch accepts it with 202).
pub const TOKEN_REGISTRATION_URN: &str = "urn:x-cisco-remotecc:token-registration";

/// REFER bodies Cisco phones send outside calls that a CallManager accepts with 202.
pub const CISCO_REFER_BODIES: [&str; 3] = [
    "application/x-cisco-remotecc-request+xml",
    "application/x-cisco-remotecc-response+xml",
    "application/x-cisco-alarm+xml",
];

fn reject(req: &Message, code: u16, reason: &str) -> Message {
    req.response(code, reason)
}

impl Registrar {
    /// `secret` keys the nonces: random per process, or shared across a cluster.
    pub fn new(cfg: RegistrarConfig, secret: [u8; 32]) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let nonces = NonceManager::new(secret, cfg.nonce_lifetime, cfg.max_tracked_nonces);
        Ok(Registrar {
            tag_prefix: hex::encode(&secret[..3]),
            cfg,
            nonces,
            lines: HashMap::new(),
            by_device: HashMap::new(),
            buckets: HashMap::new(),
            cache: HashMap::new(),
            cache_order: VecDeque::new(),
            tag_serial: 0,
            stats: Stats::default(),
        })
    }

    pub fn config(&self) -> &RegistrarConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The bindings of one line (AOR user), if any; on a shared line, the first device's.
    pub fn line(&self, user: &str) -> Option<&LineBindings> {
        self.lines.get(user).and_then(|v| v.first())
    }

    /// The bindings of a line on one device (shared lines have one set per device).
    pub fn line_on(&self, user: &str, device: &str) -> Option<&LineBindings> {
        self.lines
            .get(user)?
            .iter()
            .find(|l| l.device.eq_ignore_ascii_case(device))
    }

    /// Every device showing the line `user` with bindings.
    pub fn line_devices(&self, user: &str) -> impl Iterator<Item = &LineBindings> {
        self.lines.get(user).into_iter().flatten()
    }

    /// Every line with bindings (a shared line once per device).
    pub fn lines(&self) -> impl Iterator<Item = (&String, &LineBindings)> {
        self.lines
            .iter()
            .flat_map(|(u, v)| v.iter().map(move |l| (u, l)))
    }

    /// Handles one message from `src`.
    pub fn handle(
        &mut self,
        dir: &dyn SipDirectory,
        msg: &Message,
        src: SocketAddr,
        transport: Transport,
        now: SystemTime,
    ) -> Outcome {
        let mut out = Outcome::default();
        let (method, ruri) = match &msg.start {
            StartLine::Response { code, .. } => {
                let branch = msg
                    .header("Via")
                    .and_then(Via::parse_first)
                    .and_then(|v| v.branch().map(str::to_string));
                let is_notify = msg
                    .header("CSeq")
                    .and_then(CSeq::parse)
                    .is_some_and(|c| c.method == "NOTIFY");
                if let (Some(b), true) = (branch, is_notify) {
                    out.notify_response = Some((b, *code));
                }
                return out;
            }
            StartLine::Request { method, uri } => (method, uri),
        };
        self.stats.requests += 1;
        // Without a usable top Via there is nowhere to answer.
        let Some(via_value) = msg.header("Via") else {
            self.stats.dropped_unanswerable += 1;
            return out;
        };
        let Some(via) = Via::parse_first(via_value) else {
            self.stats.dropped_unanswerable += 1;
            return out;
        };
        if *method == Method::Ack {
            return out;
        }
        let cseq = msg.header("CSeq").and_then(CSeq::parse);
        let cseq_ok = cseq.as_ref().is_some_and(|c| c.method == method.as_str());
        let mandatory = msg.header("From").and_then(NameAddr::parse).is_some()
            && msg.header("To").and_then(NameAddr::parse).is_some()
            && msg.header("Call-ID").is_some_and(|c| !c.is_empty())
            && cseq_ok
            && hdr::Uri::parse(ruri).is_some();
        if !mandatory {
            self.stats.bad_requests += 1;
            let resp = self.finish(msg, &via, src, reject(msg, 400, "Bad Request"));
            out.response = Some(resp);
            return out;
        }
        let key = cache_key(&via, msg, method);
        if let Some(resp) = key.as_ref().and_then(|k| self.cache.get(k)) {
            self.stats.retransmissions += 1;
            out.response = Some(resp.clone());
            out.retransmission = true;
            return out;
        }
        let (resp, cache) = match method {
            Method::Register => self.register(dir, msg, src, transport, now, &mut out.events),
            Method::Options => {
                self.stats.options += 1;
                let mut r = msg.response(200, "OK");
                r.push_header("Allow", ALLOW);
                r.push_header("Accept", "application/sdp, text/plain");
                r.push_header("Supported", "path, outbound");
                (Some(r), true)
            }
            Method::Notify => (Some(self.phone_notify(msg)), true),
            Method::Refer => (Some(self.phone_refer(msg)), true),
            Method::Subscribe => {
                // No event package is served here (no presence/BLF: the files leave
                // `callLogBlfEnabled` off). RFC 6665 4.2.1.2: 489 names what is allowed.
                self.stats.bad_events += 1;
                let mut r = msg.response(489, "Bad Event");
                r.push_header("Allow-Events", "service-control");
                (Some(r), true)
            }
            _ => {
                let mut r = msg.response(405, "Method Not Allowed");
                r.push_header("Allow", ALLOW);
                (Some(r), true)
            }
        };
        if let Some(r) = resp {
            let r = self.finish(msg, &via, src, r);
            if cache {
                if let Some(k) = key {
                    self.cache_put(k, r.clone(), now);
                }
            }
            out.response = Some(r);
        }
        out
    }

    /// Stamps the Via, adds a To tag and Server header.
    fn finish(&mut self, req: &Message, via: &Via, src: SocketAddr, mut resp: Message) -> Message {
        // `via` is the request's top Via, already parsed: when its sent-by address is the
        // source and it asks for no rport there is nothing to stamp, and the copied value
        // stays verbatim instead of being parsed and printed again (6 % of a registration's
        // CPU in the register_hotpath profile).
        let stamp = via.host.parse::<IpAddr>().ok() != Some(src.ip()) || via.params.has("rport");
        if let Some(h) = resp
            .headers
            .iter_mut()
            .find(|h| stamp && h.name.eq_ignore_ascii_case("Via"))
        {
            if let Some(v) = hdr::stamp_via(&h.value, src.ip(), src.port()) {
                h.value = v;
            }
        }
        let needs_tag = req
            .header("To")
            .and_then(NameAddr::parse)
            .is_some_and(|t| t.tag().is_none());
        if needs_tag {
            self.tag_serial = self.tag_serial.wrapping_add(1);
            let tag = format!("{}{:x}", self.tag_prefix, self.tag_serial);
            if let Some(h) = resp
                .headers
                .iter_mut()
                .find(|h| h.name.eq_ignore_ascii_case("To"))
            {
                h.value = format!("{};tag={tag}", h.value);
            }
        }
        resp.push_header("Server", self.cfg.server.clone());
        resp
    }

    fn cache_put(&mut self, key: String, resp: Message, now: SystemTime) {
        while let Some((t, _)) = self.cache_order.front() {
            if *t <= now || self.cache_order.len() >= self.cfg.max_cached_responses {
                if let Some((_, k)) = self.cache_order.pop_front() {
                    self.cache.remove(&k);
                }
            } else {
                break;
            }
        }
        self.cache_order
            .push_back((now + self.cfg.response_linger, key.clone()));
        self.cache.insert(key, resp);
    }

    /// A NOTIFY from a phone (Cisco firmware reports alarms, dialog state and remote-cc
    /// answers this way): 200 when it names an event, 489 without one (RFC 6665).
    fn phone_notify(&mut self, req: &Message) -> Message {
        match req.header("Event").map(str::trim) {
            Some(e) if !e.is_empty() => {
                self.stats.notifies += 1;
                req.response(200, "OK")
            }
            _ => {
                self.stats.bad_events += 1;
                req.response(489, "Bad Event")
            }
        }
    }

    /// An out-of-dialog REFER from a phone: token registration (by its Refer-To) and the
    /// remote-cc / alarm bodies are accepted with 202, as usecallmanager's patch and CUCM
    /// do; any other REFER would need a call this registrar does not have.
    fn phone_refer(&mut self, req: &Message) -> Message {
        let refer_to = req
            .header("Refer-To")
            .map(|v| v.trim().trim_start_matches('<').trim_end_matches('>'))
            .unwrap_or_default();
        let ctype = req
            .header("Content-Type")
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        let multipart = ctype.eq_ignore_ascii_case("multipart/mixed");
        let body = String::from_utf8_lossy(&req.body);
        let cisco_body = CISCO_REFER_BODIES.iter().any(|t| {
            ctype.eq_ignore_ascii_case(t)
                || (multipart
                    && body
                        .to_ascii_lowercase()
                        .contains(&format!("content-type: {t}")))
        });
        if refer_to.eq_ignore_ascii_case(TOKEN_REGISTRATION_URN) || cisco_body {
            self.stats.refers += 1;
            req.response(202, "Accepted")
        } else {
            self.stats.bad_events += 1;
            req.response(603, "Declined")
        }
    }

    /// Takes a token for an unauthenticated request from `ip`; false = drop.
    fn allow_unauth(&mut self, ip: IpAddr, now: SystemTime) -> bool {
        let (rate, burst) = (self.cfg.unauth_rate, self.cfg.unauth_burst);
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= self.cfg.max_rate_sources {
            // Forget sources whose bucket has refilled: they are indistinguishable from new.
            self.buckets.retain(|_, b| {
                let dt = now.duration_since(b.last).unwrap_or_default().as_secs_f64();
                b.tokens + dt * rate < burst
            });
            if self.buckets.len() >= self.cfg.max_rate_sources {
                return false;
            }
        }
        let b = self.buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let dt = now.duration_since(b.last).unwrap_or_default().as_secs_f64();
        b.tokens = (b.tokens + dt * rate).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn challenge(&mut self, req: &Message, now: SystemTime, stale: bool) -> Message {
        self.stats.challenges += 1;
        let nonce = self.nonces.issue(now);
        let mut r = req.response(401, "Unauthorized");
        for alg in &self.cfg.algorithms {
            r.push_header(
                "WWW-Authenticate",
                digest::challenge(&self.cfg.realm, &nonce, *alg, stale),
            );
        }
        r
    }

    /// REGISTER processing. Returns (response, cacheable); `None` = drop.
    #[allow(clippy::too_many_lines)]
    fn register(
        &mut self,
        dir: &dyn SipDirectory,
        req: &Message,
        src: SocketAddr,
        transport: Transport,
        now: SystemTime,
        events: &mut Vec<RegEvent>,
    ) -> (Option<Message>, bool) {
        let rejected = |this: &mut Self,
                        events: &mut Vec<RegEvent>,
                        code: u16,
                        reason: &str,
                        device: Option<String>,
                        mac: Option<Mac>,
                        line: Option<String>| {
            this.stats.rejected += 1;
            events.push(RegEvent::Rejected {
                device,
                mac,
                line,
                from: src,
                code,
                reason: reason.to_string(),
            });
            (Some(req.response(code, reason)), true)
        };
        let Some(to) = req.header("To").and_then(NameAddr::parse) else {
            return (Some(req.response(400, "Bad To")), true);
        };
        let Some(user) = to.uri.user.clone() else {
            self.stats.bad_requests += 1;
            return (Some(req.response(400, "To Has No User")), true);
        };
        let Some(contacts) = Contacts::parse(req.headers_named("Contact")) else {
            self.stats.bad_requests += 1;
            return (Some(req.response(400, "Bad Contact")), true);
        };
        let expires_hdr = match req.header("Expires") {
            Some(v) => match hdr::parse_u32(v) {
                Some(e) => Some(e),
                None => {
                    self.stats.bad_requests += 1;
                    return (Some(req.response(400, "Bad Expires")), true);
                }
            },
            None => None,
        };
        if is_cisco_keepalive(&contacts, expires_hdr) {
            // The phone checks its backup CallManager: no binding, no challenge.
            self.stats.keepalives += 1;
            let mut r = req.response(200, "OK");
            r.push_header("Date", httpdate::fmt_http_date(now));
            return (Some(r), true);
        }
        let identity = device_identity(&contacts);
        let mac = identity
            .as_ref()
            .and_then(|(name, mac)| mac.or_else(|| Mac::from_device_name(name).ok()));

        // Who is this line? A phone that names itself registers the line as it appears on
        // that device (shared lines: every device showing the DN); others get the owner's.
        let found = match &identity {
            Some((name, _)) => match dir.line_on_device(&user, name) {
                Some(l) => Some(l),
                None if dir.line(&user).is_some() => {
                    return rejected(
                        self,
                        events,
                        403,
                        "Line Belongs To Another Device",
                        Some(name.clone()),
                        mac,
                        Some(user),
                    );
                }
                None => None,
            },
            None => dir.line(&user),
        };
        let mut auto = None;
        let line: SipLine = match found {
            Some(l) => l,
            None => {
                let known_device = mac.and_then(|m| dir.device_by_mac(m));
                match (mac, known_device) {
                    (Some(_), Some(d)) => {
                        return rejected(
                            self,
                            events,
                            404,
                            "Line Not On Device",
                            Some(d.device),
                            mac,
                            Some(user),
                        )
                    }
                    (Some(m), None) if self.cfg.auto_register => {
                        // Cheap guard before a database write: auto-registration attempts are
                        // unauthenticated.
                        if !self.allow_unauth(src.ip(), now) {
                            self.stats.rate_limited += 1;
                            return (None, false);
                        }
                        let model = contacts_model(&contacts);
                        match dir.auto_register(&AutoRegisterRequest {
                            mac: m,
                            model,
                            requested_user: user.clone(),
                        }) {
                            Some(l) => {
                                auto = Some((m, l.clone()));
                                l
                            }
                            None => {
                                return rejected(
                                    self,
                                    events,
                                    403,
                                    "Auto-Registration Refused",
                                    identity.map(|(n, _)| n),
                                    mac,
                                    Some(user),
                                )
                            }
                        }
                    }
                    (Some(_), None) => {
                        return rejected(
                            self,
                            events,
                            403,
                            "Unknown Device",
                            identity.map(|(n, _)| n),
                            mac,
                            Some(user),
                        )
                    }
                    (None, _) => {
                        return rejected(self, events, 404, "Not Found", None, None, Some(user))
                    }
                }
            }
        };
        let line_mac = Mac::from_device_name(&line.device).ok().or(mac);

        // Digest authentication.
        if let Some(password) = &line.password {
            let creds = req
                .headers_named("Authorization")
                .filter_map(Credentials::parse)
                .find(|c| c.realm == self.cfg.realm);
            let Some(creds) = creds.filter(|c| self.cfg.algorithms.contains(&c.algorithm)) else {
                if !self.allow_unauth(src.ip(), now) {
                    self.stats.rate_limited += 1;
                    return (None, false);
                }
                return (Some(self.challenge(req, now, false)), false);
            };
            if !creds.username.eq_ignore_ascii_case(&line.auth_user) {
                if !self.allow_unauth(src.ip(), now) {
                    self.stats.rate_limited += 1;
                    return (None, false);
                }
                return rejected(
                    self,
                    events,
                    403,
                    "Wrong Authentication User",
                    Some(line.device.clone()),
                    line_mac,
                    Some(line.dn.clone()),
                );
            }
            match self.nonces.check(&creds.nonce, now) {
                NonceStatus::Invalid => {
                    if !self.allow_unauth(src.ip(), now) {
                        self.stats.rate_limited += 1;
                        return (None, false);
                    }
                    return (Some(self.challenge(req, now, false)), false);
                }
                status => {
                    if !creds.verify("REGISTER", password) {
                        if !self.allow_unauth(src.ip(), now) {
                            self.stats.rate_limited += 1;
                            return (None, false);
                        }
                        return rejected(
                            self,
                            events,
                            403,
                            "Bad Credentials",
                            Some(line.device.clone()),
                            line_mac,
                            Some(line.dn.clone()),
                        );
                    }
                    let nc = creds.qop.as_ref().map(|(_, n, _)| *n);
                    if status == NonceStatus::Stale || !self.nonces.commit(&creds.nonce, nc, now) {
                        return (Some(self.challenge(req, now, true)), false);
                    }
                }
            }
        }

        // Binding changes (RFC 3261 10.3 steps 5-8), computed on a copy then committed.
        let call_id = req.header("Call-ID").unwrap_or_default().to_string();
        let cseq = req
            .header("CSeq")
            .and_then(CSeq::parse)
            .map(|c| c.seq)
            .unwrap_or(0);
        let existing = self.line_on(&user, &line.device);
        let mut bindings: Vec<Binding> = existing.map(|l| l.bindings.clone()).unwrap_or_default();
        bindings.retain(|b| b.expires_at > now);
        let had_any = !bindings.is_empty();
        let last_from = bindings.last().map(|b| b.source).unwrap_or(src);
        let mut new_session = false;
        match &contacts {
            Contacts::Star => {
                if expires_hdr != Some(0) {
                    self.stats.bad_requests += 1;
                    return (Some(req.response(400, "Star Needs Expires 0")), true);
                }
                if let Some(b) = bindings
                    .iter()
                    .find(|b| b.call_id == call_id && b.cseq >= cseq)
                {
                    let _ = b;
                    return (Some(req.response(500, "Out Of Order")), true);
                }
                bindings.clear();
            }
            Contacts::List(list) => {
                // Expiry checks first: 423 rejects the whole request.
                let mut wanted = Vec::with_capacity(list.len());
                for c in list {
                    let e = match c.params.value("expires") {
                        Some(v) => hdr::parse_u32(v),
                        None => None,
                    }
                    .or(expires_hdr)
                    .unwrap_or(self.cfg.default_expires);
                    if e != 0 && e < self.cfg.min_expires {
                        let mut r = req.response(423, "Interval Too Brief");
                        r.push_header("Min-Expires", self.cfg.min_expires.to_string());
                        self.stats.rejected += 1;
                        events.push(RegEvent::Rejected {
                            device: Some(line.device.clone()),
                            mac: line_mac,
                            line: Some(line.dn.clone()),
                            from: src,
                            code: 423,
                            reason: "Interval Too Brief".into(),
                        });
                        return (Some(r), true);
                    }
                    let cap = dir
                        .register_interval(&line.device)
                        .map_or(self.cfg.max_expires, |i| i.clamp(1, self.cfg.max_expires));
                    wanted.push((c, e.min(cap)));
                }
                let user_agent = req.header("User-Agent").map(str::to_string);
                let cisco_headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .filter(|h| h.name.len() > 8 && h.name[..8].eq_ignore_ascii_case("x-cisco-"))
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect();
                let supported: Vec<String> = req
                    .headers_named("Supported")
                    .flat_map(|v| v.split(','))
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                for (c, e) in wanted {
                    let mut contact = c.clone();
                    contact.params.remove("expires");
                    let instance = c.params.value("+sip.instance").map(str::to_string);
                    let reg_id = c.params.value("reg-id").and_then(hdr::parse_u32);
                    let device_name = c
                        .params
                        .value("+u.sip!devicename.ccm.cisco.com")
                        .map(str::to_string);
                    let pos = bindings.iter().position(|b| {
                        match (&instance, &b.instance) {
                            (Some(i), Some(bi)) => return i == bi && reg_id == b.reg_id,
                            (Some(_), None) | (None, Some(_)) => {}
                            (None, None) => {}
                        }
                        if device_name.is_some() && device_name == b.device_name {
                            return true;
                        }
                        b.contact.uri.same_contact(&c.uri)
                    });
                    if let Some(i) = pos {
                        if bindings[i].call_id == call_id && bindings[i].cseq >= cseq {
                            return (Some(req.response(500, "Out Of Order")), true);
                        }
                        // Same phone and line, new Call-ID: the phone restarted.
                        new_session |= bindings[i].call_id != call_id && e != 0;
                    }
                    if e == 0 {
                        if let Some(i) = pos {
                            bindings.remove(i);
                        }
                        continue;
                    }
                    let b = Binding {
                        contact,
                        expires_at: now + Duration::from_secs(u64::from(e)),
                        registered_at: pos.map_or(now, |i| bindings[i].registered_at),
                        call_id: call_id.clone(),
                        cseq,
                        source: src,
                        transport,
                        instance,
                        reg_id,
                        device_name,
                        model: c
                            .params
                            .value("+u.sip!model.ccm.cisco.com")
                            .map(str::to_string),
                        user_agent: user_agent.clone(),
                        cisco_headers: cisco_headers.clone(),
                        supported: supported.clone(),
                    };
                    match pos {
                        Some(i) => bindings[i] = b,
                        None => bindings.push(b),
                    }
                }
                if bindings.len() > self.cfg.max_contacts {
                    return rejected(
                        self,
                        events,
                        403,
                        "Too Many Contacts",
                        Some(line.device.clone()),
                        line_mac,
                        Some(line.dn.clone()),
                    );
                }
            }
        }

        // Commit and report.
        if let Some((m, l)) = auto {
            events.push(RegEvent::AutoRegistered {
                device: l.device.clone(),
                mac: m,
                dn: l.dn.clone(),
            });
        }
        let mut resp = req.response(200, "OK");
        for b in &bindings {
            let left = b
                .expires_at
                .duration_since(now)
                .unwrap_or_default()
                .as_secs();
            let mut c = b.contact.clone();
            c.params.0.push(("expires".into(), Some(left.to_string())));
            resp.push_header("Contact", c.to_string());
        }
        resp.push_header("Date", httpdate::fmt_http_date(now));
        if bindings.is_empty() {
            if had_any {
                events.push(RegEvent::Unregistered {
                    device: line.device.clone(),
                    mac: line_mac,
                    line: line.dn.clone(),
                    from: src,
                });
            }
            self.remove_line(&user, &line.device);
        } else {
            self.stats.registered += 1;
            let expires = bindings.iter().map(|b| b.expires_at).max().unwrap_or(now);
            let newest = bindings
                .iter()
                .find(|b| b.call_id == call_id && b.cseq == cseq);
            events.push(RegEvent::Registered {
                device: line.device.clone(),
                mac: line_mac,
                line: line.dn.clone(),
                from: newest.map_or(last_from, |b| b.source),
                transport: newest.map_or(transport, |b| b.transport),
                expires,
                user_agent: newest.and_then(|b| b.user_agent.clone()),
                model: newest.and_then(|b| b.model.clone()),
                first: !had_any || new_session,
            });
            self.insert_line(
                user,
                LineBindings {
                    device: line.device,
                    mac: line_mac,
                    dn: line.dn,
                    bindings,
                },
            );
        }
        (Some(resp), true)
    }

    fn insert_line(&mut self, user: String, line: LineBindings) {
        let key = line.device.to_ascii_lowercase();
        let per_device = self.lines.entry(user.clone()).or_default();
        if let Some(old) = per_device
            .iter_mut()
            .find(|l| l.device.eq_ignore_ascii_case(&line.device))
        {
            *old = line;
            return;
        }
        per_device.push(line);
        self.by_device.entry(key).or_default().push(user);
    }

    fn remove_line(&mut self, user: &str, device: &str) {
        let Some(per_device) = self.lines.get_mut(user) else {
            return;
        };
        let before = per_device.len();
        per_device.retain(|l| !l.device.eq_ignore_ascii_case(device));
        if per_device.len() == before {
            return;
        }
        if per_device.is_empty() {
            self.lines.remove(user);
        }
        let key = device.to_ascii_lowercase();
        if let Some(users) = self.by_device.get_mut(&key) {
            users.retain(|u| u != user);
            if users.is_empty() {
                self.by_device.remove(&key);
            }
        }
    }

    /// Removes expired bindings; lines left without any produce [`RegEvent::Expired`].
    pub fn expire(&mut self, now: SystemTime) -> Vec<RegEvent> {
        let mut events = Vec::new();
        let by_device = &mut self.by_device;
        self.lines.retain(|user, per_device| {
            per_device.retain_mut(|l| {
                let last = l.bindings.last().map(|b| b.source);
                l.bindings.retain(|b| b.expires_at > now);
                if !l.bindings.is_empty() {
                    return true;
                }
                if let Some(from) = last {
                    events.push(RegEvent::Expired {
                        device: l.device.clone(),
                        mac: l.mac,
                        line: l.dn.clone(),
                        from,
                    });
                }
                let key = l.device.to_ascii_lowercase();
                if let Some(users) = by_device.get_mut(&key) {
                    users.retain(|u| u != user);
                    if users.is_empty() {
                        by_device.remove(&key);
                    }
                }
                false
            });
            !per_device.is_empty()
        });
        while let Some((t, _)) = self.cache_order.front() {
            if *t > now {
                break;
            }
            if let Some((_, k)) = self.cache_order.pop_front() {
                self.cache.remove(&k);
            }
        }
        events
    }

    /// Builds the Cisco `service-control` NOTIFY (restart/reset) for every flow a device is
    /// registered through (one per distinct source). `local` is our address as the phone
    /// sees it; `token` must be unique per call (it seeds branch, tag and Call-ID).
    pub fn service_control(
        &self,
        device: &str,
        action: ServiceAction,
        stamps: &VersionStamps,
        local: SocketAddr,
        token: &str,
    ) -> Vec<OutRequest> {
        let mut seen: Vec<SocketAddr> = Vec::new();
        let mut out = Vec::new();
        let mut lines: Vec<&LineBindings> = self
            .by_device
            .get(&device.to_ascii_lowercase())
            .into_iter()
            .flatten()
            .filter_map(|u| self.line_on(u, device))
            .collect();
        lines.sort_by(|a, b| a.dn.cmp(&b.dn));
        for l in lines {
            for b in &l.bindings {
                if seen.contains(&b.source) {
                    continue;
                }
                seen.push(b.source);
                let branch = format!("z9hG4bK{token}{}", out.len());
                let z = "00000000-0000-0000-0000-000000000000";
                let st = |s: &str| {
                    if s.is_empty() {
                        z.to_string()
                    } else {
                        s.to_string()
                    }
                };
                let body = format!(
                    "action={action}\r\nRegisterCallId={{{}}}\r\nConfigVersionStamp={{{}}}\r\nDialplanVersionStamp={{{}}}\r\nSoftkeyVersionStamp={{{}}}\r\nFeatureControlVersionStamp={{{}}}\r\n",
                    b.call_id,
                    st(&stamps.config),
                    st(&stamps.dialplan),
                    st(&stamps.softkey),
                    st(&stamps.feature_control),
                );
                let host = match local {
                    SocketAddr::V4(a) => a.to_string(),
                    SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
                };
                let mut to = b.contact.clone();
                to.params = Params::default();
                let headers = vec![
                    Header {
                        name: "Via".into(),
                        value: format!(
                            "SIP/2.0/{} {host};branch={branch};rport",
                            b.transport.via_name()
                        ),
                    },
                    Header {
                        name: "From".into(),
                        value: format!("<sip:{}@{host}>;tag={token}", self.cfg.realm),
                    },
                    Header {
                        name: "To".into(),
                        value: to.to_string(),
                    },
                    Header {
                        name: "Call-ID".into(),
                        value: format!("{token}-{}@{}", out.len(), local.ip()),
                    },
                    Header {
                        name: "CSeq".into(),
                        value: "101 NOTIFY".into(),
                    },
                    Header {
                        name: "Max-Forwards".into(),
                        value: "70".into(),
                    },
                    Header {
                        name: "Contact".into(),
                        value: format!("<sip:{}@{host}>", self.cfg.realm),
                    },
                    Header {
                        name: "Event".into(),
                        value: "service-control".into(),
                    },
                    Header {
                        name: "Subscription-State".into(),
                        value: "active".into(),
                    },
                    Header {
                        name: "Content-Type".into(),
                        value: "text/plain".into(),
                    },
                ];
                out.push(OutRequest {
                    to: b.source,
                    transport: b.transport,
                    branch,
                    message: Message {
                        start: StartLine::Request {
                            method: Method::Notify,
                            uri: b.contact.uri.to_string(),
                        },
                        headers,
                        body: body.into_bytes(),
                    },
                });
            }
        }
        out
    }
}

/// Transaction key (RFC 3261 17.2.3): top Via branch with the magic cookie, sent-by,
/// method; plus Call-ID and CSeq so that a client reusing branches cannot collide.
fn cache_key(via: &Via, msg: &Message, method: &Method) -> Option<String> {
    let branch = via.branch().filter(|b| b.starts_with("z9hG4bK"))?;
    let cseq = msg.header("CSeq")?;
    let call_id = msg.header("Call-ID")?;
    Some(format!(
        "{branch}|{}:{}|{call_id}|{cseq}|{method}",
        via.host,
        via.port.unwrap_or(0)
    ))
}

/// Where to send a response to a request received over UDP (RFC 3261 18.2.2, RFC 3581):
/// the source port if the Via asked for `rport`, else the Via port at the source address.
pub fn response_target(msg: &Message, src: SocketAddr) -> SocketAddr {
    let via = msg.header("Via").and_then(Via::parse_first);
    match via {
        Some(v) if !v.params.has("rport") => SocketAddr::new(src.ip(), v.port.unwrap_or(5060)),
        _ => src,
    }
}

/// Device name and MAC from Cisco contact parameters: the device name parameter, or the
/// MAC in a `+sip.instance` UUID (`urn:uuid:00000000-0000-0000-0000-<mac>`).
fn device_identity(contacts: &Contacts) -> Option<(String, Option<Mac>)> {
    let Contacts::List(list) = contacts else {
        return None;
    };
    for c in list {
        if let Some(name) = c.params.value("+u.sip!devicename.ccm.cisco.com") {
            return Some((name.to_string(), Mac::from_device_name(name).ok()));
        }
        if let Some(inst) = c.params.value("+sip.instance") {
            let inst = inst.trim_start_matches('<').trim_end_matches('>');
            // Cisco phones put their MAC in an otherwise all-zero UUID; other agents
            // use random UUIDs, which say nothing about a device.
            if let Some(tail) = inst.strip_prefix("urn:uuid:00000000-0000-0000-0000-") {
                if tail.len() == 12 {
                    if let Ok(m) = tail.parse::<Mac>() {
                        return Some((m.device_name(), Some(m)));
                    }
                }
            }
        }
    }
    None
}

/// The backup-CallManager keepalive: every contact carries `cisco-keep-alive` and asks for
/// expiry 0 (its own `expires` parameter or the `Expires` header).
fn is_cisco_keepalive(contacts: &Contacts, expires_hdr: Option<u32>) -> bool {
    let Contacts::List(list) = contacts else {
        return false;
    };
    !list.is_empty()
        && list.iter().all(|c| {
            let e = c
                .params
                .value("expires")
                .and_then(hdr::parse_u32)
                .or(expires_hdr);
            c.params.has(CISCO_KEEPALIVE_PARAM) && e == Some(0)
        })
}

fn contacts_model(contacts: &Contacts) -> Option<String> {
    let Contacts::List(list) = contacts else {
        return None;
    };
    list.iter()
        .find_map(|c| c.params.value("+u.sip!model.ccm.cisco.com"))
        .map(str::to_string)
}
