//! The phone's DHCP client as a sans-IO state machine (bytes + `now` in, bytes + deadline
//! out). Messages are built and read with the `dhcp` crate's client codec
//! ([`dhcp::client`]): every option raw, option 150 with all its addresses, nothing handed to
//! a decoder that drops or panics on what it cannot type.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcp::client::{ClientMsg, ParsedReply};
use dhcp::wire::code;
use dhcp::MsgType;
use mac::Mac;

/// What the client needs to know about the phone.
#[derive(Debug, Clone)]
pub struct DhcpConfig {
    pub mac: Mac,
    pub xid: u32,
    pub vendor_class: Vec<u8>,
    pub param_request_list: Vec<u8>,
    pub hostname: Option<String>,
    /// First retransmission delay (RFC 2131: about 4 s, doubling up to 64 s).
    pub retransmit: Duration,
    pub max_retransmit: Duration,
    /// NAKs tolerated before giving up.
    pub max_naks: u32,
}

impl DhcpConfig {
    pub fn new(mac: Mac, xid: u32, vendor_class: &[u8], prl: &[u8]) -> Self {
        DhcpConfig {
            mac,
            xid,
            vendor_class: vendor_class.to_vec(),
            param_request_list: prl.to_vec(),
            hostname: Some(mac.device_name()),
            retransmit: Duration::from_secs(4),
            max_retransmit: Duration::from_secs(64),
            max_naks: 3,
        }
    }
}

/// A lease as the phone understood it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub ip: Ipv4Addr,
    pub mask: Option<Ipv4Addr>,
    pub routers: Vec<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub server_id: Ipv4Addr,
    pub lease_secs: Option<u32>,
    /// Option 150, every address in order.
    pub option150: Vec<Ipv4Addr>,
    /// Option 66 as sent (NULs stripped).
    pub option66: Option<String>,
    pub siaddr: Ipv4Addr,
    pub domain: Option<String>,
}

impl Default for Lease {
    fn default() -> Self {
        Lease {
            ip: Ipv4Addr::UNSPECIFIED,
            mask: None,
            routers: Vec::new(),
            dns: Vec::new(),
            server_id: Ipv4Addr::UNSPECIFIED,
            lease_secs: None,
            option150: Vec::new(),
            option66: None,
            siaddr: Ipv4Addr::UNSPECIFIED,
            domain: None,
        }
    }
}

impl Lease {
    /// Prefix length of the subnet mask (24 when absent or not contiguous).
    pub fn prefix_len(&self) -> u8 {
        match self.mask {
            Some(m) => {
                let v = u32::from(m);
                if v.leading_ones() + v.trailing_zeros() == 32 {
                    v.leading_ones() as u8
                } else {
                    24
                }
            }
            None => 24,
        }
    }
}

/// Why a reply was not used. Counted and logged by the caller, never fatal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhcpError {
    #[error("not a DHCP message: {0}")]
    Malformed(String),
    #[error("not for us (xid or chaddr mismatch)")]
    NotOurs,
    #[error("unexpected {0:?} in state {1}")]
    Unexpected(MsgType, &'static str),
    #[error("{0}")]
    Invalid(String),
}

/// Where the exchange is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Selecting,
    Requesting {
        offer: Lease,
    },
    Bound(Lease),
    /// Too many NAKs; the reason is given.
    Failed(String),
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Selecting => "selecting",
            State::Requesting { .. } => "requesting",
            State::Bound(_) => "bound",
            State::Failed(_) => "failed",
        }
    }
}

/// The client.
#[derive(Debug)]
pub struct DhcpClient {
    cfg: DhcpConfig,
    state: State,
    started: Instant,
    /// Next retransmission time.
    next: Option<Instant>,
    delay: Duration,
    pending: Option<Vec<u8>>,
    pub discovers: u32,
    pub requests: u32,
    pub naks: u32,
    pub last_nak: Option<String>,
}

impl DhcpClient {
    /// Starts in SELECTING with a DISCOVER ready to send.
    pub fn new(cfg: DhcpConfig, now: Instant) -> Self {
        let delay = cfg.retransmit;
        let mut c = DhcpClient {
            cfg,
            state: State::Selecting,
            started: now,
            next: None,
            delay,
            pending: None,
            discovers: 0,
            requests: 0,
            naks: 0,
            last_nak: None,
        };
        c.send_discover(now);
        c
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn lease(&self) -> Option<&Lease> {
        match &self.state {
            State::Bound(l) => Some(l),
            _ => None,
        }
    }

    pub fn xid(&self) -> u32 {
        self.cfg.xid
    }

    /// The next BOOTP payload to broadcast from 0.0.0.0:68 to 255.255.255.255:67.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.pending.take()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }

    /// Retransmits when the timer expired (the same message type, new `secs`).
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(at) = self.next else { return };
        if now < at {
            return;
        }
        self.delay = (self.delay * 2).min(self.cfg.max_retransmit);
        match self.state.clone() {
            State::Selecting => self.send_discover(now),
            State::Requesting { offer } => self.send_request(&offer, now),
            State::Bound(_) | State::Failed(_) => self.next = None,
        }
    }

    /// Feeds a BOOTP payload received on port 68.
    pub fn handle_reply(&mut self, payload: &[u8], now: Instant) -> Result<(), DhcpError> {
        let msg = ParsedReply::decode(payload).map_err(|e| DhcpError::Malformed(e.to_string()))?;
        if msg.xid != self.cfg.xid || msg.chaddr != self.cfg.mac.octets() {
            return Err(DhcpError::NotOurs);
        }
        if msg.op != 2 {
            return Err(DhcpError::Malformed("not a BOOTREPLY".into()));
        }
        check_sizes(&msg)?;
        let mtype = msg
            .msg_type()
            .map(MsgType::from)
            .ok_or_else(|| DhcpError::Malformed("no message type (option 53)".into()))?;
        match (&self.state, mtype) {
            (State::Selecting, MsgType::Offer) => {
                let offer = lease_from(&msg)?;
                self.delay = self.cfg.retransmit;
                self.send_request(&offer, now);
                self.state = State::Requesting { offer };
                Ok(())
            }
            (State::Requesting { offer }, MsgType::Ack) => {
                let mut lease = lease_from(&msg)?;
                if lease.ip != offer.ip {
                    return Err(DhcpError::Invalid(format!(
                        "ACK for {} after OFFER of {}",
                        lease.ip, offer.ip
                    )));
                }
                if lease.server_id == Ipv4Addr::UNSPECIFIED {
                    lease.server_id = offer.server_id;
                }
                self.state = State::Bound(lease);
                self.next = None;
                Ok(())
            }
            (State::Requesting { .. }, MsgType::Nak) => {
                self.naks += 1;
                let msg_text = text(&msg, code::MESSAGE).unwrap_or_else(|| "no message".into());
                self.last_nak = Some(msg_text.clone());
                if self.naks >= self.cfg.max_naks {
                    self.state = State::Failed(format!("{} DHCPNAKs, last: {msg_text}", self.naks));
                    self.next = None;
                } else {
                    self.state = State::Selecting;
                    self.delay = self.cfg.retransmit;
                    self.send_discover(now);
                }
                Ok(())
            }
            (s, t) => Err(DhcpError::Unexpected(t, s.name())),
        }
    }

    /// What every message of the phone carries: its identity, size limit, class and wishes.
    fn base(&self, now: Instant, mtype: u8) -> ClientMsg {
        let mac = self.cfg.mac.octets();
        let secs = now.saturating_duration_since(self.started).as_secs();
        let mut cid = vec![1u8];
        cid.extend_from_slice(&mac);
        // Broadcast flag: the phone has no address yet and its IP stack is not the kernel's.
        let mut m = ClientMsg::new(mtype, mac, self.cfg.xid)
            .broadcast()
            .opt(code::CLIENT_ID, &cid)
            .opt(code::MAX_MESSAGE_SIZE, &1500u16.to_be_bytes())
            .opt(code::VENDOR_CLASS, &self.cfg.vendor_class);
        if let Some(h) = &self.cfg.hostname {
            m = m.opt(code::HOSTNAME, h.as_bytes());
        }
        m = m.opt(code::PARAM_REQUEST_LIST, &self.cfg.param_request_list);
        m.secs = secs.min(u64::from(u16::MAX)) as u16;
        m
    }

    fn send_discover(&mut self, now: Instant) {
        let m = self.base(now, 1);
        self.discovers += 1;
        self.emit(m, now);
    }

    fn send_request(&mut self, offer: &Lease, now: Instant) {
        let m = self
            .base(now, 3)
            .requested(offer.ip)
            .server_id(offer.server_id);
        self.requests += 1;
        self.emit(m, now);
    }

    fn emit(&mut self, m: ClientMsg, now: Instant) {
        self.pending = Some(m.encode());
        // A little per-phone jitter (from the xid) spreads a storm's retransmissions.
        let jitter = Duration::from_millis(u64::from(self.cfg.xid % 250));
        self.next = Some(now + self.delay + jitter);
    }
}

/// Options a phone reads, with the size each must have (None: a list of addresses, a
/// multiple of 4). A reply with one of the wrong size is refused as malformed.
const SIZES: &[(u8, Option<usize>)] = &[
    (code::SUBNET_MASK, Some(4)),
    (code::ROUTER, None),
    (code::DNS, None),
    (code::LEASE_TIME, Some(4)),
    (code::MESSAGE_TYPE, Some(1)),
    (code::SERVER_ID, Some(4)),
    (code::RENEWAL_T1, Some(4)),
    (code::REBINDING_T2, Some(4)),
    (code::TFTP_SERVER_LIST, None),
];

fn check_sizes(m: &ParsedReply) -> Result<(), DhcpError> {
    for &(c, want) in SIZES {
        let Some(v) = m.get(c) else { continue };
        let ok = match want {
            Some(w) => v.len() == w,
            None => v.len() % 4 == 0,
        };
        if !ok {
            return Err(DhcpError::Malformed(if c == code::TFTP_SERVER_LIST {
                format!("option 150 length {} is not a multiple of 4", v.len())
            } else {
                format!("option {c} has length {}", v.len())
            }));
        }
    }
    Ok(())
}

/// A text option (NULs and surrounding blanks stripped), if present and not empty.
fn text(m: &ParsedReply, c: u8) -> Option<String> {
    let s = String::from_utf8_lossy(m.get(c)?)
        .trim_end_matches('\0')
        .trim()
        .to_string();
    (!s.is_empty()).then_some(s)
}

/// Builds a lease from an OFFER/ACK (option sizes already checked).
fn lease_from(msg: &ParsedReply) -> Result<Lease, DhcpError> {
    let ip = msg.yiaddr;
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
        return Err(DhcpError::Invalid(format!("unusable yiaddr {ip}")));
    }
    let one = |c: u8| msg.ip_list(c).first().copied();
    Ok(Lease {
        ip,
        siaddr: msg.siaddr,
        option150: msg.ip_list(code::TFTP_SERVER_LIST),
        mask: one(code::SUBNET_MASK),
        routers: msg.ip_list(code::ROUTER),
        dns: msg.ip_list(code::DNS),
        server_id: one(code::SERVER_ID).unwrap_or(Ipv4Addr::UNSPECIFIED),
        lease_secs: msg.u32_opt(code::LEASE_TIME),
        domain: text(msg, code::DOMAIN_NAME),
        option66: text(msg, code::TFTP_SERVER_NAME),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcp::wire::{HEADER_LEN, MAGIC};
    // The tests read the client's messages and write the server's with dhcproto: an encoder
    // and decoder independent of the codec under test.
    use dhcproto::v4::{self, DhcpOption, Message, MessageType, OptionCode};
    use dhcproto::{Decodable, Decoder, Encodable, Encoder};
    use proptest::prelude::*;

    /// Builds a server reply (tests and the in-crate fake server): `mtype` for `req`, offering
    /// `ip`, with option 150 as a raw list placed *before* the other options.
    fn build_reply(req: &[u8], mtype: MessageType, ip: Ipv4Addr, tftp: &[Ipv4Addr]) -> Vec<u8> {
        let req = Message::decode(&mut Decoder::new(req)).unwrap();
        let server = Ipv4Addr::new(198, 18, 100, 1);
        let mut m = Message::new_with_id(
            req.xid(),
            Ipv4Addr::UNSPECIFIED,
            ip,
            server,
            Ipv4Addr::UNSPECIFIED,
            &req.chaddr()[..6],
        );
        m.set_opcode(v4::Opcode::BootReply);
        let o = m.opts_mut();
        o.insert(DhcpOption::MessageType(mtype));
        let mut raw = Vec::new();
        for a in tftp {
            raw.extend_from_slice(&a.octets());
        }
        o.insert(DhcpOption::Unknown(v4::UnknownOption::new(
            OptionCode::from(150),
            raw,
        )));
        o.insert(DhcpOption::ServerIdentifier(server));
        o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
        o.insert(DhcpOption::Router(vec![server]));
        o.insert(DhcpOption::AddressLeaseTime(3600));
        let mut buf = Vec::new();
        m.encode(&mut Encoder::new(&mut buf)).unwrap();
        buf
    }

    fn cfg() -> DhcpConfig {
        DhcpConfig::new(
            "001b54aabbcc".parse().unwrap(),
            0x1234_5678,
            b"Cisco Systems, Inc. IP Phone CP-7965",
            &[1, 66, 6, 3, 15, 150, 35],
        )
    }

    #[test]
    fn discover_carries_the_phone_identity() {
        let now = Instant::now();
        let mut c = DhcpClient::new(cfg(), now);
        let d = c.poll_transmit().unwrap();
        let m = Message::decode(&mut Decoder::new(&d)).unwrap();
        assert_eq!(m.opts().msg_type(), Some(MessageType::Discover));
        assert_eq!(m.xid(), 0x1234_5678);
        assert_eq!(&m.chaddr()[..6], &[0, 0x1b, 0x54, 0xaa, 0xbb, 0xcc]);
        assert!(m.flags().broadcast());
        match m.opts().get(OptionCode::ClassIdentifier) {
            Some(DhcpOption::ClassIdentifier(v)) => {
                assert_eq!(v, b"Cisco Systems, Inc. IP Phone CP-7965")
            }
            other => panic!("{other:?}"),
        }
        match m.opts().get(OptionCode::ParameterRequestList) {
            Some(DhcpOption::ParameterRequestList(v)) => {
                let codes: Vec<u8> = v.iter().map(|c| u8::from(*c)).collect();
                assert_eq!(codes, vec![1, 66, 6, 3, 15, 150, 35]);
            }
            other => panic!("{other:?}"),
        }
        assert!(c.poll_timeout().unwrap() >= now + Duration::from_secs(4));
    }

    #[test]
    fn full_exchange_keeps_every_option_150_address() {
        let now = Instant::now();
        let mut c = DhcpClient::new(cfg(), now);
        let d = c.poll_transmit().unwrap();
        let ip = Ipv4Addr::new(198, 18, 100, 10);
        let tftp = [
            Ipv4Addr::new(198, 18, 100, 1),
            Ipv4Addr::new(198, 18, 100, 2),
        ];
        let offer = build_reply(&d, MessageType::Offer, ip, &tftp);
        // The regression dhcproto alone fails: 150 (len 8) placed before other options.
        let raw = ParsedReply::decode(&offer).unwrap();
        assert_eq!(raw.ip_list(150), tftp.to_vec());
        c.handle_reply(&offer, now).unwrap();
        let r = c.poll_transmit().unwrap();
        let rm = Message::decode(&mut Decoder::new(&r)).unwrap();
        assert_eq!(rm.opts().msg_type(), Some(MessageType::Request));
        assert!(matches!(
            rm.opts().get(OptionCode::RequestedIpAddress),
            Some(DhcpOption::RequestedIpAddress(a)) if *a == ip
        ));
        let ack = build_reply(&r, MessageType::Ack, ip, &tftp);
        c.handle_reply(&ack, now).unwrap();
        let l = c.lease().unwrap();
        assert_eq!(l.ip, ip);
        assert_eq!(l.option150, tftp.to_vec());
        assert_eq!(l.mask, Some(Ipv4Addr::new(255, 255, 255, 0)));
        assert_eq!(l.prefix_len(), 24);
        assert_eq!(l.lease_secs, Some(3600));
        assert_eq!(l.server_id, Ipv4Addr::new(198, 18, 100, 1));
        assert!(c.poll_timeout().is_none());
    }

    #[test]
    fn retransmits_with_backoff_and_ignores_other_phones() {
        let now = Instant::now();
        let mut c = DhcpClient::new(cfg(), now);
        let d = c.poll_transmit().unwrap();
        let t1 = c.poll_timeout().unwrap();
        c.handle_timeout(t1);
        assert!(c.poll_transmit().is_some());
        assert_eq!(c.discovers, 2);
        let t2 = c.poll_timeout().unwrap();
        assert!(t2 - t1 >= Duration::from_secs(8));
        // A reply with another xid is not ours.
        let mut other = build_reply(&d, MessageType::Offer, Ipv4Addr::new(198, 18, 100, 9), &[]);
        other[4] ^= 0xff;
        assert_eq!(c.handle_reply(&other, now), Err(DhcpError::NotOurs));
        assert_eq!(c.state(), &State::Selecting);
    }

    #[test]
    fn naks_restart_then_fail() {
        let now = Instant::now();
        let mut c = DhcpClient::new(cfg(), now);
        for _ in 0..3 {
            let d = c.poll_transmit().unwrap();
            let ip = Ipv4Addr::new(198, 18, 100, 10);
            c.handle_reply(&build_reply(&d, MessageType::Offer, ip, &[]), now)
                .unwrap();
            let r = c.poll_transmit().unwrap();
            c.handle_reply(&build_reply(&r, MessageType::Nak, ip, &[]), now)
                .unwrap();
        }
        assert!(matches!(c.state(), State::Failed(_)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let now = Instant::now();
        let mut c = DhcpClient::new(cfg(), now);
        assert!(c.handle_reply(b"garbage", now).is_err());
        let mut bad = vec![0u8; HEADER_LEN];
        bad[0] = 2;
        bad[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        bad[28..34].copy_from_slice(&[0, 0x1b, 0x54, 0xaa, 0xbb, 0xcc]);
        bad.extend_from_slice(&MAGIC);
        bad.extend_from_slice(&[53, 1, 2, 150, 5, 1, 2, 3, 4, 5, 255]);
        assert_eq!(
            c.handle_reply(&bad, now),
            Err(DhcpError::Malformed(
                "option 150 length 5 is not a multiple of 4".into()
            ))
        );
        // Running past the end is malformed too.
        let cut = bad.len() - 3;
        assert!(matches!(
            c.handle_reply(&bad[..cut], now),
            Err(DhcpError::Malformed(_))
        ));
    }

    #[test]
    fn options_that_panic_dhcproto_are_skipped_and_wrong_sizes_refused() {
        let now = Instant::now();
        let mut c = DhcpClient::new(cfg(), now);
        let d = c.poll_transmit().unwrap();
        let offer = build_reply(&d, MessageType::Offer, Ipv4Addr::new(198, 18, 100, 10), &[]);
        let end = offer.iter().rposition(|b| *b == 255).unwrap();
        // 80 (rapid commit) with a value, 121 with a 40-bit prefix (dhcproto 0.15 panics on
        // both): options the phone does not read are kept raw and never typed.
        for extra in [&[80u8, 1, 0][..], &[121, 5, 40, 1, 2, 3, 4][..]] {
            let mut m = offer[..end].to_vec();
            m.extend_from_slice(extra);
            m.push(255);
            let mut c2 = DhcpClient::new(cfg(), now);
            c2.poll_transmit();
            c2.handle_reply(&m, now).unwrap();
            assert!(matches!(c2.state(), State::Requesting { .. }));
        }
        // A kept option of the wrong size is refused, not passed on.
        let mut m = offer[..end].to_vec();
        m.extend_from_slice(&[51, 2, 0, 1, 255]);
        assert!(matches!(
            c.handle_reply(&m, now),
            Err(DhcpError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn replies_of_arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let now = Instant::now();
            let mut c = DhcpClient::new(cfg(), now);
            let _ = c.handle_reply(&data, now);
            let mut framed = vec![0u8; 236];
            framed.extend_from_slice(&MAGIC);
            framed.extend_from_slice(&data);
            let _ = c.handle_reply(&framed, now);
            let _ = ParsedReply::decode(&framed);
        }
    }
}
