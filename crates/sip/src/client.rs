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

    /// A request outside the registration dialog, as Cisco firmware sends them: its own
    /// Call-ID and CSeq 101, our From tag, To the CallManager (`to_user` or none).
    fn side_request(
        &self,
        method: Method,
        branch: &str,
        call_id: &str,
        to_user: Option<&str>,
        extra: Vec<Header>,
        body: Option<(&str, String)>,
    ) -> Message {
        let c = &self.cfg;
        let to = match to_user {
            Some(u) => format!("<sip:{u}@{}>", c.domain),
            None => format!("<sip:{}>", c.domain),
        };
        let uri = match to_user {
            Some(u) => format!("sip:{u}@{}", c.domain),
            None => format!("sip:{}", c.domain),
        };
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
                value: to,
            },
            Header {
                name: "Call-ID".into(),
                value: call_id.to_string(),
            },
            Header {
                name: "Max-Forwards".into(),
                value: "70".into(),
            },
            Header {
                name: "CSeq".into(),
                value: format!("101 {}", method.as_str()),
            },
            Header {
                name: "User-Agent".into(),
                value: c.user_agent.clone(),
            },
            Header {
                name: "Contact".into(),
                value: format!("<sip:{}@{}>", c.user, Self::host_port(c.local)),
            },
        ];
        headers.extend(extra);
        let mut body_bytes = Vec::new();
        if let Some((ctype, b)) = body {
            headers.push(Header {
                name: "Content-Type".into(),
                value: ctype.to_string(),
            });
            body_bytes = b.into_bytes();
        }
        Message {
            start: StartLine::Request { method, uri },
            headers,
            body: body_bytes,
        }
    }

    /// The keepalive REGISTER a Cisco phone sends to its backup CallManager: our Contact
    /// marked `cisco-keep-alive`, expiry 0, no credentials (the backup answers 200 without
    /// a challenge and keeps no binding; usecallmanager's Asterisk patch, "Cisco failover").
    pub fn backup_keepalive(&self, branch: &str, call_id: &str) -> Message {
        let contact = format!(
            "{};{}",
            self.contact(),
            crate::registrar::CISCO_KEEPALIVE_PARAM
        );
        let mut m = self.side_request(
            Method::Register,
            branch,
            call_id,
            Some(&self.cfg.user),
            vec![Header {
                name: "Expires".into(),
                value: "0".into(),
            }],
            None,
        );
        if let StartLine::Request { uri, .. } = &mut m.start {
            *uri = format!("sip:{}", self.cfg.domain);
        }
        for h in &mut m.headers {
            if h.name == "Contact" {
                h.value = contact.clone();
            }
            if h.name == "CSeq" {
                h.value = "101 REGISTER".into();
            }
        }
        m
    }

    /// An OPTIONS keepalive towards the CallManager.
    pub fn options(&self, branch: &str, call_id: &str) -> Message {
        self.side_request(
            Method::Options,
            branch,
            call_id,
            None,
            vec![Header {
                name: "Accept".into(),
                value: "application/sdp".into(),
            }],
            None,
        )
    }

    /// The REFER asking the CallManager for a registration token
    /// (`Refer-To: <urn:x-cisco-remotecc:token-registration>`).
    pub fn token_registration_refer(&self, branch: &str, call_id: &str) -> Message {
        self.side_request(
            Method::Refer,
            branch,
            call_id,
            None,
            vec![
                Header {
                    name: "Refer-To".into(),
                    value: format!("<{}>", crate::registrar::TOKEN_REGISTRATION_URN),
                },
                Header {
                    name: "Referred-By".into(),
                    value: format!("<sip:{}@{}>", self.cfg.user, self.cfg.domain),
                },
            ],
            None,
        )
    }

    /// The phone's report of why it was last out of service, as an
    /// `application/x-cisco-alarm+xml` body (sent in a NOTIFY or a REFER).
    pub fn alarm_body(&self, reason: &str) -> String {
        let dev = self
            .cfg
            .mac
            .map(|m| m.device_name())
            .unwrap_or_else(|| self.cfg.user.clone());
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<x-cisco-alarm>\r\n<Alarm Name=\"LastOutOfServiceInformation\">\r\n<ParameterList>\r\n<String name=\"DeviceName\">{dev}</String>\r\n<String name=\"DeviceIPv4Address\">{}</String>\r\n<String name=\"ReasonForOutOfService\">{reason}</String>\r\n</ParameterList>\r\n</Alarm>\r\n</x-cisco-alarm>\r\n",
            self.cfg.local.ip()
        )
    }

    /// An alarm NOTIFY (`Event: x-cisco-alarm`) carrying [`alarm_body`](Self::alarm_body).
    pub fn alarm_notify(&self, branch: &str, call_id: &str, reason: &str) -> Message {
        self.side_request(
            Method::Notify,
            branch,
            call_id,
            None,
            vec![
                Header {
                    name: "Event".into(),
                    value: "x-cisco-alarm".into(),
                },
                Header {
                    name: "Subscription-State".into(),
                    value: "terminated".into(),
                },
            ],
            Some(("application/x-cisco-alarm+xml", self.alarm_body(reason))),
        )
    }

    /// The same alarm as an out-of-dialog REFER (the form usecallmanager's patch accepts).
    pub fn alarm_refer(&self, branch: &str, call_id: &str, reason: &str) -> Message {
        self.side_request(
            Method::Refer,
            branch,
            call_id,
            None,
            vec![
                Header {
                    name: "Refer-To".into(),
                    value: format!("<sip:{}>", self.cfg.domain),
                },
                Header {
                    name: "Content-Disposition".into(),
                    value: "session;handling=required".into(),
                },
            ],
            Some(("application/x-cisco-alarm+xml", self.alarm_body(reason))),
        )
    }

    /// A presence (BLF) SUBSCRIBE for `target`, as a phone with call-log BLF enabled sends.
    pub fn presence_subscribe(&self, branch: &str, call_id: &str, target: &str) -> Message {
        self.side_request(
            Method::Subscribe,
            branch,
            call_id,
            Some(target),
            vec![
                Header {
                    name: "Event".into(),
                    value: "presence".into(),
                },
                Header {
                    name: "Accept".into(),
                    value: "application/pidf+xml".into(),
                },
                Header {
                    name: "Expires".into(),
                    value: "3600".into(),
                },
            ],
            None,
        )
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
