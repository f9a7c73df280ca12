//! Cisco phone firmware and locale packages.
//!
//! * [`sgn`]: the signed-file header and where a COP's payload starts;
//! * [`manifest`]: `.loads` manifests in every dialect Cisco ships;
//! * [`package`]: zip/tar/tar.gz/COP/loose files -> the files a phone can request, with the
//!   bad-input rules (bombs, traversal, links, unrequestable names, conflicting duplicates);
//! * [`library`]: the firmware directory on disk and all-or-nothing import into it;
//! * [`models`]: which models a load is for, `termNN.default`, protocol of a load;
//! * [`testkit`]: synthetic packages in Cisco's formats for tests (never Cisco's files).
//!
//! Parsing is sans-IO (bytes in); only [`library`] touches the file system.

pub mod library;
pub mod manifest;
pub mod models;
pub mod names;
pub mod package;
pub mod sgn;
pub mod testkit;

pub use library::{ImageRecord, ImportError, ImportReport, Library, LoadRecord, LocaleRecord};
pub use manifest::{Manifest, ManifestError, ManifestStyle};
pub use package::{Limits, Package, PackageError, PackageKind};
pub use sgn::{HashAlg, PayloadFound, SignedHeader};

/// Fuzz entry: any bytes into the manifest parser; a parsed manifest re-rendered in its own
/// dialect names the same images.
pub fn fuzz_manifest(data: &[u8]) {
    if let Ok(m) = manifest::parse(data) {
        let body = m.render_body();
        let back = manifest::parse(body.as_bytes());
        if let Ok(b) = back {
            assert_eq!(
                b.image_names(),
                m.image_names(),
                "re-rendered manifest differs"
            );
        }
    }
}

/// Fuzz entry: any bytes into the header parser and the payload locator.
pub fn fuzz_header(data: &[u8]) {
    if let Ok(h) = sgn::parse_header(data) {
        assert!(h.header_len <= data.len());
    }
    if let Ok((_, at, _)) = sgn::locate_gzip_payload(data) {
        assert!(at + 2 <= data.len());
    }
    let _ = package::read(
        "fuzz.cop.sgn",
        data,
        &Limits {
            max_total: 1 << 20,
            max_entry: 1 << 20,
            max_entries: 64,
            max_ratio: 200,
        },
    );
}
