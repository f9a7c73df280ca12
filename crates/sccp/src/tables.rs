//! Fixed tables: the standard soft-key template and sets (reference §5.5, §5.6), protocol
//! versions, device types, reset types, and a civil-date helper for DefineTimeDate.

use std::sync::OnceLock;

use crate::frame::Frame;
use crate::msg::{Message, SoftKeyDef, SoftKeySet, SoftKeySetRes, SoftKeyTemplateRes};
use crate::text::Text;

/// Protocol versions a server may answer (chan-sccp's table).
pub const VERSIONS: [u8; 14] = [3, 5, 8, 9, 10, 11, 15, 16, 17, 18, 19, 20, 21, 22];

/// The version to speak: the highest of [`VERSIONS`] ≤ both maxima, at least 3.
pub fn negotiate(phone_max: u8, server_max: u8) -> u8 {
    let cap = phone_max.min(server_max);
    VERSIONS
        .iter()
        .copied()
        .filter(|v| *v <= cap)
        .max()
        .unwrap_or(3)
}

/// Header version field for a server message (reference §1.2 rule, as chan-sccp does).
pub fn header_version_for(id: u32, version: u8) -> u32 {
    match id {
        0x0100 | 0x0081 | 0x0118 | 0x009D => 0,
        _ if version >= 10 => u32::from(version),
        _ => 0,
    }
}

/// Reset message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetType {
    /// Full reboot.
    Reset = 1,
    /// Quick re-registration.
    Restart = 2,
    /// Apply changed configuration.
    ApplyConfig = 3,
}

impl ResetType {
    pub fn from_wire(v: u32) -> Option<Self> {
        match v {
            1 => Some(ResetType::Reset),
            2 => Some(ResetType::Restart),
            3 => Some(ResetType::ApplyConfig),
            _ => None,
        }
    }
}

/// (label index for `0x80,<n>` or plain text, event) of template entries 1..=32.
const SOFTKEYS: [(u8, &str); 32] = [
    (1, ""),
    (2, ""),
    (3, ""),
    (4, ""),
    (5, ""),
    (6, ""),
    (7, ""),
    (8, ""),
    (9, ""),
    (10, ""),
    (11, ""),
    (12, ""),
    (13, ""),
    (14, ""),
    (15, ""),
    (16, ""),
    (17, ""),
    (18, ""),
    (0, "Monitor"),
    (65, ""),
    (67, ""),
    (63, ""),
    (79, ""),
    (78, ""),
    (54, ""),
    (62, ""),
    (77, ""),
    (80, ""),
    (88, ""),
    (60, ""),
    (0, ""),
    (0, "Dial"),
];

/// The standard 32-entry template: entry *i* sends event *i*.
pub fn softkey_template() -> Vec<SoftKeyDef> {
    SOFTKEYS
        .iter()
        .enumerate()
        .map(|(i, (label, text))| SoftKeyDef {
            label: if *label != 0 {
                Text::from_raw(&[0x80, *label])
            } else {
                Text::from(*text)
            },
            event: i as u32 + 1,
        })
        .collect()
}

/// chan-sccp's default sets, by template index.
const SETS: [&[u8]; 13] = [
    &[1, 2, 5, 6, 7, 17, 18, 22, 25],
    &[3, 9, 4, 28, 13, 23, 14, 19, 29],
    &[10, 2, 9, 4, 23, 24, 27, 28, 16],
    &[11, 9, 26, 28],
    &[1, 9, 25, 5, 6, 7, 17, 18, 16, 21],
    &[3, 9, 4, 13, 14, 24, 27, 19, 29, 16, 5, 6],
    &[8, 9, 32],
    &[23, 2, 9, 3, 29, 19],
    &[31, 9, 4],
    &[10, 2, 9],
    &[1, 2, 17, 18],
    &[1, 2, 21, 30],
    &[10, 2, 9, 15],
];

/// The 13 context sets (OnHook … HoldConference).
pub fn softkey_sets() -> Vec<SoftKeySet> {
    SETS.iter()
        .map(|keys| {
            let mut s = SoftKeySet::default();
            for (pos, k) in keys.iter().enumerate().take(16) {
                s.template_index[pos] = *k;
                s.info_index[pos] = 300 + u16::from(*k);
            }
            s
        })
        .collect()
}

/// Model name of a device type, for logs and RIS (subset of §5.1).
pub fn model_name(device_type: u32) -> Option<&'static str> {
    Some(match device_type {
        1 => "30SP+",
        2 => "12SP+",
        3 => "12SP",
        4 => "12",
        5 => "30VIP",
        6 => "7910",
        7 => "7960",
        8 => "7940",
        9 => "7935",
        12 => "ATA186",
        13 => "ATA188",
        115 => "7941",
        119 => "7971",
        302 => "7985",
        307 => "7911",
        308 => "7961G-GE",
        309 => "7941G-GE",
        348 => "7931",
        365 => "7921",
        369 => "7906",
        404 => "7962",
        431 => "7937",
        434 => "7942",
        435 => "7945",
        436 => "7965",
        437 => "7975",
        484 => "7925",
        495 => "6921",
        496 => "6941",
        497 => "6961",
        547 => "6901",
        548 => "6911",
        564 => "6945",
        577 => "7926",
        585 => "8945",
        586 => "8941",
        20000 => "7905",
        30002 => "7920",
        30006 => "7970",
        30007 => "7912",
        30008 => "7902",
        30016 => "IPCommunicator",
        30018 => "7961",
        30019 => "7936",
        _ => return None,
    })
}

/// Local civil time of a Unix timestamp: (year, month, day, weekday 0=Sunday, h, m, s).
pub fn civil(unix: i64) -> (u32, u32, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    let wday = (days + 4).rem_euclid(7);
    (
        y as u32,
        m as u32,
        d as u32,
        wday as u32,
        (secs / 3600) as u32,
        (secs / 60 % 60) as u32,
        (secs % 60) as u32,
    )
}

/// Encoded frames are the same for every phone: build them once per header version.
fn cached(
    cache: &'static [OnceLock<Vec<u8>>; 23],
    hv: u32,
    build: fn() -> Message,
) -> &'static [u8] {
    match cache.get(hv as usize) {
        Some(cell) => cell.get_or_init(|| Frame::new(hv, build()).to_bytes()),
        None => Box::leak(Frame::new(hv, build()).to_bytes().into_boxed_slice()),
    }
}

static SK_TEMPLATE: [OnceLock<Vec<u8>>; 23] = [const { OnceLock::new() }; 23];
static SK_SETS: [OnceLock<Vec<u8>>; 23] = [const { OnceLock::new() }; 23];

/// The SoftKeyTemplateRes record for a header version.
pub fn softkey_template_frame(hv: u32) -> &'static [u8] {
    cached(&SK_TEMPLATE, hv, || {
        let keys = softkey_template();
        let n = keys.len() as u32;
        Message::SoftKeyTemplateRes(SoftKeyTemplateRes {
            offset: 0,
            count: n,
            total: n,
            keys,
        })
    })
}

/// The SoftKeySetRes record for a header version.
pub fn softkey_sets_frame(hv: u32) -> &'static [u8] {
    cached(&SK_SETS, hv, || {
        let sets = softkey_sets();
        let n = sets.len() as u32;
        Message::SoftKeySetRes(SoftKeySetRes {
            offset: 0,
            count: n,
            total: n,
            sets,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 4, 0, 0, 0));
        // 2024-02-29 12:34:56 UTC, a Thursday.
        assert_eq!(civil(1_709_210_096), (2024, 2, 29, 4, 12, 34, 56));
        assert_eq!(civil(1_764_000_000), (2025, 11, 24, 1, 16, 0, 0));
    }

    #[test]
    fn negotiation_picks_the_highest_common_version() {
        assert_eq!(negotiate(22, 22), 22);
        assert_eq!(negotiate(14, 22), 11);
        assert_eq!(negotiate(0, 22), 3);
        assert_eq!(negotiate(22, 17), 17);
        assert_eq!(header_version_for(0x0081, 22), 0);
        assert_eq!(header_version_for(0x0092, 11), 11);
        assert_eq!(header_version_for(0x0092, 8), 0);
    }

    #[test]
    fn softkey_tables_have_cucm_shape() {
        let t = softkey_template();
        assert_eq!(t.len(), 32);
        assert_eq!(t[10].event, 11);
        assert_eq!(t[10].label.raw(), [0x80, 11]);
        let sets = softkey_sets();
        assert_eq!(sets[3].template_index[..4], [11, 9, 26, 28]);
        assert_eq!(sets[3].info_index[0], 311);
        assert_eq!(softkey_template_frame(0).len(), 12 + 652);
        assert_eq!(softkey_sets_frame(22).len(), 12 + 780);
    }
}
