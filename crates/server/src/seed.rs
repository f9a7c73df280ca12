//! First-start defaults: the configuration's CallManager list becomes the `Default` group's
//! nodes, and its auto-registration section the database's auto-registration settings.
//!
//! Afterwards the database is the source of truth. The auto-registration section is applied
//! again only when the configuration file's section itself changed since it was last applied
//! (the section as applied is recorded next to the database, `<db>.seed`), so settings changed
//! through the API or the CLI survive a restart with an unchanged configuration.

use std::path::{Path, PathBuf};

use store::{CmGroup, CmNode, Store, StoreError, DEFAULT_GROUP};

pub fn apply(store: &dyn Store, cfg: &config::Config) -> Result<(), StoreError> {
    let groups = store.groups()?;
    let default_empty = groups
        .iter()
        .find(|g| g.name == DEFAULT_GROUP)
        .is_none_or(|g| g.members.is_empty());
    if default_empty && store.nodes()?.is_empty() {
        let mut members = Vec::new();
        for (i, cm) in cfg.callmanagers.iter().enumerate() {
            let name = if i == 0 {
                cfg.node.name.clone()
            } else {
                format!("{}-{}", cfg.node.name, i + 1)
            };
            let mut node = CmNode::new(&name, &cm.host);
            node.sccp_port = cm.sccp_port;
            node.sip_port = cm.sip_port;
            store.put_node(&node)?;
            members.push(name);
        }
        store.put_group(&CmGroup {
            name: DEFAULT_GROUP.into(),
            tftp_default: true,
            members,
        })?;
    }
    let marker = marker_path(&cfg.node.database);
    let section = autoreg_section(&cfg.autoregistration);
    let recorded = std::fs::read_to_string(&marker).unwrap_or_default();
    if recorded == section {
        // The file's section is what was applied last time: the database wins.
        return Ok(());
    }
    let mut s = store.settings()?;
    let a = &cfg.autoregistration;
    if s.autoreg_enabled != a.enabled
        || s.autoreg_dn_start != a.dn_first
        || s.autoreg_dn_end != a.dn_last
        || s.autoreg_pool != a.device_pool
    {
        tracing::info!(
            enabled = a.enabled,
            dn_first = %a.dn_first,
            dn_last = %a.dn_last,
            "auto-registration settings taken from the configuration file (first start or the file's section changed)"
        );
        s.autoreg_enabled = a.enabled;
        s.autoreg_dn_start = a.dn_first.clone();
        s.autoreg_dn_end = a.dn_last.clone();
        s.autoreg_pool = a.device_pool.clone();
        store.put_settings(&s)?;
    }
    // Recorded after the settings are stored: a crash in between applies them again.
    if let Err(e) = std::fs::write(&marker, &section) {
        tracing::warn!(path = %marker.display(), error = %e, "could not record the applied auto-registration section; it will be applied again at the next start");
    }
    Ok(())
}

/// `<db>.seed` next to the database (`phoneboot.db` -> `phoneboot.seed`).
pub fn marker_path(db: &Path) -> PathBuf {
    db.with_extension("seed")
}

/// The configuration's auto-registration section as `apply` copies it, in a canonical form.
fn autoreg_section(a: &config::AutoRegistration) -> String {
    format!(
        "# [autoregistration] as last applied to the database by phoneboot serve\nenabled = {}\ndn_first = {:?}\ndn_last = {:?}\ndevice_pool = {:?}\n",
        a.enabled, a.dn_first, a.dn_last, a.device_pool
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::SqliteStore;

    fn config(db: &Path, enabled: bool, first: &str) -> config::Config {
        let mut c = config::Config::parse(config::EXAMPLE).unwrap();
        c.node.database = db.to_path_buf();
        c.autoregistration.enabled = enabled;
        c.autoregistration.dn_first = first.into();
        c
    }

    #[test]
    fn the_file_seeds_once_then_the_database_wins_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("pb.db");
        let store = SqliteStore::open(&db).unwrap();
        let cfg = config(&db, true, "1000");
        apply(&store, &cfg).unwrap();
        assert!(store.settings().unwrap().autoreg_enabled);
        assert_eq!(store.settings().unwrap().autoreg_dn_start, "1000");
        // The API turns it off; a restart with the same file keeps it off.
        let mut s = store.settings().unwrap();
        s.autoreg_enabled = false;
        store.put_settings(&s).unwrap();
        apply(&store, &cfg).unwrap();
        assert!(!store.settings().unwrap().autoreg_enabled);
        // The file's section changes: it is applied again.
        let changed = config(&db, true, "2000");
        apply(&store, &changed).unwrap();
        assert!(store.settings().unwrap().autoreg_enabled);
        assert_eq!(store.settings().unwrap().autoreg_dn_start, "2000");
    }
}
