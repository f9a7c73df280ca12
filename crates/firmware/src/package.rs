//! Reading a package as Cisco ships it — `.zip`, `.tar`, `.tar.gz`/`.tgz`, `.cop.sgn`/
//! `.cop.sha512` (signed header + gzip tar), or a loose file — into the files a phone can
//! request. All or nothing: any bad member refuses the whole package with a message naming it.
//!
//! Refused: zip bombs (declared or actual size over the limits, or a compression ratio no
//! firmware has), entries with `..` or absolute paths, links and special files, kept names a
//! phone cannot request, one name twice with different bytes, more entries than the limit,
//! truncated archives, and any `.loads` that does not parse (e.g. naming 10,000 files).

use std::collections::HashMap;
use std::io::{Cursor, Read};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::manifest::{self, Manifest, ManifestError};
use crate::names::{is_kept, is_nested_archive, is_requestable};
use crate::sgn::{self, PayloadFound, SignedHeader};

/// Bounds on what one package may expand to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// All kept and dropped members together, uncompressed.
    pub max_total: u64,
    /// One member.
    pub max_entry: u64,
    pub max_entries: usize,
    /// Uncompressed/compressed above this (for members over 1 MiB) is a bomb: firmware images
    /// are already compressed and barely shrink.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_total: 2 << 30,
            max_entry: 1 << 30,
            max_entries: 4096,
            max_ratio: 200,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    #[error("{file}: not a Cisco package ({why})")]
    NotCisco { file: String, why: String },
    #[error("{file}: truncated or corrupt ({why})")]
    Truncated { file: String, why: String },
    #[error("{file}: member {member:?}: {why}")]
    BadMember {
        file: String,
        member: String,
        why: String,
    },
    #[error("{file}: expands past the limit of {limit} bytes (a zip bomb?)")]
    TooLarge { file: String, limit: u64 },
    #[error("{file}: member {member:?} compresses {ratio}:1 (a zip bomb?)")]
    Bomb {
        file: String,
        member: String,
        ratio: u64,
    },
    #[error("{file}: more than {limit} entries")]
    TooManyEntries { file: String, limit: usize },
    #[error("{file}: {member:?} appears twice with different contents")]
    Duplicate { file: String, member: String },
    #[error("{file}: manifest {member:?}: {err}")]
    Manifest {
        file: String,
        member: String,
        err: ManifestError,
    },
}

/// How the package was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageKind {
    Zip,
    Tar,
    TarGz,
    /// Signed COP: header + gzip tar; how its payload was found.
    Cop(PayloadFound),
    /// One file as it would sit in the TFTP root.
    Loose,
}

/// One member kept for serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    /// As a phone requests it: a bare name, or `<locale dir>/<name>` for locale files.
    pub name: String,
    pub data: Vec<u8>,
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub struct Package {
    /// The package's own file name.
    pub source: String,
    pub kind: PackageKind,
    /// The COP's signed header (signer, hash, file name).
    pub header: Option<SignedHeader>,
    pub files: Vec<PackageFile>,
    /// Members not kept (scripts, database data), for the report.
    pub dropped: Vec<String>,
    /// Parsed manifests by member name.
    pub manifests: Vec<(String, Manifest)>,
}

impl Package {
    pub fn file(&self, name: &str) -> Option<&PackageFile> {
        self.files
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
    /// True for `*-locale-*` packages and packages that only carry locale directories.
    pub fn is_locale(&self) -> bool {
        self.source.to_ascii_lowercase().contains("-locale-")
            || (!self.files.is_empty() && self.files.iter().all(|f| f.name.contains('/')))
    }
}

struct Reader<'a> {
    source: &'a str,
    limits: Limits,
    total: u64,
    entries: usize,
    files: Vec<PackageFile>,
    index: HashMap<String, usize>,
    dropped: Vec<String>,
}

const LOCALE_ROOTS: &[&str] = &["usr/local/cm/tftp/", "usr/locale/cm/tftp/"];

impl<'a> Reader<'a> {
    fn bad(&self, member: &str, why: impl Into<String>) -> PackageError {
        PackageError::BadMember {
            file: self.source.to_string(),
            member: member.chars().take(120).collect(),
            why: why.into(),
        }
    }

    fn count(&mut self) -> Result<(), PackageError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(PackageError::TooManyEntries {
                file: self.source.into(),
                limit: self.limits.max_entries,
            });
        }
        Ok(())
    }

    /// Checks a member path and returns the name it is served under (None = dropped).
    fn served_name(&self, path: &str) -> Result<Option<String>, PackageError> {
        if path.starts_with('/') || path.starts_with('\\') || path.contains(':') {
            return Err(self.bad(path, "absolute path"));
        }
        let norm = path.replace('\\', "/");
        let parts: Vec<&str> = norm
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.contains(&"..") {
            return Err(self.bad(path, "path leaves the package (`..`)"));
        }
        let Some(base) = parts.last() else {
            return Ok(None);
        };
        if !is_kept(base) {
            return Ok(None);
        }
        let joined = parts.join("/");
        // Locale files keep their directory under the CUCM TFTP root.
        for root in LOCALE_ROOTS {
            if let Some(rest) = joined.strip_prefix(root) {
                let rp: Vec<&str> = rest.split('/').collect();
                if rp.len() > 2 || !rp.iter().all(|p| is_requestable(p)) {
                    return Err(self.bad(path, "not a name a phone can request"));
                }
                return Ok(Some(rest.to_string()));
            }
        }
        if !is_requestable(base) {
            return Err(self.bad(path, "not a name a phone can request"));
        }
        Ok(Some((*base).to_string()))
    }

    fn add(&mut self, path: &str, data: Vec<u8>, depth: u8) -> Result<(), PackageError> {
        let base = path.rsplit(['/', '\\']).next().unwrap_or(path);
        if is_nested_archive(base) && depth < 2 {
            return self.archive(path, &data, depth + 1);
        }
        let Some(name) = self.served_name(path)? else {
            self.dropped.push(path.to_string());
            return Ok(());
        };
        let sha256 = hex::encode(Sha256::digest(&data));
        let key = name.to_ascii_lowercase();
        if let Some(&i) = self.index.get(&key) {
            if self.files[i].sha256 != sha256 {
                return Err(PackageError::Duplicate {
                    file: self.source.into(),
                    member: name,
                });
            }
            return Ok(());
        }
        self.index.insert(key, self.files.len());
        self.files.push(PackageFile { name, data, sha256 });
        Ok(())
    }

    fn grow(&mut self, n: u64) -> Result<(), PackageError> {
        self.total += n;
        if self.total > self.limits.max_total {
            return Err(PackageError::TooLarge {
                file: self.source.into(),
                limit: self.limits.max_total,
            });
        }
        Ok(())
    }

    /// Reads a zip, tar or tar.gz image (nested ones too).
    fn archive(&mut self, label: &str, data: &[u8], depth: u8) -> Result<(), PackageError> {
        if data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06") {
            self.zip(label, data, depth)
        } else if data.starts_with(&[0x1f, 0x8b]) {
            let raw = self.gunzip(label, data)?;
            self.tar(label, &raw, depth)
        } else if is_tar(data) {
            self.tar(label, data, depth)
        } else {
            Err(PackageError::NotCisco {
                file: self.source.into(),
                why: format!("{label}: neither zip, tar nor gzip"),
            })
        }
    }

    fn gunzip(&mut self, label: &str, data: &[u8]) -> Result<Vec<u8>, PackageError> {
        let cap = self.limits.max_total.saturating_sub(self.total);
        let mut out = Vec::new();
        let mut dec = flate2::read::MultiGzDecoder::new(data).take(cap + 1);
        dec.read_to_end(&mut out)
            .map_err(|e| PackageError::Truncated {
                file: self.source.into(),
                why: format!("{label}: gzip: {e}"),
            })?;
        if out.len() as u64 > cap {
            return Err(PackageError::TooLarge {
                file: self.source.into(),
                limit: self.limits.max_total,
            });
        }
        let ratio = out.len() as u64 / (data.len() as u64).max(1);
        if out.len() > 1 << 20 && ratio > self.limits.max_ratio {
            return Err(PackageError::Bomb {
                file: self.source.into(),
                member: label.into(),
                ratio,
            });
        }
        Ok(out)
    }

    fn tar(&mut self, label: &str, data: &[u8], depth: u8) -> Result<(), PackageError> {
        let trunc = |why: String| PackageError::Truncated {
            file: self.source.to_string(),
            why: format!("{label}: tar: {why}"),
        };
        let mut ar = tar::Archive::new(Cursor::new(data));
        let mut end = 0u64;
        let mut members: Vec<(String, Vec<u8>)> = Vec::new();
        let entries = ar.entries().map_err(|e| trunc(e.to_string()))?;
        for entry in entries {
            let mut e = entry.map_err(|e| trunc(e.to_string()))?;
            let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            self.count()?;
            let kind = e.header().entry_type();
            if kind.is_dir() {
                continue;
            }
            if kind.is_symlink() || kind.is_hard_link() {
                return Err(self.bad(&path, "links are not accepted"));
            }
            if !(kind.is_file() || kind == tar::EntryType::Continuous) {
                return Err(self.bad(&path, format!("special file ({:?})", kind)));
            }
            let size = e.size();
            if size > self.limits.max_entry {
                return Err(PackageError::TooLarge {
                    file: self.source.into(),
                    limit: self.limits.max_entry,
                });
            }
            self.grow(size)?;
            // Checked against the archive's own length above; the tar crate stops at EOF.
            let mut buf = Vec::with_capacity(size.min(data.len() as u64) as usize);
            e.read_to_end(&mut buf).map_err(|e| trunc(e.to_string()))?;
            if buf.len() as u64 != size {
                return Err(trunc(format!(
                    "{path:?} holds {} of its {size} bytes",
                    buf.len()
                )));
            }
            end = e.raw_file_position() + size;
            members.push((path, buf));
        }
        // A tar ends with two zero blocks after the last member's padded data.
        let end = end.div_ceil(512) * 512;
        let tail = data.get(end as usize..end as usize + 1024);
        if !tail.is_some_and(|t| t.iter().all(|&b| b == 0)) {
            return Err(trunc("no end-of-archive blocks".into()));
        }
        for (p, b) in members {
            self.add(&p, b, depth)?;
        }
        Ok(())
    }

    fn zip(&mut self, label: &str, data: &[u8], depth: u8) -> Result<(), PackageError> {
        let mut z =
            zip::ZipArchive::new(Cursor::new(data)).map_err(|e| PackageError::Truncated {
                file: self.source.into(),
                why: format!("{label}: zip: {e}"),
            })?;
        let mut members = Vec::new();
        for i in 0..z.len() {
            self.count()?;
            let mut f = z.by_index(i).map_err(|e| PackageError::Truncated {
                file: self.source.into(),
                why: format!("{label}: zip member {i}: {e}"),
            })?;
            let path = String::from_utf8_lossy(f.name_raw()).into_owned();
            if f.is_dir() {
                continue;
            }
            if f.unix_mode()
                .is_some_and(|m| m & 0o170000 != 0o100000 && m & 0o170000 != 0)
            {
                return Err(self.bad(&path, "links and special files are not accepted"));
            }
            let size = f.size();
            if size > self.limits.max_entry {
                return Err(PackageError::TooLarge {
                    file: self.source.into(),
                    limit: self.limits.max_entry,
                });
            }
            let ratio = size / f.compressed_size().max(1);
            if size > 1 << 20 && ratio > self.limits.max_ratio {
                return Err(PackageError::Bomb {
                    file: self.source.into(),
                    member: path,
                    ratio,
                });
            }
            self.grow(size)?;
            // Never trust the declared size: read at most one byte more than it.
            let mut buf = Vec::with_capacity(size.min(data.len() as u64 * 2) as usize);
            (&mut f)
                .take(size + 1)
                .read_to_end(&mut buf)
                .map_err(|e| PackageError::Truncated {
                    file: self.source.into(),
                    why: format!("{label}: {path:?}: {e}"),
                })?;
            if buf.len() as u64 != size {
                return Err(self.bad(&path, "size differs from the zip directory"));
            }
            members.push((path, buf));
        }
        for (p, b) in members {
            self.add(&p, b, depth)?;
        }
        Ok(())
    }
}

/// Loose files as they would sit in a TFTP root (a directory given to import), read as one
/// package so that a manifest finds its images; `(relative path, bytes)`.
pub fn read_loose(
    source: &str,
    files: Vec<(String, Vec<u8>)>,
    limits: &Limits,
) -> Result<Package, PackageError> {
    let mut r = Reader {
        source,
        limits: *limits,
        total: 0,
        entries: 0,
        files: Vec::new(),
        index: HashMap::new(),
        dropped: Vec::new(),
    };
    for (path, data) in files {
        r.count()?;
        r.grow(data.len() as u64)?;
        r.add(&path, data, 0)?;
    }
    finish(source, PackageKind::Loose, None, r)
}

/// A tar header block: ustar magic, or (old V7 tars) a valid header checksum.
fn is_tar(data: &[u8]) -> bool {
    let Some(h) = data.get(..512) else {
        return false;
    };
    if &h[257..262] == b"ustar" {
        return true;
    }
    let field = String::from_utf8_lossy(&h[148..156]);
    let Ok(want) = u32::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
    else {
        return false;
    };
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                b as u32
            }
        })
        .sum();
    sum == want && h[0] != 0
}

/// Reads package `source` (its file name tells loose files and COPs apart) from `data`.
pub fn read(source: &str, data: &[u8], limits: &Limits) -> Result<Package, PackageError> {
    let mut r = Reader {
        source,
        limits: *limits,
        total: 0,
        entries: 0,
        files: Vec::new(),
        index: HashMap::new(),
        dropped: Vec::new(),
    };
    let lower = source.to_ascii_lowercase();
    let base = lower.rsplit('/').next().unwrap_or(&lower).to_string();
    let mut header = None;
    let kind = if base.ends_with(".cop.sgn") || base.ends_with(".cop.sha512") {
        let (h, at, how) = sgn::locate_gzip_payload(data).map_err(|e| PackageError::NotCisco {
            file: source.into(),
            why: format!("no signed header or gzip payload: {e}"),
        })?;
        header = h;
        r.archive(source, &data[at..], 0)?;
        PackageKind::Cop(how)
    } else if data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06") {
        r.archive(source, data, 0)?;
        PackageKind::Zip
    } else if data.starts_with(&[0x1f, 0x8b]) {
        r.archive(source, data, 0)?;
        PackageKind::TarGz
    } else if is_tar(data) {
        r.archive(source, data, 0)?;
        PackageKind::Tar
    } else if is_kept(&base) && !is_nested_archive(&base) {
        r.grow(data.len() as u64)?;
        let name = source.rsplit('/').next().unwrap_or(source);
        r.add(name, data.to_vec(), 0)?;
        PackageKind::Loose
    } else {
        return Err(PackageError::NotCisco {
            file: source.into(),
            why: "not a zip, tar, tar.gz, COP or firmware file".into(),
        });
    };
    finish(source, kind, header, r)
}

fn finish(
    source: &str,
    kind: PackageKind,
    header: Option<SignedHeader>,
    r: Reader<'_>,
) -> Result<Package, PackageError> {
    let mut manifests = Vec::new();
    for f in &r.files {
        if f.name.to_ascii_lowercase().ends_with(".loads") && !f.name.contains('/') {
            let m = manifest::parse(&f.data).map_err(|err| PackageError::Manifest {
                file: source.into(),
                member: f.name.clone(),
                err,
            })?;
            manifests.push((f.name.clone(), m));
        }
    }
    if r.files.is_empty() {
        return Err(PackageError::NotCisco {
            file: source.into(),
            why: "it holds no firmware, manifest or locale file".into(),
        });
    }
    Ok(Package {
        source: source.to_string(),
        kind,
        header,
        files: r.files,
        dropped: r.dropped,
        manifests,
    })
}
