//! The `.loads` manifest: a signed header (optional here) and a small text body naming the
//! images a phone fetches, in order. Every body dialect of reference/firmware.md §2.1:
//!
//! * 79x1/79x2/79x5/797x: `#` comments (`# RELEASE load version …`, `#HARDWARE_COMP_1 n`),
//!   then one image name per line (trailing spaces, CRLF);
//! * 7921/7925/7926: `#? KEY value` attributes, `NAME SIZE HASH32` lines, `#+ NAME SIZE HASH`
//!   optional parts;
//! * 7940/7960: image names then `LA_VERSION=…`;
//! * 69xx/894x: a bare list;
//! * 78xx/88xx: INI with one `[PLATFORM_n]` section per hardware variant (key names are
//!   unverified, so any `key=value` whose value is an image name counts as an image, the rest
//!   are kept as attributes).

use serde::Serialize;

use crate::names::{is_image_name, is_requestable};
use crate::sgn::{self, SignedHeader};

/// More image names than any Cisco manifest carries (the largest lists a dozen): beyond this a
/// manifest is refused rather than letting one file make the server track thousands of names.
pub const MAX_IMAGES: usize = 256;
/// A manifest body larger than this is not a manifest (real ones are under 2 KB).
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Header(#[from] sgn::HeaderError),
    #[error("manifest body is {0} bytes (a manifest is a few lines of text, at most 1 MiB)")]
    TooLarge(usize),
    #[error("manifest body is not text (byte {0:#04x})")]
    NotText(u8),
    #[error("manifest names more than {MAX_IMAGES} files")]
    TooManyImages,
    #[error("manifest line {line}: {name:?} is not a file name a phone can request")]
    BadName { line: usize, name: String },
    #[error("manifest line {line}: size {value:?} is not a number")]
    BadSize { line: usize, value: String },
    #[error("manifest names no image")]
    Empty,
}

/// Which dialect a body was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestStyle {
    /// 79x1-class: comments + one name per line.
    Release,
    /// 792x wireless: `NAME SIZE HASH` lines.
    Sized,
    /// 7940/7960: names + `LA_VERSION=`.
    Legacy,
    /// 69xx/894x: names only.
    Bare,
    /// 78xx/88xx: `[PLATFORM_n]` sections.
    Platforms,
}

/// One image a manifest names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRef {
    pub name: String,
    /// Size the manifest declares (792x style), in bytes of the whole file.
    pub size: Option<u64>,
    pub hash: Option<String>,
    /// `#+` lines: parts a phone may skip.
    pub optional: bool,
}

/// A hardware variant's image list; non-INI manifests have one, named "".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub images: Vec<ImageRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub style: ManifestStyle,
    pub header: Option<SignedHeader>,
    /// From `# RELEASE load version X`.
    pub release: Option<String>,
    /// `#HARDWARE_COMP_1`, `#? HW_REV`, `LA_VERSION`, keys before the first section, …
    pub attributes: Vec<(String, String)>,
    pub platforms: Vec<Platform>,
}

impl Manifest {
    /// Every image name once, in fetch order (platform by platform).
    pub fn image_names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in &self.platforms {
            for i in &p.images {
                if !out.iter().any(|n| n.eq_ignore_ascii_case(&i.name)) {
                    out.push(&i.name);
                }
            }
        }
        out
    }

    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// A body in this manifest's dialect that parses back to the same images (no header).
    pub fn render_body(&self) -> String {
        let mut s = String::new();
        if let Some(r) = &self.release {
            s.push_str(&format!("#\n# RELEASE load version {r}\n#\n"));
        }
        for (k, v) in &self.attributes {
            match self.style {
                ManifestStyle::Sized => s.push_str(&format!("#? {k} {v}\n")),
                ManifestStyle::Release if k.starts_with("HARDWARE_COMP") => {
                    s.push_str(&format!("#{k} {v}\n"))
                }
                ManifestStyle::Legacy | ManifestStyle::Platforms => {}
                _ => s.push_str(&format!("# {k} {v}\n")),
            }
        }
        if self.style == ManifestStyle::Release {
            s.push('\n');
        }
        for p in &self.platforms {
            if self.style == ManifestStyle::Platforms {
                s.push_str(&format!("[{}]\n", p.name));
                for (k, v) in &p.attributes {
                    s.push_str(&format!("{k}={v}\n"));
                }
            }
            for (n, i) in p.images.iter().enumerate() {
                match (self.style, i.size) {
                    (ManifestStyle::Platforms, _) => s.push_str(&format!("image{n}={}\n", i.name)),
                    (_, Some(sz)) => s.push_str(&format!(
                        "{}{}  {sz}  {}\n",
                        if i.optional { "#+ " } else { "" },
                        i.name,
                        i.hash.as_deref().unwrap_or("")
                    )),
                    _ => s.push_str(&format!("{}\r\n", i.name)),
                }
            }
        }
        if self.style == ManifestStyle::Legacy {
            for (k, v) in &self.attributes {
                s.push_str(&format!("{k}={v}\n"));
            }
        }
        s
    }
}

/// Parses a `.loads` file (with or without its signed header).
pub fn parse(data: &[u8]) -> Result<Manifest, ManifestError> {
    let (header, body) = if sgn::looks_signed(data) {
        let h = sgn::parse_header(data)?;
        let b = &data[h.header_len..];
        (Some(h), b)
    } else {
        (None, data)
    };
    if body.len() > MAX_BODY {
        return Err(ManifestError::TooLarge(body.len()));
    }
    if let Some(&b) = body
        .iter()
        .find(|&&b| b == 0 || (b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n')) || b >= 0x7f)
    {
        return Err(ManifestError::NotText(b));
    }
    // Checked to be ASCII above.
    let text = String::from_utf8_lossy(body);
    let mut m = Manifest {
        style: ManifestStyle::Bare,
        header,
        release: None,
        attributes: Vec::new(),
        platforms: vec![Platform {
            name: String::new(),
            attributes: Vec::new(),
            images: Vec::new(),
        }],
    };
    let (mut comments, mut sized, mut legacy, mut sections) = (false, false, false, false);
    let mut count = 0usize;
    for (idx, raw) in text.split('\n').enumerate() {
        let line_no = idx + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let cur = m.platforms.len() - 1;
        if line.starts_with('[') && line.ends_with(']') && line.len() > 2 {
            let name = line[1..line.len() - 1].trim().to_string();
            if !sections && m.platforms[0].images.is_empty() && m.platforms[0].attributes.is_empty()
            {
                m.platforms[0].name = name;
            } else {
                m.platforms.push(Platform {
                    name,
                    attributes: Vec::new(),
                    images: Vec::new(),
                });
            }
            sections = true;
            continue;
        }
        let (optional, rest) = if let Some(r) = line.strip_prefix("#+") {
            (true, Some(r.trim()))
        } else {
            (false, None)
        };
        if !optional {
            if let Some(r) = line.strip_prefix("#?") {
                let mut it = r.trim().splitn(2, char::is_whitespace);
                let k = it.next().unwrap_or("").to_string();
                let v = it.next().unwrap_or("").trim().to_string();
                if !k.is_empty() {
                    m.attributes.push((k, v));
                }
                sized = true;
                continue;
            }
            if let Some(r) = line.strip_prefix('#') {
                comments = true;
                let r = r.trim();
                if let Some(v) = r.strip_prefix("RELEASE load version") {
                    m.release = Some(v.trim().to_string());
                } else if r.starts_with("HARDWARE_COMP") {
                    let mut it = r.splitn(2, char::is_whitespace);
                    let k = it.next().unwrap_or("").to_string();
                    m.attributes
                        .push((k, it.next().unwrap_or("").trim().to_string()));
                }
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let (k, v) = (k.trim(), v.trim());
                if k.eq_ignore_ascii_case("LA_VERSION") {
                    legacy = true;
                    m.attributes.push((k.to_string(), v.to_string()));
                } else if sections && is_image_name(v) && is_requestable(v) {
                    count += 1;
                    if count > MAX_IMAGES {
                        return Err(ManifestError::TooManyImages);
                    }
                    m.platforms[cur].images.push(ImageRef {
                        name: v.to_string(),
                        size: None,
                        hash: None,
                        optional: false,
                    });
                } else if sections {
                    m.platforms[cur]
                        .attributes
                        .push((k.to_string(), v.to_string()));
                } else {
                    m.attributes.push((k.to_string(), v.to_string()));
                }
                continue;
            }
        }
        let body = rest.unwrap_or(line);
        let mut toks = body.split_whitespace();
        let Some(name) = toks.next() else { continue };
        if !is_requestable(name) {
            return Err(ManifestError::BadName {
                line: line_no,
                name: name.chars().take(80).collect(),
            });
        }
        let size = match toks.next() {
            Some(v) => {
                sized = true;
                Some(v.parse::<u64>().map_err(|_| ManifestError::BadSize {
                    line: line_no,
                    value: v.chars().take(40).collect(),
                })?)
            }
            None => None,
        };
        let hash = toks.next().map(str::to_string);
        count += 1;
        if count > MAX_IMAGES {
            return Err(ManifestError::TooManyImages);
        }
        m.platforms[cur].images.push(ImageRef {
            name: name.to_string(),
            size,
            hash,
            optional,
        });
    }
    if count == 0 {
        return Err(ManifestError::Empty);
    }
    m.style = if sections {
        ManifestStyle::Platforms
    } else if sized {
        ManifestStyle::Sized
    } else if legacy {
        ManifestStyle::Legacy
    } else if comments {
        ManifestStyle::Release
    } else {
        ManifestStyle::Bare
    };
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sgn::{build_header, HashAlg};
    use proptest::prelude::*;

    const SCCP45: &str = "#\r\n# This file contains a list of archive image files that will be requested by the\r\n# RELEASE load version 9-4-2SR4-3\r\n#\r\n#HARDWARE_COMP_1 15\r\n\r\njar45sccp.9-4-2SR4-3.sbn\r\ncnu45.9-4-2SR4-3.sbn\r\napps45.9-4-2SR4-3.sbn\r\ndsp45.9-4-2SR4-3.sbn \r\ncvm45sccp.9-4-2SR4-3.sbn \r\n";

    fn signed(name: &str, body: &str) -> Vec<u8> {
        let h = SignedHeader {
            version: (1, 1),
            header_len: 0,
            signer: Some("CN=testSigner".into()),
            serial: Some("01".into()),
            issuer: Some("CN=testCA".into()),
            hash: Some(HashAlg::Sha1),
            signature_len: 256,
            file_name: Some(name.into()),
            timestamp: None,
        };
        let mut v = build_header(&h, &[0x55; 256]);
        v.extend_from_slice(body.as_bytes());
        v
    }

    #[test]
    fn release_79x1_style_with_header() {
        let m = parse(&signed("SCCP45.9-4-2SR4-3S.loads", SCCP45)).expect("parse");
        assert_eq!(m.style, ManifestStyle::Release);
        assert_eq!(m.release.as_deref(), Some("9-4-2SR4-3"));
        assert_eq!(m.attribute("HARDWARE_COMP_1"), Some("15"));
        assert_eq!(
            m.image_names(),
            [
                "jar45sccp.9-4-2SR4-3.sbn",
                "cnu45.9-4-2SR4-3.sbn",
                "apps45.9-4-2SR4-3.sbn",
                "dsp45.9-4-2SR4-3.sbn",
                "cvm45sccp.9-4-2SR4-3.sbn"
            ]
        );
        let h = m.header.expect("header");
        assert_eq!(h.file_name.as_deref(), Some("SCCP45.9-4-2SR4-3S.loads"));
    }

    #[test]
    fn sized_792x_style_with_optional_parts() {
        let body = "#? HW_REV 0-4.*\r\n#? SW_CAP EAP-TLS,PEAP,VSFIX\r\nAPPS-1.4.6.3.SBN  1234567  0123456789abcdef0123456789abcdef\r\nSYS-1.4.6.3.SBN 99 fedcba9876543210fedcba9876543210\r\n#+ WLAN-1.4.6.3.SBN 10 00000000000000000000000000000000\r\n";
        let m = parse(body.as_bytes()).expect("parse");
        assert_eq!(m.style, ManifestStyle::Sized);
        assert_eq!(m.attribute("HW_REV"), Some("0-4.*"));
        let imgs = &m.platforms[0].images;
        assert_eq!(imgs.len(), 3);
        assert_eq!(imgs[0].size, Some(1_234_567));
        assert!(imgs[2].optional);
        assert_eq!(imgs[2].name, "WLAN-1.4.6.3.SBN");
    }

    #[test]
    fn legacy_7940_and_bare_69xx_styles() {
        let m = parse(b"P0030801SR02.sbn\nP0030801SR02.sb2\nLA_VERSION=PAS30831\n").expect("7940");
        assert_eq!(m.style, ManifestStyle::Legacy);
        assert_eq!(m.attribute("LA_VERSION"), Some("PAS30831"));
        assert_eq!(m.image_names().len(), 2);
        let m = parse(
            b"BOOT69xx.0-0-0-14.zz.sgn\nDSP69xx.0-0-0-4.zz.sgn\nSCCP69xx.9-4-1-3SR3.zz.sgn\n",
        )
        .expect("69xx");
        assert_eq!(m.style, ManifestStyle::Bare);
        assert_eq!(m.image_names()[2], "SCCP69xx.9-4-1-3SR3.zz.sgn");
    }

    #[test]
    fn platforms_78xx_style() {
        let body = "[PLATFORM_1]\nhwcompat=1\nsboot=sboot78xx.BE-01-004.sbn\nkern=kern78xx.11-0-1-11.sbn\nrootfs=rootfs78xx.11-0-1-11.sbn\n\n[PLATFORM_2]\nhwcompat=2\nsboot=sboot2.78xx.BE-01-004.sbn\nkern=kern2.78xx.11-0-1-11.sbn\nrootfs=rootfs2.78xx.11-0-1-11.sbn\n";
        let m = parse(body.as_bytes()).expect("parse");
        assert_eq!(m.style, ManifestStyle::Platforms);
        assert_eq!(m.platforms.len(), 2);
        assert_eq!(m.platforms[1].name, "PLATFORM_2");
        assert_eq!(
            m.platforms[1].attributes,
            [("hwcompat".to_string(), "2".to_string())]
        );
        assert_eq!(m.platforms[0].images[2].name, "rootfs78xx.11-0-1-11.sbn");
        assert_eq!(m.image_names().len(), 6);
    }

    #[test]
    fn bad_manifests_are_refused() {
        let many: String = (0..10_000).map(|i| format!("img{i}.sbn\n")).collect();
        assert_eq!(parse(many.as_bytes()), Err(ManifestError::TooManyImages));
        assert!(matches!(
            parse(b"../etc/passwd\n"),
            Err(ManifestError::BadName { line: 1, .. })
        ));
        assert!(matches!(
            parse(b"a.sbn\n/abs.sbn\n"),
            Err(ManifestError::BadName { line: 2, .. })
        ));
        assert_eq!(parse(b"# only comments\n"), Err(ManifestError::Empty));
        assert!(matches!(parse(b"a.sbn\0"), Err(ManifestError::NotText(0))));
        assert!(matches!(
            parse(b"A.SBN notanumber x"),
            Err(ManifestError::BadSize { .. })
        ));
    }

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z][A-Za-z0-9_-]{0,20}\\.[0-9]-[0-9]-[0-9]\\.(sbn|SBN|zz\\.sgn|bin1\\.sgn)"
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&data);
        }

        #[test]
        fn text_never_panics(s in "[ -~\r\n\t\\[\\]#=+?]{0,300}") {
            let _ = parse(s.as_bytes());
        }

        #[test]
        fn every_style_round_trips(
            names in proptest::collection::vec(name(), 1..12),
            style in 0..5u8,
            sizes in proptest::collection::vec(1u64..100_000_000, 12),
        ) {
            let imgs = |opt: bool| names.iter().enumerate().map(|(i, n)| ImageRef {
                name: n.clone(),
                size: (style == 1).then_some(sizes[i]),
                hash: (style == 1).then(|| "0123456789abcdef0123456789abcdef".to_string()),
                optional: opt && style == 1 && i > 0 && i % 3 == 0,
            }).collect::<Vec<_>>();
            let (st, attrs, platforms) = match style {
                0 => (ManifestStyle::Release, vec![("HARDWARE_COMP_1".into(), "5".into())],
                      vec![Platform { name: String::new(), attributes: vec![], images: imgs(false) }]),
                1 => (ManifestStyle::Sized, vec![("HW_REV".into(), "0-4.*".into())],
                      vec![Platform { name: String::new(), attributes: vec![], images: imgs(true) }]),
                2 => (ManifestStyle::Legacy, vec![("LA_VERSION".into(), "PAS30831".into())],
                      vec![Platform { name: String::new(), attributes: vec![], images: imgs(false) }]),
                3 => (ManifestStyle::Bare, vec![],
                      vec![Platform { name: String::new(), attributes: vec![], images: imgs(false) }]),
                _ => {
                    let all = imgs(false);
                    let (a, b) = all.split_at(all.len() / 2);
                    let mut ps = vec![Platform { name: "PLATFORM_1".into(), attributes: vec![("hwcompat".into(), "1".into())], images: a.to_vec() }];
                    if !b.is_empty() {
                        ps.push(Platform { name: "PLATFORM_2".into(), attributes: vec![("hwcompat".into(), "2".into())], images: b.to_vec() });
                    }
                    if ps[0].images.is_empty() { ps.remove(0); }
                    (ManifestStyle::Platforms, vec![], ps)
                }
            };
            let m = Manifest { style: st, header: None, release: (style == 0).then(|| "9-4-2SR4-3".to_string()), attributes: attrs, platforms };
            let back = parse(m.render_body().as_bytes()).expect("parses");
            prop_assert_eq!(back, m);
        }
    }
}
