//! Firmware import into the library directory + the store's per-load records: the one path
//! the CLI (`phoneboot firmware import`) and the REST upload share.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use firmware::{package, ImportReport, Library, Limits, LoadRecord};
use store::{FirmwareImage, FirmwareLoad, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum FirmwareError {
    #[error(transparent)]
    Package(#[from] firmware::PackageError),
    #[error(transparent)]
    Import(#[from] firmware::ImportError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The store's record of a library load; `package` and its signer when this import brought it.
pub fn record(
    l: &LoadRecord,
    package: &str,
    pkg_header: Option<&firmware::SignedHeader>,
) -> FirmwareLoad {
    let signer = l
        .header
        .as_ref()
        .and_then(|h| h.signer.clone())
        .or_else(|| pkg_header.and_then(|h| h.signer.clone()))
        .unwrap_or_default();
    let header = serde_json::json!({
        "manifest": l.header,
        "package": pkg_header,
        "style": l.style,
        "release": l.release,
    });
    FirmwareLoad {
        name: l.name.clone(),
        protocol: l.protocol.clone().unwrap_or_default(),
        models: l.models.clone(),
        manifest_file: l.manifest_file.clone(),
        complete: l.complete,
        images: l
            .images
            .iter()
            .map(|i| FirmwareImage {
                platform: i.platform.clone(),
                name: i.name.clone(),
                size: i.size,
                declared_size: i.declared_size,
                optional: i.optional,
            })
            .collect(),
        package: package.to_string(),
        signer,
        header: header.to_string(),
        imported_at: now(),
    }
}

/// Imports one package (bytes named `source`) and records every load it carried; loads
/// already recorded whose images it completed are refreshed too.
pub fn import_bytes(
    store: &dyn Store,
    lib: &Library,
    source: &str,
    data: &[u8],
    partial: bool,
) -> Result<ImportReport, FirmwareError> {
    let pkg = package::read(source, data, &Limits::default())?;
    let rep = lib.import(&pkg, partial)?;
    record_report(store, lib, &rep)?;
    Ok(rep)
}

/// Imports a file, or a directory: its archives one by one, its loose files together (so a
/// manifest finds its images).
pub fn import_path(
    store: &dyn Store,
    lib: &Library,
    path: &Path,
    partial: bool,
) -> Result<Vec<ImportReport>, FirmwareError> {
    let io = |e| FirmwareError::Io {
        path: path.display().to_string(),
        err: e,
    };
    if !path.is_dir() {
        let data = std::fs::read(path).map_err(io)?;
        let name = path.to_string_lossy().into_owned();
        return Ok(vec![import_bytes(store, lib, &name, &data, partial)?]);
    }
    let mut out = Vec::new();
    let mut loose = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(path).map_err(io)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if !p.is_file() {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let data = std::fs::read(&p).map_err(io)?;
        let lower = name.to_ascii_lowercase();
        let archive = lower.ends_with(".zip")
            || lower.ends_with(".tar")
            || lower.ends_with(".tar.gz")
            || lower.ends_with(".tgz")
            || lower.ends_with(".cop.sgn")
            || lower.ends_with(".cop.sha512");
        if archive {
            out.push(import_bytes(
                store,
                lib,
                &p.to_string_lossy(),
                &data,
                partial,
            )?);
        } else {
            loose.push((name, data));
        }
    }
    if !loose.is_empty() {
        let pkg = package::read_loose(&path.to_string_lossy(), loose, &Limits::default())?;
        let rep = lib.import(&pkg, partial)?;
        record_report(store, lib, &rep)?;
        out.push(rep);
    }
    Ok(out)
}

fn record_report(
    store: &dyn Store,
    lib: &Library,
    rep: &ImportReport,
) -> Result<(), FirmwareError> {
    for l in &rep.loads {
        store.put_firmware_load(&record(l, &rep.package, rep.header.as_ref()))?;
    }
    // Loads recorded earlier whose images this package brought (or replaced).
    let known = store.firmware_loads()?;
    let current = lib.loads().map_err(|e| FirmwareError::Io {
        path: lib.dir().display().to_string(),
        err: e,
    })?;
    for k in known {
        if rep.loads.iter().any(|l| l.name == k.name) {
            continue;
        }
        if let Some(c) = current.iter().find(|c| c.name == k.name) {
            let mut r = record(c, &k.package, None);
            r.signer = k.signer.clone();
            r.header = k.header.clone();
            r.imported_at = k.imported_at;
            if r.complete != k.complete || r.images != k.images {
                store.put_firmware_load(&r)?;
            }
        }
    }
    Ok(())
}
