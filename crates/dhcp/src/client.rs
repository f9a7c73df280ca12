//! The client side's codec, written once: builds requests byte by byte and reads replies with
//! the same option scanner as the server reads requests ([`crate::wire`]: every option kept
//! raw, split options concatenated, overload followed, nothing typed away — dhcproto 0.15
//! drops everything after an option 150 of more than one address). Used by the emulator's
//! DHCP client, the tests, the fuzz bodies and the load tools; the server's replies are
//! encoded elsewhere (`reply.rs`), so tests do not read with the encoder under test.

use std::net::Ipv4Addr;

use crate::wire::{code, options_of, DecodeError, FLAG_BROADCAST, HEADER_LEN, MAGIC};

/// A request to build.
#[derive(Debug, Clone)]
pub struct ClientMsg {
    pub msg_type: u8,
    pub xid: u32,
    /// Seconds since the client began (RFC 2131 `secs`).
    pub secs: u16,
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
            secs: 0,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            giaddr: Ipv4Addr::UNSPECIFIED,
            flags: 0,
            options: Vec::new(),
        }
    }

    /// Asks for broadcast replies (a client with no address whose stack is not the kernel's).
    pub fn broadcast(mut self) -> Self {
        self.flags |= FLAG_BROADCAST;
        self
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

    /// The message; an option longer than 255 bytes is split into several (RFC 3396).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[0] = 1;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&self.xid.to_be_bytes());
        b[8..10].copy_from_slice(&self.secs.to_be_bytes());
        b[10..12].copy_from_slice(&self.flags.to_be_bytes());
        b[12..16].copy_from_slice(&self.ciaddr.octets());
        b[24..28].copy_from_slice(&self.giaddr.octets());
        b[28..34].copy_from_slice(&self.chaddr);
        b.extend_from_slice(&MAGIC);
        b.extend_from_slice(&[code::MESSAGE_TYPE, 1, self.msg_type]);
        for (c, d) in &self.options {
            let mut chunks = d.chunks(255).peekable();
            if chunks.peek().is_none() {
                b.extend_from_slice(&[*c, 0]);
            }
            for part in chunks {
                b.push(*c);
                b.push(part.len() as u8);
                b.extend_from_slice(part);
            }
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
    /// Reads any BOOTP message (either op): the header, then the options with overload
    /// followed. An error says what is wrong; never a panic.
    pub fn decode(b: &[u8]) -> Result<ParsedReply, DecodeError> {
        if b.len() < HEADER_LEN + 4 {
            return Err(DecodeError::TooShort(b.len()));
        }
        if b[236..240] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let raw = options_of(b)?;
        let options = raw
            .codes()
            .filter_map(|c| Some((c, raw.get(c)?.to_vec())))
            .collect();
        let ip = |at: usize| Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]);
        let mut chaddr = [0u8; 6];
        chaddr.copy_from_slice(&b[28..34]);
        Ok(ParsedReply {
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

    /// [`ParsedReply::decode`] for tests that only ask "is it a reply".
    pub fn parse(b: &[u8]) -> Option<ParsedReply> {
        Self::decode(b).ok()
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_request_reads_back_with_secs_flags_and_split_options() {
        let long = vec![7u8; 300];
        let m = ClientMsg::new(1, [0, 0x1b, 0x54, 1, 2, 3], 0xdead_beef)
            .broadcast()
            .opt(code::VENDOR_CLASS, &long)
            .opt(code::HOSTNAME, b"SEP001B54010203");
        let m = ClientMsg { secs: 7, ..m };
        let b = m.encode();
        let r = ParsedReply::decode(&b).unwrap();
        assert_eq!((r.op, r.xid, r.flags), (1, 0xdead_beef, FLAG_BROADCAST));
        assert_eq!(u16::from_be_bytes([b[8], b[9]]), 7);
        assert_eq!(r.msg_type(), Some(1));
        assert_eq!(r.get(code::VENDOR_CLASS), Some(&long[..]));
        assert_eq!(r.get(code::HOSTNAME), Some(&b"SEP001B54010203"[..]));
    }

    #[test]
    fn overloaded_file_field_is_read() {
        let mut b = ClientMsg::new(2, [2; 6], 1)
            .opt(code::OVERLOAD, &[1])
            .encode();
        b[108..114].copy_from_slice(&[150, 4, 10, 0, 0, 1]);
        b[114] = code::END;
        let r = ParsedReply::decode(&b).unwrap();
        assert_eq!(r.ip_list(150), vec![Ipv4Addr::new(10, 0, 0, 1)]);
        assert_eq!(
            ParsedReply::decode(&b[..200]).unwrap_err(),
            DecodeError::TooShort(200)
        );
        b[236] = 0;
        assert_eq!(ParsedReply::decode(&b).unwrap_err(), DecodeError::BadMagic);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = ParsedReply::decode(&data);
            let mut framed = vec![0u8; HEADER_LEN];
            framed.extend_from_slice(&MAGIC);
            framed.extend_from_slice(&data);
            let _ = ParsedReply::decode(&framed);
        }
    }
}
