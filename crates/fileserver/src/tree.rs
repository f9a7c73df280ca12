//! The static tree: files under a configured directory, resolved case-insensitively, never
//! outside the directory, and kept in a bounded in-memory cache.
//!
//! Lookups split into a fast path ([`StaticTree::cached`], a map lookup under a mutex, used
//! on the runtime thread) and a slow path ([`StaticTree::load`], directory walks and file
//! reads, meant for `spawn_blocking`).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::source::File;

/// Why a requested name is refused before any file system access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("empty file name")]
    Empty,
    #[error("file name too long")]
    TooLong,
    #[error("NUL or control character in file name")]
    Control,
    #[error("backslash in file name")]
    Backslash,
    #[error("\"..\" in file name")]
    DotDot,
}

/// Longest accepted request name.
pub const MAX_NAME: usize = 1024;

/// Checks a requested name and returns it without leading slashes (a leading `/` means the
/// tree root, as with `tftpd -s`), with `.` and empty components removed.
pub fn clean_name(name: &str) -> Result<String, PathError> {
    if name.len() > MAX_NAME {
        return Err(PathError::TooLong);
    }
    if name.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(PathError::Control);
    }
    if name.contains('\\') {
        return Err(PathError::Backslash);
    }
    let mut parts = Vec::new();
    for comp in name.split('/') {
        match comp {
            "" | "." => continue,
            ".." => return Err(PathError::DotDot),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(PathError::Empty);
    }
    Ok(parts.join("/"))
}

/// Result of a slow-path load.
#[derive(Debug, Clone)]
pub enum Loaded {
    Found(Arc<File>),
    NotFound,
    /// The name resolves outside the root (symlink) or to something that is not a file.
    Refused,
    TooLarge(u64),
}

#[derive(Debug)]
struct Entry {
    file: Arc<File>,
    path: PathBuf,
    mtime: SystemTime,
    checked: Instant,
    used: u64,
}

#[derive(Debug, Default)]
struct Cache {
    hits: HashMap<String, Entry>,
    /// Recent misses, so a storm of requests for a missing file costs no disk walks.
    misses: HashMap<String, Instant>,
    bytes: u64,
    tick: u64,
}

/// Files under one directory.
#[derive(Debug)]
pub struct StaticTree {
    root: PathBuf,
    cache: Mutex<Cache>,
    capacity: u64,
    max_cached_file: u64,
    max_file: u64,
    revalidate: Duration,
}

const MAX_MISSES: usize = 4096;

impl StaticTree {
    /// A tree rooted at `root` (canonicalised now, so later symlink checks compare against
    /// the real directory).
    pub fn new(
        root: &Path,
        capacity: u64,
        max_cached_file: u64,
        max_file: u64,
        revalidate: Duration,
    ) -> io::Result<StaticTree> {
        Ok(StaticTree {
            root: fs::canonicalize(root)?,
            cache: Mutex::new(Cache::default()),
            capacity,
            max_cached_file,
            max_file,
            revalidate,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        match self.cache.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Fast path: a fresh cached answer for a cleaned name, if any (`Some(None)` is a fresh
    /// miss).
    pub fn cached(&self, clean: &str, now: Instant) -> Option<Option<Arc<File>>> {
        let key = clean.to_ascii_lowercase();
        let mut c = self.lock();
        c.tick += 1;
        let tick = c.tick;
        if let Some(e) = c.hits.get_mut(&key) {
            if now.duration_since(e.checked) < self.revalidate {
                e.used = tick;
                return Some(Some(e.file.clone()));
            }
            return None;
        }
        if let Some(&at) = c.misses.get(&key) {
            if now.duration_since(at) < self.revalidate {
                return Some(None);
            }
        }
        None
    }

    /// Slow path (blocking I/O): resolves, checks, reads and caches.
    pub fn load(&self, clean: &str, now: Instant) -> Loaded {
        let key = clean.to_ascii_lowercase();
        let path = match self.resolve(clean) {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.note_miss(key, now);
                return Loaded::NotFound;
            }
            Err(()) => return Loaded::Refused,
        };
        let meta = match fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Loaded::Refused,
            Err(_) => {
                self.note_miss(key, now);
                return Loaded::NotFound;
            }
        };
        let len = meta.len();
        if len > self.max_file {
            return Loaded::TooLarge(len);
        }
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        {
            let mut c = self.lock();
            c.tick += 1;
            let tick = c.tick;
            if let Some(e) = c.hits.get_mut(&key) {
                if e.path == path && e.mtime == mtime && e.file.len() == len {
                    e.checked = now;
                    e.used = tick;
                    return Loaded::Found(e.file.clone());
                }
            }
        }
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(_) => {
                self.note_miss(key, now);
                return Loaded::NotFound;
            }
        };
        let etag = format!(
            "\"{:x}-{:x}\"",
            bytes.len(),
            mtime
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        let file = Arc::new(File {
            bytes: Bytes::from(bytes),
            etag,
            modified: mtime,
        });
        if file.len() <= self.max_cached_file && file.len() <= self.capacity {
            self.insert(key, path, mtime, file.clone(), now);
        }
        Loaded::Found(file)
    }

    fn note_miss(&self, key: String, now: Instant) {
        let mut c = self.lock();
        if let Some(e) = c.hits.remove(&key) {
            c.bytes -= e.file.len();
        }
        if c.misses.len() >= MAX_MISSES {
            let revalidate = self.revalidate;
            c.misses
                .retain(|_, at| now.duration_since(*at) < revalidate);
            if c.misses.len() >= MAX_MISSES {
                c.misses.clear();
            }
        }
        c.misses.insert(key, now);
    }

    fn insert(&self, key: String, path: PathBuf, mtime: SystemTime, file: Arc<File>, now: Instant) {
        let mut c = self.lock();
        c.misses.remove(&key);
        c.tick += 1;
        let used = c.tick;
        let len = file.len();
        if let Some(old) = c.hits.insert(
            key,
            Entry {
                file,
                path,
                mtime,
                checked: now,
                used,
            },
        ) {
            c.bytes -= old.file.len();
        }
        c.bytes += len;
        // Evict least recently used entries until under capacity.
        while c.bytes > self.capacity {
            let Some(victim) = c
                .hits
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = c.hits.remove(&victim) {
                c.bytes -= e.file.len();
            }
        }
    }

    /// Bytes currently cached.
    pub fn cached_bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// Walks `clean` component by component, matching names case-insensitively when the exact
    /// name does not exist. `Ok(None)`: no such file. `Err`: resolves outside the root.
    fn resolve(&self, clean: &str) -> Result<Option<PathBuf>, ()> {
        let mut dir = self.root.clone();
        for comp in clean.split('/') {
            let exact = dir.join(comp);
            if fs::symlink_metadata(&exact).is_ok() {
                dir = exact;
                continue;
            }
            let Ok(entries) = fs::read_dir(&dir) else {
                return Ok(None);
            };
            let found = entries.filter_map(Result::ok).find(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(comp))
            });
            match found {
                Some(e) => dir = e.path(),
                None => return Ok(None),
            }
        }
        // Symlinks are fine only while they stay inside the root.
        match fs::canonicalize(&dir) {
            Ok(real) if real.starts_with(&self.root) => Ok(Some(real)),
            Ok(_) => Err(()),
            Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path, capacity: u64) -> StaticTree {
        StaticTree::new(dir, capacity, capacity, 1 << 30, Duration::from_secs(60)).unwrap()
    }

    #[test]
    fn clean_names() {
        assert_eq!(clean_name("/SEP1.cnf.xml").unwrap(), "SEP1.cnf.xml");
        assert_eq!(clean_name("a//./b").unwrap(), "a/b");
        assert_eq!(clean_name("../etc/passwd"), Err(PathError::DotDot));
        assert_eq!(clean_name("a/../../b"), Err(PathError::DotDot));
        assert_eq!(clean_name("a\\b"), Err(PathError::Backslash));
        assert_eq!(clean_name("a\0b"), Err(PathError::Control));
        assert_eq!(clean_name("/"), Err(PathError::Empty));
        assert_eq!(clean_name(&"a".repeat(2000)), Err(PathError::TooLong));
    }

    #[test]
    fn case_insensitive_and_no_escape() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        fs::create_dir_all(root.join("English_United_States")).unwrap();
        fs::write(root.join("English_United_States/mk-sip.jar"), b"jar").unwrap();
        fs::write(d.path().join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(d.path().join("secret"), root.join("link-out")).unwrap();
        std::os::unix::fs::symlink(
            root.join("English_United_States/mk-sip.jar"),
            root.join("link-in"),
        )
        .unwrap();
        let t = tree(&root, 1 << 20);
        let now = Instant::now();
        match t.load("english_united_states/MK-SIP.JAR", now) {
            Loaded::Found(f) => assert_eq!(&f.bytes[..], b"jar"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(t.load("link-out", now), Loaded::Refused));
        assert!(matches!(t.load("link-in", now), Loaded::Found(_)));
        assert!(matches!(t.load("nope", now), Loaded::NotFound));
        assert!(matches!(
            t.load("English_United_States", now),
            Loaded::Refused
        ));
        // Cached now.
        assert!(matches!(
            t.cached("English_United_States/mk-sip.jar", now),
            Some(Some(_))
        ));
        assert!(matches!(t.cached("nope", now), Some(None)));
    }

    #[test]
    fn cache_is_bounded() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..10 {
            fs::write(d.path().join(format!("f{i}")), vec![0u8; 1000]).unwrap();
        }
        let t = tree(d.path(), 3500);
        let now = Instant::now();
        for i in 0..10 {
            assert!(matches!(t.load(&format!("f{i}"), now), Loaded::Found(_)));
            assert!(t.cached_bytes() <= 3500);
        }
        assert_eq!(t.cached_bytes(), 3000);
        // The most recent ones stay.
        assert!(t.cached("f9", now).is_some());
        assert!(t.cached("f0", now).is_none());
    }

    #[test]
    fn changed_files_are_reloaded_after_revalidation() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a"), b"one").unwrap();
        let t = StaticTree::new(d.path(), 1 << 20, 1 << 20, 1 << 20, Duration::ZERO).unwrap();
        let now = Instant::now();
        assert!(matches!(t.load("a", now), Loaded::Found(f) if &f.bytes[..] == b"one"));
        fs::write(d.path().join("a"), b"two!").unwrap();
        assert!(t.cached("a", now).is_none());
        assert!(matches!(t.load("a", now), Loaded::Found(f) if &f.bytes[..] == b"two!"));
    }
}
