//! Sans-IO SIP for phoneboot's registrar.
//!
//! * [`msg`]: framing (datagram and stream, RFC 5626 CRLF keepalives), parsing and
//!   formatting of messages, with hard size limits.
//! * [`hdr`]: structured Via, name-addr, URI, CSeq and digest parameter parsing.
//! * [`digest`]: RFC 7616 digest (MD5, SHA-256, qop=auth) with stateless nonces,
//!   expiry (`stale=true`) and replay protection.
//! * [`registrar`]: REGISTER/OPTIONS in, response + binding events out; service-control
//!   NOTIFY builder for restart/reset.
//! * [`directory`]: the [`SipDirectory`] trait the device database implements, and an
//!   in-memory implementation.
//! * [`client`]: the phone side of REGISTER with digest, for the emulator.
//!
//! Nothing here opens a socket or reads a clock: callers pass bytes and `now`.

pub mod client;
pub mod digest;
pub mod directory;
pub mod hdr;
pub mod msg;
pub mod registrar;

pub use client::{ClientConfig, ClientEvent, RegisterClient};
pub use digest::Algorithm;
pub use directory::{AutoRegisterRequest, MemoryDirectory, SipDevice, SipDirectory, SipLine};
pub use msg::{frame, Frame, Header, Limits, Message, Method, ParseError, StartLine};
pub use registrar::{
    response_target, Binding, ConfigError, LineBindings, OutRequest, Outcome, RegEvent, Registrar,
    RegistrarConfig, ServiceAction, Stats, Transport, VersionStamps,
};

/// Runs every structured parser over `data` (the fuzz target's second half). Never panics.
pub fn fuzz_structured(data: &[u8]) -> usize {
    let Ok(s) = std::str::from_utf8(data) else {
        return 0;
    };
    let mut n = 0;
    n += usize::from(hdr::Via::parse_first(s).is_some());
    n += usize::from(hdr::NameAddr::parse(s).is_some());
    n += usize::from(hdr::Contacts::parse(std::iter::once(s)).is_some());
    n += usize::from(hdr::CSeq::parse(s).is_some());
    n += usize::from(digest::Credentials::parse(s).is_some());
    n += usize::from(hdr::stamp_via(s, std::net::Ipv4Addr::LOCALHOST.into(), 1).is_some());
    if let Some(u) = hdr::Uri::parse(s) {
        // Whatever parses must print to something that parses the same way.
        let again = hdr::Uri::parse(&u.to_string());
        assert_eq!(again.as_ref(), Some(&u), "uri round trip: {s:?}");
        n += 1;
    }
    n
}
