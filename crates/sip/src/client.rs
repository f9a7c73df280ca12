//! Client side of registration, for the phone emulator: builds REGISTERs the way a Cisco
//! SIP phone does (device name, +sip.instance with the MAC, reg-id, model) and answers
//! digest challenges. Sans-IO: the caller supplies branch and cnonce values and sends the
//! bytes.

use std::net::SocketAddr;

use mac::Mac;

use crate::digest;
use crate::hdr::CSeq;
use crate::msg::{Header, Message, Method, StartLine};
use crate::registrar::Transport;

/// Who registers, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Registrar host (Request-URI and AOR domain), e.g. `198.18.0.1`.
    pub domain: String,
    /// AOR user: the line's DN.
    pub user: String,
    pub auth_user: String,
    pub password: String,
    /// Our address as put in Via and Contact.
    pub local: SocketAddr,
    pub transport: Transport,
    /// Cisco identity: adds the devicename, +sip.instance and model contact parameters.
    pub mac: Option<Mac>,
    pub model: Option<String>,
    pub user_agent: String,
    /// Line index, sent as reg-id.
    pub reg_id: u32,
    pub call_id: String,
    pub from_tag: String,
}

/// What a response to our REGISTER means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Registered; the registrar granted this many seconds.
    Registered { expires: u32 },
    /// Unregistered (answer to an Expires: 0 request).
    Unregistered,
    /// Challenged: send [`RegisterClient::register`] again, it will carry credentials.
    Challenged,
    /// 423: retry with at least this expiry.
    IntervalTooBrief { min: u32 },
    /// Refused (4xx-6xx other than the above, or a challenge we cannot answer).
    Rejected { code: u16, reason: String },
    /// Not a response to our last request.
    Ignored,
}

/// One line's registration state on the phone side.
#[derive(Debug, Clone)]
pub struct RegisterClient {
    cfg: ClientConfig,
    cseq: u32,
    challenge: Option<String>,
    nc: u32,
    challenged_cseq: Option<u32>,
    last_expires: u32,
}

impl RegisterClient {
    pub fn new(cfg: ClientConfig) -> Self {
        RegisterClient {
            cfg,
            cseq: 100,
            challenge: None,
            nc: 0,
            challenged_cseq: None,
            last_expires: 0,
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.cfg
    }

    fn host_port(a: SocketAddr) -> String {
        match a {
            SocketAddr::V4(v) => v.to_string(),
            SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
        }
    }

    /// The Contact value this client registers.
    pub fn contact(&self) -> String {
        let c = &self.cfg;
        let mut s = format!("<sip:{}@{}", c.user, Self::host_port(c.local));
        if c.transport != Transport::Udp {
            s.push_str(&format!(
                ";transport={}",
                c.transport.via_name().to_ascii_lowercase()
            ));
        }
        s.push('>');
        if let Some(mac) = c.mac {
            s.push_str(&format!(
                ";+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-{}>\";+u.sip!devicename.ccm.cisco.com=\"{}\"",
                mac.to_bare_upper().to_ascii_lowercase(),
                mac.device_name()
            ));
            if let Some(m) = &c.model {
                s.push_str(&format!(";+u.sip!model.ccm.cisco.com=\"{m}\""));
            }
        }
        s.push_str(&format!(";reg-id={}", c.reg_id));
        s
    }

    /// Next REGISTER (`expires` 0 = unregister). Carries credentials once challenged.
    pub fn register(&mut self, expires: u32, branch: &str, cnonce: &str) -> Message {
        self.cseq += 1;
        self.last_expires = expires;
        let c = &self.cfg;
        let uri = format!("sip:{}", c.domain);
        let mut headers = vec![
            Header {
                name: "Via".into(),
                value: format!(
                    "SIP/2.0/{} {};branch=z9hG4bK{branch};rport",
                    c.transport.via_name(),
                    Self::host_port(c.local)
                ),
            },
            Header {
                name: "From".into(),
                value: format!("<sip:{}@{}>;tag={}", c.user, c.domain, c.from_tag),
            },
            Header {
                name: "To".into(),
                value: format!("<sip:{}@{}>", c.user, c.domain),
            },
            Header {
                name: "Call-ID".into(),
                value: c.call_id.clone(),
            },
            Header {
                name: "Max-Forwards".into(),
                value: "70".into(),
            },
            Header {
                name: "CSeq".into(),
                value: format!("{} REGISTER", self.cseq),
            },
            Header {
                name: "User-Agent".into(),
                value: c.user_agent.clone(),
            },
            Header {
                name: "Contact".into(),
                value: self.contact(),
            },
            Header {
                name: "Supported".into(),
                value: "replaces,join,X-cisco-serviceuri,X-cisco-service-control,X-cisco-config"
                    .into(),
            },
            Header {
                name: "Expires".into(),
                value: expires.to_string(),
            },
        ];
        if let Some(ch) = &self.challenge {
            self.nc += 1;
            if let Some(a) = digest::authorize(
                ch,
                "REGISTER",
                &uri,
                &c.auth_user,
                &c.password,
                cnonce,
                self.nc,
            ) {
                headers.push(Header {
                    name: "Authorization".into(),
                    value: a,
                });
            }
        }
        Message {
            start: StartLine::Request {
                method: Method::Register,
                uri,
            },
            headers,
            body: Vec::new(),
        }
    }

    /// Digests a response to our last REGISTER.
    pub fn on_response(&mut self, resp: &Message) -> ClientEvent {
        let Some(code) = resp.status() else {
            return ClientEvent::Ignored;
        };
        let ours = resp.header("Call-ID") == Some(self.cfg.call_id.as_str())
            && resp
                .header("CSeq")
                .and_then(CSeq::parse)
                .is_some_and(|c| c.seq == self.cseq && c.method == "REGISTER");
        if !ours || code < 200 {
            return ClientEvent::Ignored;
        }
        match code {
            200..=299 => {
                if self.last_expires == 0 {
                    return ClientEvent::Unregistered;
                }
                // Our binding's granted expiry: the Contact whose user and port are ours.
                let mine = self.contact();
                let granted = resp
                    .headers_named("Contact")
                    .filter_map(crate::hdr::NameAddr::parse)
                    .find(|c| {
                        crate::hdr::NameAddr::parse(&mine)
                            .is_some_and(|m| m.uri.same_contact(&c.uri))
                    })
                    .and_then(|c| c.params.value("expires").and_then(crate::hdr::parse_u32))
                    .or_else(|| resp.header("Expires").and_then(crate::hdr::parse_u32))
                    .unwrap_or(self.last_expires);
                ClientEvent::Registered { expires: granted }
            }
            401 | 407 => {
                let name = if code == 401 {
                    "WWW-Authenticate"
                } else {
                    "Proxy-Authenticate"
                };
                let stale = resp.headers_named(name).any(|v| {
                    crate::hdr::DigestParams::parse(v)
                        .and_then(|p| p.get("stale").map(|s| s.eq_ignore_ascii_case("true")))
                        .unwrap_or(false)
                });
                // Give up if challenged twice for the same request without `stale`.
                if self.challenged_cseq == Some(self.cseq.wrapping_sub(1)) && !stale {
                    self.challenged_cseq = None;
                    return ClientEvent::Rejected {
                        code,
                        reason: "credentials refused".into(),
                    };
                }
                let usable = resp
                    .headers_named(name)
                    .find(|v| {
                        crate::hdr::DigestParams::parse(v)
                            .is_some_and(|p| digest::Algorithm::parse(p.get("algorithm")).is_some())
                    })
                    .map(str::to_string);
                match usable {
                    Some(ch) => {
                        self.challenge = Some(ch);
                        self.nc = 0;
                        self.challenged_cseq = Some(self.cseq);
                        ClientEvent::Challenged
                    }
                    None => ClientEvent::Rejected {
                        code,
                        reason: "no usable challenge".into(),
                    },
                }
            }
            423 => ClientEvent::IntervalTooBrief {
                min: resp
                    .header("Min-Expires")
                    .and_then(crate::hdr::parse_u32)
                    .unwrap_or(3600),
            },
            _ => ClientEvent::Rejected {
                code,
                reason: match &resp.start {
                    StartLine::Response { reason, .. } => reason.clone(),
                    StartLine::Request { .. } => String::new(),
                },
            },
        }
    }
}
