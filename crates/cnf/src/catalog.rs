//! What phone models exist, how they are named, and what each one can do.
//!
//! Administrators write models in several ways (`Cisco 7965` in BAT files, `CP-7965G` on
//! the label and in DHCP option 60, `7965` by hand); everything is resolved here to one
//! canonical [`ModelInfo`]. Device-type numbers are the SCCP/CUCM type ids that also name
//! the `loadInformation<ID>` elements of `XMLDefault.cnf.xml` (reference §b.5). Default
//! load names are illustrative: the database (per-model default, per-device override)
//! decides what phones really get.

use std::fmt;
use std::str::FromStr;

/// Registration protocol of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Sccp,
    Sip,
}

impl Protocol {
    /// Upper-case name, as in `deviceProtocol` and BAT `DEVICE PROTOCOL`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Sccp => "SCCP",
            Protocol::Sip => "SIP",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A protocol name other than SCCP or SIP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected SCCP or SIP, found {0:?}")]
pub struct BadProtocol(pub String);

impl FromStr for Protocol {
    type Err = BadProtocol;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "SCCP" | "SKINNY" => Ok(Protocol::Sccp),
            "SIP" => Ok(Protocol::Sip),
            _ => Err(BadProtocol(s.to_string())),
        }
    }
}

/// Firmware families: models in one family share file layout and vendorConfig knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// 7940/7960: SCCP reads the XML file; their SIP firmware wants `SIP<MAC>.cnf` (not built).
    Legacy7900,
    /// 79x1/79x2/79x5/797x/7906/7911/7931 ("Java" phones): SCCP or SIP with XML config.
    Java7900,
    /// 7800 series, enterprise SIP firmware only.
    Sip7800,
    /// 8800 series, enterprise SIP firmware only.
    Sip8800,
    /// 8961/9951/9971, SIP only.
    Sip8900,
}

impl Family {
    /// Newer SIP families that carry the IPv6/dual-stack block and `inactiveLoadInformation`.
    pub fn is_enterprise_sip(&self) -> bool {
        matches!(self, Family::Sip7800 | Family::Sip8800 | Family::Sip8900)
    }
}

/// One phone model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelInfo {
    /// Canonical name, as in BAT `DEVICE TYPE` and the XMLDefault `model` attribute.
    pub name: &'static str,
    /// Model number (the token admins type).
    pub number: &'static str,
    pub family: Family,
    /// SCCP/CUCM device-type id.
    pub device_type: u32,
    pub sccp: bool,
    pub sip: bool,
    /// Line/feature buttons on the base phone (no expansion modules).
    pub buttons: u8,
    /// Default SCCP load when the database names none.
    pub sccp_load: Option<&'static str>,
    /// Default SIP load when the database names none.
    pub sip_load: Option<&'static str>,
}

impl ModelInfo {
    /// Whether a phone of this model can be provisioned with `protocol` through XML files.
    pub fn supports(&self, protocol: Protocol) -> bool {
        match protocol {
            Protocol::Sccp => self.sccp,
            Protocol::Sip => self.sip,
        }
    }

    /// The catalogue's default load for `protocol`.
    pub fn default_load(&self, protocol: Protocol) -> Option<&'static str> {
        match protocol {
            Protocol::Sccp => self.sccp_load,
            Protocol::Sip => self.sip_load,
        }
    }
}

macro_rules! model {
    ($num:literal, $fam:ident, $ty:literal, $sccp:expr, $sip:expr, $buttons:literal) => {
        ModelInfo {
            name: concat!("Cisco ", $num),
            number: $num,
            family: Family::$fam,
            device_type: $ty,
            sccp: $sccp.is_some(),
            sip: $sip.is_some(),
            buttons: $buttons,
            sccp_load: $sccp,
            sip_load: $sip,
        }
    };
}

const NONE: Option<&str> = None;

/// Every model phoneboot can provision, in XMLDefault order.
pub static MODELS: &[ModelInfo] = &[
    model!("7960", Legacy7900, 7, Some("P0030801SR02"), NONE, 6),
    model!("7940", Legacy7900, 8, Some("P0030801SR02"), NONE, 2),
    model!(
        "7906",
        Java7900,
        369,
        Some("SCCP11.9-4-2SR3-1S"),
        Some("SIP11.9-4-2SR3-1S"),
        1
    ),
    model!(
        "7911",
        Java7900,
        307,
        Some("SCCP11.9-4-2SR3-1S"),
        Some("SIP11.9-4-2SR3-1S"),
        1
    ),
    model!(
        "7931",
        Java7900,
        348,
        Some("SCCP31.9-4-2SR3-1S"),
        Some("SIP31.9-4-2SR3-1S"),
        24
    ),
    model!(
        "7941",
        Java7900,
        115,
        Some("SCCP41.9-4-2SR3-1S"),
        Some("SIP41.9-4-2SR3-1S"),
        2
    ),
    model!(
        "7961",
        Java7900,
        30018,
        Some("SCCP41.9-4-2SR3-1S"),
        Some("SIP41.9-4-2SR3-1S"),
        6
    ),
    // The Gigabit variants: device types 309/308 in CUCM's `typemodel` table (as dumped by
    // public AXL tooling) and chan-sccp's XMLDefault; same SCCP41/SIP41 loads as 7941/7961.
    model!(
        "7941G-GE",
        Java7900,
        309,
        Some("SCCP41.9-4-2SR3-1S"),
        Some("SIP41.9-4-2SR3-1S"),
        2
    ),
    model!(
        "7961G-GE",
        Java7900,
        308,
        Some("SCCP41.9-4-2SR3-1S"),
        Some("SIP41.9-4-2SR3-1S"),
        6
    ),
    model!(
        "7942",
        Java7900,
        434,
        Some("SCCP42.9-4-2SR3-1S"),
        Some("SIP42.9-4-2SR3-1S"),
        2
    ),
    model!(
        "7962",
        Java7900,
        404,
        Some("SCCP42.9-4-2SR3-1S"),
        Some("SIP42.9-4-2SR3-1S"),
        6
    ),
    model!(
        "7945",
        Java7900,
        435,
        Some("SCCP45.9-4-2SR3-1S"),
        Some("SIP45.9-4-2SR3-1S"),
        2
    ),
    model!(
        "7965",
        Java7900,
        436,
        Some("SCCP45.9-4-2SR3-1S"),
        Some("SIP45.9-4-2SR3-1S"),
        6
    ),
    model!(
        "7970",
        Java7900,
        30006,
        Some("SCCP70.9-4-2SR3-1S"),
        Some("SIP70.9-4-2SR3-1S"),
        8
    ),
    model!(
        "7971",
        Java7900,
        119,
        Some("SCCP70.9-4-2SR3-1S"),
        Some("SIP70.9-4-2SR3-1S"),
        8
    ),
    model!(
        "7975",
        Java7900,
        437,
        Some("SCCP75.9-4-2SR3-1S"),
        Some("SIP75.9-4-2SR3-1S"),
        8
    ),
    // Device-type ids of the SIP-only models are CUCM's `typemodel` enums (7811 36213,
    // 7832 36247, 8811 36217, 8845 36224, 8865 36225, 8851NR 36232, 8865NR 36248,
    // 8832 36258), as a public AXL tool's dump of that table lists them; phones do not send
    // them over SIP, so they name the XMLDefault `loadInformation<N>` entries and the API.
    model!(
        "7811",
        Sip7800,
        36213,
        NONE,
        Some("sip78xx.14-2-1-0001-14"),
        1
    ),
    model!(
        "7821",
        Sip7800,
        621,
        NONE,
        Some("sip78xx.14-2-1-0001-14"),
        2
    ),
    // Conference phone with 7800-style SIP firmware (`sip7832.<ver>.loads`, firmware.md §4).
    model!(
        "7832",
        Sip7800,
        36247,
        NONE,
        Some("sip7832.14-2-1-0001-14"),
        1
    ),
    model!(
        "7841",
        Sip7800,
        622,
        NONE,
        Some("sip78xx.14-2-1-0001-14"),
        4
    ),
    model!(
        "7861",
        Sip7800,
        623,
        NONE,
        Some("sip78xx.14-2-1-0001-14"),
        16
    ),
    model!(
        "8811",
        Sip8800,
        36217,
        NONE,
        Some("sip88xx.14-2-1-0001-14"),
        5
    ),
    // Conference phone, 8800-style SIP firmware (`sip8832.<ver>.loads`, firmware.md §4).
    model!(
        "8832",
        Sip8800,
        36258,
        NONE,
        Some("sip8832.14-2-1-0001-14"),
        1
    ),
    model!(
        "8841",
        Sip8800,
        683,
        NONE,
        Some("sip88xx.14-2-1-0001-14"),
        5
    ),
    model!(
        "8845",
        Sip8800,
        36224,
        NONE,
        Some("sip8845_65.14-2-1-0001-14"),
        5
    ),
    model!(
        "8851",
        Sip8800,
        684,
        NONE,
        Some("sip88xx.14-2-1-0001-14"),
        5
    ),
    // "No Radio" variants (no Wi-Fi/Bluetooth): same firmware as the base model.
    model!(
        "8851NR",
        Sip8800,
        36232,
        NONE,
        Some("sip88xx.14-2-1-0001-14"),
        5
    ),
    model!(
        "8861",
        Sip8800,
        685,
        NONE,
        Some("sip88xx.14-2-1-0001-14"),
        5
    ),
    model!(
        "8865",
        Sip8800,
        36225,
        NONE,
        Some("sip8845_65.14-2-1-0001-14"),
        5
    ),
    model!(
        "8865NR",
        Sip8800,
        36248,
        NONE,
        Some("sip8845_65.14-2-1-0001-14"),
        5
    ),
    model!("8961", Sip8900, 540, NONE, Some("sip8961.9-4-2SR4-3"), 5),
    model!("9951", Sip8900, 537, NONE, Some("sip9951.9-4-2SR4-3"), 5),
    model!("9971", Sip8900, 493, NONE, Some("sip9971.9-4-2SR4-3"), 6),
];

/// Resolves any usual spelling of a model: `Cisco 7965`, `CP-7965G`, `cp-7965`, `7965`,
/// `Cisco IP Phone 7965`, `SEP Cisco 7965`-style noise is not accepted.
pub fn lookup(s: &str) -> Option<&'static ModelInfo> {
    let mut t = s.trim().to_ascii_uppercase();
    for prefix in ["CISCO SYSTEMS, INC. ", "CISCO ", "IP PHONE ", "CP-", "CP "] {
        if let Some(rest) = t.strip_prefix(prefix) {
            t = rest.trim_start().to_string();
        }
    }
    // `CP-7941G-GE` and `8851NR` are models of their own; otherwise the trailing `G` of a
    // part number (`CP-7965G`) is noise.
    if let Some(m) = MODELS.iter().find(|m| m.number == t) {
        return Some(m);
    }
    let t = t.trim_end_matches('G');
    MODELS.iter().find(|m| m.number == t)
}

/// The model whose SCCP/CUCM device type is `t` (SCCP Register.deviceType), for
/// auto-registration of an unknown phone.
pub fn by_device_type(t: u32) -> Option<&'static ModelInfo> {
    MODELS.iter().find(|m| m.device_type == t)
}

/// Canonical names of all models, for error messages.
pub fn model_names() -> Vec<&'static str> {
    MODELS.iter().map(|m| m.name).collect()
}

/// A user locale known to the catalogue: directory name, uid and language code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserLocale {
    pub name: &'static str,
    pub uid: u32,
    pub lang_code: &'static str,
}

/// User locales (directory names as Cisco locale installers create them).
pub static USER_LOCALES: &[UserLocale] = &[
    UserLocale {
        name: "English_United_States",
        uid: 1,
        lang_code: "en_US",
    },
    UserLocale {
        name: "French_France",
        uid: 2,
        lang_code: "fr_FR",
    },
    UserLocale {
        name: "German_Germany",
        uid: 3,
        lang_code: "de_DE",
    },
    UserLocale {
        name: "Russian_Russian_Federation",
        uid: 4,
        lang_code: "ru_RU",
    },
    UserLocale {
        name: "Spanish_Spain",
        uid: 5,
        lang_code: "es_ES",
    },
    UserLocale {
        name: "Italian_Italy",
        uid: 6,
        lang_code: "it_IT",
    },
    UserLocale {
        name: "Dutch_Netherlands",
        uid: 7,
        lang_code: "nl_NL",
    },
    UserLocale {
        name: "Norwegian_Norway",
        uid: 8,
        lang_code: "no_NO",
    },
    UserLocale {
        name: "Portuguese_Portugal",
        uid: 9,
        lang_code: "pt_PT",
    },
    UserLocale {
        name: "Swedish_Sweden",
        uid: 10,
        lang_code: "sv_SE",
    },
    UserLocale {
        name: "Danish_Denmark",
        uid: 11,
        lang_code: "da_DK",
    },
    UserLocale {
        name: "Japanese_Japan",
        uid: 12,
        lang_code: "ja_JP",
    },
];

/// A network locale (tones/cadences directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkLocale {
    pub name: &'static str,
    pub uid: u32,
}

/// Network locales; uids follow CUCM's country numbering where known [unverified beyond
/// United_States = 64, which the reference example uses].
pub static NETWORK_LOCALES: &[NetworkLocale] = &[
    NetworkLocale {
        name: "United_States",
        uid: 64,
    },
    NetworkLocale {
        name: "United_Kingdom",
        uid: 63,
    },
    NetworkLocale {
        name: "Germany",
        uid: 22,
    },
    NetworkLocale {
        name: "France",
        uid: 21,
    },
    NetworkLocale {
        name: "Netherlands",
        uid: 42,
    },
    NetworkLocale {
        name: "Spain",
        uid: 57,
    },
    NetworkLocale {
        name: "Italy",
        uid: 31,
    },
    NetworkLocale {
        name: "Canada",
        uid: 11,
    },
    NetworkLocale {
        name: "Australia",
        uid: 4,
    },
    NetworkLocale {
        name: "Japan",
        uid: 33,
    },
];

pub fn user_locale(name: &str) -> Option<&'static UserLocale> {
    USER_LOCALES
        .iter()
        .find(|l| l.name.eq_ignore_ascii_case(name))
}

pub fn network_locale(name: &str) -> Option<&'static NetworkLocale> {
    NETWORK_LOCALES
        .iter()
        .find(|l| l.name.eq_ignore_ascii_case(name))
}

/// Soft-key templates phoneboot knows how to render.
pub static SOFTKEY_TEMPLATES: &[&str] = &["Standard User", "Standard Feature"];

/// Phone button templates phoneboot knows (the SCCP service expands them).
pub static BUTTON_TEMPLATES: &[&str] = &["Standard", "Lines Only", "Speed Dials First"];

/// File name of the soft-key file rendered for a template, e.g. `softkeys-standard-user.xml`.
pub fn softkey_file_name(template: &str) -> String {
    let mut slug = String::with_capacity(template.len());
    for ch in template.chars() {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    format!("softkeys-{}.xml", slug.trim_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_spellings_resolve_to_one_entry() {
        for s in [
            "Cisco 7965",
            "CP-7965G",
            "cp-7965",
            "7965",
            " cisco ip phone 7965 ",
        ] {
            assert_eq!(lookup(s).map(|m| m.device_type), Some(436), "{s}");
        }
        assert!(lookup("Cisco 1234").is_none());
        assert_eq!(lookup("CP-7941G-GE").map(|m| m.device_type), Some(309));
        assert_eq!(lookup("Cisco 7961G-GE").map(|m| m.device_type), Some(308));
        assert_eq!(lookup("CP-8851NR").map(|m| m.device_type), Some(36232));
        assert_eq!(lookup("8865NR").map(|m| m.device_type), Some(36248));
        assert_eq!(lookup("CP-7941G").map(|m| m.device_type), Some(115));
        assert!(lookup("").is_none());
    }

    #[test]
    fn device_types_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for m in MODELS {
            assert!(seen.insert(m.device_type), "{}", m.name);
            assert!(m.sccp || m.sip);
            assert_eq!(m.sccp, m.sccp_load.is_some());
        }
    }

    #[test]
    fn protocols_parse_case_insensitively() {
        assert_eq!("sip".parse::<Protocol>(), Ok(Protocol::Sip));
        assert_eq!(" SCCP ".parse::<Protocol>(), Ok(Protocol::Sccp));
        assert!("h323".parse::<Protocol>().is_err());
    }

    #[test]
    fn softkey_names_are_slugs() {
        assert_eq!(
            softkey_file_name("Standard User"),
            "softkeys-standard-user.xml"
        );
        assert_eq!(softkey_file_name("A & B"), "softkeys-a-b.xml");
    }
}
