//! The Cisco signed-file header (`.sgn`, `.sbn`, `.loads`, `.cop.sgn`, `.cop.sha512`).
//!
//! TLVs of tag u8 + length u16 big-endian + value; tag 13 (padding) is one byte without a
//! length. Tag 1 (version) then tag 2 (header length = offset of the first payload byte)
//! come first, as certutils `stripsgn` expects; containers 3/7/9 hold further TLVs and are
//! walked through flat, as certutils `sgnfile` does (reference/firmware.md §1.1).
//! phoneboot parses and keeps these details; it never re-signs (Cisco publishes no key).

use serde::Serialize;

/// Why a header could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("not a Cisco signed file: it does not start with the header-version tag (1)")]
    NoVersionTag,
    #[error("not a Cisco signed file: the second tag is {0}, not the header-length tag (2)")]
    NoLengthTag(u8),
    #[error("truncated signed header: {0}")]
    Truncated(&'static str),
    #[error("signed header length {header_len} is outside the file ({file_len} bytes)")]
    BadLength { header_len: usize, file_len: usize },
}

/// Hash algorithm named by tag 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlg {
    Sha1,
    Sha256,
    Sha512,
    Other(u8),
}

impl HashAlg {
    pub fn from_code(c: u8) -> Self {
        match c {
            1 => HashAlg::Sha1,
            2 => HashAlg::Sha256,
            3 => HashAlg::Sha512,
            o => HashAlg::Other(o),
        }
    }
    pub fn code(self) -> u8 {
        match self {
            HashAlg::Sha1 => 1,
            HashAlg::Sha256 => 2,
            HashAlg::Sha512 => 3,
            HashAlg::Other(o) => o,
        }
    }
    pub fn name(self) -> String {
        match self {
            HashAlg::Sha1 => "SHA-1".into(),
            HashAlg::Sha256 => "SHA-256".into(),
            HashAlg::Sha512 => "SHA-512".into(),
            HashAlg::Other(o) => format!("unknown ({o})"),
        }
    }
}

/// What a signed header says (everything but the signature bytes themselves).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedHeader {
    /// Tag 1: major, minor (Cisco firmware 1.1, certutils 1.0).
    pub version: (u8, u8),
    /// Tag 2: offset of the first payload byte.
    pub header_len: usize,
    pub signer: Option<String>,
    /// Tag 5, hex.
    pub serial: Option<String>,
    pub issuer: Option<String>,
    pub hash: Option<HashAlg>,
    /// Length of the tag 12 signature in bytes (0 = none).
    pub signature_len: usize,
    /// Tag 14: the file's own name.
    pub file_name: Option<String>,
    /// Tag 15: Unix time.
    pub timestamp: Option<u32>,
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..at + 2)?;
    Some(u16::from_be_bytes([s[0], s[1]]) as usize)
}

fn text(v: &[u8]) -> String {
    let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// True when `data` starts like a signed file (tag 1 with a 2-byte value, then tag 2).
pub fn looks_signed(data: &[u8]) -> bool {
    data.len() >= 10 && data[0] == 1 && data[1] == 0 && data[2] == 2 && data[5] == 2
}

/// Parses the header at the start of `data`. Unknown tags are skipped by their length; a
/// TLV running past the header length is an error.
pub fn parse_header(data: &[u8]) -> Result<SignedHeader, HeaderError> {
    if data.first() != Some(&1) {
        return Err(HeaderError::NoVersionTag);
    }
    let vlen = be16(data, 1).ok_or(HeaderError::Truncated("version tag"))?;
    let vval = data
        .get(3..3 + vlen)
        .ok_or(HeaderError::Truncated("version value"))?;
    let version = (
        vval.first().copied().unwrap_or(0),
        vval.get(1).copied().unwrap_or(0),
    );
    let mut i = 3 + vlen;
    let tag = *data.get(i).ok_or(HeaderError::Truncated("length tag"))?;
    if tag != 2 {
        return Err(HeaderError::NoLengthTag(tag));
    }
    let llen = be16(data, i + 1).ok_or(HeaderError::Truncated("length tag"))?;
    let header_len = be16(data, i + 3).ok_or(HeaderError::Truncated("length value"))?;
    i += 3 + llen;
    if header_len < i || header_len > data.len() {
        return Err(HeaderError::BadLength {
            header_len,
            file_len: data.len(),
        });
    }
    let mut h = SignedHeader {
        version,
        header_len,
        signer: None,
        serial: None,
        issuer: None,
        hash: None,
        signature_len: 0,
        file_name: None,
        timestamp: None,
    };
    while i < header_len {
        let tag = data[i];
        i += 1;
        if tag == 13 {
            continue;
        }
        let len = be16(data, i).ok_or(HeaderError::Truncated("tag length"))?;
        i += 2;
        if matches!(tag, 3 | 7 | 9) {
            // Containers: their TLVs follow inline.
            if i + len > header_len {
                return Err(HeaderError::Truncated("container"));
            }
            continue;
        }
        if i + len > header_len {
            return Err(HeaderError::Truncated("tag value"));
        }
        let v = &data[i..i + len];
        match tag {
            4 => h.signer = Some(text(v)),
            5 => h.serial = Some(hex::encode(v)),
            6 => h.issuer = Some(text(v)),
            8 => h.hash = v.first().map(|&c| HashAlg::from_code(c)),
            12 => h.signature_len = len,
            14 => h.file_name = Some(text(v)),
            15 if len == 4 => h.timestamp = Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]])),
            _ => {}
        }
        i += len;
    }
    Ok(h)
}

/// How the payload of a signed package was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFound {
    /// At the header length, starting with the gzip magic (what `stripsgn` does).
    HeaderLength,
    /// The header length did not point at gzip; found by scanning for `1f 8b 08`.
    Scanned,
}

/// How far the gzip scan looks when the header length does not point at gzip.
pub const SCAN_LIMIT: usize = 16 * 1024;

/// Locates the gzip payload of a `.cop.sgn`/`.cop.sha512`: the header length, checked to
/// start `1f 8b`, else the first `1f 8b 08` within [`SCAN_LIMIT`] bytes (the fallback other
/// tools use). Returns the header (when it parsed), the payload offset and how it was found.
pub fn locate_gzip_payload(
    data: &[u8],
) -> Result<(Option<SignedHeader>, usize, PayloadFound), HeaderError> {
    let parsed = parse_header(data);
    if let Ok(h) = &parsed {
        if data.get(h.header_len..h.header_len + 2) == Some(&[0x1f, 0x8b][..]) {
            return Ok((Some(h.clone()), h.header_len, PayloadFound::HeaderLength));
        }
    }
    let window = &data[..data.len().min(SCAN_LIMIT)];
    if let Some(at) = window.windows(3).position(|w| w == [0x1f, 0x8b, 0x08]) {
        return Ok((parsed.ok(), at, PayloadFound::Scanned));
    }
    Err(parsed.err().unwrap_or(HeaderError::BadLength {
        header_len: 0,
        file_len: data.len(),
    }))
}

/// Builds a header the way Cisco's tools lay it out (version, length, signer info, signature
/// info, signature, file name, optional timestamp, padding to 4 bytes), for tests and the
/// fuzz round trip. `signature` is whatever bytes the caller signed with (a test key).
pub fn build_header(h: &SignedHeader, signature: &[u8]) -> Vec<u8> {
    fn tlv(out: &mut Vec<u8>, tag: u8, v: &[u8]) {
        out.push(tag);
        out.extend_from_slice(&(v.len() as u16).to_be_bytes());
        out.extend_from_slice(v);
    }
    fn cstr(s: &str) -> Vec<u8> {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    }
    let mut out = Vec::new();
    tlv(&mut out, 1, &[h.version.0, h.version.1]);
    tlv(&mut out, 2, &[0, 0]);
    let mut signer = Vec::new();
    if let Some(s) = &h.signer {
        tlv(&mut signer, 4, &cstr(s));
    }
    if let Some(s) = &h.serial {
        tlv(&mut signer, 5, &hex::decode(s).unwrap_or_default());
    }
    if let Some(s) = &h.issuer {
        tlv(&mut signer, 6, &cstr(s));
    }
    tlv(&mut out, 3, &signer);
    let mut alg = Vec::new();
    tlv(&mut alg, 10, &[0]);
    let idx = [64usize, 128, 256, 512]
        .iter()
        .position(|&n| n == signature.len())
        .unwrap_or(2) as u8;
    tlv(&mut alg, 11, &[idx]);
    let mut info = Vec::new();
    if let Some(a) = h.hash {
        tlv(&mut info, 8, &[a.code()]);
    }
    tlv(&mut info, 9, &alg);
    tlv(&mut out, 7, &info);
    if !signature.is_empty() {
        tlv(&mut out, 12, signature);
    }
    if let Some(f) = &h.file_name {
        tlv(&mut out, 14, &cstr(f));
    }
    if let Some(t) = h.timestamp {
        tlv(&mut out, 15, &t.to_be_bytes());
    }
    while out.len() % 4 != 0 {
        out.push(13);
    }
    let len = (out.len() as u16).to_be_bytes();
    out[8] = len[0];
    out[9] = len[1];
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> SignedHeader {
        SignedHeader {
            version: (1, 1),
            header_len: 0,
            signer: Some("CN=testSigner;OU=phoneboot".into()),
            serial: Some("1234567890abcdef".into()),
            issuer: Some("CN=testCA".into()),
            hash: Some(HashAlg::Sha1),
            signature_len: 256,
            file_name: Some("SCCP45.9-4-2SR4-3S.loads".into()),
            timestamp: None,
        }
    }

    #[test]
    fn cisco_layout_round_trips() {
        let h = sample();
        let hdr = build_header(&h, &[0xAA; 256]);
        assert_eq!(hdr.len() % 4, 0);
        let mut file = hdr.clone();
        file.extend_from_slice(b"body");
        let p = parse_header(&file).expect("parse");
        assert_eq!(p.header_len, hdr.len());
        assert_eq!(&file[p.header_len..], b"body");
        assert_eq!(
            p,
            SignedHeader {
                header_len: hdr.len(),
                ..h
            }
        );
    }

    #[test]
    fn gzip_payload_by_length_then_by_scan() {
        let mut f = build_header(&sample(), &[1; 128]);
        let at = f.len();
        f.extend_from_slice(&[0x1f, 0x8b, 0x08, 0, 1, 2]);
        let (h, off, how) = locate_gzip_payload(&f).expect("found");
        assert_eq!((off, how), (at, PayloadFound::HeaderLength));
        assert!(h.is_some());
        // A header length pointing 4 bytes short: the scan finds the gzip.
        let mut g = build_header(&sample(), &[1; 128]);
        let at = g.len();
        g.extend_from_slice(&[0, 0, 0, 0, 0x1f, 0x8b, 0x08, 9]);
        let (_, off, how) = locate_gzip_payload(&g).expect("found");
        assert_eq!((off, how), (at + 4, PayloadFound::Scanned));
        // Neither: an error.
        assert!(locate_gzip_payload(b"PK\x03\x04 not a cop").is_err());
    }

    #[test]
    fn truncated_and_foreign_inputs_are_errors() {
        let f = build_header(&sample(), &[1; 256]);
        for n in 0..f.len() {
            assert!(parse_header(&f[..n]).is_err(), "prefix {n} parsed");
        }
        assert_eq!(parse_header(b"PK\x03\x04"), Err(HeaderError::NoVersionTag));
    }

    proptest! {
        #[test]
        fn never_panics_and_offset_inside(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(h) = parse_header(&data) {
                prop_assert!(h.header_len <= data.len());
            }
            if let Ok((_, off, _)) = locate_gzip_payload(&data) {
                prop_assert!(off + 2 <= data.len());
            }
        }

        #[test]
        fn built_headers_parse_back(
            signer in "[A-Za-z=;, ]{0,40}",
            name in "[A-Za-z0-9.-]{1,60}",
            sig in prop_oneof![Just(64usize), Just(128), Just(256), Just(512)],
            ts in proptest::option::of(any::<u32>()),
            alg in 1u8..4,
        ) {
            let h = SignedHeader {
                version: (1, 0), header_len: 0, signer: Some(signer), serial: Some("0a0b".into()),
                issuer: None, hash: Some(HashAlg::from_code(alg)), signature_len: sig,
                file_name: Some(name), timestamp: ts,
            };
            let bytes = build_header(&h, &vec![7; sig]);
            let p = parse_header(&bytes).expect("parse");
            prop_assert_eq!(p, SignedHeader { header_len: bytes.len(), ..h });
        }
    }
}
