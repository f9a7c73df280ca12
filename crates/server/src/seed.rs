//! First-start defaults: the configuration's CallManager list becomes the `Default` group's
//! nodes, and its auto-registration section the database's auto-registration settings.
//! Afterwards the database is the source of truth; only auto-registration follows the file.

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
    let mut s = store.settings()?;
    let a = &cfg.autoregistration;
    if s.autoreg_enabled != a.enabled
        || s.autoreg_dn_start != a.dn_first
        || s.autoreg_dn_end != a.dn_last
        || s.autoreg_pool != a.device_pool
    {
        s.autoreg_enabled = a.enabled;
        s.autoreg_dn_start = a.dn_first.clone();
        s.autoreg_dn_end = a.dn_last.clone();
        s.autoreg_pool = a.device_pool.clone();
        store.put_settings(&s)?;
    }
    Ok(())
}
