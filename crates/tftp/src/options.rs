//! Option negotiation (RFC 2347) for blksize (2348), timeout and tsize (2349) and windowsize
//! (7440), server side.
//!
//! Only options the client asked for, with values in their RFC range, are answered; anything
//! else is ignored (RFC 2347 lets a server ignore any option), so a client that asked for
//! nothing never gets an OACK.

use std::time::Duration;

/// RFC 2348 range of `blksize`.
pub const BLKSIZE_MIN: u16 = 8;
pub const BLKSIZE_MAX: u16 = 65464;
/// Block size without options (RFC 1350).
pub const DEFAULT_BLKSIZE: u16 = 512;

/// What a server is willing to grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionLimits {
    /// Largest block the server sends; 1468 keeps DATA inside a 1500-byte Ethernet MTU.
    pub max_blksize: u16,
    /// Largest window (RFC 7440); 1 disables windowing.
    pub max_windowsize: u16,
    /// Whether a client's `timeout` is honoured (else the option is ignored).
    pub accept_timeout: bool,
    /// Whether `tsize` is answered.
    pub accept_tsize: bool,
}

impl Default for OptionLimits {
    fn default() -> Self {
        OptionLimits {
            max_blksize: 1468,
            max_windowsize: 16,
            accept_timeout: true,
            accept_tsize: true,
        }
    }
}

/// The outcome of negotiation: the transfer parameters and the OACK contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub blksize: u16,
    pub windowsize: u16,
    /// The client's retransmission timeout, when it asked for one and we accepted it.
    pub timeout: Option<Duration>,
    /// The size we announced, when the client asked for it.
    pub tsize: Option<u64>,
    /// Accepted options, in the client's order, with our values (empty: no OACK).
    pub oack: Vec<(String, String)>,
    /// Options we did not accept (unknown, duplicate, or out of range), for logging.
    pub ignored: Vec<String>,
}

/// Negotiates the options of a read request for a file of `file_len` bytes.
pub fn negotiate(options: &[(&str, &str)], file_len: u64, limits: &OptionLimits) -> Negotiated {
    let mut n = Negotiated {
        blksize: DEFAULT_BLKSIZE,
        windowsize: 1,
        timeout: None,
        tsize: None,
        oack: Vec::new(),
        ignored: Vec::new(),
    };
    let mut seen = [false; 4];
    for (name, value) in options {
        let key = name.to_ascii_lowercase();
        let slot = match key.as_str() {
            "blksize" => 0,
            "timeout" => 1,
            "tsize" => 2,
            "windowsize" => 3,
            _ => {
                n.ignored.push(key);
                continue;
            }
        };
        if seen[slot] {
            n.ignored.push(key);
            continue;
        }
        seen[slot] = true;
        let num: Option<u64> = parse_decimal(value);
        let accepted = match (slot, num) {
            (0, Some(v)) if (u64::from(BLKSIZE_MIN)..=u64::from(BLKSIZE_MAX)).contains(&v) => {
                let granted = (v as u16).min(limits.max_blksize.max(BLKSIZE_MIN));
                n.blksize = granted;
                Some(granted.to_string())
            }
            (1, Some(v)) if limits.accept_timeout && (1..=255).contains(&v) => {
                n.timeout = Some(Duration::from_secs(v));
                Some(v.to_string())
            }
            (2, Some(_)) if limits.accept_tsize => {
                n.tsize = Some(file_len);
                Some(file_len.to_string())
            }
            (3, Some(v)) if (1..=65535).contains(&v) => {
                let granted = (v as u16).min(limits.max_windowsize.max(1));
                n.windowsize = granted;
                Some(granted.to_string())
            }
            _ => None,
        };
        match accepted {
            Some(v) => n.oack.push((key, v)),
            None => n.ignored.push(key),
        }
    }
    n
}

/// Strict unsigned decimal (no sign, no spaces), at most 20 digits.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_options_means_no_oack() {
        let n = negotiate(&[], 4096, &OptionLimits::default());
        assert!(n.oack.is_empty());
        assert_eq!(n.blksize, 512);
        assert_eq!(n.windowsize, 1);
    }

    #[test]
    fn only_asked_options_are_answered() {
        let n = negotiate(
            &[("BLKSIZE", "1428"), ("tsize", "0")],
            4096,
            &OptionLimits::default(),
        );
        assert_eq!(
            n.oack,
            vec![
                ("blksize".to_string(), "1428".to_string()),
                ("tsize".to_string(), "4096".to_string())
            ]
        );
        assert_eq!(n.blksize, 1428);
        assert_eq!(n.tsize, Some(4096));
    }

    #[test]
    fn blksize_is_bounded_and_out_of_range_ignored() {
        let lim = OptionLimits::default();
        assert_eq!(negotiate(&[("blksize", "65464")], 1, &lim).blksize, 1468);
        let n = negotiate(&[("blksize", "7")], 1, &lim);
        assert!(n.oack.is_empty());
        assert_eq!(n.blksize, 512);
        assert!(negotiate(&[("blksize", "65465")], 1, &lim).oack.is_empty());
        assert!(negotiate(&[("blksize", "-1")], 1, &lim).oack.is_empty());
        assert!(
            negotiate(&[("blksize", "99999999999999999999999")], 1, &lim)
                .oack
                .is_empty()
        );
    }

    #[test]
    fn timeout_exact_or_omitted() {
        let lim = OptionLimits::default();
        let n = negotiate(&[("timeout", "3")], 1, &lim);
        assert_eq!(n.timeout, Some(Duration::from_secs(3)));
        assert_eq!(n.oack, vec![("timeout".into(), "3".into())]);
        assert!(negotiate(&[("timeout", "0")], 1, &lim).oack.is_empty());
        assert!(negotiate(&[("timeout", "256")], 1, &lim).oack.is_empty());
    }

    #[test]
    fn windowsize_bounded_and_duplicates_ignored() {
        let lim = OptionLimits::default();
        let n = negotiate(&[("windowsize", "64"), ("windowsize", "2")], 1, &lim);
        assert_eq!(n.windowsize, 16);
        assert_eq!(n.oack.len(), 1);
        assert_eq!(n.ignored, vec!["windowsize".to_string()]);
    }
}
