//! The TFTP packet codec (RFC 1350, OACK from RFC 2347).
//!
//! Decoding borrows the datagram and checks every field: strings must be NUL-terminated
//! and UTF-8, nothing may trail the last field. Encoding appends to a caller's buffer so the
//! hot path (DATA) reuses one allocation per transfer.

use std::fmt;

/// Packet opcodes.
pub const OP_RRQ: u16 = 1;
pub const OP_WRQ: u16 = 2;
pub const OP_DATA: u16 = 3;
pub const OP_ACK: u16 = 4;
pub const OP_ERROR: u16 = 5;
pub const OP_OACK: u16 = 6;

/// Longest filename, option name or value we accept; real names are far shorter, and a cap
/// keeps a hostile RRQ from costing more than its datagram.
pub const MAX_STRING: usize = 512;
/// Most options one request may carry (RFC 2347 names four we know; a few unknown ones are
/// tolerated and ignored).
pub const MAX_OPTIONS: usize = 16;

/// Transfer mode named in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Octet,
    Netascii,
    /// Obsolete (RFC 1350 only); refused by servers.
    Mail,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Octet => "octet",
            Mode::Netascii => "netascii",
            Mode::Mail => "mail",
        }
    }

    fn parse(s: &str) -> Option<Mode> {
        if s.eq_ignore_ascii_case("octet") {
            Some(Mode::Octet)
        } else if s.eq_ignore_ascii_case("netascii") {
            Some(Mode::Netascii)
        } else if s.eq_ignore_ascii_case("mail") {
            Some(Mode::Mail)
        } else {
            None
        }
    }
}

/// TFTP error codes (RFC 1350, 8 from RFC 2347).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    NotDefined,
    FileNotFound,
    AccessViolation,
    DiskFull,
    IllegalOperation,
    UnknownTid,
    FileExists,
    NoSuchUser,
    OptionRefused,
    /// A code outside 0..=8, kept so it round-trips.
    Other(u16),
}

impl ErrorCode {
    pub fn to_u16(self) -> u16 {
        match self {
            ErrorCode::NotDefined => 0,
            ErrorCode::FileNotFound => 1,
            ErrorCode::AccessViolation => 2,
            ErrorCode::DiskFull => 3,
            ErrorCode::IllegalOperation => 4,
            ErrorCode::UnknownTid => 5,
            ErrorCode::FileExists => 6,
            ErrorCode::NoSuchUser => 7,
            ErrorCode::OptionRefused => 8,
            ErrorCode::Other(c) => c,
        }
    }

    pub fn from_u16(c: u16) -> ErrorCode {
        match c {
            0 => ErrorCode::NotDefined,
            1 => ErrorCode::FileNotFound,
            2 => ErrorCode::AccessViolation,
            3 => ErrorCode::DiskFull,
            4 => ErrorCode::IllegalOperation,
            5 => ErrorCode::UnknownTid,
            6 => ErrorCode::FileExists,
            7 => ErrorCode::NoSuchUser,
            8 => ErrorCode::OptionRefused,
            c => ErrorCode::Other(c),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorCode::NotDefined => "not defined",
            ErrorCode::FileNotFound => "file not found",
            ErrorCode::AccessViolation => "access violation",
            ErrorCode::DiskFull => "disk full",
            ErrorCode::IllegalOperation => "illegal operation",
            ErrorCode::UnknownTid => "unknown transfer id",
            ErrorCode::FileExists => "file exists",
            ErrorCode::NoSuchUser => "no such user",
            ErrorCode::OptionRefused => "option negotiation refused",
            ErrorCode::Other(c) => return write!(f, "error code {c}"),
        };
        f.write_str(s)
    }
}

/// A read or write request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub filename: &'a str,
    pub mode: Mode,
    /// Options in the order the client sent them, names as sent (compare case-insensitively).
    pub options: Vec<(&'a str, &'a str)>,
}

/// One decoded TFTP packet, borrowing the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    Rrq(Request<'a>),
    Wrq(Request<'a>),
    Data { block: u16, data: &'a [u8] },
    Ack { block: u16 },
    Error { code: ErrorCode, message: &'a str },
    Oack { options: Vec<(&'a str, &'a str)> },
}

/// Why a datagram is not a TFTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("datagram of {0} bytes is too short for a TFTP packet")]
    TooShort(usize),
    #[error("unknown opcode {0}")]
    UnknownOpcode(u16),
    #[error("string field is not NUL-terminated")]
    Unterminated,
    #[error("string field is not UTF-8")]
    NotUtf8,
    #[error("string field longer than {MAX_STRING} bytes")]
    StringTooLong,
    #[error("empty filename")]
    EmptyFilename,
    #[error("unknown transfer mode {0:?}")]
    BadMode(String),
    #[error("option {0:?} has no value")]
    OptionWithoutValue(String),
    #[error("more than {MAX_OPTIONS} options")]
    TooManyOptions,
    #[error("empty option name")]
    EmptyOptionName,
    #[error("{0} bytes after the last field")]
    TrailingBytes(usize),
}

impl DecodeError {
    /// A short stable label, for counters.
    pub fn label(&self) -> &'static str {
        match self {
            DecodeError::TooShort(_) => "too_short",
            DecodeError::UnknownOpcode(_) => "unknown_opcode",
            DecodeError::Unterminated => "unterminated",
            DecodeError::NotUtf8 => "not_utf8",
            DecodeError::StringTooLong => "string_too_long",
            DecodeError::EmptyFilename => "empty_filename",
            DecodeError::BadMode(_) => "bad_mode",
            DecodeError::OptionWithoutValue(_) => "option_without_value",
            DecodeError::TooManyOptions => "too_many_options",
            DecodeError::EmptyOptionName => "empty_option_name",
            DecodeError::TrailingBytes(_) => "trailing_bytes",
        }
    }
}

/// Reads NUL-terminated strings off the front of a slice.
struct Strings<'a> {
    rest: &'a [u8],
}

impl<'a> Strings<'a> {
    fn next_str(&mut self) -> Result<&'a str, DecodeError> {
        let nul = self
            .rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::Unterminated)?;
        if nul > MAX_STRING {
            return Err(DecodeError::StringTooLong);
        }
        let s = std::str::from_utf8(&self.rest[..nul]).map_err(|_| DecodeError::NotUtf8)?;
        self.rest = &self.rest[nul + 1..];
        Ok(s)
    }

    fn options(&mut self) -> Result<Vec<(&'a str, &'a str)>, DecodeError> {
        let mut options = Vec::new();
        while !self.rest.is_empty() {
            let name = self.next_str()?;
            if name.is_empty() {
                return Err(DecodeError::EmptyOptionName);
            }
            if self.rest.is_empty() {
                return Err(DecodeError::OptionWithoutValue(name.to_string()));
            }
            let value = self.next_str()?;
            if options.len() == MAX_OPTIONS {
                return Err(DecodeError::TooManyOptions);
            }
            options.push((name, value));
        }
        Ok(options)
    }
}

impl<'a> Packet<'a> {
    /// Decodes one datagram.
    pub fn decode(buf: &'a [u8]) -> Result<Packet<'a>, DecodeError> {
        if buf.len() < 2 {
            return Err(DecodeError::TooShort(buf.len()));
        }
        let opcode = u16::from_be_bytes([buf[0], buf[1]]);
        let body = &buf[2..];
        match opcode {
            OP_RRQ | OP_WRQ => {
                let mut s = Strings { rest: body };
                let filename = s.next_str()?;
                if filename.is_empty() {
                    return Err(DecodeError::EmptyFilename);
                }
                let mode_str = s.next_str()?;
                let mode =
                    Mode::parse(mode_str).ok_or_else(|| DecodeError::BadMode(mode_str.into()))?;
                let options = s.options()?;
                let req = Request {
                    filename,
                    mode,
                    options,
                };
                Ok(if opcode == OP_RRQ {
                    Packet::Rrq(req)
                } else {
                    Packet::Wrq(req)
                })
            }
            OP_DATA => {
                if body.len() < 2 {
                    return Err(DecodeError::TooShort(buf.len()));
                }
                Ok(Packet::Data {
                    block: u16::from_be_bytes([body[0], body[1]]),
                    data: &body[2..],
                })
            }
            OP_ACK => {
                if body.len() < 2 {
                    return Err(DecodeError::TooShort(buf.len()));
                }
                if body.len() > 2 {
                    return Err(DecodeError::TrailingBytes(body.len() - 2));
                }
                Ok(Packet::Ack {
                    block: u16::from_be_bytes([body[0], body[1]]),
                })
            }
            OP_ERROR => {
                if body.len() < 2 {
                    return Err(DecodeError::TooShort(buf.len()));
                }
                let code = ErrorCode::from_u16(u16::from_be_bytes([body[0], body[1]]));
                // Some stacks omit the final NUL of the message; tolerate that one slip,
                // an error packet ends the transfer either way.
                let raw = &body[2..];
                let mut s = Strings { rest: raw };
                let message = match s.next_str() {
                    Ok(m) => {
                        if !s.rest.is_empty() {
                            return Err(DecodeError::TrailingBytes(s.rest.len()));
                        }
                        m
                    }
                    Err(DecodeError::Unterminated) if raw.len() <= MAX_STRING => {
                        std::str::from_utf8(raw).map_err(|_| DecodeError::NotUtf8)?
                    }
                    Err(e) => return Err(e),
                };
                Ok(Packet::Error { code, message })
            }
            OP_OACK => {
                let mut s = Strings { rest: body };
                Ok(Packet::Oack {
                    options: s.options()?,
                })
            }
            other => Err(DecodeError::UnknownOpcode(other)),
        }
    }

    /// Appends the wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Packet::Rrq(r) | Packet::Wrq(r) => {
                let op = if matches!(self, Packet::Rrq(_)) {
                    OP_RRQ
                } else {
                    OP_WRQ
                };
                out.extend_from_slice(&op.to_be_bytes());
                put_str(out, r.filename);
                put_str(out, r.mode.as_str());
                put_options(out, &r.options);
            }
            Packet::Data { block, data } => encode_data(out, *block, data),
            Packet::Ack { block } => encode_ack(out, *block),
            Packet::Error { code, message } => encode_error(out, *code, message),
            Packet::Oack { options } => {
                out.extend_from_slice(&OP_OACK.to_be_bytes());
                put_options(out, options);
            }
        }
    }

    /// The encoded packet in a fresh buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

fn put_options(out: &mut Vec<u8>, options: &[(&str, &str)]) {
    for (k, v) in options {
        put_str(out, k);
        put_str(out, v);
    }
}

/// Appends a DATA packet.
pub fn encode_data(out: &mut Vec<u8>, block: u16, data: &[u8]) {
    out.extend_from_slice(&OP_DATA.to_be_bytes());
    out.extend_from_slice(&block.to_be_bytes());
    out.extend_from_slice(data);
}

/// Appends an ACK packet.
pub fn encode_ack(out: &mut Vec<u8>, block: u16) {
    out.extend_from_slice(&OP_ACK.to_be_bytes());
    out.extend_from_slice(&block.to_be_bytes());
}

/// Appends an ERROR packet. A NUL inside `message` would end it early on the wire, so
/// NULs are dropped.
pub fn encode_error(out: &mut Vec<u8>, code: ErrorCode, message: &str) {
    out.extend_from_slice(&OP_ERROR.to_be_bytes());
    out.extend_from_slice(&code.to_u16().to_be_bytes());
    out.extend(message.bytes().filter(|&b| b != 0));
    out.push(0);
}

/// An ERROR packet in a fresh buffer.
pub fn error_packet(code: ErrorCode, message: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + message.len());
    encode_error(&mut v, code, message);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrq_with_options_decodes() {
        let wire = b"\x00\x01SEP001B54AABBCC.cnf.xml\x00octet\x00blksize\x001428\x00tsize\x000\x00";
        let p = Packet::decode(wire).unwrap();
        assert_eq!(
            p,
            Packet::Rrq(Request {
                filename: "SEP001B54AABBCC.cnf.xml",
                mode: Mode::Octet,
                options: vec![("blksize", "1428"), ("tsize", "0")],
            })
        );
        assert_eq!(p.to_vec(), wire.to_vec());
    }

    #[test]
    fn mode_is_case_insensitive() {
        let p = Packet::decode(b"\x00\x01f\x00OCTET\x00").unwrap();
        assert!(matches!(
            p,
            Packet::Rrq(Request {
                mode: Mode::Octet,
                ..
            })
        ));
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert_eq!(Packet::decode(b""), Err(DecodeError::TooShort(0)));
        assert_eq!(
            Packet::decode(b"\x00\x09"),
            Err(DecodeError::UnknownOpcode(9))
        );
        assert_eq!(
            Packet::decode(b"\x00\x01file"),
            Err(DecodeError::Unterminated)
        );
        assert_eq!(
            Packet::decode(b"\x00\x01\x00octet\x00"),
            Err(DecodeError::EmptyFilename)
        );
        assert_eq!(
            Packet::decode(b"\x00\x01f\x00binary\x00"),
            Err(DecodeError::BadMode("binary".into()))
        );
        assert_eq!(
            Packet::decode(b"\x00\x01f\x00octet\x00blksize\x00"),
            Err(DecodeError::OptionWithoutValue("blksize".into()))
        );
        assert_eq!(
            Packet::decode(b"\x00\x04\x00\x01\x00"),
            Err(DecodeError::TrailingBytes(1))
        );
        assert_eq!(
            Packet::decode(b"\x00\x04\x00"),
            Err(DecodeError::TooShort(3))
        );
        assert_eq!(
            Packet::decode(b"\x00\x01\xff\xfe\x00octet\x00"),
            Err(DecodeError::NotUtf8)
        );
    }

    #[test]
    fn error_without_final_nul_is_tolerated() {
        let p = Packet::decode(b"\x00\x05\x00\x01nope").unwrap();
        assert_eq!(
            p,
            Packet::Error {
                code: ErrorCode::FileNotFound,
                message: "nope"
            }
        );
    }

    #[test]
    fn error_message_nul_is_dropped() {
        let v = error_packet(ErrorCode::NotDefined, "a\0b");
        assert_eq!(v, b"\x00\x05\x00\x00ab\x00");
    }
}
