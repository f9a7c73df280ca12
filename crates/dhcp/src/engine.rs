//! The DHCP server state machine: a datagram and `now` in, a reply, lease changes and journal
//! events out. No sockets, no clock.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use journal::{Event, EventKind};
use mac::Mac;
use tracing::{debug, warn};

use crate::config::{ClassConfig, ConfigError, DhcpConfig, PoolConfig};
use crate::lease::{LeaseChange, LeaseRecord, LeaseState};
use crate::ratelimit::RateLimiter;
use crate::reply::{self, ReplyKind, ReplyParams};
use crate::wire::{DecodeError, MsgType, Request};

/// Fixed addresses by MAC. The lead implements this over the device database so a provisioned
/// phone gets its address; [`StaticReservations`] covers the configuration file.
pub trait Reservations: Send + Sync {
    /// The address reserved for `mac`, if any.
    fn reserved_ip(&self, mac: &Mac) -> Option<Ipv4Addr>;
    /// The MAC an address is reserved for, if any (so it is never handed to someone else).
    fn reserved_for(&self, ip: Ipv4Addr) -> Option<Mac>;
}

/// A reservation list held in memory.
#[derive(Debug, Default, Clone)]
pub struct StaticReservations {
    by_mac: HashMap<Mac, Ipv4Addr>,
    by_ip: HashMap<Ipv4Addr, Mac>,
}

impl StaticReservations {
    pub fn new(list: impl IntoIterator<Item = (Mac, Ipv4Addr)>) -> Self {
        let mut s = StaticReservations::default();
        for (m, ip) in list {
            s.by_mac.insert(m, ip);
            s.by_ip.insert(ip, m);
        }
        s
    }
}

impl Reservations for StaticReservations {
    fn reserved_ip(&self, mac: &Mac) -> Option<Ipv4Addr> {
        self.by_mac.get(mac).copied()
    }
    fn reserved_for(&self, ip: Ipv4Addr) -> Option<Mac> {
        self.by_ip.get(&ip).copied()
    }
}

/// Where a request came in: what tells pools apart for clients on a directly attached link.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ingress<'a> {
    /// Receiving interface name (e.g. `vlan100`, `eth0.100`, an OVS internal port).
    pub interface: Option<&'a str>,
    /// 802.1Q VLAN id of the frame, when the server reads a trunk.
    pub vlan: Option<u16>,
    /// Our address the datagram was sent to or the address of the receiving interface
    /// (`IP_PKTINFO`): the default server identifier.
    pub local_addr: Option<Ipv4Addr>,
}

/// How a reply must travel (RFC 2131 section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// To the relay agent at giaddr, server port 67.
    Relay(Ipv4Addr),
    /// To the client's configured address, port 68.
    Unicast(Ipv4Addr),
    /// To 255.255.255.255:68 on the receiving link.
    Broadcast,
    /// To `ip`:68 at link address `mac`: the client has no address yet, so no ARP reply
    /// would come back; the driver must send at link level or seed the ARP cache.
    UnicastHw { ip: Ipv4Addr, mac: Mac },
}

/// An encoded reply and where to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub bytes: Vec<u8>,
    pub dest: Destination,
}

/// What handling one datagram produced. The driver must make `changes` durable before it
/// sends `reply` and emits `events` (they describe what the client is told).
#[derive(Debug, Default)]
pub struct Outcome {
    pub reply: Option<Reply>,
    pub changes: Vec<LeaseChange>,
    pub events: Vec<Event>,
}

/// Counters of what the engine saw; bad input is counted here and logged at debug level.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub received: u64,
    pub malformed: u64,
    pub wrong_op: u64,
    pub rate_limited: u64,
    pub no_pool: u64,
    pub exhausted: u64,
    pub discovers: u64,
    pub offers: u64,
    pub requests: u64,
    pub acks: u64,
    pub naks: u64,
    pub releases: u64,
    pub declines: u64,
    pub informs: u64,
    /// Requests not for us (another server selected) or that need no answer.
    pub ignored: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemState {
    Offered,
    Bound,
    Released,
    Declined,
}

/// A lease as held in memory.
#[derive(Debug, Clone)]
struct Entry {
    client: Arc<[u8]>,
    mac: Mac,
    state: MemState,
    expires: u64,
    vendor_class: Option<String>,
    hostname: Option<String>,
    pool: usize,
    /// Already on its pool's free list (avoid queueing it twice).
    queued: bool,
}

impl Entry {
    /// Whether someone else may take this address at `now`.
    fn is_free(&self, now: u64) -> bool {
        match self.state {
            MemState::Released => true,
            MemState::Offered | MemState::Bound | MemState::Declined => self.expires <= now,
        }
    }
}

#[derive(Debug)]
struct PoolRt {
    cfg: PoolConfig,
    start: u32,
    end: u32,
    /// Next never-tried address of the range; below it every address has been looked at.
    cursor: u64,
    /// Addresses that became free (released, expired, offer lapsed); checked again on use.
    free: VecDeque<u32>,
    /// Addresses of the range that are never leased (router, server, network, broadcast).
    excluded: Vec<u32>,
    tftp: Vec<Ipv4Addr>,
    last_exhausted_log: u64,
}

impl PoolRt {
    fn in_range(&self, ip: u32) -> bool {
        (self.start..=self.end).contains(&ip)
    }
}

type ClientKey = (Arc<[u8]>, usize);

/// The DHCP server core.
pub struct Engine {
    cfg: DhcpConfig,
    pools: Vec<PoolRt>,
    by_ip: HashMap<u32, Entry>,
    by_client: HashMap<ClientKey, u32>,
    config_reservations: StaticReservations,
    reservations: Option<Arc<dyn Reservations>>,
    limiter: RateLimiter,
    stats: Stats,
}

fn secs(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

fn millis(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

/// Client identification (RFC 2131 4.2): option 61 when present, else htype 1 + chaddr.
pub fn client_key(req: &Request<'_>) -> Vec<u8> {
    match req.client_id() {
        Some(id) => id.to_vec(),
        None => {
            let mut k = Vec::with_capacity(7);
            k.push(1);
            k.extend_from_slice(&req.chaddr);
            k
        }
    }
}

enum Grant {
    Ok,
    No(&'static str),
}

impl Engine {
    /// Validates `cfg` and builds an engine with no leases (call [`Engine::restore`] next).
    /// `reservations` adds fixed addresses from outside the file (the device database).
    pub fn new(
        cfg: DhcpConfig,
        reservations: Option<Arc<dyn Reservations>>,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let pools = cfg
            .pools
            .iter()
            .map(|p| {
                let mut excluded: Vec<u32> = p
                    .routers
                    .iter()
                    .chain(p.server_id.iter())
                    .map(|a| u32::from(*a))
                    .collect();
                excluded.push(u32::from(p.subnet.network));
                excluded.push(u32::from(p.subnet.broadcast()));
                PoolRt {
                    start: u32::from(p.range_start),
                    end: u32::from(p.range_end),
                    cursor: u64::from(u32::from(p.range_start)),
                    free: VecDeque::new(),
                    excluded,
                    tftp: p
                        .tftp_servers
                        .clone()
                        .unwrap_or_else(|| cfg.default_tftp_servers.clone()),
                    cfg: p.clone(),
                    last_exhausted_log: 0,
                }
            })
            .collect();
        let config_reservations =
            StaticReservations::new(cfg.reservations.iter().map(|r| (r.mac, r.ip)));
        Ok(Engine {
            limiter: RateLimiter::new(cfg.rate_limit),
            cfg,
            pools,
            by_ip: HashMap::new(),
            by_client: HashMap::new(),
            config_reservations,
            reservations,
            stats: Stats::default(),
        })
    }

    /// Loads stored leases (after a restart). Leases of pools no longer configured are
    /// matched by address, else kept out of memory (they stay in the store, harmlessly).
    pub fn restore(&mut self, records: impl IntoIterator<Item = LeaseRecord>) {
        for r in records {
            let ip = u32::from(r.ip);
            let pool = self
                .pools
                .iter()
                .position(|p| p.cfg.name == r.pool)
                .or_else(|| self.pools.iter().position(|p| p.cfg.subnet.contains(r.ip)));
            let Some(pool) = pool else {
                debug!(ip = %r.ip, pool = %r.pool, "stored lease matches no configured pool");
                continue;
            };
            let client: Arc<[u8]> = r.client_id.into();
            let state = match r.state {
                LeaseState::Bound => MemState::Bound,
                LeaseState::Released => MemState::Released,
                LeaseState::Declined => MemState::Declined,
            };
            self.by_client.insert((client.clone(), pool), ip);
            self.by_ip.insert(
                ip,
                Entry {
                    client,
                    mac: r.mac,
                    state,
                    expires: r.expires,
                    vendor_class: r.vendor_class,
                    hostname: r.hostname,
                    pool,
                    queued: false,
                },
            );
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of addresses with a lease record in memory (any state).
    pub fn lease_count(&self) -> usize {
        self.by_ip.len()
    }

    /// Puts expired leases and lapsed offers back into their pools' free lists, forgets lapsed
    /// offers and deletes expired quarantines from the store. Call it now and then (the
    /// allocator also finds expired leases by itself when a pool runs dry).
    pub fn reclaim_expired(&mut self, now: SystemTime) -> Vec<LeaseChange> {
        let now = secs(now);
        let mut changes = Vec::new();
        let mut forget = Vec::new();
        for (ip, e) in self.by_ip.iter_mut() {
            if !e.is_free(now) {
                continue;
            }
            match e.state {
                MemState::Offered => forget.push((*ip, e.client.clone(), e.pool)),
                MemState::Declined => {
                    changes.push(LeaseChange::Delete(Ipv4Addr::from(*ip)));
                    forget.push((*ip, e.client.clone(), e.pool));
                }
                MemState::Bound | MemState::Released => {}
            }
            if !e.queued {
                e.queued = true;
                if let Some(p) = self.pools.get_mut(e.pool) {
                    p.free.push_back(*ip);
                }
            }
        }
        for (ip, client, pool) in forget {
            self.by_ip.remove(&ip);
            let key = (client, pool);
            if self.by_client.get(&key) == Some(&ip) {
                self.by_client.remove(&key);
            }
        }
        changes
    }

    /// Handles one datagram received on the server port.
    pub fn handle(&mut self, datagram: &[u8], ingress: &Ingress<'_>, now: SystemTime) -> Outcome {
        self.stats.received += 1;
        let req = match Request::decode(datagram) {
            Ok(r) => r,
            Err(e) => {
                match e {
                    DecodeError::WrongOp(_) => self.stats.wrong_op += 1,
                    _ => self.stats.malformed += 1,
                }
                debug!(error = %e, kind = e.label(), len = datagram.len(), "dropped bad DHCP datagram");
                return Outcome::default();
            }
        };
        let mac = Mac(req.chaddr);
        if !self.limiter.allow(mac, millis(now)) {
            self.stats.rate_limited += 1;
            debug!(%mac, "rate limited");
            return Outcome::default();
        }
        let Some(pool) = self.select_pool(&req, ingress) else {
            self.stats.no_pool += 1;
            debug!(%mac, giaddr = %req.giaddr, iface = ?ingress.interface, vlan = ?ingress.vlan,
                "no pool serves this request");
            return Outcome::default();
        };
        let server_id = self.pools[pool]
            .cfg
            .server_id
            .or(ingress.local_addr)
            .filter(|a| !a.is_unspecified());
        let Some(server_id) = server_id else {
            self.stats.no_pool += 1;
            warn!(pool = %self.pools[pool].cfg.name,
                "no server identifier: set server_id or receive with IP_PKTINFO");
            return Outcome::default();
        };
        let mut cx = Cx {
            req: &req,
            mac,
            pool,
            server_id,
            now: secs(now),
            at: now,
            key: client_key(&req).into(),
            out: Outcome::default(),
        };
        match req.msg_type {
            MsgType::Discover => self.discover(&mut cx),
            MsgType::Request => self.request(&mut cx),
            MsgType::Release => self.release(&mut cx),
            MsgType::Decline => self.decline(&mut cx),
            MsgType::Inform => self.inform(&mut cx),
            other => {
                self.stats.wrong_op += 1;
                debug!(%mac, ?other, "message type a server does not accept");
            }
        }
        cx.out
    }

    fn select_pool(&self, req: &Request<'_>, ingress: &Ingress<'_>) -> Option<usize> {
        let pools = &self.pools;
        if !req.giaddr.is_unspecified() {
            let link = req.link_selection().unwrap_or(req.giaddr);
            return pools.iter().position(|p| p.cfg.subnet.contains(link));
        }
        if let Some(i) = pools.iter().position(|p| {
            p.cfg.interface.is_some()
                && p.cfg.interface.as_deref() == ingress.interface
                && p.cfg.vlan == ingress.vlan
        }) {
            return Some(i);
        }
        if ingress.vlan.is_some() {
            return pools
                .iter()
                .position(|p| p.cfg.interface.is_none() && p.cfg.vlan == ingress.vlan);
        }
        let unbound = |p: &PoolRt| p.cfg.interface.is_none() && p.cfg.vlan.is_none();
        if let Some(la) = ingress.local_addr {
            if let Some(i) = pools
                .iter()
                .position(|p| unbound(p) && p.cfg.subnet.contains(la))
            {
                return Some(i);
            }
        }
        if !req.ciaddr.is_unspecified() {
            return pools
                .iter()
                .position(|p| unbound(p) && p.cfg.subnet.contains(req.ciaddr));
        }
        None
    }

    fn reserved_ip(&self, mac: &Mac) -> Option<Ipv4Addr> {
        self.config_reservations
            .reserved_ip(mac)
            .or_else(|| self.reservations.as_ref()?.reserved_ip(mac))
    }

    fn reserved_for(&self, ip: Ipv4Addr) -> Option<Mac> {
        self.config_reservations
            .reserved_for(ip)
            .or_else(|| self.reservations.as_ref()?.reserved_for(ip))
    }

    /// Whether `ip` may be leased to this client now (ignoring the pool range).
    fn available(&self, ip: u32, key: &Arc<[u8]>, mac: &Mac, now: u64) -> bool {
        if let Some(owner) = self.reserved_for(Ipv4Addr::from(ip)) {
            if owner != *mac {
                return false;
            }
        }
        match self.by_ip.get(&ip) {
            None => true,
            Some(e) if e.state == MemState::Declined => e.expires <= now,
            Some(e) => e.client == *key || e.is_free(now),
        }
    }

    /// May this client be given `ip` from pool `pool`?
    fn grantable(&self, cx: &Cx<'_>, ip: Ipv4Addr) -> Grant {
        let p = &self.pools[cx.pool];
        if !p.cfg.subnet.contains(ip) {
            return Grant::No("address not on this client's network");
        }
        let reserved = self.reserved_ip(&cx.mac);
        match reserved {
            Some(r) if r == ip => {}
            Some(_) => return Grant::No("client has a reserved address"),
            None => {
                let n = u32::from(ip);
                if !p.in_range(n) || p.excluded.contains(&n) {
                    return Grant::No("address not in the pool");
                }
            }
        }
        if !self.available(u32::from(ip), &cx.key, &cx.mac, cx.now) {
            return Grant::No("address leased to another client");
        }
        Grant::Ok
    }

    /// Picks an address for a DISCOVER (RFC 2131 4.3.1 order: reservation, current or
    /// previous binding, requested address, any free address).
    fn allocate(&mut self, cx: &Cx<'_>) -> Option<u32> {
        let now = cx.now;
        let pool = cx.pool;
        if let Some(r) = self.reserved_ip(&cx.mac) {
            if self.pools[pool].cfg.subnet.contains(r) {
                if self.available(u32::from(r), &cx.key, &cx.mac, now) {
                    return Some(u32::from(r));
                }
                warn!(mac = %cx.mac, ip = %r, "reserved address is held by another client");
            }
        }
        if let Some(&ip) = self.by_client.get(&(cx.key.clone(), pool)) {
            if self.usable(pool, ip, cx, now) {
                return Some(ip);
            }
        }
        if let Some(req) = cx.req.requested_ip() {
            let ip = u32::from(req);
            if self.usable(pool, ip, cx, now) {
                return Some(ip);
            }
        }
        while let Some(ip) = self.pools[pool].free.pop_front() {
            if let Some(e) = self.by_ip.get_mut(&ip) {
                e.queued = false;
            }
            if self.usable(pool, ip, cx, now) {
                return Some(ip);
            }
        }
        let end = u64::from(self.pools[pool].end);
        while self.pools[pool].cursor <= end {
            let ip = self.pools[pool].cursor as u32;
            self.pools[pool].cursor += 1;
            if self.usable(pool, ip, cx, now) {
                return Some(ip);
            }
        }
        // Last resort: the longest-expired lease of the pool.
        let p = &self.pools[pool];
        let best = self
            .by_ip
            .iter()
            .filter(|(ip, e)| p.in_range(**ip) && e.pool == pool && e.is_free(now))
            .filter(|(ip, _)| self.usable(pool, **ip, cx, now))
            .min_by_key(|(_, e)| (e.state != MemState::Released, e.expires))
            .map(|(ip, _)| *ip);
        best
    }

    /// In range, not excluded, not reserved for someone else, not held by someone else.
    fn usable(&self, pool: usize, ip: u32, cx: &Cx<'_>, now: u64) -> bool {
        let p = &self.pools[pool];
        p.in_range(ip) && !p.excluded.contains(&ip) && self.available(ip, &cx.key, &cx.mac, now)
    }

    /// Records `ip` as held by this client, moving it from any previous holder.
    fn set_entry(&mut self, cx: &Cx<'_>, ip: u32, state: MemState, expires: u64) {
        let key = (cx.key.clone(), cx.pool);
        if let Some(old) = self.by_ip.get(&ip) {
            if old.client != cx.key {
                let old_key = (old.client.clone(), old.pool);
                if self.by_client.get(&old_key) == Some(&ip) {
                    self.by_client.remove(&old_key);
                }
            }
        }
        if let Some(prev) = self.by_client.insert(key, ip) {
            // An address this client was only offered is free again at once.
            if prev != ip {
                if let Some(e) = self.by_ip.get(&prev) {
                    if e.state == MemState::Offered && e.client == cx.key {
                        self.by_ip.remove(&prev);
                        self.pools[cx.pool].free.push_back(prev);
                    }
                }
            }
        }
        self.by_ip.insert(
            ip,
            Entry {
                client: cx.key.clone(),
                mac: cx.mac,
                state,
                expires,
                vendor_class: cx.req.vendor_class(),
                hostname: cx.req.hostname(),
                pool: cx.pool,
                queued: false,
            },
        );
    }

    fn record(&self, ip: u32) -> Option<LeaseRecord> {
        let e = self.by_ip.get(&ip)?;
        let state = match e.state {
            MemState::Bound => LeaseState::Bound,
            MemState::Released => LeaseState::Released,
            MemState::Declined => LeaseState::Declined,
            MemState::Offered => return None,
        };
        Some(LeaseRecord {
            ip: Ipv4Addr::from(ip),
            client_id: e.client.to_vec(),
            mac: e.mac,
            state,
            expires: e.expires,
            vendor_class: e.vendor_class.clone(),
            hostname: e.hostname.clone(),
            pool: self.pools[e.pool].cfg.name.clone(),
        })
    }

    fn class(&self, pool: usize, vendor: Option<&str>) -> Option<&ClassConfig> {
        let v = vendor?;
        self.pools[pool]
            .cfg
            .classes
            .iter()
            .find(|c| v.starts_with(c.vendor_prefix.as_str()))
    }

    fn lease_secs(&self, cx: &Cx<'_>, class: Option<&ClassConfig>) -> u32 {
        let configured = class
            .and_then(|c| c.lease_secs)
            .unwrap_or(self.pools[cx.pool].cfg.lease_secs);
        match cx.req.lease_time() {
            Some(asked) if asked >= 60 => asked.min(configured),
            _ => configured,
        }
    }

    fn tftp_list(&self, pool: usize, class: Option<&ClassConfig>) -> Vec<Ipv4Addr> {
        match class {
            Some(c) if c.no_tftp => vec![],
            Some(ClassConfig {
                tftp_servers: Some(l),
                ..
            }) => l.clone(),
            _ => self.pools[pool].tftp.clone(),
        }
    }

    fn build(&self, cx: &Cx<'_>, kind: ReplyKind, yiaddr: Ipv4Addr, lease: u32) -> Reply {
        let vendor = cx.req.vendor_class();
        let class = self.class(cx.pool, vendor.as_deref());
        let tftp = self.tftp_list(cx.pool, class);
        let bytes = reply::encode(&ReplyParams {
            req: cx.req,
            kind,
            yiaddr,
            server_id: cx.server_id,
            lease_secs: lease,
            pool: &self.pools[cx.pool].cfg,
            class,
            tftp: &tftp,
        });
        let req = cx.req;
        let dest = if !req.giaddr.is_unspecified() {
            Destination::Relay(req.giaddr)
        } else if matches!(kind, ReplyKind::Nak(_)) {
            Destination::Broadcast
        } else if !req.ciaddr.is_unspecified() {
            Destination::Unicast(req.ciaddr)
        } else if req.wants_broadcast() || yiaddr.is_unspecified() {
            Destination::Broadcast
        } else {
            Destination::UnicastHw {
                ip: yiaddr,
                mac: cx.mac,
            }
        };
        Reply { bytes, dest }
    }

    fn event(cx: &Cx<'_>, kind: EventKind) -> Event {
        Event::server(cx.at, cx.mac, kind)
    }

    fn discover(&mut self, cx: &mut Cx<'_>) {
        self.stats.discovers += 1;
        let vendor_class = cx.req.vendor_class();
        cx.out.events.push(Self::event(
            cx,
            EventKind::DhcpDiscover {
                vendor_class: vendor_class.clone(),
            },
        ));
        let Some(ip) = self.allocate(cx) else {
            self.stats.exhausted += 1;
            let p = &mut self.pools[cx.pool];
            if cx.now >= p.last_exhausted_log + 10 {
                p.last_exhausted_log = cx.now;
                warn!(pool = %p.cfg.name, mac = %cx.mac,
                    "pool exhausted: no address to offer (DISCOVER dropped; logged once per 10 s)");
            }
            return;
        };
        let expires = cx.now + u64::from(self.cfg.offer_secs);
        // Keep a binding the client already has; only a fresh address becomes an offer.
        let keep = self.by_ip.get(&ip).is_some_and(|e| {
            e.client == cx.key && e.state == MemState::Bound && e.expires > cx.now
        });
        if !keep {
            self.set_entry(cx, ip, MemState::Offered, expires);
        }
        let class = self.class(cx.pool, vendor_class.as_deref());
        let lease = self.lease_secs(cx, class);
        let ip = Ipv4Addr::from(ip);
        cx.out.reply = Some(self.build(cx, ReplyKind::Offer, ip, lease));
        cx.out
            .events
            .push(Self::event(cx, EventKind::DhcpOffer { ip }));
        self.stats.offers += 1;
    }

    fn nak(&mut self, cx: &mut Cx<'_>, reason: &'static str) {
        self.stats.naks += 1;
        debug!(mac = %cx.mac, reason, "NAK");
        cx.out.reply = Some(self.build(cx, ReplyKind::Nak(reason), Ipv4Addr::UNSPECIFIED, 0));
        cx.out.events.push(Self::event(
            cx,
            EventKind::DhcpNak {
                reason: reason.to_string(),
            },
        ));
    }

    fn request(&mut self, cx: &mut Cx<'_>) {
        self.stats.requests += 1;
        let req = cx.req;
        let ip = if let Some(sid) = req.server_id() {
            // SELECTING: the client answers an offer.
            if sid != cx.server_id {
                self.stats.ignored += 1;
                // It chose another server: our offer is free again.
                if let Some(&ip) = self.by_client.get(&(cx.key.clone(), cx.pool)) {
                    if self
                        .by_ip
                        .get(&ip)
                        .is_some_and(|e| e.state == MemState::Offered)
                    {
                        self.by_ip.remove(&ip);
                        self.by_client.remove(&(cx.key.clone(), cx.pool));
                        self.pools[cx.pool].free.push_back(ip);
                    }
                }
                return;
            }
            match req
                .requested_ip()
                .or(Some(req.ciaddr).filter(|a| !a.is_unspecified()))
            {
                Some(ip) => ip,
                None => return self.nak(cx, "REQUEST without a requested address"),
            }
        } else if let Some(ip) = req.requested_ip().filter(|_| req.ciaddr.is_unspecified()) {
            // INIT-REBOOT: the client checks an address it remembers.
            ip
        } else if !req.ciaddr.is_unspecified() {
            // RENEWING / REBINDING.
            req.ciaddr
        } else {
            self.stats.malformed += 1;
            debug!(mac = %cx.mac, "REQUEST with neither requested address nor ciaddr");
            return;
        };
        match self.grantable(cx, ip) {
            Grant::Ok => {}
            Grant::No(reason) => {
                if self.cfg.authoritative {
                    self.nak(cx, reason);
                } else {
                    self.stats.ignored += 1;
                }
                return;
            }
        }
        let vendor_class = req.vendor_class();
        let class = self.class(cx.pool, vendor_class.as_deref());
        let lease = self.lease_secs(cx, class);
        let tftp_servers = self.tftp_list(cx.pool, class);
        let n = u32::from(ip);
        self.set_entry(cx, n, MemState::Bound, cx.now + u64::from(lease));
        if let Some(r) = self.record(n) {
            cx.out.changes.push(LeaseChange::Upsert(r));
        }
        cx.out.reply = Some(self.build(cx, ReplyKind::Ack, ip, lease));
        cx.out.events.push(Self::event(
            cx,
            EventKind::DhcpAck {
                ip,
                lease_secs: lease,
                tftp_servers,
                vendor_class,
            },
        ));
        self.stats.acks += 1;
    }

    fn release(&mut self, cx: &mut Cx<'_>) {
        let ip = u32::from(cx.req.ciaddr);
        let ours = self
            .by_ip
            .get(&ip)
            .is_some_and(|e| e.client == cx.key && e.state == MemState::Bound);
        if !ours {
            self.stats.ignored += 1;
            debug!(mac = %cx.mac, ip = %cx.req.ciaddr, "RELEASE of an address the client does not hold");
            return;
        }
        self.stats.releases += 1;
        if let Some(e) = self.by_ip.get_mut(&ip) {
            e.state = MemState::Released;
            e.expires = cx.now;
            if !e.queued {
                e.queued = true;
                self.pools[cx.pool].free.push_back(ip);
            }
        }
        if let Some(r) = self.record(ip) {
            cx.out.changes.push(LeaseChange::Upsert(r));
        }
        cx.out.events.push(Self::event(
            cx,
            EventKind::DhcpRelease { ip: cx.req.ciaddr },
        ));
    }

    fn decline(&mut self, cx: &mut Cx<'_>) {
        let Some(addr) = cx.req.requested_ip() else {
            self.stats.malformed += 1;
            return;
        };
        let ip = u32::from(addr);
        let ours = self.by_ip.get(&ip).is_some_and(|e| {
            e.client == cx.key && matches!(e.state, MemState::Bound | MemState::Offered)
        });
        if !ours {
            self.stats.ignored += 1;
            debug!(mac = %cx.mac, ip = %addr, "DECLINE of an address the client was not given");
            return;
        }
        self.stats.declines += 1;
        warn!(mac = %cx.mac, ip = %addr, quarantine_secs = self.cfg.decline_quarantine_secs,
            "address declined (in use by another host): quarantined");
        if let Some(e) = self.by_ip.get_mut(&ip) {
            e.state = MemState::Declined;
            e.expires = cx.now + u64::from(self.cfg.decline_quarantine_secs);
        }
        self.by_client.remove(&(cx.key.clone(), cx.pool));
        if let Some(r) = self.record(ip) {
            cx.out.changes.push(LeaseChange::Upsert(r));
        }
        cx.out
            .events
            .push(Self::event(cx, EventKind::DhcpDecline { ip: addr }));
    }

    fn inform(&mut self, cx: &mut Cx<'_>) {
        self.stats.informs += 1;
        if cx.req.ciaddr.is_unspecified() {
            self.stats.malformed += 1;
            return;
        }
        cx.out.reply = Some(self.build(cx, ReplyKind::InformAck, Ipv4Addr::UNSPECIFIED, 0));
    }
}

/// Per-request context.
struct Cx<'r> {
    req: &'r Request<'r>,
    mac: Mac,
    pool: usize,
    server_id: Ipv4Addr,
    now: u64,
    at: SystemTime,
    key: Arc<[u8]>,
    out: Outcome,
}
