//! What is served: a file in memory, the trait generated files come through, and the
//! lease lookup that names the MAC behind a client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use mac::Mac;

/// One file as served: its bytes, an entity tag and a modification time (for HTTP
/// `ETag`/`Last-Modified` and 304 answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub bytes: Bytes,
    /// A quoted HTTP entity tag, e.g. `"v42"`.
    pub etag: String,
    pub modified: SystemTime,
}

impl File {
    /// A file whose tag is a hash of its contents.
    pub fn new(bytes: impl Into<Bytes>, modified: SystemTime) -> File {
        let bytes = bytes.into();
        let etag = format!("\"{:016x}-{:x}\"", fnv1a(&bytes), bytes.len());
        File {
            bytes,
            etag,
            modified,
        }
    }

    /// A file whose tag is a version number the producer keeps (cheaper than hashing).
    pub fn with_version(bytes: impl Into<Bytes>, version: u64, modified: SystemTime) -> File {
        File {
            bytes: bytes.into(),
            etag: format!("\"v{version}\""),
            modified,
        }
    }

    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Generated files (SEP<MAC>.cnf.xml, XMLDefault.cnf.xml, dial templates, softkeys, ring
/// lists...), built from the device database by another crate.
///
/// `name` is the requested path with leading slashes removed and already checked for
/// escapes (no `..`, NUL or backslash); it keeps the client's case. Implementations must
/// match it **case-insensitively** (phones differ in the case of the MAC) and must be cheap:
/// this is called on the request path, on a runtime thread.
pub trait FileSource: Send + Sync {
    fn get(&self, name: &str) -> Option<Arc<File>>;
}

/// Which phone holds an address (the DHCP lease table, as the lead wires it).
pub trait MacLookup: Send + Sync {
    fn mac_for_ip(&self, ip: IpAddr) -> Option<Mac>;
}

/// An in-memory [`FileSource`] keyed case-insensitively; for tests, tools, and as a model.
#[derive(Debug, Default)]
pub struct MapSource {
    files: RwLock<HashMap<String, Arc<File>>>,
}

impl MapSource {
    pub fn new() -> Arc<MapSource> {
        Arc::new(MapSource::default())
    }

    /// Adds or replaces a file.
    pub fn insert(&self, name: &str, file: File) {
        let mut g = match self.files.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.insert(name.to_ascii_lowercase(), Arc::new(file));
    }

    pub fn remove(&self, name: &str) {
        let mut g = match self.files.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.remove(&name.to_ascii_lowercase());
    }
}

impl FileSource for MapSource {
    fn get(&self, name: &str) -> Option<Arc<File>> {
        let g = match self.files.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.get(&name.to_ascii_lowercase()).cloned()
    }
}

/// A fixed address-to-MAC table, for tests and tools.
#[derive(Debug, Default, Clone)]
pub struct StaticMacs(pub HashMap<IpAddr, Mac>);

impl MacLookup for StaticMacs {
    fn mac_for_ip(&self, ip: IpAddr) -> Option<Mac> {
        self.0.get(&ip).copied()
    }
}

/// The MAC in a `SEP<12 hex>` anywhere in a file name (`SEP…cnf.xml`, `CTLSEP…tlv`,
/// `ITLSEP…tlv`), any case.
pub fn mac_from_name(name: &str) -> Option<Mac> {
    let b = name.as_bytes();
    let mut i = 0;
    while i + 15 <= b.len() {
        if b[i..i + 3].eq_ignore_ascii_case(b"SEP") {
            let hex = &b[i + 3..i + 15];
            if hex.iter().all(u8::is_ascii_hexdigit) {
                let s = std::str::from_utf8(hex).ok()?;
                return s.parse().ok();
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_from_sep_names() {
        let m: Mac = "001b54aabbcc".parse().unwrap();
        assert_eq!(mac_from_name("SEP001B54AABBCC.cnf.xml"), Some(m));
        assert_eq!(mac_from_name("CTLSEP001b54aabbcc.tlv"), Some(m));
        assert_eq!(mac_from_name("/ITLSEP001B54AABBCC.tlv"), Some(m));
        assert_eq!(mac_from_name("XMLDefault.cnf.xml"), None);
        assert_eq!(mac_from_name("SEP001B54AABB.cnf.xml"), None);
    }

    #[test]
    fn map_source_is_case_insensitive() {
        let s = MapSource::new();
        s.insert(
            "SEP001B54AABBCC.cnf.xml",
            File::new(&b"x"[..], SystemTime::UNIX_EPOCH),
        );
        assert!(s.get("sep001b54aabbcc.CNF.XML").is_some());
        assert!(s.get("SEP001B54AABBCD.cnf.xml").is_none());
    }
}
