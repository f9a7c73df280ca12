//! The firmware directory on disk: files sit flat under the names phones request (locale
//! files in `<locale dir>/`), exactly as Cisco's tools would leave a TFTP root. Import is
//! all or nothing: every file is written to a staging directory first and renamed into place
//! only once the whole package has been checked.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::manifest::{self, Manifest, ManifestStyle};
use crate::models;
use crate::package::{Package, PackageError};
use crate::sgn::SignedHeader;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error("{file}: {name} differs from the file of that name already in the library (same name, different bytes); nothing imported")]
    Conflict { file: String, name: String },
    #[error("{file}: load {load} is incomplete: {missing} is missing; nothing imported (import partial loads with --partial)")]
    Incomplete {
        file: String,
        load: String,
        missing: String,
    },
    #[error(
        "{file}: not a Cisco package: no .loads manifest and no locale files; nothing imported"
    )]
    NoLoads { file: String },
    #[error("firmware directory {dir}: {err}")]
    Io { dir: String, err: String },
}

/// One image of a load as the library holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRecord {
    /// `[PLATFORM_n]` section, "" for single-platform manifests.
    pub platform: String,
    pub name: String,
    /// Size the manifest declares (792x), if any.
    pub declared_size: Option<u64>,
    /// Size on disk, `None` when missing.
    pub size: Option<u64>,
    pub optional: bool,
}

impl ImageRecord {
    /// Present and of the declared size.
    pub fn ok(&self) -> bool {
        match (self.size, self.declared_size) {
            (Some(s), Some(d)) => s == d,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// What the library knows about one load (one `.loads` manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadRecord {
    /// Manifest name without `.loads` (what `loadInformation` names).
    pub name: String,
    pub manifest_file: String,
    pub style: ManifestStyle,
    /// "SCCP", "SIP", or `None` when neither the name nor the images tell.
    pub protocol: Option<String>,
    pub models: Vec<String>,
    pub images: Vec<ImageRecord>,
    /// Every non-optional image present with its declared size.
    pub complete: bool,
    /// The manifest's signed header.
    pub header: Option<SignedHeader>,
    pub release: Option<String>,
}

impl LoadRecord {
    /// Images that stop the load from being complete, with why.
    pub fn missing(&self) -> Vec<String> {
        self.images
            .iter()
            .filter(|i| !i.optional && !i.ok())
            .map(|i| match (i.size, i.declared_size) {
                (Some(s), Some(d)) => format!("{} ({s} bytes, the manifest says {d})", i.name),
                _ => i.name.clone(),
            })
            .collect()
    }

    fn from_manifest(file: &str, m: &Manifest, size_of: impl Fn(&str) -> Option<u64>) -> Self {
        let name = file
            .get(..file.len().saturating_sub(".loads".len()))
            .unwrap_or(file)
            .to_string();
        let mut images = Vec::new();
        for p in &m.platforms {
            for i in &p.images {
                images.push(ImageRecord {
                    platform: p.name.clone(),
                    name: i.name.clone(),
                    declared_size: i.size,
                    size: size_of(&i.name),
                    optional: i.optional,
                });
            }
        }
        let names = m.image_names();
        let complete = images.iter().all(|i| i.optional || i.ok());
        LoadRecord {
            protocol: models::protocol_of(&name, &names).map(str::to_string),
            models: models::models_for_load(&name)
                .into_iter()
                .map(str::to_string)
                .collect(),
            manifest_file: file.to_string(),
            style: m.style,
            images,
            complete,
            header: m.header.clone(),
            release: m.release.clone(),
            name,
        }
    }
}

/// Installed locale directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocaleRecord {
    pub name: String,
    pub files: Vec<String>,
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub package: String,
    pub kind: crate::PackageKind,
    /// The package's own signed header (COPs).
    pub header: Option<SignedHeader>,
    /// Loads the package carried, as the library now holds them.
    pub loads: Vec<LoadRecord>,
    /// Files written (new or replaced by identical bytes are not counted).
    pub written: Vec<String>,
    /// Locale directories touched.
    pub locales: Vec<String>,
    pub dropped: Vec<String>,
}

/// The firmware directory.
#[derive(Debug, Clone)]
pub struct Library {
    dir: PathBuf,
}

fn io_err(dir: &Path, e: impl std::fmt::Display) -> ImportError {
    ImportError::Io {
        dir: dir.display().to_string(),
        err: e.to_string(),
    }
}

impl Library {
    /// Opens (creating) the directory.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(Library { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The on-disk path of `name` (`file` or `dir/file`), matched case-insensitively as
    /// phones and Cisco's own TFTP do.
    pub fn find(&self, name: &str) -> Option<PathBuf> {
        let mut at = self.dir.clone();
        for part in name.split('/') {
            let exact = at.join(part);
            if exact.exists() {
                at = exact;
                continue;
            }
            let found = fs::read_dir(&at).ok()?.flatten().find(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(part))
            })?;
            at = found.path();
        }
        Some(at)
    }

    fn size_of(&self, name: &str) -> Option<u64> {
        let p = self.find(name)?;
        let md = fs::metadata(p).ok()?;
        md.is_file().then_some(md.len())
    }

    /// Every load in the directory, by name.
    pub fn loads(&self) -> io::Result<Vec<LoadRecord>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir)?.flatten() {
            let Some(n) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !n.to_ascii_lowercase().ends_with(".loads") || !e.path().is_file() {
                continue;
            }
            let data = fs::read(e.path())?;
            // A manifest that no longer parses is not a load (import refuses such files).
            if let Ok(m) = manifest::parse(&data) {
                out.push(LoadRecord::from_manifest(&n, &m, |i| self.size_of(i)));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One load by name (with or without `.loads`, any case).
    pub fn load(&self, name: &str) -> Option<LoadRecord> {
        let base = name
            .strip_suffix(".loads")
            .unwrap_or(name)
            .to_ascii_lowercase();
        self.loads()
            .ok()?
            .into_iter()
            .find(|l| l.name.to_ascii_lowercase() == base)
    }

    /// Installed locale directories (subdirectories).
    pub fn locales(&self) -> io::Result<Vec<LocaleRecord>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !e.path().is_dir() || name.starts_with('.') {
                continue;
            }
            let mut files: Vec<String> = fs::read_dir(e.path())?
                .flatten()
                .map(|f| f.file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            out.push(LocaleRecord { name, files });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Imports a read package: refuses it whole when a file conflicts with the library or
    /// (unless `allow_partial`) a load would be incomplete even with the library's files.
    pub fn import(&self, pkg: &Package, allow_partial: bool) -> Result<ImportReport, ImportError> {
        let file = pkg.source.clone();
        if pkg.manifests.is_empty() && !pkg.is_locale() && pkg.kind != crate::PackageKind::Loose {
            return Err(ImportError::NoLoads { file });
        }
        // Same name, different bytes: refuse (reference §1.3 (b)).
        let mut to_write = Vec::new();
        for f in &pkg.files {
            match self.find(&f.name) {
                Some(p) if p.is_file() => {
                    let old = fs::read(&p).map_err(|e| io_err(&self.dir, e))?;
                    if hex::encode(Sha256::digest(&old)) != f.sha256 {
                        return Err(ImportError::Conflict {
                            file,
                            name: f.name.clone(),
                        });
                    }
                }
                _ => to_write.push(f),
            }
        }
        let pkg_sizes: HashMap<String, u64> = pkg
            .files
            .iter()
            .map(|f| (f.name.to_ascii_lowercase(), f.data.len() as u64))
            .collect();
        let size_of = |n: &str| {
            pkg_sizes
                .get(&n.to_ascii_lowercase())
                .copied()
                .or_else(|| self.size_of(n))
        };
        let mut loads = Vec::new();
        for (name, m) in &pkg.manifests {
            let rec = LoadRecord::from_manifest(name, m, size_of);
            if !rec.complete && !allow_partial {
                return Err(ImportError::Incomplete {
                    file,
                    load: rec.name.clone(),
                    missing: rec.missing().join(", "),
                });
            }
            loads.push(rec);
        }
        // Stage everything, then rename into place.
        let stage = self.dir.join(format!(
            ".import-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let staged = (|| -> io::Result<Vec<(PathBuf, PathBuf, String)>> {
            fs::create_dir_all(&stage)?;
            let mut moves = Vec::new();
            for (i, f) in to_write.iter().enumerate() {
                let tmp = stage.join(i.to_string());
                fs::write(&tmp, &f.data)?;
                fs::File::open(&tmp)?.sync_all()?;
                moves.push((tmp, self.dir.join(&f.name), f.name.clone()));
            }
            Ok(moves)
        })();
        let moves = match staged {
            Ok(m) => m,
            Err(e) => {
                let _ = fs::remove_dir_all(&stage);
                return Err(io_err(&self.dir, e));
            }
        };
        let mut done: Vec<PathBuf> = Vec::new();
        let mut written = Vec::new();
        for (tmp, dest, name) in moves {
            let r = dest
                .parent()
                .map(fs::create_dir_all)
                .unwrap_or(Ok(()))
                .and_then(|_| fs::rename(&tmp, &dest));
            if let Err(e) = r {
                for d in &done {
                    let _ = fs::remove_file(d);
                }
                let _ = fs::remove_dir_all(&stage);
                return Err(io_err(&self.dir, e));
            }
            done.push(dest);
            written.push(name);
        }
        let _ = fs::remove_dir_all(&stage);
        let mut locales: Vec<String> = pkg
            .files
            .iter()
            .filter_map(|f| f.name.split_once('/').map(|(d, _)| d.to_string()))
            .collect();
        locales.sort();
        locales.dedup();
        // Report the loads as the library now holds them.
        let loads = loads
            .into_iter()
            .map(|l| self.load(&l.name).unwrap_or(l))
            .collect();
        Ok(ImportReport {
            package: pkg.source.clone(),
            kind: pkg.kind,
            header: pkg.header.clone(),
            loads,
            written,
            locales,
            dropped: pkg.dropped.clone(),
        })
    }
}
