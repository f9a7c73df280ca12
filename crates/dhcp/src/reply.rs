//! Reply encoding with dhcproto.
//!
//! Option 150 is always written as a raw `UnknownOption` (dhcproto 0.15 types it as a single
//! address), and option 82 is echoed as the raw bytes received (RFC 3046: unchanged, last).

use std::net::Ipv4Addr;

use dhcproto::v4::{
    DhcpOption, Flags, HType, Message, MessageType, Opcode, OptionCode, UnknownOption,
};
use dhcproto::{Encodable, Encoder};

use crate::config::{ClassConfig, PoolConfig};
use crate::wire::{code, Request};

/// Which reply to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Offer,
    Ack,
    /// DHCPACK to a DHCPINFORM: options only, no lease.
    InformAck,
    Nak(&'static str),
}

/// Everything a reply is made of.
pub struct ReplyParams<'a> {
    pub req: &'a Request<'a>,
    pub kind: ReplyKind,
    pub yiaddr: Ipv4Addr,
    pub server_id: Ipv4Addr,
    pub lease_secs: u32,
    pub pool: &'a PoolConfig,
    pub class: Option<&'a ClassConfig>,
    pub tftp: &'a [Ipv4Addr],
}

/// Minimum BOOTP message size; some clients drop shorter replies.
const MIN_LEN: usize = 300;

/// Option 150 payload: the addresses in preference order.
pub fn tftp_option(list: &[Ipv4Addr]) -> DhcpOption {
    let data = list.iter().flat_map(|a| a.octets()).collect();
    DhcpOption::Unknown(UnknownOption::new(
        OptionCode::from(code::TFTP_SERVER_LIST),
        data,
    ))
}

/// Encodes a reply to `p.req`.
pub fn encode(p: &ReplyParams<'_>) -> Vec<u8> {
    let req = p.req;
    let nak = matches!(p.kind, ReplyKind::Nak(_));
    let ciaddr = match p.kind {
        ReplyKind::Ack | ReplyKind::InformAck => req.ciaddr,
        _ => Ipv4Addr::UNSPECIFIED,
    };
    let siaddr = if nak {
        Ipv4Addr::UNSPECIFIED
    } else {
        p.tftp.first().copied().unwrap_or(Ipv4Addr::UNSPECIFIED)
    };
    // RFC 2131 4.3.2: a NAK through a relay asks it to broadcast to the client.
    let flags = if nak && !req.giaddr.is_unspecified() {
        req.flags | crate::wire::FLAG_BROADCAST
    } else {
        req.flags
    };
    let mut m = Message::new_with_id(req.xid, ciaddr, p.yiaddr, siaddr, req.giaddr, &req.chaddr);
    m.set_opcode(Opcode::BootReply)
        .set_htype(HType::Eth)
        .set_flags(Flags::from(flags));
    let o = m.opts_mut();
    let mt = match p.kind {
        ReplyKind::Offer => MessageType::Offer,
        ReplyKind::Ack | ReplyKind::InformAck => MessageType::Ack,
        ReplyKind::Nak(_) => MessageType::Nak,
    };
    o.insert(DhcpOption::MessageType(mt));
    o.insert(DhcpOption::ServerIdentifier(p.server_id));
    if let Some(cid) = req.client_id() {
        // RFC 6842: echo the client identifier.
        o.insert(DhcpOption::ClientIdentifier(cid.to_vec()));
    }
    if let ReplyKind::Nak(reason) = p.kind {
        o.insert(DhcpOption::Message(reason.to_string()));
        return finish(&m, req.relay_agent_info());
    }
    if p.kind != ReplyKind::InformAck {
        let lease = p.lease_secs;
        o.insert(DhcpOption::AddressLeaseTime(lease));
        let t1 = p.pool.renew_secs.unwrap_or(lease / 2).min(lease);
        let t2 = p
            .pool
            .rebind_secs
            .unwrap_or((u64::from(lease) * 7 / 8) as u32)
            .clamp(t1, lease);
        o.insert(DhcpOption::Renewal(t1));
        o.insert(DhcpOption::Rebinding(t2));
    }
    let prl = req.param_request_list();
    let wants = |c: u8| prl.is_none_or(|l| l.contains(&c));
    let pool = p.pool;
    let class = p.class;
    // Mask and router always: a phone without them cannot reach its TFTP server.
    o.insert(DhcpOption::SubnetMask(pool.subnet.mask()));
    if !pool.routers.is_empty() {
        o.insert(DhcpOption::Router(pool.routers.clone()));
    }
    let dns = class.and_then(|c| c.dns.as_ref()).unwrap_or(&pool.dns);
    if !dns.is_empty() && wants(code::DNS) {
        o.insert(DhcpOption::DomainNameServer(dns.clone()));
    }
    let domain = class
        .and_then(|c| c.domain.as_ref())
        .or(pool.domain.as_ref());
    if let Some(d) = domain.filter(|_| wants(code::DOMAIN_NAME)) {
        o.insert(DhcpOption::DomainName(d.clone()));
    }
    let ntp = class.and_then(|c| c.ntp.as_ref()).unwrap_or(&pool.ntp);
    if !ntp.is_empty() && wants(code::NTP) {
        o.insert(DhcpOption::NtpServers(ntp.clone()));
    }
    if let Some(off) = pool.time_offset.filter(|_| wants(code::TIME_OFFSET)) {
        o.insert(DhcpOption::TimeOffset(off));
    }
    if !pool.time_servers.is_empty() && wants(code::TIME_SERVER) {
        o.insert(DhcpOption::TimeServer(pool.time_servers.clone()));
    }
    let no_tftp = class.is_some_and(|c| c.no_tftp);
    let tftp_name = class
        .and_then(|c| c.tftp_server_name.as_ref())
        .or(pool.tftp_server_name.as_ref());
    if let Some(n) = tftp_name.filter(|_| !no_tftp && wants(code::TFTP_SERVER_NAME)) {
        o.insert(DhcpOption::TFTPServerName(n.as_bytes().to_vec()));
    }
    if !p.tftp.is_empty() && wants(code::TFTP_SERVER_LIST) {
        o.insert(tftp_option(p.tftp));
    }
    finish(&m, req.relay_agent_info())
}

/// Encodes `m`, then appends option 82 (raw, as received) just before END: dhcproto would
/// write an `UnknownOption` 82 twice (its encoder special-cases the typed variant only), and
/// RFC 3046 wants it last.
fn finish(m: &Message, rai: Option<&[u8]>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(512);
    let mut e = Encoder::new(&mut buf);
    // Encoding into a Vec cannot fail short of an option longer than dhcproto can split,
    // which our validated configuration rules out; an empty reply is dropped by the driver.
    if m.encode(&mut e).is_err() {
        return Vec::new();
    }
    if let Some(rai) = rai {
        if buf.last() == Some(&code::END) {
            buf.pop();
        }
        for chunk in rai.chunks(255) {
            buf.push(code::RELAY_AGENT_INFO);
            buf.push(chunk.len() as u8);
            buf.extend_from_slice(chunk);
        }
        buf.push(code::END);
    }
    if buf.len() < MIN_LEN {
        buf.resize(MIN_LEN, 0);
    }
    buf
}
