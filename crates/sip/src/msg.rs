//! SIP message framing, parsing and formatting (RFC 3261 section 7).
//!
//! A registrar reads a handful of headers, so messages are kept as an ordered list of
//! `(name, value)` pairs with compact forms expanded to their long names; structured views
//! of individual headers live in [`crate::hdr`]. Every length is bounded so that hostile
//! input costs little: see [`Limits`].

use std::fmt;

/// Parse failures. Each maps to "answer 400 if we can, else drop".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("no blank line ends the header section")]
    NoHeaderEnd,
    #[error("malformed start line")]
    BadStartLine,
    #[error("unsupported SIP version")]
    BadVersion,
    #[error("malformed header line")]
    BadHeader,
    #[error("more than {max} headers")]
    TooManyHeaders { max: usize },
    #[error("header section is not UTF-8")]
    NotUtf8,
    #[error("malformed Content-Length")]
    BadContentLength,
    #[error("Content-Length {declared} exceeds the {available} body bytes received")]
    BodyTruncated { declared: usize, available: usize },
}

/// Bounds applied while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest whole message (head + body), bytes.
    pub max_message: usize,
    /// Most header lines.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 65_535,
            max_headers: 128,
        }
    }
}

/// Request methods; the registrar handles REGISTER and OPTIONS and sends NOTIFY.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Register,
    Options,
    Notify,
    Invite,
    Ack,
    Bye,
    Cancel,
    Subscribe,
    /// Cisco phones send REFER outside calls: remote-cc responses, token registration,
    /// alarms (usecallmanager's Asterisk patch, `sip_handle_request_refer`).
    Refer,
    Other(String),
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        if s.is_empty() || !s.bytes().all(is_token_byte) {
            return None;
        }
        Some(match s {
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "NOTIFY" => Method::Notify,
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "SUBSCRIBE" => Method::Subscribe,
            "REFER" => Method::Refer,
            other => Method::Other(other.to_string()),
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Notify => "NOTIFY",
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Subscribe => "SUBSCRIBE",
            Method::Refer => "REFER",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: Method, uri: String },
    Response { code: u16, reason: String },
}

/// One header as received (compact names expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// A parsed SIP message. Headers keep their order; `Content-Length` is not stored but
/// recomputed from `body` when formatting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

/// What [`frame`] found at the front of a stream buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Need more bytes.
    Incomplete,
    /// RFC 5626 keepalive: a CRLFCRLF "ping" of this many bytes; answer with a CRLF "pong".
    Ping(usize),
    /// Stray CRLF (a "pong" or padding) of this many bytes: skip it.
    Skip(usize),
    /// A whole message of this many bytes.
    Message(usize),
}

/// Finds the next message boundary in a stream (TCP) buffer, using Content-Length.
/// A missing Content-Length on a stream counts as 0 (lenient; RFC 3261 requires it).
pub fn frame(buf: &[u8], limits: &Limits) -> Result<Frame, ParseError> {
    if buf.starts_with(b"\r\n\r\n") {
        return Ok(Frame::Ping(4));
    }
    if buf.starts_with(b"\r\n") {
        // "\r\n" then more: a pong, unless it may still become a ping.
        return match buf.get(2) {
            None => Ok(Frame::Incomplete),
            Some(b'\r') if buf.len() == 3 => Ok(Frame::Incomplete),
            _ => Ok(Frame::Skip(2)),
        };
    }
    if buf.first() == Some(&b'\n') {
        return Ok(Frame::Skip(1));
    }
    let Some(head_end) = find_head_end(buf) else {
        if buf.len() > limits.max_message {
            return Err(ParseError::TooLarge {
                max: limits.max_message,
            });
        }
        return Ok(Frame::Incomplete);
    };
    let head = std::str::from_utf8(&buf[..head_end.0]).map_err(|_| ParseError::NotUtf8)?;
    let cl = content_length_in(head)?.unwrap_or(0);
    let total = head_end
        .1
        .checked_add(cl)
        .ok_or(ParseError::BadContentLength)?;
    if total > limits.max_message {
        return Err(ParseError::TooLarge {
            max: limits.max_message,
        });
    }
    if buf.len() < total {
        Ok(Frame::Incomplete)
    } else {
        Ok(Frame::Message(total))
    }
}

/// Returns (end of header text, start of body): accepts CRLFCRLF and, leniently, LFLF.
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            match buf.get(i + 1) {
                Some(b'\n') => return Some((i, i + 2)),
                Some(b'\r') if buf.get(i + 2) == Some(&b'\n') => return Some((i, i + 3)),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Scans header text for Content-Length (or `l`) without building the message.
fn content_length_in(head: &str) -> Result<Option<usize>, ParseError> {
    for line in head.split('\n').skip(1) {
        let line = line.trim_end_matches('\r');
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim_end();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            return parse_content_length(value).map(Some);
        }
    }
    Ok(None)
}

fn parse_content_length(value: &str) -> Result<usize, ParseError> {
    let v = value.trim();
    if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadContentLength);
    }
    v.parse().map_err(|_| ParseError::BadContentLength)
}

/// RFC 3261 `token` characters.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Long name for a compact header form (RFC 3261 7.3.3 and later RFCs).
fn expand_compact(name: &str) -> Option<&'static str> {
    if name.len() != 1 {
        return None;
    }
    Some(match name.as_bytes()[0].to_ascii_lowercase() {
        b'v' => "Via",
        b'f' => "From",
        b't' => "To",
        b'i' => "Call-ID",
        b'm' => "Contact",
        b'l' => "Content-Length",
        b'c' => "Content-Type",
        b'e' => "Content-Encoding",
        b'k' => "Supported",
        b's' => "Subject",
        b'o' => "Event",
        b'u' => "Allow-Events",
        b'r' => "Refer-To",
        b'x' => "Session-Expires",
        _ => return None,
    })
}

impl Message {
    /// Parses one datagram (or one framed stream message). The body is cut to
    /// Content-Length; a Content-Length larger than the bytes present is an error
    /// (RFC 3261 18.3).
    pub fn parse(buf: &[u8], limits: &Limits) -> Result<Message, ParseError> {
        if buf.len() > limits.max_message {
            return Err(ParseError::TooLarge {
                max: limits.max_message,
            });
        }
        let (head_end, body_start) = find_head_end(buf).ok_or(ParseError::NoHeaderEnd)?;
        let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| ParseError::NotUtf8)?;
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let start = parse_start_line(lines.next().ok_or(ParseError::BadStartLine)?)?;
        // A REGISTER carries about a dozen headers: one allocation instead of a few regrowths.
        let mut headers: Vec<Header> = Vec::with_capacity(16);
        let mut content_length: Option<usize> = None;
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // Folded continuation of the previous header (RFC 3261 7.3.1).
                let last = headers.last_mut().ok_or(ParseError::BadHeader)?;
                let cont = line.trim();
                if !cont.is_empty() {
                    if !last.value.is_empty() {
                        last.value.push(' ');
                    }
                    last.value.push_str(cont);
                }
                continue;
            }
            let (name, value) = line.split_once(':').ok_or(ParseError::BadHeader)?;
            let name = name.trim_end_matches([' ', '\t']);
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(ParseError::BadHeader);
            }
            let value = value.trim_matches([' ', '\t']);
            let name = match expand_compact(name) {
                Some(long) => long.to_string(),
                None => name.to_string(),
            };
            if name.eq_ignore_ascii_case("content-length") {
                let cl = parse_content_length(value)?;
                if content_length.is_some_and(|c| c != cl) {
                    return Err(ParseError::BadContentLength);
                }
                content_length = Some(cl);
                continue;
            }
            if headers.len() >= limits.max_headers {
                return Err(ParseError::TooManyHeaders {
                    max: limits.max_headers,
                });
            }
            headers.push(Header {
                name,
                value: value.to_string(),
            });
        }
        let rest = &buf[body_start..];
        let body = match content_length {
            Some(cl) if cl > rest.len() => {
                return Err(ParseError::BodyTruncated {
                    declared: cl,
                    available: rest.len(),
                })
            }
            Some(cl) => rest[..cl].to_vec(),
            None => rest.to_vec(),
        };
        Ok(Message {
            start,
            headers,
            body,
        })
    }

    /// Formats the message; Content-Length is always written and always true.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        self.encode_into(&mut out);
        out
    }

    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match &self.start {
            StartLine::Request { method, uri } => {
                out.extend_from_slice(method.as_str().as_bytes());
                out.push(b' ');
                out.extend_from_slice(uri.as_bytes());
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                out.extend_from_slice(b"SIP/2.0 ");
                out.extend_from_slice(code.to_string().as_bytes());
                out.push(b' ');
                out.extend_from_slice(reason.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        for h in &self.headers {
            out.extend_from_slice(h.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(self.body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&self.body);
    }

    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every value of a header, in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    pub fn push_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push(Header {
            name: name.into(),
            value: value.into(),
        });
    }

    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// Request-URI, for requests.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// A response to this request (RFC 3261 8.2.6.2): Via, From, To, Call-ID and CSeq
    /// copied; the caller adds a To tag when needed.
    pub fn response(&self, code: u16, reason: &str) -> Message {
        let mut headers = Vec::with_capacity(8);
        for h in &self.headers {
            let n = h.name.as_str();
            if n.eq_ignore_ascii_case("via")
                || n.eq_ignore_ascii_case("from")
                || n.eq_ignore_ascii_case("to")
                || n.eq_ignore_ascii_case("call-id")
                || n.eq_ignore_ascii_case("cseq")
            {
                headers.push(h.clone());
            }
        }
        Message {
            start: StartLine::Response {
                code,
                reason: reason.to_string(),
            },
            headers,
            body: Vec::new(),
        }
    }
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        let (ver, rest) = rest.split_once(' ').ok_or(ParseError::BadStartLine)?;
        if ver != "2.0" {
            return Err(ParseError::BadVersion);
        }
        let (code, reason) = match rest.split_once(' ') {
            Some((c, r)) => (c, r),
            None => (rest, ""),
        };
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::BadStartLine);
        }
        let code: u16 = code.parse().map_err(|_| ParseError::BadStartLine)?;
        if !(100..=699).contains(&code) || reason.contains(['\r', '\n']) {
            return Err(ParseError::BadStartLine);
        }
        return Ok(StartLine::Response {
            code,
            reason: reason.to_string(),
        });
    }
    let mut parts = line.split(' ');
    let (Some(m), Some(uri), Some(ver), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::BadStartLine);
    };
    let method = Method::parse(m).ok_or(ParseError::BadStartLine)?;
    if !ver.eq_ignore_ascii_case("SIP/2.0") {
        return Err(ParseError::BadVersion);
    }
    if uri.is_empty() || !uri.contains(':') || uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ParseError::BadStartLine);
    }
    Ok(StartLine::Request {
        method,
        uri: uri.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CISCO_REGISTER: &str = "REGISTER sip:198.18.0.1 SIP/2.0\r\n\
Via: SIP/2.0/TCP 198.18.0.50:51234;branch=z9hG4bK1a2b3c\r\n\
From: <sip:1001@198.18.0.1>;tag=001b54aabbcc0001\r\n\
To: <sip:1001@198.18.0.1>\r\n\
Call-ID: 001b54aa-bbcc0002-1234@198.18.0.50\r\n\
Max-Forwards: 70\r\n\
CSeq: 101 REGISTER\r\n\
User-Agent: Cisco-CP8845/12.8.1\r\n\
Contact: <sip:1001@198.18.0.50:51234;transport=tcp>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-001b54aabbcc>\";+u.sip!devicename.ccm.cisco.com=\"SEP001B54AABBCC\";+u.sip!model.ccm.cisco.com=\"36670\";reg-id=1;x-cisco-newreg\r\n\
Supported: replaces,join,X-cisco-serviceuri,X-cisco-service-control\r\n\
Expires: 3600\r\n\
l: 0\r\n\r\n";

    #[test]
    fn parses_a_cisco_register() {
        let m = Message::parse(CISCO_REGISTER.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(m.method(), Some(&Method::Register));
        assert_eq!(m.request_uri(), Some("sip:198.18.0.1"));
        assert_eq!(
            m.header("call-id"),
            Some("001b54aa-bbcc0002-1234@198.18.0.50")
        );
        assert!(m.header("contact").unwrap().contains("SEP001B54AABBCC"));
        assert!(m.header("Content-Length").is_none());
        assert!(m.body.is_empty());
    }

    #[test]
    fn compact_forms_and_folding() {
        let raw = "OPTIONS sip:x@y SIP/2.0\r\nv: SIP/2.0/UDP a;branch=z9hG4bKx\r\ni: abc\r\nSubject: one\r\n  two\r\n\r\n";
        let m = Message::parse(raw.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(m.header("Via"), Some("SIP/2.0/UDP a;branch=z9hG4bKx"));
        assert_eq!(m.header("Call-ID"), Some("abc"));
        assert_eq!(m.header("Subject"), Some("one two"));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let l = Limits::default();
        for raw in [
            "REGISTER sip:x SIP/3.0\r\n\r\n",
            "REGISTER  sip:x SIP/2.0\r\n\r\n",
            "REG(ISTER sip:x SIP/2.0\r\n\r\n",
            "SIP/2.0 99 Bad\r\n\r\n",
            "REGISTER sip:x SIP/2.0\r\nNoColon\r\n\r\n",
            "REGISTER sip:x SIP/2.0\r\nContent-Length: 10\r\n\r\nshort",
            "REGISTER sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n",
            "REGISTER sip:x SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab",
            "REGISTER sip:x SIP/2.0\r\n",
            " folded first\r\n\r\n",
        ] {
            assert!(Message::parse(raw.as_bytes(), &l).is_err(), "{raw:?}");
        }
        let big = vec![b'a'; 70_000];
        assert!(matches!(
            Message::parse(&big, &l),
            Err(ParseError::TooLarge { .. })
        ));
    }

    #[test]
    fn body_is_cut_to_content_length() {
        let raw = "NOTIFY sip:x SIP/2.0\r\nContent-Length: 3\r\n\r\nabcdef";
        let m = Message::parse(raw.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(m.body, b"abc");
    }

    #[test]
    fn stream_framing() {
        let l = Limits::default();
        assert_eq!(frame(b"\r\n\r\nREG", &l), Ok(Frame::Ping(4)));
        assert_eq!(frame(b"\r\n", &l), Ok(Frame::Incomplete));
        assert_eq!(frame(b"\r\nREG", &l), Ok(Frame::Skip(2)));
        let two = format!("{CISCO_REGISTER}{CISCO_REGISTER}");
        let Ok(Frame::Message(n)) = frame(two.as_bytes(), &l) else {
            panic!()
        };
        assert_eq!(n, CISCO_REGISTER.len());
        assert_eq!(frame(&two.as_bytes()[..n - 1], &l), Ok(Frame::Incomplete));
        let with_body = "NOTIFY sip:x SIP/2.0\r\nContent-Length: 5\r\n\r\nab";
        assert_eq!(frame(with_body.as_bytes(), &l), Ok(Frame::Incomplete));
        let huge = "NOTIFY sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n";
        assert!(frame(huge.as_bytes(), &l).is_err());
        assert!(frame(&vec![b'x'; 70_000], &l).is_err());
    }

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,12}"
    }

    fn message() -> impl Strategy<Value = Message> {
        let start = prop_oneof![
            (token(), "[a-z]{1,5}:[!-~]{1,20}").prop_map(|(m, uri)| StartLine::Request {
                method: Method::parse(&m.to_ascii_uppercase()).unwrap(),
                uri
            }),
            (100u16..700, "[ -~]{0,20}").prop_map(|(code, reason)| StartLine::Response {
                code,
                reason: reason.trim_end().to_string()
            }),
        ];
        let header = (token(), "[!-~]([ -~]{0,40}[!-~])?")
            .prop_filter("not content-length", |(n, _)| {
                !n.eq_ignore_ascii_case("content-length") && !n.eq_ignore_ascii_case("l")
            })
            .prop_map(|(name, value)| Header {
                name: expand_compact(&name).map(str::to_string).unwrap_or(name),
                value,
            });
        (
            start,
            proptest::collection::vec(header, 0..12),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(start, headers, body)| Message {
                start,
                headers,
                body,
            })
    }

    /// The fuzz body: never panics; whatever parses re-encodes to an equal message.
    pub(crate) fn fuzz_one(data: &[u8]) {
        let l = Limits::default();
        let _ = frame(data, &l);
        if let Ok(m) = Message::parse(data, &l) {
            let again = Message::parse(&m.encode(), &l).expect("re-parse");
            assert_eq!(again, m);
        }
        let _ = crate::fuzz_structured(data);
    }

    proptest! {
        #[test]
        fn round_trip(m in message()) {
            let bytes = m.encode();
            let back = Message::parse(&bytes, &Limits::default()).unwrap();
            prop_assert_eq!(&back, &m);
            prop_assert_eq!(frame(&bytes, &Limits::default()), Ok(Frame::Message(bytes.len())));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            fuzz_one(&data);
        }

        #[test]
        fn mutated_register_never_panics(pos in 0usize..600, byte in any::<u8>(), cut in 0usize..700) {
            let mut d = CISCO_REGISTER.as_bytes().to_vec();
            if pos < d.len() { d[pos] = byte; }
            d.truncate(cut.max(1));
            fuzz_one(&d);
        }
    }
}
