//! Reading the configuration file the phone fetched (`SEP<MAC>.cnf.xml` or
//! `XMLDefault.cnf.xml`) the way a phone does: tolerant of unknown elements and order,
//! strict about it being XML. Only what the boot needs is extracted.

use quick_xml::events::Event as XmlEvent;
use quick_xml::Reader;

/// A tiny element tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The node at a `/`-separated path of child names.
    pub fn path(&self, path: &str) -> Option<&Node> {
        path.split('/')
            .filter(|p| !p.is_empty())
            .try_fold(self, |n, p| n.child(p))
    }

    /// Trimmed text at `path`, None if absent or empty.
    pub fn text_at(&self, path: &str) -> Option<String> {
        self.path(path)
            .map(|n| n.text.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// First descendant (depth-first) with this name.
    pub fn find(&self, name: &str) -> Option<&Node> {
        for c in &self.children {
            if c.name == name {
                return Some(c);
            }
            if let Some(n) = c.find(name) {
                return Some(n);
            }
        }
        None
    }
}

/// Why a file is not a usable configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CnfError {
    #[error("not XML: {0}")]
    NotXml(String),
    #[error("no <device> or <Default> root (found <{0}>)")]
    WrongRoot(String),
    #[error("no CallManager in callManagerGroup")]
    NoCallManager,
}

/// Max element nesting accepted (a phone has little memory; so do we for garbage).
const MAX_DEPTH: usize = 64;

/// Parses XML into a tree.
pub fn parse_xml(bytes: &[u8]) -> Result<Node, CnfError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| CnfError::NotXml(format!("not UTF-8 ({e})")))?;
    let mut r = Reader::from_str(text);
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        let ev = r
            .read_event()
            .map_err(|e| CnfError::NotXml(format!("at byte {}: {e}", r.buffer_position())))?;
        match ev {
            XmlEvent::Start(e) | XmlEvent::Empty(e) if stack.len() > MAX_DEPTH => {
                let _ = e;
                return Err(CnfError::NotXml("nesting too deep".into()));
            }
            XmlEvent::Start(e) => {
                stack.push(element(&e)?);
            }
            XmlEvent::Empty(e) => {
                let n = element(&e)?;
                if let Some(top) = stack.last_mut() {
                    top.children.push(n);
                }
            }
            XmlEvent::End(e) => {
                let done = stack
                    .pop()
                    .ok_or_else(|| CnfError::NotXml("unbalanced end tag".into()))?;
                if done.name != e.local_name().as_ref() {
                    return Err(CnfError::NotXml(format!(
                        "</{}> closes <{}>",
                        e.local_name().as_ref(),
                        done.name
                    )));
                }
                match stack.last_mut() {
                    Some(top) => top.children.push(done),
                    None => return Err(CnfError::NotXml("unbalanced end tag".into())),
                }
            }
            XmlEvent::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            XmlEvent::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    let raw: &str = t.as_ref();
                    top.text.push_str(raw);
                }
            }
            XmlEvent::GeneralRef(r) => {
                let name = r.xml10_content();
                let ch = match name.as_ref() {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    n if n.starts_with("#x") => u32::from_str_radix(&n[2..], 16)
                        .ok()
                        .and_then(char::from_u32),
                    n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
                    _ => None,
                };
                if let (Some(c), Some(top)) = (ch, stack.last_mut()) {
                    top.text.push(c);
                }
            }
            XmlEvent::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err(CnfError::NotXml("unclosed element at end of file".into()));
    }
    let doc = stack.pop().unwrap_or_default();
    let mut roots = doc.children.into_iter();
    match (roots.next(), roots.next()) {
        (Some(root), None) => Ok(root),
        (None, _) => Err(CnfError::NotXml("no root element".into())),
        (Some(_), Some(_)) => Err(CnfError::NotXml("several root elements".into())),
    }
}

fn element(e: &quick_xml::events::BytesStart<'_>) -> Result<Node, CnfError> {
    let mut n = Node {
        name: e.local_name().as_ref().to_string(),
        ..Default::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|err| CnfError::NotXml(format!("attribute: {err}")))?;
        let v = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|err| CnfError::NotXml(format!("attribute value: {err}")))?;
        n.attrs
            .push((a.key.local_name().as_ref().to_string(), v.into_owned()));
    }
    Ok(n)
}

/// One CallManager of the group, in priority order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallManager {
    pub priority: u32,
    pub host: String,
    pub sccp_port: u16,
    pub sip_port: u16,
}

/// A SIP line (featureID 9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SipLine {
    pub button: u32,
    pub name: String,
    pub auth_name: Option<String>,
    pub auth_password: Option<String>,
    /// `USECALLMANAGER` or a host.
    pub proxy: Option<String>,
    pub port: Option<u16>,
}

/// What the boot needs from a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PhoneConfig {
    /// `device` or `Default`.
    pub root: String,
    pub protocol: Option<String>,
    pub call_managers: Vec<CallManager>,
    /// The load for this phone (for XMLDefault: by device type).
    pub load: Option<String>,
    pub user_locale: Option<String>,
    pub network_locale: Option<String>,
    pub dial_template: Option<String>,
    pub softkey_file: Option<String>,
    pub sip_lines: Vec<SipLine>,
    /// 1 TCP, 2 UDP, 3 TLS.
    pub transport: Option<u8>,
    pub register_expires: Option<u32>,
    pub version_stamp: Option<String>,
    /// The device pool's `connectionMonitorDuration`: seconds on a backup CallManager
    /// before falling back to a higher-priority one.
    pub connection_monitor_secs: Option<u32>,
}

/// Reads a configuration file. `device_type` picks `loadInformation<N>` in XMLDefault.
pub fn parse_config(bytes: &[u8], device_type: Option<u32>) -> Result<PhoneConfig, CnfError> {
    let root = parse_xml(bytes)?;
    if root.name != "device" && root.name != "Default" {
        return Err(CnfError::WrongRoot(root.name));
    }
    let group = root
        .path("devicePool/callManagerGroup")
        .or_else(|| root.child("callManagerGroup"))
        .or_else(|| root.find("callManagerGroup"));
    let mut cms = Vec::new();
    if let Some(g) = group {
        if let Some(members) = g.child("members") {
            for (i, m) in members.children_named("member").enumerate() {
                let prio = m
                    .attr("priority")
                    .and_then(|p| p.trim().parse().ok())
                    .unwrap_or(i as u32);
                let Some(cm) = m.child("callManager") else {
                    continue;
                };
                let Some(host) = cm.text_at("processNodeName") else {
                    continue;
                };
                let port = |name: &str, def: u16| {
                    cm.text_at(&format!("ports/{name}"))
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(def)
                };
                cms.push(CallManager {
                    priority: prio,
                    host,
                    sccp_port: port("ethernetPhonePort", 2000),
                    sip_port: port("sipPort", 5060),
                });
            }
        }
    }
    if cms.is_empty() {
        return Err(CnfError::NoCallManager);
    }
    cms.sort_by_key(|c| c.priority);
    let load = root.text_at("loadInformation").or_else(|| {
        let dt = device_type?;
        root.text_at(&format!("loadInformation{dt}"))
    });
    let sip = root.child("sipProfile");
    let mut lines = Vec::new();
    if let Some(sl) = sip.and_then(|s| s.child("sipLines")) {
        for l in sl.children_named("line") {
            if l.text_at("featureID").as_deref().unwrap_or("9") != "9" {
                continue;
            }
            let Some(name) = l.text_at("name") else {
                continue;
            };
            lines.push(SipLine {
                button: l.attr("button").and_then(|b| b.parse().ok()).unwrap_or(0),
                name,
                auth_name: l.text_at("authName"),
                auth_password: l.text_at("authPassword"),
                proxy: l.text_at("proxy"),
                port: l.text_at("port").and_then(|p| p.parse().ok()),
            });
        }
    }
    Ok(PhoneConfig {
        root: root.name.clone(),
        protocol: root.text_at("deviceProtocol"),
        call_managers: cms,
        load,
        user_locale: root.text_at("userLocale/name"),
        network_locale: root
            .text_at("networkLocaleInfo/name")
            .or_else(|| root.text_at("networkLocale")),
        dial_template: sip.and_then(|s| s.text_at("dialTemplate")),
        softkey_file: sip.and_then(|s| s.text_at("softKeyFile")),
        sip_lines: lines,
        transport: root
            .text_at("transportLayerProtocol")
            .and_then(|t| t.parse().ok()),
        register_expires: sip
            .and_then(|s| s.text_at("sipStack/timerRegisterExpires"))
            .and_then(|t| t.parse().ok()),
        version_stamp: root.text_at("versionStamp"),
        connection_monitor_secs: root
            .path("devicePool/connectionMonitorDuration")
            .or_else(|| root.find("connectionMonitorDuration"))
            .and_then(|n| n.text.trim().parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EX: &str = "/work/shared/reference/examples";

    fn example(name: &str) -> Option<Vec<u8>> {
        std::fs::read(format!("{EX}/{name}")).ok()
    }

    #[test]
    fn reads_the_reference_sip_file() {
        let Some(b) = example("SEP-sip-example.cnf.xml") else {
            return;
        };
        let c = parse_config(&b, None).unwrap();
        assert_eq!(c.root, "device");
        assert_eq!(c.call_managers.len(), 2);
        assert_eq!(c.call_managers[0].host, "192.0.2.21");
        assert_eq!(c.call_managers[0].sip_port, 5060);
        assert_eq!(c.load.as_deref(), Some("sip88xx.14-2-1-0001-14"));
        assert_eq!(c.user_locale.as_deref(), Some("English_United_States"));
        assert_eq!(c.network_locale.as_deref(), Some("United_States"));
        assert_eq!(c.dial_template.as_deref(), Some("dialplan-hq.xml"));
        assert_eq!(c.softkey_file.as_deref(), Some("softkeys-standard.xml"));
        assert_eq!(c.sip_lines.len(), 1);
        assert_eq!(c.sip_lines[0].name, "4101");
        assert_eq!(
            c.sip_lines[0].auth_password.as_deref(),
            Some("change-me-too")
        );
        assert_eq!(c.transport, Some(1));
        assert_eq!(c.register_expires, Some(3600));
        assert_eq!(c.connection_monitor_secs, Some(120));
    }

    #[test]
    fn reads_xmldefault_by_device_type() {
        let Some(b) = example("XMLDefault-example.cnf.xml") else {
            return;
        };
        let c = parse_config(&b, Some(436)).unwrap();
        assert_eq!(c.root, "Default");
        assert_eq!(c.call_managers[1].host, "192.0.2.22");
        assert_eq!(c.call_managers[0].sccp_port, 2000);
        assert_eq!(c.load.as_deref(), Some("SCCP45.9-4-2SR3-1S"));
        assert_eq!(parse_config(&b, Some(99999)).unwrap().load, None);
    }

    #[test]
    fn sccp_example_and_priorities() {
        let x = br#"<device><devicePool><callManagerGroup><members>
            <member priority="1"><callManager><ports><ethernetPhonePort>2001</ethernetPhonePort></ports><processNodeName>b</processNodeName></callManager></member>
            <member priority="0"><callManager><processNodeName>a &amp; co</processNodeName></callManager></member>
            </members></callManagerGroup></devicePool><loadInformation></loadInformation></device>"#;
        let c = parse_config(x, None).unwrap();
        assert_eq!(c.call_managers[0].host, "a & co");
        assert_eq!(c.call_managers[1].sccp_port, 2001);
        assert_eq!(c.load, None);
    }

    #[test]
    fn bad_files_are_errors() {
        assert!(matches!(
            parse_config(b"hello", None),
            Err(CnfError::NotXml(_))
        ));
        assert!(matches!(
            parse_config(b"<device><a></b></device>", None),
            Err(CnfError::NotXml(_))
        ));
        assert!(matches!(
            parse_config(b"<html></html>", None),
            Err(CnfError::WrongRoot(_))
        ));
        assert_eq!(
            parse_config(b"<device></device>", None),
            Err(CnfError::NoCallManager)
        );
        assert!(parse_config(&[0xff, 0xfe, 0], None).is_err());
        assert!(parse_config(b"<device>", None).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_config(&data, Some(7));
        }

        #[test]
        fn arbitrary_text_inside_elements_never_panics(s in "[<>/a-z&;#0-9 \"=]{0,200}") {
            let doc = format!("<device><devicePool>{s}</devicePool></device>");
            let _ = parse_config(doc.as_bytes(), None);
        }
    }
}
