//! Consistent copies of a node's SQLite files for `phoneboot backup` / `restore`.
//!
//! `VACUUM INTO` (SQLite 3.27 and later) writes one read snapshot of a live database into a
//! new file, so a backup can run while `phoneboot serve` keeps writing: no lock held for
//! longer than the copy, no half-written page.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

/// Writes a consistent copy of the SQLite database `src` into `dst`, which must not exist.
pub fn snapshot_sqlite(src: &Path, dst: &Path) -> Result<(), StoreError> {
    let conn = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let dst = dst.to_str().ok_or_else(|| StoreError::Invalid {
        field: "backup path".into(),
        expected: "a UTF-8 path".into(),
        found: dst.display().to_string(),
    })?;
    conn.execute("VACUUM INTO ?1", [dst])?;
    Ok(())
}

/// Whether `path` is a SQLite database at all (a restore refuses anything else).
pub fn is_sqlite(path: &Path) -> bool {
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && &head == b"SQLite format 3\0"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Line, SqliteStore, Store};

    #[test]
    fn a_snapshot_of_a_live_database_holds_what_was_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("live.db");
        let store = SqliteStore::open(&src).expect("open");
        store
            .add_line(&Line {
                dn: "4101".into(),
                ..Line::default()
            })
            .expect("line");
        let dst = dir.path().join("copy.db");
        snapshot_sqlite(&src, &dst).expect("snapshot");
        assert!(is_sqlite(&dst));
        assert!(!is_sqlite(&dir.path().join("missing.db")));
        let copy = SqliteStore::open(&dst).expect("copy opens");
        assert!(copy.line("4101").expect("read").is_some());
        // The destination must be new: a second snapshot onto it fails.
        assert!(snapshot_sqlite(&src, &dst).is_err());
    }
}
