//! Structured views of the headers a registrar needs: Via, name-addr (From/To/Contact),
//! SIP URIs, CSeq, and digest credentials. Parsers borrow nothing and never panic.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

/// `;name=value` parameters, order kept; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// The parameter as received: `Some(None)` for a flag, `Some(Some(raw))` with quotes kept.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The value of a parameter that has one, surrounding quotes removed.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten().map(strip_quotes)
    }

    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn set(&mut self, name: &str, value: Option<String>) {
        if let Some(slot) = self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            slot.1 = value;
        } else {
            self.0.push((name.to_string(), value));
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Parses `;a=b;c;d="q"` (the leading `;` optional).
    pub fn parse(s: &str) -> Option<Params> {
        let mut out = Vec::new();
        for part in split_outside_quotes(s, b';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => {
                    let v = v.trim();
                    unquote(v)?;
                    (n.trim(), Some(v.to_string()))
                }
                None => (part, None),
            };
            if name.is_empty() || name.contains(['"', '<', '>', ' ']) {
                return None;
            }
            out.push((name.to_string(), value));
        }
        Some(Params(out))
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in &self.0 {
            f.write_char(';')?;
            f.write_str(n)?;
            if let Some(v) = v {
                f.write_char('=')?;
                f.write_str(v)?;
            }
        }
        Ok(())
    }
}

/// `"x"` -> `x`; anything else unchanged.
pub fn strip_quotes(v: &str) -> &str {
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// Removes surrounding quotes and backslash escapes; `None` if a quote is unbalanced.
pub fn unquote(v: &str) -> Option<String> {
    if let Some(inner) = v.strip_prefix('"') {
        let inner = inner.strip_suffix('"')?;
        // Nonces, realms and URIs hold no escapes: copy them in one go.
        if !inner.bytes().any(|b| b == b'\\' || b == b'"') {
            return Some(inner.to_string());
        }
        let mut out = String::with_capacity(inner.len());
        let mut esc = false;
        for c in inner.chars() {
            if esc {
                out.push(c);
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                return None;
            } else {
                out.push(c);
            }
        }
        if esc {
            return None;
        }
        Some(out)
    } else {
        if v.contains('"') {
            return None;
        }
        Some(v.to_string())
    }
}

/// Splits on `sep` outside double quotes and angle brackets.
pub fn split_outside_quotes(s: &str, sep: u8) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut esc, mut angle) = (false, false, false);
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if quoted {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                quoted = false;
            }
            continue;
        }
        match b {
            b'"' => quoted = true,
            b'<' => angle = true,
            b'>' => angle = false,
            _ if b == sep && !angle => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// A `sip:`/`sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub scheme: String,
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
    /// `?headers` part, kept verbatim.
    pub headers: Option<String>,
}

impl Uri {
    pub fn parse(s: &str) -> Option<Uri> {
        let s = s.trim();
        let (scheme, rest) = s.split_once(':')?;
        if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
            return None;
        }
        let (rest, headers) = match rest.split_once('?') {
            Some((r, h)) => (r, Some(h.to_string())),
            None => (rest, None),
        };
        let (userinfo, hostpart) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let user = match userinfo {
            Some(u) => {
                // user[:password]; the password is dropped (never stored).
                let u = u.split_once(':').map_or(u, |(u, _)| u);
                if u.is_empty()
                    || u.bytes()
                        .any(|b| b <= b' ' || b == b'<' || b == b'>' || b == b'"')
                {
                    return None;
                }
                Some(u.to_string())
            }
            None => None,
        };
        let (hostport, params) = match hostpart.split_once(';') {
            Some((hp, p)) => (hp, Params::parse(p)?),
            None => (hostpart, Params::default()),
        };
        let (host, port) = split_host_port(hostport)?;
        Some(Uri {
            scheme: scheme.to_ascii_lowercase(),
            user,
            host,
            port,
            params,
            headers,
        })
    }

    /// The address-of-record form `sip:user@host` used as a binding key.
    pub fn aor(&self) -> String {
        match &self.user {
            Some(u) => format!("{}:{}@{}", self.scheme, u, self.host.to_ascii_lowercase()),
            None => format!("{}:{}", self.scheme, self.host.to_ascii_lowercase()),
        }
    }

    /// RFC 3261 19.1.4-ish equivalence for contacts: user exact, host case-insensitive,
    /// port with default, transport parameter.
    pub fn same_contact(&self, other: &Uri) -> bool {
        self.scheme == other.scheme
            && self.user == other.user
            && self.host.eq_ignore_ascii_case(&other.host)
            && self.port.unwrap_or(5060) == other.port.unwrap_or(5060)
            && self.params.value("transport").map(str::to_ascii_lowercase)
                == other.params.value("transport").map(str::to_ascii_lowercase)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        f.write_char(':')?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            f.write_char('@')?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

/// Splits `host[:port]` / `[v6][:port]`; validates host characters.
pub fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (h, port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_' || b == b':')
    {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0)?),
        None => None,
    };
    Some((host.to_string(), port))
}

/// `"Display" <uri>;params` or `uri;params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: Uri,
    pub params: Params,
}

impl NameAddr {
    pub fn parse(s: &str) -> Option<NameAddr> {
        let s = s.trim();
        if let Some(lt) = find_unquoted(s, b'<') {
            let display = s[..lt].trim();
            let display = if display.is_empty() {
                None
            } else {
                Some(unquote(display)?)
            };
            let rest = &s[lt + 1..];
            let gt = rest.find('>')?;
            let uri = Uri::parse(&rest[..gt])?;
            let params = Params::parse(&rest[gt + 1..])?;
            Some(NameAddr {
                display,
                uri,
                params,
            })
        } else {
            // Without brackets, parameters belong to the header, not the URI.
            let (u, p) = match s.split_once(';') {
                Some((u, p)) => (u, p),
                None => (s, ""),
            };
            Some(NameAddr {
                display: None,
                uri: Uri::parse(u)?,
                params: Params::parse(p)?,
            })
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "\"{}\" ", d.replace('\\', "\\\\").replace('"', "\\\""))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

fn find_unquoted(s: &str, needle: u8) -> Option<usize> {
    let (mut quoted, mut esc) = (false, false);
    for (i, b) in s.bytes().enumerate() {
        if quoted {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                quoted = false;
            }
        } else if b == b'"' {
            quoted = true;
        } else if b == needle {
            return Some(i);
        }
    }
    None
}

/// The Contact header(s) of a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// `Contact: *` (remove all bindings; needs Expires: 0).
    Star,
    List(Vec<NameAddr>),
}

impl Contacts {
    /// Parses every Contact header value given; `None` if any is malformed or `*` is mixed.
    pub fn parse<'a>(values: impl Iterator<Item = &'a str>) -> Option<Contacts> {
        let mut list = Vec::new();
        let mut star = false;
        for v in values {
            for item in split_outside_quotes(v, b',') {
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                if item == "*" {
                    star = true;
                } else {
                    list.push(NameAddr::parse(item)?);
                }
            }
        }
        match (star, list.is_empty()) {
            (true, true) => Some(Contacts::Star),
            (true, false) => None,
            (false, _) => Some(Contacts::List(list)),
        }
    }
}

/// One Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    /// Parses the first Via in a header value (a value may hold several).
    pub fn parse_first(value: &str) -> Option<Via> {
        let first = split_outside_quotes(value, b',').into_iter().next()?;
        Via::parse(first)
    }

    pub fn parse(s: &str) -> Option<Via> {
        let s = s.trim();
        let (proto, rest) = s.split_once([' ', '\t'])?;
        let mut p = proto.split('/');
        let (Some(name), Some(ver), Some(transport), None) =
            (p.next(), p.next(), p.next(), p.next())
        else {
            return None;
        };
        if !name.trim().eq_ignore_ascii_case("SIP") || ver.trim() != "2.0" {
            return None;
        }
        let transport = transport.trim();
        if transport.is_empty() || !transport.bytes().all(crate::msg::is_token_byte) {
            return None;
        }
        let rest = rest.trim();
        let (sent_by, params) = match rest.split_once(';') {
            Some((sb, p)) => (sb, Params::parse(p)?),
            None => (rest, Params::default()),
        };
        let (host, port) = split_host_port(sent_by)?;
        Some(Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} ", self.transport)?;
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// Adds `received` and fills `rport` in the top Via value (RFC 3261 18.2.1, RFC 3581).
/// Returns the rewritten header value.
pub fn stamp_via(value: &str, src_ip: IpAddr, src_port: u16) -> Option<String> {
    let parts = split_outside_quotes(value, b',');
    let mut via = Via::parse(parts.first()?)?;
    let sent_by_ip: Option<IpAddr> = via.host.parse().ok();
    if sent_by_ip != Some(src_ip) {
        via.params.set("received", Some(src_ip.to_string()));
    }
    if via.params.has("rport") {
        via.params.set("rport", Some(src_port.to_string()));
    }
    let mut out = via.to_string();
    for rest in &parts[1..] {
        out.push(',');
        out.push_str(rest);
    }
    Some(out)
}

/// `CSeq: 101 REGISTER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: String,
}

impl CSeq {
    pub fn parse(s: &str) -> Option<CSeq> {
        let mut it = s.split_whitespace();
        let seq = it.next()?.parse::<u32>().ok()?;
        let method = it.next()?;
        if it.next().is_some() || !method.bytes().all(crate::msg::is_token_byte) {
            return None;
        }
        Some(CSeq {
            seq,
            method: method.to_string(),
        })
    }
}

/// `Digest k=v, ...` as in Authorization / WWW-Authenticate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestParams(pub Vec<(String, String)>);

impl DigestParams {
    pub fn parse(s: &str) -> Option<DigestParams> {
        let s = s.trim();
        let (scheme, rest) = s.split_once([' ', '\t'])?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut out = Vec::new();
        for part in split_outside_quotes(rest, b',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (k, v) = part.split_once('=')?;
            let k = k.trim();
            if k.is_empty() || !k.bytes().all(crate::msg::is_token_byte) {
                return None;
            }
            out.push((k.to_ascii_lowercase(), unquote(v.trim())?));
        }
        Some(DigestParams(out))
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
}

/// Integer header value (Expires, Max-Forwards, Min-Expires); `None` if malformed.
pub fn parse_u32(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Values past u32 saturate (RFC 3261 allows up to 2^32-1 for Expires).
    Some(s.parse::<u64>().ok()?.min(u64::from(u32::MAX)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cisco_contact() {
        let v = "<sip:1001@198.18.0.50:51234;transport=tcp>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-001b54aabbcc>\";+u.sip!devicename.ccm.cisco.com=\"SEP001B54AABBCC\";+u.sip!model.ccm.cisco.com=\"36670\";reg-id=1;x-cisco-newreg";
        let Some(Contacts::List(l)) = Contacts::parse([v].into_iter()) else {
            panic!()
        };
        let c = &l[0];
        assert_eq!(c.uri.user.as_deref(), Some("1001"));
        assert_eq!(c.uri.port, Some(51234));
        assert_eq!(c.uri.params.value("transport"), Some("tcp"));
        assert_eq!(
            c.params.value("+u.sip!devicename.ccm.cisco.com"),
            Some("SEP001B54AABBCC")
        );
        assert_eq!(c.params.value("reg-id"), Some("1"));
        assert!(c.params.has("x-cisco-newreg"));
        let again = NameAddr::parse(&c.to_string()).unwrap();
        assert_eq!(&again, c);
    }

    #[test]
    fn contacts_lists_and_star() {
        assert_eq!(Contacts::parse(["*"].into_iter()), Some(Contacts::Star));
        assert_eq!(Contacts::parse(["*", "<sip:a@b>"].into_iter()), None);
        let Some(Contacts::List(l)) =
            Contacts::parse(["\"A, B\" <sip:a@b>;expires=10, sip:c@d;q=0.5"].into_iter())
        else {
            panic!()
        };
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].display.as_deref(), Some("A, B"));
        assert_eq!(l[0].params.value("expires"), Some("10"));
        assert_eq!(l[1].params.value("q"), Some("0.5"));
        assert!(l[1].uri.params.0.is_empty());
    }

    #[test]
    fn via_and_stamping() {
        let v =
            Via::parse_first("SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKabc;rport, SIP/2.0/UDP x")
                .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.port, Some(5062));
        assert_eq!(v.branch(), Some("z9hG4bKabc"));
        let s = stamp_via(
            "SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKabc;rport",
            "198.18.0.9".parse().unwrap(),
            40000,
        )
        .unwrap();
        assert_eq!(
            s,
            "SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKabc;rport=40000;received=198.18.0.9"
        );
        let v6 = Via::parse("SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bK1").unwrap();
        assert_eq!(v6.host, "2001:db8::1");
        assert!(Via::parse("SIP/3.0/UDP x").is_none());
        assert!(Via::parse("SIP/2.0/UDP").is_none());
    }

    #[test]
    fn digest_params() {
        let d = DigestParams::parse(
            "Digest username=\"u1\", realm=\"r\", nonce=\"n,1\", uri=\"sip:r\", response=\"abc\", qop=auth, nc=00000001, cnonce=\"c\", algorithm=MD5",
        )
        .unwrap();
        assert_eq!(d.get("nonce"), Some("n,1"));
        assert_eq!(d.get("qop"), Some("auth"));
        assert!(DigestParams::parse("Basic abc").is_none());
    }

    #[test]
    fn uris() {
        let u = Uri::parse("sip:1001:secret@Example.COM:5070;transport=TCP").unwrap();
        assert_eq!(u.user.as_deref(), Some("1001"));
        assert_eq!(u.aor(), "sip:1001@example.com");
        assert!(Uri::parse("tel:123").is_none());
        assert!(Uri::parse("sip:a@b:99999").is_none());
        assert!(Uri::parse("sip:a@").is_none());
    }
}
