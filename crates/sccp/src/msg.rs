//! Every SCCP message of registration, line status and basic calls, with the layout
//! variants of the protocol versions (see `sccp.md` §4 and §6 of the reference).
//!
//! Decoding never fails on a payload: short (older) layouts read missing fields as zero and
//! the [`Frame`](crate::Frame) remembers the real length, so a decoded frame re-encodes
//! byte-identical. Where the layout depends on the version, the decoder keys on the header
//! version of the frame (as Wireshark does) or on the payload length where that is
//! unambiguous; the decoded struct records the variant so it re-encodes the same way.

use std::net::Ipv4Addr;

use crate::text::Text;
use crate::wire::{w16, w32, Rd};

/// A message body: decoded with the frame's header version, encoded at its natural size.
pub(crate) trait Body: Sized {
    fn dec(r: &mut Rd<'_>, hv: u32) -> Self;
    fn enc(&self, o: &mut Vec<u8>, hv: u32);
}

macro_rules! simple {
    ($( $(#[$m:meta])* $name:ident { $( $(#[$fm:meta])* $f:ident ),* } )*) => {$(
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $name { $( $(#[$fm])* pub $f: u32 ),* }
        impl Body for $name {
            #[allow(unused_variables)]
            fn dec(r: &mut Rd<'_>, _hv: u32) -> Self { $name { $( $f: r.u32() ),* } }
            #[allow(unused_variables)]
            fn enc(&self, o: &mut Vec<u8>, _hv: u32) { $( w32(o, self.$f); )* }
        }
    )*};
}

simple! {
    /// 0x0002, P→S: the phone's RTP port (obsolete).
    IpPort { rtp_port }
    /// 0x0009, P→S.
    ForwardStatReq { line }
    /// 0x000A, P→S.
    SpeedDialStatReq { number }
    /// 0x000B, P→S: once per line button (1-based instance).
    LineStatReq { line }
    /// 0x0027, P→S: reason 0 unknown, 1 power save.
    Unregister { reason }
    /// 0x0118, S→P: 0 OK, 1 error, 2 NAK.
    UnregisterAck { status }
    /// 0x009F, S→P: 1 reset, 2 restart, 3 apply config.
    Reset { reset_type }
    /// 0x002B, P→S: 1 on, 2 off.
    HeadsetStatus { mode }
    /// 0x002D, P→S.
    RegisterAvailableLines { max_lines }
    /// 0x0003, P→S: kp_button 0-9 digits, 0x0E `*`, 0x0F `#`.
    KeypadButton { button, line, call_ref }
    /// 0x0005, P→S.
    Stimulus { stimulus, instance, call_ref, status }
    /// 0x0006, P→S (fields absent in the 0-byte form).
    OffHook { line, call_ref }
    /// 0x0007, P→S.
    OnHook { line, call_ref }
    /// 0x0026, P→S.
    SoftKeyEvent { event, line, call_ref }
    /// 0x0082, S→P.
    StartTone { tone, direction, line, call_ref }
    /// 0x0083, S→P (tone from v11).
    StopTone { line, call_ref, tone }
    /// 0x0085, S→P.
    SetRinger { mode, duration, line, call_ref }
    /// 0x0086, S→P.
    SetLamp { stimulus, instance, mode }
    /// 0x0088, S→P: 1 on, 2 off.
    SetSpeakerMode { mode }
    /// 0x0089, S→P.
    SetMicroMode { mode }
    /// 0x0110, S→P.
    SelectSoftKeys { line, call_ref, set_index, valid_key_mask }
    /// 0x0111, S→P.
    CallState { state, line, call_ref, privacy, precedence_level, precedence_domain }
    /// 0x0113, S→P.
    ClearPromptStatus { line, call_ref }
    /// 0x0116, S→P.
    ActivateCallPlane { line }
    /// 0x0119, S→P.
    BackSpaceReq { line, call_ref }
    /// 0x011B, S→P: seconds to wait before the next token request.
    RegisterTokenReject { wait_secs }
    /// 0x008B, S→P.
    StopMediaTransmission { conference_id, pass_thru_party_id, call_ref, port_handling }
    /// 0x0106, S→P.
    CloseReceiveChannel { conference_id, pass_thru_party_id, call_ref, port_handling }
    /// 0x0121, S→P.
    ClearPriNotify { priority }
    /// 0x0094, S→P: the phone's local time; `system_time` in Unix seconds.
    DefineTimeDate { year, month, day_of_week, day, hour, minute, second, milliseconds, system_time }
    /// 0x0033, P→S.
    ServiceUrlStatReq { index }
    /// 0x0034, P→S.
    FeatureStatReq { index, capabilities }
}

/// 0x0001, P→S. The natural encoding is the longest (172-byte) form; the frame's shape
/// gives the form the phone really sent (36, 44, 64, 68, 124 or 172 bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Register {
    pub device_name: Text,
    pub user_id: u32,
    pub instance: u32,
    pub ip: [u8; 4],
    pub device_type: u32,
    pub max_streams: u32,
    pub active_streams: u32,
    /// The phone's maximum protocol version.
    pub protocol_version: u8,
    pub feature0: u8,
    pub features: u16,
    pub max_conferences: u32,
    pub active_conferences: u32,
    pub mac: [u8; 12],
    pub ipv4_scope: u32,
    pub max_lines: u32,
    pub ipv6: [u8; 16],
    pub ipv6_scope: u32,
    pub firmware: Text,
    pub config_stamp: Text,
}

impl Register {
    pub fn ipv4(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.ip)
    }
}

impl Body for Register {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        Register {
            device_name: r.text(16),
            user_id: r.u32(),
            instance: r.u32(),
            ip: r.arr(),
            device_type: r.u32(),
            max_streams: r.u32(),
            active_streams: r.u32(),
            protocol_version: r.u8(),
            feature0: r.u8(),
            features: r.u16(),
            max_conferences: r.u32(),
            active_conferences: r.u32(),
            mac: r.arr(),
            ipv4_scope: r.u32(),
            max_lines: r.u32(),
            ipv6: r.arr(),
            ipv6_scope: r.u32(),
            firmware: r.text(32),
            config_stamp: r.text(48),
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        self.device_name.write(o, 16);
        w32(o, self.user_id);
        w32(o, self.instance);
        o.extend_from_slice(&self.ip);
        w32(o, self.device_type);
        w32(o, self.max_streams);
        w32(o, self.active_streams);
        o.push(self.protocol_version);
        o.push(self.feature0);
        w16(o, self.features);
        w32(o, self.max_conferences);
        w32(o, self.active_conferences);
        o.extend_from_slice(&self.mac);
        w32(o, self.ipv4_scope);
        w32(o, self.max_lines);
        o.extend_from_slice(&self.ipv6);
        w32(o, self.ipv6_scope);
        self.firmware.write(o, 32);
        self.config_stamp.write(o, 48);
    }
}

/// 0x0029, P→S: ask a higher-priority CM whether the phone may fall back to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterTokenReq {
    pub device_name: Text,
    pub user_id: u32,
    pub instance: u32,
    pub ip: [u8; 4],
    pub device_type: u32,
    pub ipv6: [u8; 16],
}

impl Body for RegisterTokenReq {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        RegisterTokenReq {
            device_name: r.text(16),
            user_id: r.u32(),
            instance: r.u32(),
            ip: r.arr(),
            device_type: r.u32(),
            ipv6: r.arr(),
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        self.device_name.write(o, 16);
        w32(o, self.user_id);
        w32(o, self.instance);
        o.extend_from_slice(&self.ip);
        w32(o, self.device_type);
        o.extend_from_slice(&self.ipv6);
    }
}

/// 0x0081, S→P. `date_template` covers the 6 template bytes and the 2 pad bytes (old
/// CallManagers leave garbage there; chan-sccp uses a 7th character).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterAck {
    pub keepalive: u32,
    pub date_template: Text,
    pub secondary_keepalive: u32,
    pub protocol_version: u8,
    pub features: [u8; 3],
}

impl RegisterAck {
    /// Feature bytes a server announces for a negotiated version (CS/WZ patterns).
    pub fn features_for(version: u8) -> [u8; 3] {
        match version {
            0..=3 => [0, 0, 0],
            4..=10 => [0x20, 0xF1, 0xFE],
            _ => [0x20, 0xF1, 0xFF],
        }
    }
}

impl Body for RegisterAck {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        RegisterAck {
            keepalive: r.u32(),
            date_template: r.text(8),
            secondary_keepalive: r.u32(),
            protocol_version: r.u8(),
            features: r.arr(),
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        w32(o, self.keepalive);
        self.date_template.write(o, 8);
        w32(o, self.secondary_keepalive);
        o.push(self.protocol_version);
        o.extend_from_slice(&self.features);
    }
}

macro_rules! text_msg {
    ($( $(#[$m:meta])* $name:ident { $($pre:ident),* ; $t:ident : $w:expr ; $($post:ident),* } )*) => {$(
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $name { $(pub $pre: u32,)* pub $t: Text, $(pub $post: u32,)* }
        impl Body for $name {
            fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
                $( let $pre = r.u32(); )*
                let $t = r.text($w);
                $( let $post = r.u32(); )*
                $name { $($pre,)* $t, $($post,)* }
            }
            fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
                $( w32(o, self.$pre); )*
                self.$t.write(o, $w);
                $( w32(o, self.$post); )*
            }
        }
    )*};
}

text_msg! {
    /// 0x009D, S→P: the only "reason" is the text the phone shows.
    RegisterReject { ; text: 32 ; }
    /// 0x0098, S→P: firmware load the phone should run.
    Version { ; version: 16 ; }
    /// 0x0114, S→P.
    DisplayNotify { timeout ; text: 32 ; }
    /// 0x0120, S→P.
    DisplayPriNotify { timeout, priority ; text: 32 ; }
    /// 0x0112, S→P: text may be an embedded label `0x80,<n>`.
    DisplayPromptStatus { timeout ; text: 32 ; line, call_ref }
    /// 0x0020, P→S.
    Alarm { severity ; text: 80 ; param1, param2 }
    /// 0x011F, S→P.
    FeatureStat { index, feature_id ; label: 40 ; status }
}

/// One codec the phone supports (CapabilitiesRes entry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capability {
    pub payload_capability: u32,
    pub max_frames_per_packet: u32,
    /// Codec-specific union (G.723 bit rate, codec mode…), kept raw.
    pub extra: [u8; 8],
}

/// 0x0010, P→S.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapabilitiesRes {
    pub caps: Vec<Capability>,
}

impl Body for CapabilitiesRes {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        let count = r.u32() as usize;
        let n = count.min(r.remaining() / 16);
        let caps = (0..n)
            .map(|_| Capability {
                payload_capability: r.u32(),
                max_frames_per_packet: r.u32(),
                extra: r.arr(),
            })
            .collect();
        CapabilitiesRes { caps }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        w32(o, self.caps.len() as u32);
        for c in &self.caps {
            w32(o, c.payload_capability);
            w32(o, c.max_frames_per_packet);
            o.extend_from_slice(&c.extra);
        }
    }
}

/// Button template slots on the wire (WS/FS; chan-sccp's 56-slot form decodes with a tail).
pub const BUTTON_SLOTS: usize = 42;
/// Button definition codes (§5.3).
pub const BUTTON_LINE: u8 = 0x09;
pub const BUTTON_SPEED_DIAL: u8 = 0x02;
pub const BUTTON_UNDEFINED: u8 = 0xFF;

/// One key of the template: per-type instance and definition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Button {
    pub instance: u8,
    pub definition: u8,
}

/// 0x0097, S→P. Slots after `buttons` are written as (0, 0xFF) "undefined".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ButtonTemplate {
    pub offset: u32,
    pub count: u32,
    pub total: u32,
    pub buttons: Vec<Button>,
}

impl Body for ButtonTemplate {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        let offset = r.u32();
        let count = r.u32();
        let total = r.u32();
        let mut buttons: Vec<Button> = (0..BUTTON_SLOTS)
            .map(|_| Button {
                instance: r.u8(),
                definition: r.u8(),
            })
            .collect();
        while buttons.last()
            == Some(&Button {
                instance: 0,
                definition: BUTTON_UNDEFINED,
            })
        {
            buttons.pop();
        }
        ButtonTemplate {
            offset,
            count,
            total,
            buttons,
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        w32(o, self.offset);
        w32(o, self.count);
        w32(o, self.total);
        for i in 0..BUTTON_SLOTS {
            let b = self.buttons.get(i).copied().unwrap_or(Button {
                instance: 0,
                definition: BUTTON_UNDEFINED,
            });
            o.push(b.instance);
            o.push(b.definition);
        }
    }
}

/// Soft-key template slots on the wire.
pub const SOFTKEY_SLOTS: usize = 32;

/// One soft-key definition: label (text or `0x80,<label>`) and the event it sends back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftKeyDef {
    pub label: Text,
    pub event: u32,
}

/// 0x0108, S→P. Empty slots after `keys` are zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftKeyTemplateRes {
    pub offset: u32,
    pub count: u32,
    pub total: u32,
    pub keys: Vec<SoftKeyDef>,
}

impl Body for SoftKeyTemplateRes {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        let offset = r.u32();
        let count = r.u32();
        let total = r.u32();
        let mut keys: Vec<SoftKeyDef> = (0..SOFTKEY_SLOTS)
            .map(|_| SoftKeyDef {
                label: r.text(16),
                event: r.u32(),
            })
            .collect();
        while keys
            .last()
            .is_some_and(|k| k.event == 0 && k.label.raw().iter().all(|&b| b == 0))
        {
            keys.pop();
        }
        SoftKeyTemplateRes {
            offset,
            count,
            total,
            keys,
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        w32(o, self.offset);
        w32(o, self.count);
        w32(o, self.total);
        let empty = SoftKeyDef::default();
        for i in 0..SOFTKEY_SLOTS {
            let k = self.keys.get(i).unwrap_or(&empty);
            k.label.write(o, 16);
            w32(o, k.event);
        }
    }
}

/// Soft-key sets on the wire.
pub const SOFTKEY_SETS: usize = 16;

/// One context set: template index (1-based, 0 empty) and info index per position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftKeySet {
    pub template_index: [u8; 16],
    pub info_index: [u16; 16],
}

/// 0x0109, S→P. Sets after `sets` are zero.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SoftKeySetRes {
    pub offset: u32,
    pub count: u32,
    pub total: u32,
    pub sets: Vec<SoftKeySet>,
}

impl Body for SoftKeySetRes {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        let offset = r.u32();
        let count = r.u32();
        let total = r.u32();
        let mut sets: Vec<SoftKeySet> = (0..SOFTKEY_SETS)
            .map(|_| {
                let template_index = r.arr();
                let mut info_index = [0u16; 16];
                for v in &mut info_index {
                    *v = r.u16();
                }
                SoftKeySet {
                    template_index,
                    info_index,
                }
            })
            .collect();
        while sets.last() == Some(&SoftKeySet::default()) {
            sets.pop();
        }
        SoftKeySetRes {
            offset,
            count,
            total,
            sets,
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        w32(o, self.offset);
        w32(o, self.count);
        w32(o, self.total);
        let empty = SoftKeySet::default();
        for i in 0..SOFTKEY_SETS {
            let s = self.sets.get(i).unwrap_or(&empty);
            o.extend_from_slice(&s.template_index);
            for v in s.info_index {
                w16(o, v);
            }
        }
    }
}

/// 0x0092, S→P — 112 bytes (CallManager 3.1 sent a 28-byte form; the shape keeps it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineStat {
    pub line: u32,
    pub dir_number: Text,
    pub display_name: Text,
    pub label: Text,
    pub display_options: u32,
}

impl Body for LineStat {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        LineStat {
            line: r.u32(),
            dir_number: r.text(24),
            display_name: r.text(40),
            label: r.text(40),
            display_options: r.u32(),
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        w32(o, self.line);
        self.dir_number.write(o, 24);
        self.display_name.write(o, 40);
        self.label.write(o, 40);
        w32(o, self.display_options);
    }
}

/// 0x0147, S→P (dynamic): chan-sccp's choice for v17 and later.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineStatV2 {
    pub line: u32,
    pub line_type: u32,
    pub dir_number: Text,
    pub display_name: Text,
    pub label: Text,
}

impl Body for LineStatV2 {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        LineStatV2 {
            line: r.u32(),
            line_type: r.u32(),
            dir_number: r.cstr(),
            display_name: r.cstr(),
            label: r.cstr(),
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        w32(o, self.line);
        w32(o, self.line_type);
        self.dir_number.write_cstr(o);
        self.display_name.write_cstr(o);
        self.label.write_cstr(o);
    }
}

/// 0x0091, S→P — 68 bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpeedDialStat {
    pub number: u32,
    pub dir_number: Text,
    pub display_name: Text,
}

impl Body for SpeedDialStat {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        SpeedDialStat {
            number: r.u32(),
            dir_number: r.text(24),
            display_name: r.text(40),
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        w32(o, self.number);
        self.dir_number.write(o, 24);
        self.display_name.write(o, 40);
    }
}

/// 0x0090, S→P — 92 bytes (v<18) or 95 packed + 1 pad (v≥18, `wide`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardStat {
    pub active: u32,
    pub line: u32,
    pub all_active: u32,
    pub all_number: Text,
    pub busy_active: u32,
    pub busy_number: Text,
    pub no_answer_active: u32,
    pub no_answer_number: Text,
    /// 25-byte numbers (v18+).
    pub wide: bool,
}

impl Body for ForwardStat {
    fn dec(r: &mut Rd<'_>, hv: u32) -> Self {
        let wide = r.len() >= 95 || (hv >= 18 && r.len() > 92);
        let w = if wide { 25 } else { 24 };
        ForwardStat {
            active: r.u32(),
            line: r.u32(),
            all_active: r.u32(),
            all_number: r.text(w),
            busy_active: r.u32(),
            busy_number: r.text(w),
            no_answer_active: r.u32(),
            no_answer_number: r.text(w),
            wide,
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        let w = if self.wide { 25 } else { 24 };
        w32(o, self.active);
        w32(o, self.line);
        w32(o, self.all_active);
        self.all_number.write(o, w);
        w32(o, self.busy_active);
        self.busy_number.write(o, w);
        w32(o, self.no_answer_active);
        self.no_answer_number.write(o, w);
    }
}

/// 0x0093, S→P — 112 bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigStat {
    pub device_name: Text,
    pub user_id: u32,
    pub instance: u32,
    pub user_name: Text,
    pub server_name: Text,
    pub lines: u32,
    pub speed_dials: u32,
}

impl Body for ConfigStat {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        ConfigStat {
            device_name: r.text(16),
            user_id: r.u32(),
            instance: r.u32(),
            user_name: r.text(40),
            server_name: r.text(40),
            lines: r.u32(),
            speed_dials: r.u32(),
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        self.device_name.write(o, 16);
        w32(o, self.user_id);
        w32(o, self.instance);
        self.user_name.write(o, 40);
        self.server_name.write(o, 40);
        w32(o, self.lines);
        w32(o, self.speed_dials);
    }
}

/// An address field: 4 bytes before v17, `u32 ipType + 16 bytes` from v17.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IpField {
    /// 0 IPv4, 1 IPv6, 2 both, 3 invalid (wide form only).
    pub ip_type: u32,
    pub addr: [u8; 16],
}

impl IpField {
    pub fn v4(ip: Ipv4Addr) -> Self {
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&ip.octets());
        IpField { ip_type: 0, addr }
    }
    pub fn ipv4(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.addr[0], self.addr[1], self.addr[2], self.addr[3])
    }
    fn dec(r: &mut Rd<'_>, wide: bool) -> Self {
        if wide {
            IpField {
                ip_type: r.u32(),
                addr: r.arr(),
            }
        } else {
            let a: [u8; 4] = r.arr();
            let mut addr = [0u8; 16];
            addr[..4].copy_from_slice(&a);
            IpField { ip_type: 0, addr }
        }
    }
    fn enc(&self, o: &mut Vec<u8>, wide: bool) {
        if wide {
            w32(o, self.ip_type);
            o.extend_from_slice(&self.addr);
        } else {
            o.extend_from_slice(&self.addr[..4]);
        }
    }
}

/// One CallManager of the group in ServerRes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerEntry {
    pub name: Text,
    pub port: u32,
    pub ip: IpField,
}

/// 0x009E, S→P — 5 entries; 280 bytes (v<17) or 360 bytes (`wide`, v≥17).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerRes {
    pub servers: Vec<ServerEntry>,
    pub wide: bool,
}

impl Body for ServerRes {
    fn dec(r: &mut Rd<'_>, hv: u32) -> Self {
        let wide = r.len() >= 360 || (hv >= 17 && r.len() > 280);
        let names: Vec<Text> = (0..5).map(|_| r.text(48)).collect();
        let ports: Vec<u32> = (0..5).map(|_| r.u32()).collect();
        let ips: Vec<IpField> = (0..5).map(|_| IpField::dec(r, wide)).collect();
        let mut servers: Vec<ServerEntry> = names
            .into_iter()
            .zip(ports)
            .zip(ips)
            .map(|((name, port), ip)| ServerEntry { name, port, ip })
            .collect();
        while servers.last() == Some(&ServerEntry::default()) {
            servers.pop();
        }
        ServerRes { servers, wide }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        let empty = ServerEntry::default();
        let at = |i: usize| self.servers.get(i).unwrap_or(&empty);
        for i in 0..5 {
            at(i).name.write(o, 48);
        }
        for i in 0..5 {
            w32(o, at(i).port);
        }
        for i in 0..5 {
            at(i).ip.enc(o, self.wide);
        }
    }
}

/// 0x0143, S→P (dynamic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisplayNotifyV2 {
    pub timeout: u32,
    pub text: Text,
}

impl Body for DisplayNotifyV2 {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        DisplayNotifyV2 {
            timeout: r.u32(),
            text: r.cstr(),
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        w32(o, self.timeout);
        self.text.write_cstr(o);
    }
}

/// 0x0145, S→P (dynamic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisplayPromptStatusV2 {
    pub timeout: u32,
    pub line: u32,
    pub call_ref: u32,
    pub text: Text,
}

impl Body for DisplayPromptStatusV2 {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        DisplayPromptStatusV2 {
            timeout: r.u32(),
            line: r.u32(),
            call_ref: r.u32(),
            text: r.cstr(),
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        w32(o, self.timeout);
        w32(o, self.line);
        w32(o, self.call_ref);
        self.text.write_cstr(o);
    }
}

/// 0x008F, S→P — 384 bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallInfo {
    pub calling_party_name: Text,
    pub calling_party: Text,
    pub called_party_name: Text,
    pub called_party: Text,
    pub line: u32,
    pub call_ref: u32,
    /// 1 inbound, 2 outbound, 3 forward.
    pub call_type: u32,
    pub original_called_party_name: Text,
    pub original_called_party: Text,
    pub last_redirecting_party_name: Text,
    pub last_redirecting_party: Text,
    pub original_cdpn_redirect_reason: u32,
    pub last_redirecting_reason: u32,
    pub cgpn_voice_mailbox: Text,
    pub cdpn_voice_mailbox: Text,
    pub original_cdpn_voice_mailbox: Text,
    pub last_redirecting_voice_mailbox: Text,
    pub call_instance: u32,
    pub call_security_status: u32,
    pub party_pi_restriction_bits: u32,
}

impl Body for CallInfo {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        CallInfo {
            calling_party_name: r.text(40),
            calling_party: r.text(24),
            called_party_name: r.text(40),
            called_party: r.text(24),
            line: r.u32(),
            call_ref: r.u32(),
            call_type: r.u32(),
            original_called_party_name: r.text(40),
            original_called_party: r.text(24),
            last_redirecting_party_name: r.text(40),
            last_redirecting_party: r.text(24),
            original_cdpn_redirect_reason: r.u32(),
            last_redirecting_reason: r.u32(),
            cgpn_voice_mailbox: r.text(24),
            cdpn_voice_mailbox: r.text(24),
            original_cdpn_voice_mailbox: r.text(24),
            last_redirecting_voice_mailbox: r.text(24),
            call_instance: r.u32(),
            call_security_status: r.u32(),
            party_pi_restriction_bits: r.u32(),
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        self.calling_party_name.write(o, 40);
        self.calling_party.write(o, 24);
        self.called_party_name.write(o, 40);
        self.called_party.write(o, 24);
        w32(o, self.line);
        w32(o, self.call_ref);
        w32(o, self.call_type);
        self.original_called_party_name.write(o, 40);
        self.original_called_party.write(o, 24);
        self.last_redirecting_party_name.write(o, 40);
        self.last_redirecting_party.write(o, 24);
        w32(o, self.original_cdpn_redirect_reason);
        w32(o, self.last_redirecting_reason);
        self.cgpn_voice_mailbox.write(o, 24);
        self.cdpn_voice_mailbox.write(o, 24);
        self.original_cdpn_voice_mailbox.write(o, 24);
        self.last_redirecting_voice_mailbox.write(o, 24);
        w32(o, self.call_instance);
        w32(o, self.call_security_status);
        w32(o, self.party_pi_restriction_bits);
    }
}

/// 0x014A, S→P (dynamic). `strings` in wire order (§6.3): calling, alternate calling,
/// called, original called, last redirecting, four voice mailboxes, four names, and for
/// v17+ hunt pilot number and name. Use static [`CallInfo`] below v16.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallInfoV2 {
    pub line: u32,
    pub call_ref: u32,
    pub call_type: u32,
    pub original_cdpn_redirect_reason: u32,
    pub last_redirecting_reason: u32,
    pub call_instance: u32,
    pub call_security_status: u32,
    pub party_pi_restriction_bits: u32,
    pub strings: Vec<Text>,
}

impl Body for CallInfoV2 {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        let mut m = CallInfoV2 {
            line: r.u32(),
            call_ref: r.u32(),
            call_type: r.u32(),
            original_cdpn_redirect_reason: r.u32(),
            last_redirecting_reason: r.u32(),
            call_instance: r.u32(),
            call_security_status: r.u32(),
            party_pi_restriction_bits: r.u32(),
            strings: Vec::new(),
        };
        while r.remaining() > 0 && m.strings.len() < 15 {
            m.strings.push(r.cstr());
        }
        m
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        for v in [
            self.line,
            self.call_ref,
            self.call_type,
            self.original_cdpn_redirect_reason,
            self.last_redirecting_reason,
            self.call_instance,
            self.call_security_status,
            self.party_pi_restriction_bits,
        ] {
            w32(o, v);
        }
        for s in self.strings.iter().take(15) {
            s.write_cstr(o);
        }
    }
}

/// 0x011D, S→P: number 24 bytes (v<18) or 25 packed (v≥18, chosen by header version).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialedNumber {
    pub number: Text,
    pub line: u32,
    pub call_ref: u32,
}

impl Body for DialedNumber {
    fn dec(r: &mut Rd<'_>, hv: u32) -> Self {
        DialedNumber {
            number: r.text(num_width(hv)),
            line: r.u32(),
            call_ref: r.u32(),
        }
    }
    fn enc(&self, o: &mut Vec<u8>, hv: u32) {
        self.number.write(o, num_width(hv));
        w32(o, self.line);
        w32(o, self.call_ref);
    }
}

fn num_width(hv: u32) -> usize {
    if hv >= 18 {
        25
    } else {
        24
    }
}

/// 0x0004, P→S: the whole dialled number. From v18 the number is 25 bytes and the line
/// instance follows packed (7970) or after 3 pad bytes (8945, `padded`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnblocCall {
    pub number: Text,
    pub line: u32,
    pub padded: bool,
}

impl Body for EnblocCall {
    fn dec(r: &mut Rd<'_>, hv: u32) -> Self {
        let w = num_width(hv);
        let padded =
            w == 25 && r.len() >= 32 && r.bytes_at(25, 28) == [0, 0, 0] && r.peek_u32_at(28) != 0;
        let number = r.text(w);
        if padded {
            let _pad: [u8; 3] = r.arr();
        }
        EnblocCall {
            number,
            line: r.u32(),
            padded,
        }
    }
    fn enc(&self, o: &mut Vec<u8>, hv: u32) {
        let w = num_width(hv);
        self.number.write(o, w);
        if self.padded && w == 25 {
            o.extend_from_slice(&[0, 0, 0]);
        }
        w32(o, self.line);
    }
}

/// 0x0024, P→S.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffHookWithCgpn {
    pub calling_party: Text,
    pub cgpn_voice_mailbox: Text,
    pub line: u32,
}

impl Body for OffHookWithCgpn {
    fn dec(r: &mut Rd<'_>, hv: u32) -> Self {
        let w = num_width(hv);
        OffHookWithCgpn {
            calling_party: r.text(w),
            cgpn_voice_mailbox: r.text(w),
            line: r.u32(),
        }
    }
    fn enc(&self, o: &mut Vec<u8>, hv: u32) {
        let w = num_width(hv);
        self.calling_party.write(o, w);
        self.cgpn_voice_mailbox.write(o, w);
        w32(o, self.line);
    }
}

/// 0x0105, S→P. Typed up to `dtmf_type` (the 92-byte form CUCM 7 sent); the
/// version-dependent tail (mixing mode, direction, source address, v22 extras) is raw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReceiveChannel {
    pub conference_id: u32,
    pub pass_thru_party_id: u32,
    pub ms_packet_size: u32,
    pub compression_type: u32,
    pub echo_cancellation: u32,
    pub g723_bitrate: u32,
    pub call_ref: u32,
    /// 48-byte media encryption key block (zero for plain RTP).
    pub key_info: Text,
    pub stream_pass_through_id: u32,
    pub associated_stream_id: u32,
    pub rfc2833_payload_type: u32,
    pub dtmf_type: u32,
    pub tail: Vec<u8>,
}

impl Body for OpenReceiveChannel {
    fn dec(r: &mut Rd<'_>, _hv: u32) -> Self {
        OpenReceiveChannel {
            conference_id: r.u32(),
            pass_thru_party_id: r.u32(),
            ms_packet_size: r.u32(),
            compression_type: r.u32(),
            echo_cancellation: r.u32(),
            g723_bitrate: r.u32(),
            call_ref: r.u32(),
            key_info: r.text(48),
            stream_pass_through_id: r.u32(),
            associated_stream_id: r.u32(),
            rfc2833_payload_type: r.u32(),
            dtmf_type: r.u32(),
            tail: r.rest(),
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        for v in [
            self.conference_id,
            self.pass_thru_party_id,
            self.ms_packet_size,
            self.compression_type,
            self.echo_cancellation,
            self.g723_bitrate,
            self.call_ref,
        ] {
            w32(o, v);
        }
        self.key_info.write(o, 48);
        for v in [
            self.stream_pass_through_id,
            self.associated_stream_id,
            self.rfc2833_payload_type,
            self.dtmf_type,
        ] {
            w32(o, v);
        }
        o.extend_from_slice(&self.tail);
    }
}

/// 0x0022, P→S: 20 bytes, or 36 with the wide address (v17+, `wide`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReceiveChannelAck {
    pub status: u32,
    pub ip: IpField,
    pub port: u32,
    pub pass_thru_party_id: u32,
    pub call_ref: u32,
    pub wide: bool,
}

impl Body for OpenReceiveChannelAck {
    fn dec(r: &mut Rd<'_>, hv: u32) -> Self {
        let wide = r.len() >= 36 || (hv >= 17 && r.len() > 20);
        OpenReceiveChannelAck {
            status: r.u32(),
            ip: IpField::dec(r, wide),
            port: r.u32(),
            pass_thru_party_id: r.u32(),
            call_ref: r.u32(),
            wide,
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        w32(o, self.status);
        self.ip.enc(o, self.wide);
        w32(o, self.port);
        w32(o, self.pass_thru_party_id);
        w32(o, self.call_ref);
    }
}

/// 0x008A, S→P: where the phone sends its RTP. Wide address from header version 17.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartMediaTransmission {
    pub conference_id: u32,
    pub pass_thru_party_id: u32,
    pub remote: IpField,
    pub remote_port: u32,
    pub ms_packet_size: u32,
    pub compression_type: u32,
    pub precedence: u32,
    pub silence_suppression: u32,
    pub max_frames_per_packet: u32,
    pub g723_bitrate: u32,
    pub call_ref: u32,
    pub key_info: Text,
    pub stream_pass_through_id: u32,
    pub associated_stream_id: u32,
    pub rfc2833_payload_type: u32,
    pub dtmf_type: u32,
    pub mixing_mode: u32,
    pub party_direction: u32,
    /// v22 latent capabilities and anything later, raw.
    pub tail: Vec<u8>,
}

impl Body for StartMediaTransmission {
    fn dec(r: &mut Rd<'_>, hv: u32) -> Self {
        let wide = hv >= 17;
        StartMediaTransmission {
            conference_id: r.u32(),
            pass_thru_party_id: r.u32(),
            remote: IpField::dec(r, wide),
            remote_port: r.u32(),
            ms_packet_size: r.u32(),
            compression_type: r.u32(),
            precedence: r.u32(),
            silence_suppression: r.u32(),
            max_frames_per_packet: r.u32(),
            g723_bitrate: r.u32(),
            call_ref: r.u32(),
            key_info: r.text(48),
            stream_pass_through_id: r.u32(),
            associated_stream_id: r.u32(),
            rfc2833_payload_type: r.u32(),
            dtmf_type: r.u32(),
            mixing_mode: r.u32(),
            party_direction: r.u32(),
            tail: r.rest(),
        }
    }
    fn enc(&self, o: &mut Vec<u8>, hv: u32) {
        w32(o, self.conference_id);
        w32(o, self.pass_thru_party_id);
        self.remote.enc(o, hv >= 17);
        for v in [
            self.remote_port,
            self.ms_packet_size,
            self.compression_type,
            self.precedence,
            self.silence_suppression,
            self.max_frames_per_packet,
            self.g723_bitrate,
            self.call_ref,
        ] {
            w32(o, v);
        }
        self.key_info.write(o, 48);
        for v in [
            self.stream_pass_through_id,
            self.associated_stream_id,
            self.rfc2833_payload_type,
            self.dtmf_type,
            self.mixing_mode,
            self.party_direction,
        ] {
            w32(o, v);
        }
        o.extend_from_slice(&self.tail);
    }
}

/// 0x0154, P→S (newer firmwares): 24 bytes, or 40 with the wide address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartMediaTransmissionAck {
    pub call_ref: u32,
    pub pass_thru_party_id: u32,
    pub call_ref1: u32,
    pub ip: IpField,
    pub port: u32,
    pub status: u32,
    pub wide: bool,
}

impl Body for StartMediaTransmissionAck {
    fn dec(r: &mut Rd<'_>, hv: u32) -> Self {
        let wide = r.len() >= 40 || (hv >= 17 && r.len() > 24);
        StartMediaTransmissionAck {
            call_ref: r.u32(),
            pass_thru_party_id: r.u32(),
            call_ref1: r.u32(),
            ip: IpField::dec(r, wide),
            port: r.u32(),
            status: r.u32(),
            wide,
        }
    }
    fn enc(&self, o: &mut Vec<u8>, _hv: u32) {
        w32(o, self.call_ref);
        w32(o, self.pass_thru_party_id);
        w32(o, self.call_ref1);
        self.ip.enc(o, self.wide);
        w32(o, self.port);
        w32(o, self.status);
    }
}

macro_rules! messages {
    (
        units { $( $(#[$um:meta])* $u:ident = $uid:literal, )* }
        bodies { $( $v:ident = $id:literal, )* }
    ) => {
        /// One SCCP message. Ids and directions: reference §4.0 and §6.1.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Message {
            $( $(#[$um])* $u, )*
            $( $v($v), )*
            /// An id this codec does not know: skipped by length, payload kept.
            Unknown { id: u32, payload: Vec<u8> },
        }

        impl Message {
            /// The wire message id.
            pub fn id(&self) -> u32 {
                match self {
                    $( Message::$u => $uid, )*
                    $( Message::$v(_) => $id, )*
                    Message::Unknown { id, .. } => *id,
                }
            }

            /// The message's name, for logs.
            pub fn name(&self) -> &'static str {
                message_name(self.id())
            }

            pub(crate) fn decode_body(id: u32, hv: u32, payload: &[u8]) -> Message {
                let mut r = Rd::new(payload);
                match id {
                    $( $uid => Message::$u, )*
                    $( $id => Message::$v(<$v as Body>::dec(&mut r, hv)), )*
                    _ => Message::Unknown { id, payload: payload.to_vec() },
                }
            }

            pub(crate) fn encode_body(&self, hv: u32, o: &mut Vec<u8>) {
                match self {
                    $( Message::$u => {} )*
                    $( Message::$v(m) => m.enc(o, hv), )*
                    Message::Unknown { payload, .. } => o.extend_from_slice(payload),
                }
            }
        }

        /// The name of a message id ("Unknown" when this codec does not know it).
        pub fn message_name(id: u32) -> &'static str {
            match id {
                $( $uid => stringify!($u), )*
                $( $id => stringify!($v), )*
                _ => "Unknown",
            }
        }
    };
}

messages! {
    units {
        /// 0x0000, P→S.
        KeepAlive = 0x0000,
        ConfigStatReq = 0x000C,
        TimeDateReq = 0x000D,
        /// Some phones add a u32; it ends up in the frame's trailing bytes.
        ButtonTemplateReq = 0x000E,
        VersionReq = 0x000F,
        ServerReq = 0x0012,
        SoftKeySetReq = 0x0025,
        SoftKeyTemplateReq = 0x0028,
        CapabilitiesReq = 0x009B,
        KeepAliveAck = 0x0100,
        ClearNotify = 0x0115,
        DeactivateCallPlane = 0x0117,
        RegisterTokenAck = 0x011A,
    }
    bodies {
        Register = 0x0001,
        IpPort = 0x0002,
        KeypadButton = 0x0003,
        EnblocCall = 0x0004,
        Stimulus = 0x0005,
        OffHook = 0x0006,
        OnHook = 0x0007,
        ForwardStatReq = 0x0009,
        SpeedDialStatReq = 0x000A,
        LineStatReq = 0x000B,
        CapabilitiesRes = 0x0010,
        Alarm = 0x0020,
        OpenReceiveChannelAck = 0x0022,
        OffHookWithCgpn = 0x0024,
        SoftKeyEvent = 0x0026,
        Unregister = 0x0027,
        RegisterTokenReq = 0x0029,
        HeadsetStatus = 0x002B,
        RegisterAvailableLines = 0x002D,
        ServiceUrlStatReq = 0x0033,
        FeatureStatReq = 0x0034,
        RegisterAck = 0x0081,
        StartTone = 0x0082,
        StopTone = 0x0083,
        SetRinger = 0x0085,
        SetLamp = 0x0086,
        SetSpeakerMode = 0x0088,
        SetMicroMode = 0x0089,
        StartMediaTransmission = 0x008A,
        StopMediaTransmission = 0x008B,
        CallInfo = 0x008F,
        ForwardStat = 0x0090,
        SpeedDialStat = 0x0091,
        LineStat = 0x0092,
        ConfigStat = 0x0093,
        DefineTimeDate = 0x0094,
        ButtonTemplate = 0x0097,
        Version = 0x0098,
        RegisterReject = 0x009D,
        ServerRes = 0x009E,
        Reset = 0x009F,
        OpenReceiveChannel = 0x0105,
        CloseReceiveChannel = 0x0106,
        SoftKeyTemplateRes = 0x0108,
        SoftKeySetRes = 0x0109,
        SelectSoftKeys = 0x0110,
        CallState = 0x0111,
        DisplayPromptStatus = 0x0112,
        ClearPromptStatus = 0x0113,
        DisplayNotify = 0x0114,
        ActivateCallPlane = 0x0116,
        UnregisterAck = 0x0118,
        BackSpaceReq = 0x0119,
        RegisterTokenReject = 0x011B,
        DialedNumber = 0x011D,
        FeatureStat = 0x011F,
        DisplayPriNotify = 0x0120,
        ClearPriNotify = 0x0121,
        DisplayNotifyV2 = 0x0143,
        DisplayPromptStatusV2 = 0x0145,
        LineStatV2 = 0x0147,
        CallInfoV2 = 0x014A,
        StartMediaTransmissionAck = 0x0154,
    }
}
