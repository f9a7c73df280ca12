//! A minimal DHCP client-side codec for tests, fuzz bodies and load tools: builds requests
//! byte by byte (so tests do not depend on the encoder under test) and reads replies.

use std::net::Ipv4Addr;

use crate::wire::{code, RawOptions, HEADER_LEN, MAGIC};

/// A request to build.
#[derive(Debug, Clone)]
pub struct ClientMsg {
    pub msg_type: u8,
    pub xid: u32,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 6],
    /// Raw options after 53, in order (code, data).
    pub options: Vec<(u8, Vec<u8>)>,
}

impl ClientMsg {
    pub fn new(msg_type: u8, chaddr: [u8; 6], xid: u32) -> Self {
        ClientMsg {
            msg_type,
            xid,
            chaddr,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            flags: 0,
            options: Vec::new(),
        }
    }

    pub fn opt(mut self, code: u8, data: &[u8]) -> Self {
        self.options.push((code, data.to_vec()));
        self
    }

    pub fn requested(self, ip: Ipv4Addr) -> Self {
        self.opt(code::REQUESTED_IP, &ip.octets())
    }

    pub fn server_id(self, ip: Ipv4Addr) -> Self {
        self.opt(code::SERVER_ID, &ip.octets())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[0] = 1;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&self.xid.to_be_bytes());
        b[10..12].copy_from_slice(&self.flags.to_be_bytes());
        b[12..16].copy_from_slice(&self.ciaddr.octets());
        b[24..28].copy_from_slice(&self.giaddr.octets());
        b[28..34].copy_from_slice(&self.chaddr);
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&[code::MESSAGE_TYPE, 1, self.msg_type]);
        for (c, d) in &self.options {
            b.push(*c);
            b.push(d.len() as u8);
            b.extend_from_slice(d);
        }
        b.push(code::END);
        b
    }
}

/// A decoded server reply.
#[derive(Debug, Clone)]
pub struct ParsedReply {
    pub op: u8,
    pub xid: u32,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub siaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 6],
    /// Options in wire order (split instances concatenated).
    pub options: Vec<(u8, Vec<u8>)>,
}

impl ParsedReply {
    pub fn parse(b: &[u8]) -> Option<ParsedReply> {
        if b.len() < HEADER_LEN + 4 || b[236..240] != MAGIC {
            return None;
        }
        let raw = RawOptions::parse(&b[240..]).ok()?;
        let options = raw
            .codes()
            .filter_map(|c| Some((c, raw.get(c)?.to_vec())))
            .collect();
        let ip = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
        let mut chaddr = [0u8; 6];
        chaddr.copy_from_slice(&b[28..34]);
        Some(ParsedReply {
            op: b[0],
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            flags: u16::from_be_bytes([b[10], b[11]]),
            ciaddr: ip(12),
            yiaddr: ip(16),
            siaddr: ip(20),
            giaddr: ip(24),
            chaddr,
            options,
        })
    }

    pub fn get(&self, code: u8) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, d)| d.as_slice())
    }

    pub fn msg_type(&self) -> Option<u8> {
        self.get(code::MESSAGE_TYPE)?.first().copied()
    }

    pub fn ip_list(&self, code: u8) -> Vec<Ipv4Addr> {
        self.get(code)
            .unwrap_or(&[])
            .chunks_exact(4)
            .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
            .collect()
    }

    pub fn u32_opt(&self, code: u8) -> Option<u32> {
        match self.get(code)? {
            [a, b, c, d] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => None,
        }
    }
}
