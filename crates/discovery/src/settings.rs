//! Run-time changes to the switch role (the IOS console's configuration commands), and their
//! key/value form for the database, so every node of a cluster applies the same ones.

use serde::{Deserialize, Serialize};

use crate::config::PowerAdmin;

/// One configuration change; applied by [`crate::SwitchAgent::apply`] at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "setting", rename_all = "snake_case")]
pub enum Setting {
    /// `[no] cdp run`.
    CdpRun(bool),
    /// `cdp timer N` (5-254).
    CdpTimer(u16),
    /// `cdp holdtime N` (10-255).
    CdpHoldtime(u16),
    /// `[no] cdp advertise-v2`: CDP version 2, else 1.
    CdpAdvertiseV2(bool),
    /// `[no] lldp run`.
    LldpRun(bool),
    /// `lldp timer N` (5-65534).
    LldpTimer(u16),
    /// `lldp holdtime N` (0-65535).
    LldpHoldtime(u16),
    /// Interface `[no] cdp enable`.
    CdpEnable { interface: String, on: bool },
    /// Interface `[no] lldp transmit`.
    LldpTransmit { interface: String, on: bool },
    /// Interface `[no] lldp receive`.
    LldpReceive { interface: String, on: bool },
    /// Interface `power inline auto|never`.
    PowerInline {
        interface: String,
        admin: PowerAdmin,
    },
}

fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}

fn parse_flag(v: &str) -> Option<bool> {
    match v {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

impl Setting {
    /// The database key: one per global knob, one per interface and knob.
    pub fn key(&self) -> String {
        match self {
            Setting::CdpRun(_) => "cdp.run".into(),
            Setting::CdpTimer(_) => "cdp.timer".into(),
            Setting::CdpHoldtime(_) => "cdp.holdtime".into(),
            Setting::CdpAdvertiseV2(_) => "cdp.advertise-v2".into(),
            Setting::LldpRun(_) => "lldp.run".into(),
            Setting::LldpTimer(_) => "lldp.timer".into(),
            Setting::LldpHoldtime(_) => "lldp.holdtime".into(),
            Setting::CdpEnable { interface, .. } => format!("if.{interface}.cdp-enable"),
            Setting::LldpTransmit { interface, .. } => format!("if.{interface}.lldp-transmit"),
            Setting::LldpReceive { interface, .. } => format!("if.{interface}.lldp-receive"),
            Setting::PowerInline { interface, .. } => format!("if.{interface}.power-inline"),
        }
    }

    /// The database value.
    pub fn value(&self) -> String {
        match self {
            Setting::CdpRun(b)
            | Setting::CdpAdvertiseV2(b)
            | Setting::LldpRun(b)
            | Setting::CdpEnable { on: b, .. }
            | Setting::LldpTransmit { on: b, .. }
            | Setting::LldpReceive { on: b, .. } => flag(*b),
            Setting::CdpTimer(n)
            | Setting::CdpHoldtime(n)
            | Setting::LldpTimer(n)
            | Setting::LldpHoldtime(n) => n.to_string(),
            Setting::PowerInline { admin, .. } => match admin {
                PowerAdmin::Auto => "auto".into(),
                PowerAdmin::Never => "never".into(),
            },
        }
    }

    /// Back from the database; `None` for a key or value this version does not know (kept
    /// in the database, ignored here).
    pub fn from_kv(key: &str, value: &str) -> Option<Setting> {
        let num = || value.parse::<u16>().ok();
        Some(match key {
            "cdp.run" => Setting::CdpRun(parse_flag(value)?),
            "cdp.timer" => Setting::CdpTimer(num()?),
            "cdp.holdtime" => Setting::CdpHoldtime(num()?),
            "cdp.advertise-v2" => Setting::CdpAdvertiseV2(parse_flag(value)?),
            "lldp.run" => Setting::LldpRun(parse_flag(value)?),
            "lldp.timer" => Setting::LldpTimer(num()?),
            "lldp.holdtime" => Setting::LldpHoldtime(num()?),
            _ => {
                let rest = key.strip_prefix("if.")?;
                let (interface, knob) = rest.rsplit_once('.')?;
                let interface = interface.to_string();
                match knob {
                    "cdp-enable" => Setting::CdpEnable {
                        interface,
                        on: parse_flag(value)?,
                    },
                    "lldp-transmit" => Setting::LldpTransmit {
                        interface,
                        on: parse_flag(value)?,
                    },
                    "lldp-receive" => Setting::LldpReceive {
                        interface,
                        on: parse_flag(value)?,
                    },
                    "power-inline" => Setting::PowerInline {
                        interface,
                        admin: match value {
                            "auto" => PowerAdmin::Auto,
                            "never" => PowerAdmin::Never,
                            _ => return None,
                        },
                    },
                    _ => return None,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_round_trips_through_key_and_value() {
        let all = [
            Setting::CdpRun(false),
            Setting::CdpTimer(30),
            Setting::CdpHoldtime(120),
            Setting::CdpAdvertiseV2(false),
            Setting::LldpRun(true),
            Setting::LldpTimer(65534),
            Setting::LldpHoldtime(0),
            Setting::CdpEnable {
                interface: "sw-ph0".into(),
                on: false,
            },
            Setting::LldpTransmit {
                interface: "a.b".into(),
                on: false,
            },
            Setting::LldpReceive {
                interface: "eth0".into(),
                on: true,
            },
            Setting::PowerInline {
                interface: "sw-ph3".into(),
                admin: PowerAdmin::Never,
            },
        ];
        for s in all {
            assert_eq!(
                Setting::from_kv(&s.key(), &s.value()),
                Some(s.clone()),
                "{s:?}"
            );
        }
        assert_eq!(Setting::from_kv("cdp.timer", "x"), None);
        assert_eq!(Setting::from_kv("if.x.unknown", "1"), None);
        assert_eq!(Setting::from_kv("nope", "1"), None);
    }
}
