//! Synthetic packages in Cisco's formats, built by tests (never Cisco's own files): signed
//! `.loads` manifests and images, zips, tars, gzip tars and signed COPs.

use std::io::Write;

use crate::sgn::{build_header, HashAlg, SignedHeader};

/// A test signer's header for `file_name` (signature bytes are the caller's, e.g. a test key's).
pub fn header(file_name: &str, hash: HashAlg) -> SignedHeader {
    SignedHeader {
        version: (1, 1),
        header_len: 0,
        signer: Some("CN=phoneboot-test;OU=synthetic;O=phoneboot".into()),
        serial: Some("0123456789abcdef".into()),
        issuer: Some("CN=phoneboot-test-ca".into()),
        hash: Some(hash),
        signature_len: 256,
        file_name: Some(file_name.into()),
        timestamp: None,
    }
}

/// `body` behind a signed header naming `file_name` (a fixed 256-byte test signature).
pub fn signed(file_name: &str, body: &[u8]) -> Vec<u8> {
    let mut v = build_header(&header(file_name, HashAlg::Sha1), &[0x5a; 256]);
    v.extend_from_slice(body);
    v
}

/// A 79x1-style release manifest body listing `images`.
pub fn release_body(release: &str, images: &[&str]) -> String {
    let mut s = format!(
        "#\r\n# This file contains a list of archive image files that will be requested by the\r\n# RELEASE load version {release}\r\n#\r\n#HARDWARE_COMP_1 15\r\n\r\n"
    );
    for i in images {
        s.push_str(i);
        s.push_str(" \r\n");
    }
    s
}

/// A signed image of `payload_len` pseudo-random bytes (deterministic per name).
pub fn image(name: &str, payload_len: usize) -> Vec<u8> {
    let mut x: u32 = name
        .bytes()
        .fold(2166136261, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    let body: Vec<u8> = (0..payload_len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    signed(name, &body)
}

/// A complete SCCP 7945/7965 release: `(manifest name, manifest bytes)` and its five images.
pub fn sccp45(release: &str, image_len: usize) -> Vec<(String, Vec<u8>)> {
    let stems = ["jar45sccp", "cnu45", "apps45", "dsp45", "cvm45sccp"];
    let imgs: Vec<String> = stems.iter().map(|s| format!("{s}.{release}.sbn")).collect();
    let refs: Vec<&str> = imgs.iter().map(String::as_str).collect();
    let load = format!("SCCP45.{release}S.loads");
    let mut out = vec![(
        load.clone(),
        signed(&load, release_body(release, &refs).as_bytes()),
    )];
    for i in &imgs {
        out.push((i.clone(), image(i, image_len)));
    }
    out
}

/// A tar of `(path, bytes)`.
pub fn tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, d) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        // `append_data` checks the path; tests of bad paths use `tar_raw`.
        b.append_data(&mut h, p, d.as_slice()).expect("tar append");
    }
    b.into_inner().expect("tar finish")
}

/// A tar with one member written byte by byte (any path, any entry type), for bad input.
pub fn tar_raw(path: &str, kind: tar::EntryType, link: &str, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_old();
    {
        let raw = h.as_old_mut();
        raw.name[..path.len()].copy_from_slice(path.as_bytes());
        raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(kind);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// A zip of `(path, bytes)`, deflated.
pub fn zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (p, d) in files {
        z.start_file(p.as_str(), o).expect("zip entry");
        z.write_all(d).expect("zip write");
    }
    z.finish().expect("zip finish").into_inner()
}

/// A signed COP: test header naming `file_name` + gzip tar of `files`.
pub fn cop(file_name: &str, files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut v = build_header(&header(file_name, HashAlg::Sha512), &[0x33; 512]);
    v.extend_from_slice(&gzip(&tar(files)));
    v
}
