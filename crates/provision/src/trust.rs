//! The trust files a secured cluster serves, derived from the cluster identity (kept in the
//! store) and the CallManager nodes: `ITLFile.tlv` and `ITLSEP<MAC>.tlv` always,
//! `CTLFile.tlv`/`CTLSEP<MAC>.tlv` in mixed mode, and `<name>.sgn` for every generated file
//! (signed on request by the TFTP identity; the payload is the unsigned file byte for byte).
//!
//! The per-MAC lists are the cluster list (a server may answer them with it, see
//! `../shared/reference/provisioning.md` a.5) and are served only for phones the database
//! knows; a `.sgn` only for a file that exists.

use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use store::Store;
use trust::identity::NodeName;
use trust::{ClusterIdentity, IdentityError};

use crate::Provisioner;

/// Store blob holding the cluster identity (private keys included; never served).
pub const IDENTITY_BLOB: &str = "trust.identity";
/// Store blob whose presence (`1`) puts the cluster in mixed mode (CTL files served).
pub const MIXED_MODE_BLOB: &str = "trust.mixed_mode";

/// Why the trust files cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

fn unix_now(now: SystemTime) -> u32 {
    now.duration_since(UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

/// The stored identity, or a new one made and stored now (first start). Two nodes starting
/// at once keep whichever was stored first.
pub fn load_or_create(store: &dyn Store, cluster: &str) -> Result<ClusterIdentity, TrustError> {
    if let Some(b) = store.blob(IDENTITY_BLOB)? {
        return Ok(ClusterIdentity::from_blob(&b)?);
    }
    let made = ClusterIdentity::generate(cluster, SystemTime::now())?;
    let stored = store.put_blob_if_absent(IDENTITY_BLOB, &made.to_blob()?)?;
    tracing::info!("made the cluster trust identity (SAST, TFTP, HTTPS certificates)");
    Ok(ClusterIdentity::from_blob(&stored)?)
}

/// The stored identity, if any (a damaged one is an error).
pub fn load(store: &dyn Store) -> Result<Option<ClusterIdentity>, TrustError> {
    match store.blob(IDENTITY_BLOB)? {
        Some(b) => Ok(Some(ClusterIdentity::from_blob(&b)?)),
        None => Ok(None),
    }
}

/// Stores `id` as the cluster identity (import, rotation).
pub fn save(store: &dyn Store, id: &ClusterIdentity) -> Result<(), TrustError> {
    store.put_blob(IDENTITY_BLOB, Some(&id.to_blob()?))?;
    Ok(())
}

/// The nodes as the trust lists name them: each distinct host once, sorted.
pub fn node_names(store: &dyn Store) -> Result<Vec<NodeName>, TrustError> {
    let mut hosts: Vec<String> = store.nodes()?.into_iter().map(|n| n.host).collect();
    hosts.sort();
    hosts.dedup();
    Ok(hosts.into_iter().map(|host| NodeName { host }).collect())
}

pub fn mixed_mode(store: &dyn Store) -> Result<bool, TrustError> {
    Ok(store.blob(MIXED_MODE_BLOB)?.is_some_and(|v| v == b"1"))
}

pub fn set_mixed_mode(store: &dyn Store, on: bool) -> Result<(), TrustError> {
    store.put_blob(MIXED_MODE_BLOB, on.then_some(b"1".as_slice()))?;
    Ok(())
}

/// A trust file ready to serve.
#[derive(Debug, Clone)]
pub struct TrustFile {
    pub bytes: Bytes,
    pub version: u64,
    pub modified: SystemTime,
}

struct Built {
    identity: Arc<ClusterIdentity>,
    /// What the lists were built from, to rebuild only on a change.
    key: (Vec<u8>, Vec<String>, bool),
    itl: TrustFile,
    ctl: Option<TrustFile>,
}

/// The trust files of one node, rebuilt by [`TrustFiles::refresh`] when the identity, the
/// nodes or mixed mode change.
pub struct TrustFiles {
    prov: Arc<Provisioner>,
    built: RwLock<Built>,
}

impl std::fmt::Debug for TrustFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustFiles").finish_non_exhaustive()
    }
}

fn build(prov: &Provisioner, version: u64, now: SystemTime) -> Result<Built, TrustError> {
    let store = prov.store();
    let blob = store
        .blob(IDENTITY_BLOB)?
        .ok_or_else(|| IdentityError::Corrupt("no cluster identity stored".into()))?;
    let identity = Arc::new(ClusterIdentity::from_blob(&blob)?);
    let mut hosts: Vec<String> = store.nodes()?.into_iter().map(|n| n.host).collect();
    hosts.sort();
    hosts.dedup();
    let mixed = mixed_mode(&**store)?;
    let nodes: Vec<NodeName> = hosts.iter().map(|h| NodeName { host: h.clone() }).collect();
    let ts = unix_now(now);
    let itl = TrustFile {
        bytes: identity.build_itl(&nodes, ts)?.into(),
        version,
        modified: now,
    };
    let ctl = if mixed {
        Some(TrustFile {
            bytes: identity.build_ctl(&nodes, ts)?.into(),
            version,
            modified: now,
        })
    } else {
        None
    };
    Ok(Built {
        identity,
        key: (blob, hosts, mixed),
        itl,
        ctl,
    })
}

impl TrustFiles {
    /// Builds the lists from the stored identity (call [`load_or_create`] first).
    pub fn new(prov: Arc<Provisioner>) -> Result<TrustFiles, TrustError> {
        let built = build(&prov, 1, SystemTime::now())?;
        Ok(TrustFiles {
            prov,
            built: RwLock::new(built),
        })
    }

    /// Re-reads identity, nodes and mode; rebuilds the lists when one changed. Returns
    /// whether it did. A damaged identity leaves the current files in place (and errs).
    pub fn refresh(&self) -> Result<bool, TrustError> {
        let store = self.prov.store();
        let blob = store.blob(IDENTITY_BLOB)?.unwrap_or_default();
        let mut hosts: Vec<String> = store.nodes()?.into_iter().map(|n| n.host).collect();
        hosts.sort();
        hosts.dedup();
        let key = (blob, hosts, mixed_mode(&**store)?);
        let version = {
            let b = self.built.read().unwrap_or_else(|p| p.into_inner());
            if b.key == key {
                return Ok(false);
            }
            b.itl.version + 1
        };
        let built = build(&self.prov, version, SystemTime::now())?;
        *self.built.write().unwrap_or_else(|p| p.into_inner()) = built;
        Ok(true)
    }

    /// The identity the files are built from.
    pub fn identity(&self) -> Arc<ClusterIdentity> {
        self.built
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .identity
            .clone()
    }

    /// A trust file or signed file by name (any case), `None` when there is no such file:
    /// a `.tlv` that is not a list, a per-MAC list for a phone the database does not know,
    /// a CTL outside mixed mode, a `.sgn` of a file that does not exist.
    pub fn get(&self, name: &str) -> Option<TrustFile> {
        let lower = name.to_ascii_lowercase();
        if let Some(base) = lower.strip_suffix(".sgn") {
            if base.ends_with(".tlv") || base.ends_with(".sgn") {
                return None;
            }
            return self.signed(base);
        }
        let b = self.built.read().unwrap_or_else(|p| p.into_inner());
        let known = |rest: &str| {
            rest.strip_suffix(".tlv")
                .and_then(|dev| mac::Mac::from_device_name(dev).ok())
                .is_some_and(|m| self.prov.device_by_mac(m).is_some())
        };
        match lower.as_str() {
            "itlfile.tlv" => Some(b.itl.clone()),
            "ctlfile.tlv" => b.ctl.clone(),
            _ if lower.starts_with("itlsep") => known(&lower[3..]).then(|| b.itl.clone()),
            _ if lower.starts_with("ctlsep") => b.ctl.clone().filter(|_| known(&lower[3..])),
            _ => None,
        }
    }

    /// `<base>.sgn`: the generated file `base` signed by the TFTP identity.
    fn signed(&self, base: &str) -> Option<TrustFile> {
        let f = self.prov.get(base)?;
        let id = self.identity();
        let name = format!("{}.sgn", f.name);
        match id.sign_file(&name, &f.bytes(), unix_now(f.modified)) {
            Ok(bytes) => Some(TrustFile {
                bytes: bytes.into(),
                version: f.version,
                modified: f.modified,
            }),
            Err(e) => {
                tracing::error!(file = %name, error = %e, "signing failed");
                None
            }
        }
    }
}

impl TrustFiles {
    /// Follows the provisioner's changes (node edits, identity import or rotation, mixed
    /// mode: each is a database change) and rebuilds the lists when their inputs changed.
    pub async fn follow(self: Arc<Self>) {
        let mut rx = self.prov.subscribe();
        loop {
            match rx.recv().await {
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.refresh()).await {
                Ok(Ok(true)) => tracing::info!("trust lists rebuilt"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "trust lists not rebuilt; serving the previous ones")
                }
                Err(e) => tracing::warn!(error = %e, "trust list task failed"),
            }
        }
    }
}
