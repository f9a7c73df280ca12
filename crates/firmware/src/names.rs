//! Which file names phones can request and which package members are kept.

/// A name a phone can ask for over TFTP/HTTP: ASCII letters, digits and `._-+`, at most 128
/// characters, not starting with `.` and without `..` (so never a path).
pub fn is_requestable(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
}

fn lower_ends(name: &str, exts: &[&str]) -> bool {
    let l = name.to_ascii_lowercase();
    exts.iter().any(|e| l.ends_with(e))
}

/// Firmware image or manifest names (any case): `.loads .sbn .sb2 .bin .sgn .zz* .zup`, and
/// the `.binN.sgn` parts (which end in `.sgn`).
pub fn is_image_name(name: &str) -> bool {
    let l = name.to_ascii_lowercase();
    lower_ends(
        name,
        &[".loads", ".sbn", ".sb2", ".bin", ".sgn", ".zup", ".sha512"],
    ) || l.rsplit('.').next().is_some_and(|e| e.starts_with("zz"))
}

/// Package members worth serving: firmware, manifests and tone/locale/ring files. Everything
/// else (installer scripts, database data) is dropped on import.
pub fn is_kept(name: &str) -> bool {
    is_image_name(name) || lower_ends(name, &[".jar", ".xml", ".raw", ".rwb", ".txt", ".pcm"])
}

/// Nested archives (locale COPs hold a second tar).
pub fn is_nested_archive(name: &str) -> bool {
    lower_ends(name, &[".tar", ".tar.gz", ".tgz"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requestable_names() {
        for ok in [
            "SCCP45.9-4-2SR4-3S.loads",
            "APPS-1.4.6.3.SBN",
            "sboot2.78xx.BE-01-004.sbn",
            "a+b.xml",
        ] {
            assert!(is_requestable(ok), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "a/b.sbn",
            "..",
            "a..b",
            "x y.sbn",
            "é.sbn",
            &"a".repeat(129),
        ] {
            assert!(!is_requestable(bad), "{bad}");
        }
    }

    #[test]
    fn kept_and_dropped_members() {
        for k in [
            "a.LOADS",
            "b.SBN",
            "BOOT69xx.0-0-0-14.zz.sgn",
            "SCCP894x.9-4-2SR1-2.bin9.sgn",
            "x.zz",
            "g3-tones.xml",
            "be-sccp.jar",
            "Chirp1.raw",
            "OS79XX.TXT",
        ] {
            assert!(is_kept(k), "{k}");
        }
        for d in ["install.sh", "db.sql", "README", "x.py"] {
            assert!(!is_kept(d), "{d}");
        }
    }
}
