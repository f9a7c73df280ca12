//! Field checks shared by the SQLite store, the CSV importer and any future backend.

use crate::error::StoreError;
use crate::model::*;

/// Parses `SEP<MAC>` or a bare MAC in any notation into the canonical device name.
pub fn device_name(field: &str, s: &str) -> Result<(String, Mac), StoreError> {
    let mac = Mac::from_device_name(s).map_err(|_| {
        StoreError::invalid(
            field,
            "a MAC address of 12 hex digits, bare or SEP-prefixed (e.g. 001B54AABBCC or SEP001B54AABBCC)",
            s,
        )
    })?;
    Ok((mac.device_name(), mac))
}

/// Resolves a model spelling to its canonical catalogue name and checks the protocol.
pub fn model(
    field: &str,
    s: &str,
    protocol: Protocol,
) -> Result<&'static cnf::ModelInfo, StoreError> {
    let m = cnf::lookup(s).ok_or_else(|| {
        StoreError::invalid(
            field,
            format!("a known model ({})", cnf::catalog::model_names().join(", ")),
            s,
        )
    })?;
    if !m.supports(protocol) {
        let what = if m.family == cnf::Family::Legacy7900 {
            format!(
                "SCCP ({} SIP firmware reads SIP<MAC>.cnf, which phoneboot does not build)",
                m.name
            )
        } else {
            format!("a protocol {} supports", m.name)
        };
        return Err(StoreError::invalid(field, what, protocol.as_str()));
    }
    Ok(m)
}

/// A directory number: 1..=24 characters of digits, `*`, `#`, optionally a leading `+`.
pub fn dn(field: &str, s: &str) -> Result<(), StoreError> {
    let body = s.strip_prefix('+').unwrap_or(s);
    let ok = !body.is_empty()
        && s.len() <= 24
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#');
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            "a directory number of 1-24 digits (also * # and a leading +)",
            s,
        ))
    }
}

/// Checks that `dn` lies in one of `ranges` (no ranges configured = any DN).
pub fn dn_in_ranges(field: &str, s: &str, ranges: &[DnRange]) -> Result<(), StoreError> {
    if ranges.is_empty() {
        return Ok(());
    }
    let n: Option<u128> = s.parse().ok();
    let inside = n.is_some_and(|n| {
        ranges.iter().any(|r| {
            matches!((r.start.parse::<u128>(), r.end.parse::<u128>()), (Ok(a), Ok(b)) if a <= n && n <= b)
        })
    });
    if inside {
        Ok(())
    } else {
        let list: Vec<String> = ranges
            .iter()
            .map(|r| format!("{}-{}", r.start, r.end))
            .collect();
        Err(StoreError::invalid(
            field,
            format!(
                "a directory number inside a configured range ({})",
                list.join(", ")
            ),
            s,
        ))
    }
}

/// Speed-dial number: the dial string, 1..=32 characters of digits, `*#+,`.
pub fn speed_dial_number(field: &str, s: &str) -> Result<(), StoreError> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.chars().all(|c| c.is_ascii_digit() || "*#+,".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            "a dial string of 1-32 digits (also * # + ,)",
            s,
        ))
    }
}

/// A free-text field: at most `max` characters, no control characters.
pub fn text(field: &str, s: &str, max: usize) -> Result<(), StoreError> {
    if s.chars().count() > max || s.chars().any(|c| c.is_control()) {
        return Err(StoreError::invalid(
            field,
            format!("text of at most {max} characters without control characters"),
            s,
        ));
    }
    Ok(())
}

/// Longest line text label, display name, SIP auth name and SIP auth password the phone
/// firmware takes: `featureLabel`, `displayName`, `authName` and `authPassword` of
/// `SEP<MAC>.cnf.xml` are each documented as at most 30 characters (usecallmanager.nz,
/// "SEPMAC.cnf.xml"); CUCM's line text label and ASCII display fields have the same limit.
pub const PHONE_TEXT_MAX: usize = 30;

/// A line text label (`featureLabel`) or a line appearance's label.
pub fn line_label(field: &str, s: &str) -> Result<(), StoreError> {
    phone_text(field, s, "a line text label")
}

/// A caller-id display name (`displayName`).
pub fn display_name(field: &str, s: &str) -> Result<(), StoreError> {
    phone_text(field, s, "a display name")
}

/// A SIP digest user name (`authName`); also goes inside the quoted `username=` of the
/// phone's Authorization header, so no quote or backslash.
pub fn auth_name(field: &str, s: &str) -> Result<(), StoreError> {
    phone_text(field, s, "a SIP auth name")?;
    quote_safe(field, s, "a SIP auth name")
}

/// A SIP digest password (`authPassword`).
pub fn auth_password(field: &str, s: &str) -> Result<(), StoreError> {
    phone_text(field, s, "a SIP auth password")
}

fn phone_text(field: &str, s: &str, what: &str) -> Result<(), StoreError> {
    if s.chars().count() > PHONE_TEXT_MAX || s.chars().any(|c| c.is_control()) {
        return Err(StoreError::invalid(
            field,
            format!(
                "{what} of at most {PHONE_TEXT_MAX} characters without control characters (the phone firmware's limit)"
            ),
            s,
        ));
    }
    Ok(())
}

fn quote_safe(field: &str, s: &str, what: &str) -> Result<(), StoreError> {
    if s.contains(['"', '\\']) {
        return Err(StoreError::invalid(
            field,
            format!("{what} without \" or \\"),
            s,
        ));
    }
    Ok(())
}

/// A name (pool, group, node ...): 1..=50 characters of letters, digits, space, `-_.`.
pub fn name(field: &str, s: &str) -> Result<(), StoreError> {
    let ok = !s.trim().is_empty()
        && s.len() <= 50
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " -_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            "a name of 1-50 letters, digits, spaces, - _ or .",
            s,
        ))
    }
}

/// A pool's SIP registration interval: CUCM accepts 60..=3600 s for its station keepalive.
pub fn sip_register_interval(field: &str, secs: u32) -> Result<(), StoreError> {
    if (60..=3600).contains(&secs) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            "60 to 3600 seconds",
            secs.to_string(),
        ))
    }
}

pub fn security_mode(field: &str, m: u8) -> Result<(), StoreError> {
    if (1..=3).contains(&m) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            "1 (non-secure), 2 (authenticated) or 3 (encrypted)",
            m.to_string(),
        ))
    }
}

pub fn softkey_template(field: &str, s: &str) -> Result<(), StoreError> {
    if cnf::catalog::SOFTKEY_TEMPLATES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(s))
    {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            format!("one of {}", cnf::catalog::SOFTKEY_TEMPLATES.join(", ")),
            s,
        ))
    }
}

pub fn button_template(field: &str, s: &str) -> Result<(), StoreError> {
    if cnf::catalog::BUTTON_TEMPLATES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(s))
    {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            format!("one of {}", cnf::catalog::BUTTON_TEMPLATES.join(", ")),
            s,
        ))
    }
}

/// A firmware load name (without `.loads`): letters, digits, `.-_`, at most 64 characters.
pub fn load(field: &str, s: &str) -> Result<(), StoreError> {
    let ok = s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            "a load name such as SCCP45.9-4-2SR3-1S",
            s,
        ))
    }
}

/// A host name or address (`processNodeName` allows at most 50 characters).
pub fn host(field: &str, s: &str) -> Result<(), StoreError> {
    let ok = !s.is_empty()
        && s.len() <= 50
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:_[]".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            "a host name or IP address (at most 50 characters)",
            s,
        ))
    }
}

pub fn url(field: &str, s: &str) -> Result<(), StoreError> {
    let ok = s.is_empty()
        || (s.len() <= 255
            && (s.starts_with("http://") || s.starts_with("https://"))
            && !s.chars().any(|c| c.is_whitespace() || c.is_control()));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            "empty or an http(s):// URL of at most 255 characters",
            s,
        ))
    }
}

/// Checks a whole device (after canonicalisation) against the model's limits.
pub(crate) fn device(d: &Device) -> Result<(), StoreError> {
    let m = model("model", &d.model, d.protocol)?;
    text("description", &d.description, 128)?;
    name("device pool", &d.device_pool)?;
    button_template("button template", &d.button_template)?;
    softkey_template("softkey template", &d.softkey_template)?;
    text("owner", &d.owner, 128)?;
    security_mode("security mode", d.security_mode)?;
    load("load", &d.load_override)?;
    if d.lines.len() > usize::from(m.buttons) {
        return Err(StoreError::invalid(
            "lines",
            format!("at most {} lines on a {}", m.buttons, m.name),
            d.lines.len().to_string(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, l) in d.lines.iter().enumerate() {
        let f = format!("line {}", i + 1);
        dn(&f, &l.dn)?;
        if !seen.insert(l.dn.as_str()) {
            return Err(StoreError::invalid(
                f,
                "each DN at most once per device",
                &l.dn,
            ));
        }
        line_label(&format!("line {} label", i + 1), &l.label)?;
        display_name(&format!("line {} display", i + 1), &l.display)?;
    }
    if d.speed_dials.len() > 99 {
        return Err(StoreError::invalid(
            "speed dials",
            "at most 99",
            d.speed_dials.len().to_string(),
        ));
    }
    for (i, s) in d.speed_dials.iter().enumerate() {
        speed_dial_number(&format!("speed dial {}", i + 1), &s.number)?;
        text(&format!("speed dial {} label", i + 1), &s.label, 30)?;
    }
    Ok(())
}

pub(crate) fn line(l: &Line) -> Result<(), StoreError> {
    dn("directory number", &l.dn)?;
    line_label("label", &l.label)?;
    display_name("display name", &l.display_name)?;
    auth_name("SIP auth user", &l.auth_user)?;
    auth_password("SIP auth password", &l.auth_password)?;
    if !l.voicemail.is_empty() {
        dn("voicemail", &l.voicemail)?;
    }
    Ok(())
}

pub(crate) fn settings(s: &Settings) -> Result<(), StoreError> {
    url("authentication URL", &s.authentication_url)?;
    url("directory URL", &s.directory_url)?;
    url("idle URL", &s.idle_url)?;
    url("information URL", &s.information_url)?;
    url("messages URL", &s.messages_url)?;
    url("proxy server URL", &s.proxy_server_url)?;
    url("services URL", &s.services_url)?;
    text("ssh user", &s.ssh_user, 32)?;
    text("ssh password", &s.ssh_password, 64)?;
    text("phone password", &s.phone_password, 15)?;
    s.autoreg_protocol
        .parse::<Protocol>()
        .map_err(|e| StoreError::invalid("auto-registration protocol", "SCCP or SIP", e.0))?;
    if s.autoreg_enabled {
        let a: Option<u128> = s.autoreg_dn_start.parse().ok();
        let b: Option<u128> = s.autoreg_dn_end.parse().ok();
        match (a, b) {
            (Some(a), Some(b)) if a < b => {}
            _ => {
                return Err(StoreError::invalid(
                    "auto-registration DN range",
                    "a numeric start below the end (equal start and end disable it in CUCM)",
                    format!("{}-{}", s.autoreg_dn_start, s.autoreg_dn_end),
                ))
            }
        }
        name("auto-registration device pool", &s.autoreg_pool)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field_and_the_expectation() {
        let e = device_name("MAC ADDRESS", "SEP12345")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("MAC ADDRESS: expected a MAC address"), "{e}");
        assert!(e.contains("\"SEP12345\""));
        let e = model("DEVICE TYPE", "Cisco 1234", Protocol::Sccp)
            .unwrap_err()
            .to_string();
        assert!(e.contains("DEVICE TYPE: expected a known model"), "{e}");
        assert!(model("m", "Cisco 8851", Protocol::Sccp).is_err());
        assert!(model("m", "Cisco 7960", Protocol::Sip).is_err());
        assert!(model("m", "CP-7965G", Protocol::Sip).is_ok());
    }

    #[test]
    fn dn_ranges_bound_numbers() {
        let r = vec![DnRange {
            start: "1000".into(),
            end: "1999".into(),
        }];
        assert!(dn_in_ranges("dn", "1500", &r).is_ok());
        let e = dn_in_ranges("dn", "2000", &r).unwrap_err().to_string();
        assert!(e.contains("1000-1999"), "{e}");
        assert!(dn_in_ranges("dn", "+4930", &r).is_err());
        assert!(dn_in_ranges("dn", "2000", &[]).is_ok());
        assert!(dn("dn", "12a").is_err());
        assert!(dn("dn", "").is_err());
        assert!(dn("dn", "+491701234").is_ok());
    }
}
