//! Cisco phone configuration files, rendered from a resolved view of the device database.
//!
//! Pure: a view goes in, bytes come out; no database, no clock, no file system. The caller
//! (the `provision` crate) resolves a device's pool, CallManager group, lines, load and URLs
//! into the borrowed view structs below, so that rendering 50,000 phones allocates little
//! beyond the output. Element order and nesting follow the reference examples in
//! `shared/reference/examples/` (see `tests/golden.rs`).
//!
//! Every document that carries a `<versionStamp>` gets a stamp derived from its own content
//! ([`content_hash`], 16 hex digits): it changes exactly when the content changes and is the same after
//! a restart, which is what the phone needs to decide whether its configuration changed.

pub mod catalog;
mod xml;

pub use catalog::{lookup, Family, ModelInfo, Protocol};
pub use xml::{content_hash, escape, fnv1a};

use xml::Xml;

/// One call-control node as the phone sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallManager {
    pub name: String,
    pub description: String,
    /// Host name or address the phone connects to (`processNodeName`).
    pub host: String,
    pub sccp_port: u16,
    pub sip_port: u16,
    pub sccp_tls_port: u16,
    pub sip_tls_port: u16,
}

/// A date/time group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DateTime {
    pub name: String,
    /// e.g. `M/D/Y`, `D.M.Y`.
    pub date_template: String,
    /// Windows-style zone name, e.g. `W. Europe Standard/Daylight Time`.
    pub time_zone: String,
    pub ntp_servers: Vec<String>,
}

/// A device pool with its CallManager group resolved to an ordered node list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolView {
    pub name: String,
    pub date_time: DateTime,
    pub cm_group: String,
    pub tftp_default: bool,
    /// In priority order: the first is tried first.
    pub call_managers: Vec<CallManager>,
    pub connection_monitor_duration: u32,
    /// Longest SIP registration the registrar grants this pool's phones (CUCM's SIP station
    /// keepalive interval, 120 s); also the file's `timerRegisterExpires`.
    pub sip_register_interval: u32,
}

/// Cluster-wide settings every file carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Globals {
    pub authentication_url: String,
    pub directory_url: String,
    pub idle_url: String,
    pub information_url: String,
    pub messages_url: String,
    pub proxy_server_url: String,
    pub services_url: String,
    pub idle_timeout: u32,
    /// Phone SSH login; both elements are omitted when the user is empty.
    pub ssh_user: String,
    pub ssh_password: String,
    pub phone_password: String,
    /// Dial template file name SIP phones fetch (e.g. `dialplan.xml`).
    pub dial_template: String,
}

/// One line appearance on a device, with per-device label/display already resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineView<'a> {
    pub dn: &'a str,
    pub label: &'a str,
    pub display: &'a str,
    pub auth_user: &'a str,
    pub auth_password: &'a str,
    pub voicemail: &'a str,
    /// The DN appears on more than one device.
    pub shared: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeedDialView<'a> {
    pub number: &'a str,
    pub label: &'a str,
}

/// Everything needed to render one `SEP<MAC>.cnf.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceView<'a> {
    /// `SEP<MAC>`.
    pub name: &'a str,
    pub model: &'static ModelInfo,
    pub protocol: Protocol,
    /// Effective load (device override, else per-model default, else catalogue default).
    pub load: &'a str,
    /// 1 non-secure, 2 authenticated, 3 encrypted.
    pub security_mode: u8,
    pub user_locale: &'a str,
    pub network_locale: &'a str,
    pub softkey_template: &'a str,
    pub pool: &'a PoolView,
    pub globals: &'a Globals,
    pub lines: Vec<LineView<'a>>,
    pub speed_dials: Vec<SpeedDialView<'a>>,
}

/// A rendered file: its bytes and the version stamp written into it (content hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub stamp: String,
}

impl Rendered {
    fn from_xml(x: Xml) -> Self {
        let (bytes, stamp) = x.finish();
        Rendered { bytes, stamp }
    }
}

/// `SEP<MAC>.cnf.xml` for SCCP or SIP, laid out per the model's family.
pub fn render_sep(d: &DeviceView<'_>) -> Rendered {
    let mut x = Xml::new(if d.protocol == Protocol::Sip {
        12_288
    } else {
        6_144
    });
    let sip = d.protocol == Protocol::Sip;
    let family = d.model.family;
    let enterprise = sip && family.is_enterprise_sip();
    x.open("device");
    x.leaf_bool("fullConfig", true);
    x.leaf("deviceProtocol", d.protocol.as_str());
    if !d.globals.ssh_user.is_empty() {
        x.leaf("sshUserId", &d.globals.ssh_user);
        x.leaf("sshPassword", &d.globals.ssh_password);
    }
    if enterprise {
        x.leaf_num("ipAddressMode", 0);
        x.leaf_bool("allowAutoConfig", true);
        x.leaf_bool("dadEnable", true);
        x.leaf_num("ipPreferenceModeControl", 0);
        x.leaf_num("ipMediaAddressFamilyPreference", 0);
    }
    device_pool(&mut x, d.pool, sip);
    if sip {
        sip_profile(&mut x, d);
        x.leaf("MissedCallLoggingOption", &"1".repeat(d.lines.len().max(1)));
    }
    x.open("commonProfile");
    x.leaf("phonePassword", &d.globals.phone_password);
    x.leaf_bool("backgroundImageAccess", true);
    // Presence/BLF subscriptions are not served (SUBSCRIBE gets 489), so BLF in the call
    // log stays off: 2 is "disabled, not user modifiable" on 7900-series firmware, 0 is
    // "disabled" on 7800/8800 (usecallmanager.nz, SEPMAC.cnf.xml `callLogBlfEnabled`).
    x.leaf_num("callLogBlfEnabled", if sip && enterprise { 0 } else { 2 });
    x.close("commonProfile");
    x.leaf("loadInformation", d.load);
    if enterprise {
        x.leaf("inactiveLoadInformation", "");
    }
    vendor_config(&mut x, family, sip);
    if enterprise {
        x.leaf("addOnModules", "");
    }
    x.version_stamp();
    locales(&mut x, d.user_locale, d.network_locale);
    x.leaf_num("deviceSecurityMode", d.security_mode);
    let g = d.globals;
    if sip {
        x.leaf_num("transportLayerProtocol", 1);
        x.leaf("authenticationURL", &g.authentication_url);
        x.leaf("directoryURL", &g.directory_url);
        x.leaf("servicesURL", &g.services_url);
        x.leaf("messagesURL", &g.messages_url);
        x.leaf("informationURL", &g.information_url);
        x.leaf("idleURL", &g.idle_url);
        x.leaf_num("idleTimeout", g.idle_timeout);
        x.leaf("proxyServerURL", &g.proxy_server_url);
        x.leaf_num("phonePersonalization", 1);
        x.leaf_bool("autoCallPickupEnable", true);
        x.leaf_num("blfAudibleAlertSettingOfIdleStation", 0);
        x.leaf_num("blfAudibleAlertSettingOfBusyStation", 0);
        x.leaf_num("advertiseG722Codec", 1);
    } else {
        x.leaf_num("idleTimeout", g.idle_timeout);
        x.leaf("authenticationURL", &g.authentication_url);
        x.leaf("directoryURL", &g.directory_url);
        x.leaf("idleURL", &g.idle_url);
        x.leaf("informationURL", &g.information_url);
        x.leaf("messagesURL", &g.messages_url);
        x.leaf("proxyServerURL", &g.proxy_server_url);
        x.leaf("servicesURL", &g.services_url);
        x.leaf_num("dscpForSCCPPhoneConfig", 96);
        x.leaf_num("dscpForSCCPPhoneServices", 0);
        x.leaf_num("dscpForCm2Dvce", 96);
    }
    x.leaf_num("capfAuthMode", 0);
    x.open("capfList");
    x.open("capf");
    x.leaf_num("phonePort", 3804);
    x.leaf(
        "processNodeName",
        d.pool
            .call_managers
            .first()
            .map(|c| c.host.as_str())
            .unwrap_or(""),
    );
    x.close("capf");
    x.close("capfList");
    x.leaf("certHash", "");
    x.leaf_bool("encrConfig", false);
    x.close("device");
    Rendered::from_xml(x)
}

fn device_pool(x: &mut Xml, p: &PoolView, sip: bool) {
    x.open("devicePool");
    x.leaf_num("revertPriority", 0);
    x.leaf("name", &p.name);
    x.open("dateTimeSetting");
    x.leaf("name", &p.date_time.name);
    x.leaf("dateTemplate", &p.date_time.date_template);
    x.leaf("timeZone", &p.date_time.time_zone);
    x.open("ntps");
    for ntp in &p.date_time.ntp_servers {
        x.open("ntp");
        x.leaf("name", ntp);
        x.leaf("ntpMode", "Unicast");
        x.close("ntp");
    }
    x.close("ntps");
    x.close("dateTimeSetting");
    x.open("callManagerGroup");
    x.leaf("name", &p.cm_group);
    x.leaf_bool("tftpDefault", p.tftp_default);
    x.open("members");
    for (i, cm) in p.call_managers.iter().enumerate() {
        let prio = i.to_string();
        x.open_attrs("member", &[("priority", &prio)]);
        x.open("callManager");
        x.leaf("name", &cm.name);
        if !sip {
            x.leaf("description", &cm.description);
        }
        x.open("ports");
        x.leaf_num("ethernetPhonePort", cm.sccp_port);
        x.leaf_num("sipPort", cm.sip_port);
        x.leaf_num("securedSipPort", cm.sip_tls_port);
        if !sip {
            x.open("mgcpPorts");
            x.leaf_num("listen", 2427);
            x.leaf_num("keepAlive", 2428);
            x.close("mgcpPorts");
        }
        x.close("ports");
        x.leaf("processNodeName", &cm.host);
        x.close("callManager");
        x.close("member");
    }
    x.close("members");
    x.close("callManagerGroup");
    x.open("srstInfo");
    x.leaf("name", "Disable");
    x.leaf("srstOption", "Disable");
    x.leaf_bool("userModifiable", false);
    if sip {
        x.leaf("sipIpAddr1", "");
        x.leaf_num("sipPort1", 5060);
    } else {
        for i in 1..=3 {
            x.leaf(&format!("ipAddr{i}"), "");
            x.leaf_num(&format!("port{i}"), 2000);
        }
    }
    x.leaf_bool("isSecure", false);
    x.close("srstInfo");
    x.leaf_num("connectionMonitorDuration", p.connection_monitor_duration);
    x.close("devicePool");
}

fn locales(x: &mut Xml, user: &str, network: &str) {
    let u = catalog::user_locale(user);
    x.open("userLocale");
    x.leaf("name", user);
    x.leaf_num("uid", u.map(|l| l.uid).unwrap_or(1));
    x.leaf("langCode", u.map(|l| l.lang_code).unwrap_or("en_US"));
    x.leaf("version", "1.0.0.0-1");
    x.leaf("winCharSet", "utf-8");
    x.close("userLocale");
    x.leaf("networkLocale", network);
    x.open("networkLocaleInfo");
    x.leaf("name", network);
    x.leaf_num(
        "uid",
        catalog::network_locale(network)
            .map(|l| l.uid)
            .unwrap_or(64),
    );
    x.leaf("version", "1.0.0.0-1");
    x.close("networkLocaleInfo");
}

fn vendor_config(x: &mut Xml, family: Family, sip: bool) {
    x.open("vendorConfig");
    x.leaf_bool("disableSpeaker", false);
    x.leaf_bool("disableSpeakerAndHeadset", false);
    x.leaf_num("pcPort", 0);
    x.leaf_num("settingsAccess", 1);
    x.leaf_num("garp", 1);
    x.leaf_num("voiceVlanAccess", 0);
    match family {
        Family::Legacy7900 => {
            x.leaf_num("webAccess", 0);
        }
        Family::Java7900 => {
            x.leaf_num("spanToPCPort", 1);
            x.leaf_num("webAccess", 0);
            x.leaf_num("sshAccess", 1);
            x.leaf_num("enableCdpSwPort", 1);
            x.leaf_num("enableCdpPcPort", 0);
            x.leaf_num("enableLldpSwPort", 1);
            x.leaf_num("enableLldpPcPort", 0);
            if !sip {
                x.leaf("daysDisplayNotActive", "1,7");
                x.leaf("displayOnTime", "07:30");
                x.leaf("displayOnDuration", "11:00");
                x.leaf("displayIdleTimeout", "00:30");
                x.leaf_num("displayOnWhenIncomingCall", 1);
            }
        }
        Family::Sip7800 | Family::Sip8800 | Family::Sip8900 => {
            x.leaf_num("spanToPCPort", 1);
            x.leaf_num("videoCapability", 0);
            x.leaf_num("webAccess", 0);
            x.leaf_num("webProtocol", 0);
            x.leaf_num("sshAccess", 1);
            x.leaf_num("sshPort", 22);
            x.leaf_num("enableCdpSwPort", 1);
            x.leaf_num("enableCdpPcPort", 0);
            x.leaf_num("enableLldpSwPort", 1);
            x.leaf_num("enableLldpPcPort", 0);
            x.leaf_num("g722CodecSupport", 2);
            x.leaf_num("handsetWidebandEnable", 2);
            x.leaf_num("headsetWidebandEnable", 2);
            x.leaf_num("headsetWidebandUIControl", 1);
            x.leaf_num("handsetWidebandUIControl", 1);
            x.leaf_num("holdResumeKey", 0);
        }
    }
    x.leaf("loadServer", "");
    if family.is_enterprise_sip() {
        x.leaf_num("peerFirmwareSharing", 0);
    }
    x.close("vendorConfig");
}

/// The phone label (`phoneLabel`, at most 12 characters; 79xx SIP loads reject spaces).
fn phone_label(d: &DeviceView<'_>) -> String {
    let base = d
        .lines
        .first()
        .map(|l| {
            if l.display.is_empty() {
                l.dn
            } else {
                l.display
            }
        })
        .unwrap_or("");
    let no_spaces = d.model.family == Family::Java7900;
    base.chars()
        .filter(|c| !(no_spaces && c.is_whitespace()))
        .take(12)
        .collect()
}

fn sip_profile(x: &mut Xml, d: &DeviceView<'_>) {
    let first = d.pool.call_managers.first();
    let sip_port = first.map(|c| c.sip_port).unwrap_or(5060);
    x.open("sipProfile");
    x.open("sipProxies");
    x.leaf("backupProxy", "");
    x.leaf_num("backupProxyPort", 5060);
    x.leaf("outboundProxy", "");
    x.leaf("outboundProxyPort", "");
    x.leaf_bool("registerWithProxy", true);
    x.close("sipProxies");
    x.open("sipCallFeatures");
    x.leaf_bool("cnfJoinEnabled", true);
    x.leaf("callForwardURI", "x-cisco-serviceuri-cfwdall");
    x.leaf("callPickupURI", "x-cisco-serviceuri-pickup");
    x.leaf("callPickupListURI", "x-cisco-serviceuri-opickup");
    x.leaf("callPickupGroupURI", "x-cisco-serviceuri-gpickup");
    x.leaf("meetMeServiceURI", "x-cisco-serviceuri-meetme");
    x.leaf("abbreviatedDialURI", "x-cisco-serviceuri-abbrdial");
    x.leaf_bool("rfc2543Hold", false);
    x.leaf_num("callHoldRingback", 1);
    x.leaf_bool("localCfwdEnable", true);
    x.leaf_bool("semiAttendedTransfer", true);
    x.leaf_num("anonymousCallBlock", 0);
    x.leaf_num("callerIdBlocking", 0);
    x.leaf_num("dndControl", 0);
    x.leaf_bool("remoteCcEnable", true);
    x.leaf_bool("retainForwardInformation", false);
    x.leaf_num("uriDialingDisplayPreference", 1);
    x.close("sipCallFeatures");
    x.open("sipStack");
    let register_expires = match d.pool.sip_register_interval {
        0 => 120,
        n => n,
    };
    let register_expires = register_expires.to_string();
    for (k, v) in [
        ("sipInviteRetx", "6"),
        ("sipRetx", "10"),
        ("timerInviteExpires", "180"),
        ("timerRegisterExpires", register_expires.as_str()),
        ("timerRegisterDelta", "5"),
        ("timerKeepAliveExpires", "120"),
        ("timerSubscribeExpires", "120"),
        ("timerSubscribeDelta", "5"),
        ("timerT1", "500"),
        ("timerT2", "4000"),
        ("maxRedirects", "70"),
        ("remotePartyID", "true"),
        ("userInfo", "Phone"),
    ] {
        x.leaf(k, v);
    }
    x.close("sipStack");
    for (k, v) in [
        ("autoAnswerTimer", "1"),
        ("autoAnswerAltBehavior", "false"),
        ("autoAnswerOverride", "true"),
        ("transferOnhookEnabled", "false"),
        ("enableVad", "false"),
        ("preferredCodec", "none"),
        ("dtmfAvtPayload", "101"),
        ("dtmfDbLevel", "3"),
        ("dtmfOutofBand", "avt"),
        ("alwaysUsePrimeLine", "false"),
        ("alwaysUsePrimeLineVoiceMail", "false"),
        ("kpml", "3"),
    ] {
        x.leaf(k, v);
    }
    x.leaf("phoneLabel", &phone_label(d));
    for (k, v) in [
        ("stutterMsgWaiting", "0"),
        ("callStats", "true"),
        ("offhookToFirstDigitTimer", "15000"),
        ("silentPeriodBetweenCallWaitingBursts", "10"),
        ("startMediaPort", "16384"),
        ("stopMediaPort", "32766"),
        ("natEnabled", "false"),
        ("natReceivedProcessing", "false"),
        ("natAddress", ""),
    ] {
        x.leaf(k, v);
    }
    x.open("sipLines");
    let mut button = 0usize;
    for (i, l) in d.lines.iter().enumerate() {
        button += 1;
        let b = button.to_string();
        let idx = (i + 1).to_string();
        x.open_attrs("line", &[("button", &b), ("lineIndex", &idx)]);
        x.leaf_num("featureID", 9);
        x.leaf(
            "featureLabel",
            if l.label.is_empty() { l.dn } else { l.label },
        );
        x.leaf("proxy", "USECALLMANAGER");
        x.leaf_num("port", sip_port);
        x.leaf("name", l.dn);
        x.leaf("displayName", l.display);
        x.open("autoAnswer");
        x.leaf_num("autoAnswerEnabled", 0);
        x.leaf("autoAnswerMode", "Auto Answer with Speakerphone");
        x.close("autoAnswer");
        x.leaf_num("callWaiting", 1);
        x.leaf(
            "authName",
            if l.auth_user.is_empty() {
                l.dn
            } else {
                l.auth_user
            },
        );
        x.leaf("authPassword", l.auth_password);
        x.leaf_bool("sharedLine", l.shared);
        x.leaf_num("messageWaitingLampPolicy", 3);
        x.leaf_num("messageWaitingAMWI", 0);
        x.leaf("messagesNumber", l.voicemail);
        x.leaf_num("ringSettingIdle", 4);
        x.leaf_num("ringSettingActive", 5);
        x.leaf("contact", l.dn);
        x.open("forwardCallInfoDisplay");
        x.leaf_bool("callerName", true);
        x.leaf_bool("callerNumber", true);
        x.leaf_bool("redirectedNumber", false);
        x.leaf_bool("dialedNumber", true);
        x.close("forwardCallInfoDisplay");
        x.leaf_num("maxNumCalls", 4);
        x.leaf_num("busyTrigger", 2);
        x.close("line");
    }
    for sd in &d.speed_dials {
        button += 1;
        let b = button.to_string();
        x.open_attrs("line", &[("button", &b)]);
        x.leaf_num("featureID", 2);
        x.leaf("featureLabel", sd.label);
        x.leaf("speedDialNumber", sd.number);
        x.close("line");
    }
    x.close("sipLines");
    x.leaf_num("voipControlPort", 5060);
    x.leaf_num("dscpForAudio", 184);
    x.leaf_num("dscpVideo", 136);
    x.leaf_num("ringSettingBusyStationPolicy", 0);
    x.leaf("dialTemplate", &d.globals.dial_template);
    x.leaf(
        "softKeyFile",
        &catalog::softkey_file_name(d.softkey_template),
    );
    x.close("sipProfile");
}

/// What `XMLDefault.cnf.xml` carries: the auto-registration CallManager list and one load
/// per model (only models with a load are listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultView<'a> {
    pub call_managers: &'a [CallManager],
    /// `(model, load)` in catalogue order.
    pub loads: Vec<(&'static ModelInfo, &'a str)>,
    pub globals: &'a Globals,
}

/// `XMLDefault.cnf.xml` for phones without a personal file.
pub fn render_xml_default(v: &DefaultView<'_>) -> Rendered {
    let mut x = Xml::new(4096);
    x.open("Default");
    x.open("callManagerGroup");
    x.open("members");
    for (i, cm) in v.call_managers.iter().enumerate() {
        let prio = i.to_string();
        x.open_attrs("member", &[("priority", &prio)]);
        x.open("callManager");
        x.open("ports");
        x.leaf_num("ethernetPhonePort", cm.sccp_port);
        x.leaf_num("sipPort", cm.sip_port);
        x.leaf_num("securedSipPort", cm.sip_tls_port);
        x.close("ports");
        x.leaf("processNodeName", &cm.host);
        x.close("callManager");
        x.close("member");
    }
    x.close("members");
    x.close("callManagerGroup");
    for (m, load) in &v.loads {
        let tag = format!("loadInformation{}", m.device_type);
        x.leaf_attrs(&tag, &[("model", m.name)], load);
    }
    let g = v.globals;
    x.leaf("authenticationURL", &g.authentication_url);
    x.leaf("directoryURL", &g.directory_url);
    x.leaf("servicesURL", &g.services_url);
    x.leaf("idleURL", &g.idle_url);
    x.leaf("informationURL", &g.information_url);
    x.leaf("messagesURL", &g.messages_url);
    x.leaf("proxyServerURL", &g.proxy_server_url);
    x.close("Default");
    Rendered::from_xml(x)
}

/// One dial-template rule: `.` one digit, `*` any run, `,` secondary dial tone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialRule {
    pub pattern: String,
    /// Inter-digit timeout in seconds (0 = dial at once).
    pub timeout: u32,
    /// Optional rewrite of the dialled string (empty = none).
    pub rewrite: String,
}

/// The dial template SIP phones fetch (`sipProfile/dialTemplate`).
pub fn render_dial_template(rules: &[DialRule]) -> Rendered {
    let mut x = Xml::new(1024);
    x.open("dialTemplate");
    x.version_stamp();
    for r in rules {
        let timeout = r.timeout.to_string();
        let mut attrs = vec![("match", r.pattern.as_str()), ("timeout", timeout.as_str())];
        if !r.rewrite.is_empty() {
            attrs.push(("rewrite", r.rewrite.as_str()));
        }
        x.empty_attrs("TEMPLATE", &attrs);
    }
    x.close("dialTemplate");
    Rendered::from_xml(x)
}

/// A soft key as SIP firmware defines it in the soft-key file: the key identifier, the
/// numeric tag, the event the phone raises and its help text id. The numbers are the ones
/// usecallmanager.nz documents for enterprise SIP firmware ("Soft Keys": `softKeyDef`);
/// keys the phones do not know (e.g. `Conference`, `Divert`) are not rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftKeyDef {
    pub key_id: &'static str,
    pub tag: u32,
    pub event_id: u32,
    pub help_id: u32,
}

const fn sk(key_id: &'static str, tag: u32, event_id: u32, help_id: u32) -> SoftKeyDef {
    SoftKeyDef {
        key_id,
        tag,
        event_id,
        help_id,
    }
}

/// Every SIP soft key phoneboot can place, with its firmware numbers.
pub const SIP_SOFT_KEYS: &[SoftKeyDef] = &[
    sk("Undefined", 0, 0, 0),
    sk("Redial", 1, 1, 301),
    sk("NewCall", 2, 2, 302),
    sk("Hold", 3, 3, 303),
    sk("Transfer", 4, 4, 304),
    sk("CFwdAll", 5, 5, 305),
    sk("<<", 8, 8, 308),
    sk("EndCall", 9, 9, 309),
    sk("Resume", 10, 10, 310),
    sk("Answer", 11, 11, 311),
    sk("Confrn", 13, 13, 313),
    sk("Park", 14, 14, 314),
    sk("Join", 15, 15, 315),
    sk("MeetMe", 16, 16, 316),
    sk("PickUp", 17, 17, 317),
    sk("GPickUp", 18, 18, 318),
    sk("RmLstC", 57, 19, 319),
    sk("CallBack", 65, 20, 320),
    sk("DND", 63, 69, 369),
    sk("QRT", 75, 22, 322),
    sk("MCID", 76, 27, 327),
    sk("Select", 78, 29, 329),
    sk("ConfList", 79, 30, 330),
    sk("iDivert", 80, 31, 331),
    sk("OPickUp", 91, 34, 334),
    sk("HLog", 92, 35, 335),
    sk("AbbrDial", 7740, 71, 371),
    sk("Record", 7747, 74, 374),
];

/// The definition of a SIP soft key by its identifier.
pub fn sip_soft_key(key_id: &str) -> Option<&'static SoftKeyDef> {
    SIP_SOFT_KEYS.iter().find(|k| k.key_id == key_id)
}

/// Soft-key sets per call state for a template, in the call-state names SIP firmware reads.
/// "Standard Feature" adds park/pickup/DND keys. Every key is one the state accepts.
fn softkey_sets(template: &str) -> Vec<(&'static str, Vec<&'static str>)> {
    let feature = template.eq_ignore_ascii_case("Standard Feature");
    let mut on_hook = vec!["Redial", "NewCall", "CFwdAll"];
    let mut connected = vec!["Hold", "EndCall", "Transfer", "Confrn"];
    if feature {
        on_hook.extend(["PickUp", "GPickUp", "DND"]);
        connected.push("Park");
    }
    vec![
        ("On Hook", on_hook),
        ("Off Hook", vec!["Redial", "EndCall", "CFwdAll"]),
        ("Off Hook With Feature", vec!["Redial", "EndCall"]),
        ("Digits After First", vec!["<<", "EndCall"]),
        ("Ring Out", vec!["EndCall"]),
        ("Connected", connected),
        ("Connected No Feature", vec!["EndCall"]),
        ("Connected Transfer", vec!["EndCall", "Transfer"]),
        ("Connected Conference", vec!["EndCall", "Confrn"]),
        ("On Hold", vec!["Resume", "NewCall"]),
        ("Ring In", vec!["Answer", "iDivert"]),
        ("Remote In Use", vec![]),
    ]
}

/// The soft-key file SIP phones fetch (`softKeyFile`): one `softKeyDef` per key used, with
/// its numeric tag, event and help ids, then the sets per call state. SCCP phones get their
/// soft keys over SCCP (SoftKeyTemplateRes), not from this file.
pub fn render_softkeys(template: &str) -> Rendered {
    let sets = softkey_sets(template);
    let mut keys: Vec<&'static SoftKeyDef> = Vec::new();
    for (_, ks) in &sets {
        for k in ks {
            if let Some(def) = sip_soft_key(k) {
                if !keys.iter().any(|d| d.key_id == def.key_id) {
                    keys.push(def);
                }
            }
        }
    }
    let mut x = Xml::new(4096);
    x.open("softKeyCfg");
    x.version_stamp();
    x.open("typeSoftKey");
    for k in &keys {
        x.open_attrs("softKeyDef", &[("keyID", k.key_id)]);
        x.leaf_num("tag", k.tag);
        x.leaf_num("eventID", k.event_id);
        x.leaf_num("helpID", k.help_id);
        x.close("softKeyDef");
    }
    x.close("typeSoftKey");
    x.open("softKeySets");
    for (state, ks) in &sets {
        if ks.is_empty() {
            x.empty_attrs("softKeySet", &[("id", state)]);
            continue;
        }
        x.open_attrs("softKeySet", &[("id", state)]);
        for k in ks {
            x.empty_attrs("softKey", &[("keyID", k)]);
        }
        x.close("softKeySet");
    }
    x.close("softKeySets");
    x.close("softKeyCfg");
    Rendered::from_xml(x)
}

/// One ring tone: name shown on the phone (≤ 25 chars) and its raw file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    pub display_name: String,
    pub file_name: String,
}

/// `RingList.xml` (at most 50 entries are rendered; phones ignore the rest).
pub fn render_ring_list(rings: &[Ring]) -> Rendered {
    let mut x = Xml::new(1024);
    x.open("CiscoIPPhoneRingList");
    for r in rings.iter().take(50) {
        x.open("Ring");
        x.leaf("DisplayName", &r.display_name);
        x.leaf("FileName", &r.file_name);
        x.close("Ring");
    }
    x.close("CiscoIPPhoneRingList");
    Rendered::from_xml(x)
}

/// Name of a device's configuration file.
pub fn sep_file_name(device_name: &str) -> String {
    format!("{device_name}.cnf.xml")
}

pub const XML_DEFAULT: &str = "XMLDefault.cnf.xml";
pub const RING_LIST: &str = "RingList.xml";
