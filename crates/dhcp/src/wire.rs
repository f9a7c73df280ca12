//! Zero-copy decoding of client requests.
//!
//! We read requests with our own scanner instead of `dhcproto::v4::Message::decode` because
//! dhcproto 0.15 stops decoding options at the first one it cannot type (an option 150 with
//! more than one address, for example) and silently drops everything after it. Our scanner
//! keeps every option as raw bytes, concatenates split options (RFC 3396), follows option
//! overload (option 52) into `file`/`sname`, and rejects any option whose length runs past
//! the end of the packet. Replies are still encoded with dhcproto (see `reply.rs`).

use std::borrow::Cow;
use std::net::Ipv4Addr;

/// Size of the fixed BOOTP header (before the magic cookie).
pub const HEADER_LEN: usize = 236;
/// The DHCP magic cookie (RFC 2131 section 3).
pub const MAGIC: [u8; 4] = [99, 130, 83, 99];

/// Option codes we read or write.
pub mod code {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const TIME_OFFSET: u8 = 2;
    pub const ROUTER: u8 = 3;
    pub const TIME_SERVER: u8 = 4;
    pub const DNS: u8 = 6;
    pub const HOSTNAME: u8 = 12;
    pub const DOMAIN_NAME: u8 = 15;
    pub const NTP: u8 = 42;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const OVERLOAD: u8 = 52;
    pub const MESSAGE_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const PARAM_REQUEST_LIST: u8 = 55;
    pub const MESSAGE: u8 = 56;
    pub const MAX_MESSAGE_SIZE: u8 = 57;
    pub const RENEWAL_T1: u8 = 58;
    pub const REBINDING_T2: u8 = 59;
    pub const VENDOR_CLASS: u8 = 60;
    pub const CLIENT_ID: u8 = 61;
    pub const TFTP_SERVER_NAME: u8 = 66;
    pub const RELAY_AGENT_INFO: u8 = 82;
    pub const TFTP_SERVER_LIST: u8 = 150;
    pub const END: u8 = 255;
}

/// DHCP message types (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    Discover,
    Offer,
    Request,
    Decline,
    Ack,
    Nak,
    Release,
    Inform,
    Other(u8),
}

impl From<u8> for MsgType {
    fn from(v: u8) -> Self {
        match v {
            1 => MsgType::Discover,
            2 => MsgType::Offer,
            3 => MsgType::Request,
            4 => MsgType::Decline,
            5 => MsgType::Ack,
            6 => MsgType::Nak,
            7 => MsgType::Release,
            8 => MsgType::Inform,
            n => MsgType::Other(n),
        }
    }
}

/// Why a datagram was not accepted as a DHCP request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("datagram too short for a DHCP message ({0} bytes)")]
    TooShort(usize),
    #[error("op code {0} is not BOOTREQUEST")]
    WrongOp(u8),
    #[error("bad magic cookie (BOOTP or garbage)")]
    BadMagic,
    #[error("hardware type {htype} / length {hlen} is not Ethernet")]
    NotEthernet { htype: u8, hlen: u8 },
    #[error("option {code} claims {len} bytes but only {left} remain")]
    OptionOverrun { code: u8, len: usize, left: usize },
    #[error("option {code} has an invalid length {len}")]
    BadOptionLength { code: u8, len: usize },
    #[error("no DHCP message type (option 53): plain BOOTP is not served")]
    NoMessageType,
}

impl DecodeError {
    /// A short stable label for counters and logs.
    pub fn label(&self) -> &'static str {
        match self {
            DecodeError::TooShort(_) => "truncated",
            DecodeError::WrongOp(_) => "wrong_op",
            DecodeError::BadMagic => "bad_magic",
            DecodeError::NotEthernet { .. } => "not_ethernet",
            DecodeError::OptionOverrun { .. } => "option_overrun",
            DecodeError::BadOptionLength { .. } => "bad_option_length",
            DecodeError::NoMessageType => "no_message_type",
        }
    }
}

/// All options of a message as raw bytes, in first-seen order, split instances concatenated.
#[derive(Debug, Clone, Default)]
pub struct RawOptions<'a> {
    opts: Vec<(u8, Cow<'a, [u8]>)>,
}

impl<'a> RawOptions<'a> {
    /// The raw bytes of option `code`, if present.
    pub fn get(&self, code: u8) -> Option<&[u8]> {
        self.opts
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, d)| d.as_ref())
    }

    /// Codes in the order first seen.
    pub fn codes(&self) -> impl Iterator<Item = u8> + '_ {
        self.opts.iter().map(|(c, _)| *c)
    }

    fn push(&mut self, code: u8, data: &'a [u8]) {
        if let Some((_, d)) = self.opts.iter_mut().find(|(c, _)| *c == code) {
            d.to_mut().extend_from_slice(data);
        } else {
            self.opts.push((code, Cow::Borrowed(data)));
        }
    }

    /// Scans one options area. Stops at END; a field that runs past the end is an error.
    fn scan(&mut self, mut area: &'a [u8]) -> Result<(), DecodeError> {
        while let Some((&c, rest)) = area.split_first() {
            match c {
                code::PAD => area = rest,
                code::END => return Ok(()),
                _ => {
                    let Some((&len, rest)) = rest.split_first() else {
                        return Err(DecodeError::OptionOverrun {
                            code: c,
                            len: 1,
                            left: 0,
                        });
                    };
                    let len = len as usize;
                    if rest.len() < len {
                        return Err(DecodeError::OptionOverrun {
                            code: c,
                            len,
                            left: rest.len(),
                        });
                    }
                    self.push(c, &rest[..len]);
                    area = &rest[len..];
                }
            }
        }
        // A missing END is tolerated: many stacks pad to 300 bytes without one.
        Ok(())
    }

    /// Parses an options area (without the magic cookie); public for the fuzz body and the
    /// regression tests.
    pub fn parse(area: &'a [u8]) -> Result<Self, DecodeError> {
        let mut o = RawOptions::default();
        o.scan(area)?;
        Ok(o)
    }
}

/// The options of a whole BOOTP message (at least [`HEADER_LEN`] + 4 bytes): the options area,
/// then `file` and `sname` when option 52 says they are overloaded (RFC 2131 section 4.1).
/// Shared by requests ([`Request::decode`]) and replies ([`crate::client::ParsedReply`]).
pub(crate) fn options_of(b: &[u8]) -> Result<RawOptions<'_>, DecodeError> {
    if b.len() < HEADER_LEN + 4 {
        return Err(DecodeError::TooShort(b.len()));
    }
    let mut options = RawOptions::default();
    options.scan(&b[240..])?;
    if let Some(ov) = options.get(code::OVERLOAD) {
        let ov = match ov {
            [v] => *v,
            _ => {
                return Err(DecodeError::BadOptionLength {
                    code: code::OVERLOAD,
                    len: ov.len(),
                })
            }
        };
        // RFC 2131 section 4.1: options area, then `file`, then `sname`.
        if ov & 1 != 0 {
            options.scan(&b[108..236])?;
        }
        if ov & 2 != 0 {
            options.scan(&b[44..108])?;
        }
    }
    Ok(options)
}

/// A decoded client request (BOOTREQUEST with a DHCP message type).
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub hops: u8,
    pub xid: u32,
    pub secs: u16,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    /// The client's Ethernet address (chaddr, htype 1, hlen 6).
    pub chaddr: [u8; 6],
    pub msg_type: MsgType,
    pub options: RawOptions<'a>,
}

/// The broadcast bit of the `flags` field.
pub const FLAG_BROADCAST: u16 = 0x8000;

fn ipv4_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

impl<'a> Request<'a> {
    /// Decodes a datagram received on the server port.
    pub fn decode(b: &'a [u8]) -> Result<Self, DecodeError> {
        if b.len() < HEADER_LEN + 4 {
            return Err(DecodeError::TooShort(b.len()));
        }
        if b[0] != 1 {
            return Err(DecodeError::WrongOp(b[0]));
        }
        if b[236..240] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let (htype, hlen) = (b[1], b[2]);
        if htype != 1 || hlen != 6 {
            return Err(DecodeError::NotEthernet { htype, hlen });
        }
        let options = options_of(b)?;
        let msg_type = match options.get(code::MESSAGE_TYPE) {
            None => return Err(DecodeError::NoMessageType),
            Some([t]) => MsgType::from(*t),
            Some(other) => {
                return Err(DecodeError::BadOptionLength {
                    code: code::MESSAGE_TYPE,
                    len: other.len(),
                })
            }
        };
        for c in [code::REQUESTED_IP, code::SERVER_ID] {
            if let Some(v) = options.get(c) {
                if v.len() != 4 {
                    return Err(DecodeError::BadOptionLength {
                        code: c,
                        len: v.len(),
                    });
                }
            }
        }
        let mut chaddr = [0u8; 6];
        chaddr.copy_from_slice(&b[28..34]);
        Ok(Request {
            hops: b[3],
            xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            secs: u16::from_be_bytes([b[8], b[9]]),
            flags: u16::from_be_bytes([b[10], b[11]]),
            ciaddr: ipv4_at(b, 12),
            yiaddr: ipv4_at(b, 16),
            giaddr: ipv4_at(b, 24),
            chaddr,
            msg_type,
            options,
        })
    }

    fn ip_opt(&self, c: u8) -> Option<Ipv4Addr> {
        match self.options.get(c)? {
            [a, b, c, d] => Some(Ipv4Addr::new(*a, *b, *c, *d)),
            _ => None,
        }
    }

    /// Option 50.
    pub fn requested_ip(&self) -> Option<Ipv4Addr> {
        self.ip_opt(code::REQUESTED_IP)
    }

    /// Option 54.
    pub fn server_id(&self) -> Option<Ipv4Addr> {
        self.ip_opt(code::SERVER_ID)
    }

    /// Option 61, raw (type byte + identifier).
    pub fn client_id(&self) -> Option<&[u8]> {
        self.options.get(code::CLIENT_ID).filter(|v| !v.is_empty())
    }

    /// Option 60 as text, trailing NULs removed (several Cisco phones send one).
    pub fn vendor_class(&self) -> Option<String> {
        let raw = self.options.get(code::VENDOR_CLASS)?;
        let end = raw.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        if end == 0 {
            return None;
        }
        Some(String::from_utf8_lossy(&raw[..end]).into_owned())
    }

    /// Option 12 as text.
    pub fn hostname(&self) -> Option<String> {
        let raw = self.options.get(code::HOSTNAME)?;
        let end = raw.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        (end > 0).then(|| String::from_utf8_lossy(&raw[..end]).into_owned())
    }

    /// Option 55.
    pub fn param_request_list(&self) -> Option<&[u8]> {
        self.options.get(code::PARAM_REQUEST_LIST)
    }

    /// Option 51 (the lease time the client would like).
    pub fn lease_time(&self) -> Option<u32> {
        match self.options.get(code::LEASE_TIME)? {
            [a, b, c, d] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
            _ => None,
        }
    }

    /// Option 57 (maximum reply size the client accepts), at least 576 (RFC 2132 9.10).
    pub fn max_message_size(&self) -> usize {
        match self.options.get(code::MAX_MESSAGE_SIZE) {
            Some([a, b]) => usize::from(u16::from_be_bytes([*a, *b])).max(576),
            _ => 576,
        }
    }

    /// Option 82 as received, to echo unchanged (RFC 3046 section 2.2).
    pub fn relay_agent_info(&self) -> Option<&[u8]> {
        self.options.get(code::RELAY_AGENT_INFO)
    }

    /// The Link Selection sub-option (82/5, RFC 3527): the subnet the client is on when the
    /// relay's giaddr is not on it.
    pub fn link_selection(&self) -> Option<Ipv4Addr> {
        let mut rai = self.relay_agent_info()?;
        while let [sub, len, rest @ ..] = rai {
            let len = usize::from(*len);
            if rest.len() < len {
                return None;
            }
            if *sub == 5 && len == 4 {
                return Some(Ipv4Addr::new(rest[0], rest[1], rest[2], rest[3]));
            }
            rai = &rest[len..];
        }
        None
    }

    /// Whether the client asked for a broadcast reply.
    pub fn wants_broadcast(&self) -> bool {
        self.flags & FLAG_BROADCAST != 0
    }
}
