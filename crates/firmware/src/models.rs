//! Which phone models a load is for and the `termNN.default.loads` name per model
//! (reference/firmware.md §1.3, §4). Models are catalogue numbers (`7965`).

/// Release manifest prefixes (case-insensitive) -> models.
static PREFIXES: &[(&str, &[&str])] = &[
    ("SCCP11.", &["7906", "7911"]),
    ("SIP11.", &["7906", "7911"]),
    ("SCCP41.", &["7941", "7961", "7941G-GE", "7961G-GE"]),
    ("SIP41.", &["7941", "7961", "7941G-GE", "7961G-GE"]),
    ("SCCP42.", &["7942", "7962"]),
    ("SIP42.", &["7942", "7962"]),
    ("SCCP45.", &["7945", "7965"]),
    ("SIP45.", &["7945", "7965"]),
    ("SCCP70.", &["7970", "7971"]),
    ("SIP70.", &["7970", "7971"]),
    ("SCCP75.", &["7975"]),
    ("SIP75.", &["7975"]),
    ("P003", &["7940", "7960"]),
    ("P0S3", &["7940", "7960"]),
    ("SCCP69xx.", &["6921", "6941", "6961"]),
    ("SCCP6901.", &["6901"]),
    ("SCCP6945.", &["6945"]),
    ("SCCP894x.", &["8941", "8945"]),
    ("CP7921G-", &["7921"]),
    ("CP7925G-", &["7925"]),
    ("CP7926G-", &["7926"]),
    ("sip78xx.", &["7811", "7821", "7841", "7861"]),
    ("sip8845_65.", &["8845", "8865"]),
    ("sip88xx.", &["8811", "8841", "8851", "8861"]),
    ("sip7832.", &["7832"]),
    ("sip8832.", &["8832"]),
];

/// termNN -> model.
static TERMS: &[(&str, &str)] = &[
    ("term06", "7906"),
    ("term11", "7911"),
    ("term41", "7941"),
    ("term61", "7961"),
    ("term42", "7942"),
    ("term62", "7962"),
    ("term45", "7945"),
    ("term65", "7965"),
    ("term70", "7970"),
    ("term71", "7971"),
    ("term75", "7975"),
];

/// The models a load (name without `.loads`) is for; empty when the name is not known.
pub fn models_for_load(load: &str) -> Vec<&'static str> {
    let l = load.to_ascii_lowercase();
    if let Some((_, m)) = TERMS.iter().find(|(t, _)| l == format!("{t}.default")) {
        return vec![m];
    }
    PREFIXES
        .iter()
        .find(|(p, _)| l.starts_with(&p.to_ascii_lowercase()))
        .map(|(_, m)| m.to_vec())
        .unwrap_or_default()
}

/// `termNN.default` for a model, for phones without a load to follow.
pub fn term_default(model: &str) -> Option<String> {
    TERMS
        .iter()
        .find(|(_, m)| *m == model)
        .map(|(t, _)| format!("{t}.default"))
}

/// Signalling protocol of a load: from its name (`SCCP…`, `P003…` = SCCP; `SIP…`, `sip…`,
/// `P0S3…` = SIP), else from its images (`jar45sip`/`cvm45sip` = SIP, `…sccp` = SCCP);
/// `None` when neither tells.
pub fn protocol_of(load: &str, images: &[&str]) -> Option<&'static str> {
    let l = load.to_ascii_lowercase();
    if l.starts_with("sccp") || (l.starts_with("p003") && !l.starts_with("p0s3")) {
        return Some("SCCP");
    }
    if l.starts_with("sip") || l.starts_with("p0s3") {
        return Some("SIP");
    }
    for i in images {
        let i = i.to_ascii_lowercase();
        if i.starts_with("jar") || i.starts_with("cvm") {
            let stem = i.split('.').next().unwrap_or("");
            if stem.ends_with("sip") {
                return Some("SIP");
            }
            if stem.ends_with("sccp") {
                return Some("SCCP");
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_names_map_to_models_and_protocols() {
        assert_eq!(models_for_load("SCCP45.9-4-2SR4-3S"), ["7945", "7965"]);
        assert_eq!(models_for_load("term65.default"), ["7965"]);
        assert_eq!(
            models_for_load("sip88xx.14-0-1-0001-135"),
            ["8811", "8841", "8851", "8861"]
        );
        assert_eq!(models_for_load("sip8845_65.14-0-1"), ["8845", "8865"]);
        assert!(models_for_load("whatever").is_empty());
        assert_eq!(term_default("7942").as_deref(), Some("term42.default"));
        assert_eq!(protocol_of("P0030801SR02", &[]), Some("SCCP"));
        assert_eq!(protocol_of("P0S3-8-12-00", &[]), Some("SIP"));
        assert_eq!(
            protocol_of("term65.default", &["jar45sip.9-4-2.sbn"]),
            Some("SIP")
        );
        assert_eq!(
            protocol_of("term65.default", &["jar45sccp.9-4-2.sbn"]),
            Some("SCCP")
        );
        assert_eq!(protocol_of("CP7921G-1.4.6.3", &["APPS-1.sbn"]), None);
    }
}
