//! Joins the device database and the file renderer: every phone file lives in memory,
//! ready to serve, and is rebuilt the moment something it depends on changes.
//!
//! [`Provisioner`] owns a [`store::Store`], keeps an in-memory copy of the model (so the
//! TFTP/HTTP, SCCP and SIP services answer lookups without touching the database), and a
//! map `lower-case file name -> Arc<GeneratedFile>`. Changes made through it rebuild exactly
//! the affected files (a pool change: every phone in the pool; a line change: every phone
//! showing the line), swap them in under one short write lock (readers see the old or the
//! new file, never a half-built one), bump their versions and announce the change on a
//! broadcast channel so the SCCP/SIP services can restart phones when asked.

pub mod cli;
pub mod firmware;
pub mod trust;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::SystemTime;

use cnf::{CallManager, DeviceView, Globals, ModelInfo, PoolView, Protocol};
use store::{
    CmGroup, CmNode, DateTimeGroup, Device, DevicePatch, DevicePool, DialRule, DnRange,
    ImportReport, ImportRow, Line, LinePatch, Mac, NewDevice, Ring, Settings, Snapshot, Store,
    StoreError,
};
use tokio::sync::broadcast;

pub use store;

/// What kind of file a name resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `SEP<MAC>.cnf.xml`.
    Device,
    /// `XMLDefault.cnf.xml`.
    XmlDefault,
    DialTemplate,
    SoftKeys,
    RingList,
}

/// One built file, immutable once published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Canonical name (the case phones usually ask for, e.g. `SEP001B54AABBCC.cnf.xml`).
    pub name: String,
    pub kind: FileKind,
    /// The content as held in memory (see [`GeneratedFile::bytes`]).
    body: Body,
    /// Process-wide increasing build number; a rebuild always gets a higher one.
    pub version: u64,
    /// The `<versionStamp>` inside the file (content hash), also for SIP NOTIFY bodies.
    pub stamp: String,
    pub modified: SystemTime,
}

impl GeneratedFile {
    /// The file's content. Device files are held compressed (a 3.6 KB SEP file costs ~0.2 KB
    /// resident, issue 11) and decompressed here, a few microseconds per call: callers that
    /// need the bytes more than once should keep the returned `Bytes`.
    pub fn bytes(&self) -> bytes::Bytes {
        self.body.bytes()
    }

    /// Length of the content in bytes (without decompressing).
    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes this file's content occupies in memory (its share of a dictionary not counted).
    pub fn stored_len(&self) -> usize {
        match &self.body {
            Body::Plain(b) => b.len(),
            Body::Lz4 { data, .. } => data.len(),
        }
    }
}

/// How a file's content is held.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Body {
    /// As is (the few shared files).
    Plain(bytes::Bytes),
    /// An LZ4 block compressed against `dict`, an earlier file of the same device pool, model
    /// and protocol (shared by all of them, so only what differs per phone costs memory).
    Lz4 {
        data: Box<[u8]>,
        dict: Arc<[u8]>,
        len: u32,
    },
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Body::Plain(b) => b.len(),
            Body::Lz4 { len, .. } => *len as usize,
        }
    }

    fn bytes(&self) -> bytes::Bytes {
        match self {
            Body::Plain(b) => b.clone(),
            Body::Lz4 { data, dict, len } => {
                match lz4_flex::block::decompress_with_dict(data, *len as usize, dict) {
                    Ok(v) => bytes::Bytes::from(v),
                    Err(e) => {
                        // Unreachable for blocks we compressed ourselves; never serve garbage.
                        tracing::error!(error = %e, "a stored file does not decompress");
                        bytes::Bytes::new()
                    }
                }
            }
        }
    }

    /// Compresses `bytes` against `dict` into an exactly sized block (`scratch` is reused
    /// between calls); keeps them as is when that would not be smaller.
    fn pack(bytes: Vec<u8>, dict: &Arc<[u8]>, scratch: &mut Vec<u8>) -> Body {
        let Ok(len) = u32::try_from(bytes.len()) else {
            return Body::Plain(bytes::Bytes::from(bytes));
        };
        scratch.resize(lz4_flex::block::get_maximum_output_size(bytes.len()), 0);
        match lz4_flex::block::compress_into_with_dict(&bytes, scratch, dict) {
            Ok(n) if n < bytes.len() => Body::Lz4 {
                data: Box::from(&scratch[..n]),
                dict: dict.clone(),
                len,
            },
            _ => Body::Plain(bytes::Bytes::from(bytes.into_boxed_slice())),
        }
    }
}

/// Which dictionary a device file is compressed against: files of one pool, model and
/// protocol differ only in names, lines and the stamp.
type DictKey = (String, &'static str, Protocol);

/// A resolved line on a device, for the SCCP/SIP services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLine {
    pub dn: String,
    pub label: String,
    pub display: String,
    /// SIP digest user (the DN when the line has none).
    pub auth_user: String,
    pub auth_password: String,
    pub voicemail: String,
    pub shared: bool,
}

/// Everything the registration services need about one device, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub name: String,
    pub mac: Mac,
    pub model: &'static ModelInfo,
    pub protocol: Protocol,
    pub description: String,
    pub device_pool: String,
    pub button_template: String,
    pub softkey_template: String,
    pub security_mode: u8,
    /// The load its file names: the configured one when the firmware library holds it
    /// complete, else "" (a phone told to fetch a load that is not there fails every boot).
    pub load: String,
    /// The load the database (or catalogue) asks for, named or not.
    pub configured_load: String,
    /// Why the configured load is not named (not in the library / incomplete), for the
    /// boot journal.
    pub load_withheld: Option<String>,
    pub lines: Vec<DeviceLine>,
    pub speed_dials: Vec<store::SpeedDial>,
    /// The device pool as rendered (date/time, CallManager group), shared by its phones.
    pub pool: Arc<PoolView>,
    /// Stamp of the device's current configuration file.
    pub config_stamp: String,
}

impl DeviceInfo {
    /// CallManager list in priority order (the first is tried first).
    pub fn call_managers(&self) -> &[CallManager] {
        &self.pool.call_managers
    }
}

/// Announced after every change: which devices' files were rebuilt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Change {
    /// Devices whose file was rebuilt (their version was bumped).
    pub rebuilt: Vec<String>,
    /// The subset whose file content actually changed (phones worth restarting).
    pub content_changed: Vec<String>,
    /// Devices removed from the database.
    pub removed: Vec<String>,
    /// Other files rebuilt (XMLDefault, dial template, ring list).
    pub files: Vec<String>,
}

/// Errors from the provisioner: only the store can fail.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Devices rendered and published per slice of a large rebuild (see `render_and_publish`).
const PUBLISH_CHUNK: usize = 8192;

/// Rebuilds of at least this many devices hand freed memory back to the system.
const TRIM_AFTER: usize = 4096;

/// Returns memory freed by a large rebuild to the system. glibc keeps freed chunks in its
/// per-thread arenas (the rebuild renders on worker threads), which left the server ~300 MB
/// larger after each full rebuild of 100,000 files (measured: VmRSS 677 MB after a pool
/// edit, 372 MB after `malloc_trim`). Tens of milliseconds, once per large rebuild.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases the allocator's own free lists; it has no
    // preconditions and is thread-safe.
    unsafe {
        let t0 = std::time::Instant::now();
        libc::malloc_trim(0);
        tracing::debug!(elapsed = ?t0.elapsed(), "freed memory returned to the system");
    }
}

/// Name of the dial template every SIP phone is given.
pub const DIAL_TEMPLATE: &str = "dialplan.xml";

/// In-memory model, indexed for "who is affected by this change".
#[derive(Default)]
struct State {
    devices: HashMap<String, Device>,
    lines: HashMap<String, Line>,
    /// DN -> devices showing it, sorted. A Vec, not a set: almost every line has one user,
    /// and a one-name `BTreeSet` allocates a 280-byte node (28 MB per 100,000 lines).
    line_users: HashMap<String, Vec<String>>,
    pool_members: HashMap<String, BTreeSet<String>>,
    pools: Vec<DevicePool>,
    groups: Vec<CmGroup>,
    nodes: Vec<CmNode>,
    date_time_groups: Vec<DateTimeGroup>,
    model_loads: HashMap<(String, Protocol), String>,
    /// Firmware library records by lower-case load name.
    firmware: HashMap<String, store::FirmwareLoad>,
    settings: Settings,
    dial_rules: Vec<DialRule>,
    rings: Vec<Ring>,
    pool_views: HashMap<String, Arc<PoolView>>,
    globals: Globals,
    empty_pool: Arc<PoolView>,
}

impl State {
    fn from_snapshot(s: Snapshot) -> Self {
        let mut st = State {
            pools: s.pools,
            groups: s.groups,
            nodes: s.nodes,
            date_time_groups: s.date_time_groups,
            settings: s.settings,
            dial_rules: s.dial_rules,
            rings: s.rings,
            ..State::default()
        };
        st.model_loads = s
            .model_loads
            .into_iter()
            .map(|m| ((m.model, m.protocol), m.load))
            .collect();
        st.firmware = s
            .firmware
            .into_iter()
            .map(|l| (l.name.to_ascii_lowercase(), l))
            .collect();
        st.lines = s.lines.into_iter().map(|l| (l.dn.clone(), l)).collect();
        for d in s.devices {
            st.index_device(&d);
            st.devices.insert(d.name.clone(), d);
        }
        st.pool_views = st.compute_pool_views();
        st.globals = st.compute_globals();
        st
    }

    fn index_device(&mut self, d: &Device) {
        for l in &d.lines {
            let users = self.line_users.entry(l.dn.clone()).or_default();
            if let Err(i) = users.binary_search(&d.name) {
                if users.is_empty() {
                    users.reserve_exact(1);
                }
                users.insert(i, d.name.clone());
            }
        }
        self.pool_members
            .entry(d.device_pool.clone())
            .or_default()
            .insert(d.name.clone());
    }

    fn unindex_device(&mut self, d: &Device) {
        for l in &d.lines {
            if let Some(set) = self.line_users.get_mut(&l.dn) {
                if let Ok(i) = set.binary_search(&d.name) {
                    set.remove(i);
                }
                if set.is_empty() {
                    self.line_users.remove(&l.dn);
                }
            }
        }
        if let Some(set) = self.pool_members.get_mut(&d.device_pool) {
            set.remove(&d.name);
        }
    }

    fn compute_pool_views(&self) -> HashMap<String, Arc<PoolView>> {
        let nodes: HashMap<&str, &CmNode> =
            self.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
        let groups: HashMap<&str, &CmGroup> =
            self.groups.iter().map(|g| (g.name.as_str(), g)).collect();
        let dtgs: HashMap<&str, &DateTimeGroup> = self
            .date_time_groups
            .iter()
            .map(|d| (d.name.as_str(), d))
            .collect();
        self.pools
            .iter()
            .map(|p| {
                let group = groups.get(p.cm_group.as_str());
                let call_managers = group
                    .map(|g| {
                        g.members
                            .iter()
                            .filter_map(|m| nodes.get(m.as_str()))
                            .map(|n| CallManager {
                                name: n.name.clone(),
                                description: n.description.clone(),
                                host: n.host.clone(),
                                sccp_port: n.sccp_port,
                                sip_port: n.sip_port,
                                sccp_tls_port: n.sccp_tls_port,
                                sip_tls_port: n.sip_tls_port,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let dt = dtgs.get(p.date_time_group.as_str());
                let view = PoolView {
                    name: p.name.clone(),
                    date_time: cnf::DateTime {
                        name: p.date_time_group.clone(),
                        date_template: dt.map(|d| d.date_template.clone()).unwrap_or_default(),
                        time_zone: dt.map(|d| d.time_zone.clone()).unwrap_or_default(),
                        ntp_servers: dt.map(|d| d.ntp_servers.clone()).unwrap_or_default(),
                    },
                    cm_group: p.cm_group.clone(),
                    tftp_default: group.map(|g| g.tftp_default).unwrap_or(true),
                    call_managers,
                    connection_monitor_duration: p.connection_monitor_duration,
                    sip_register_interval: p.sip_register_interval,
                };
                (p.name.clone(), Arc::new(view))
            })
            .collect()
    }

    fn compute_globals(&self) -> Globals {
        let s = &self.settings;
        Globals {
            authentication_url: s.authentication_url.clone(),
            directory_url: s.directory_url.clone(),
            idle_url: s.idle_url.clone(),
            information_url: s.information_url.clone(),
            messages_url: s.messages_url.clone(),
            proxy_server_url: s.proxy_server_url.clone(),
            services_url: s.services_url.clone(),
            idle_timeout: s.idle_timeout,
            ssh_user: s.ssh_user.clone(),
            ssh_password: s.ssh_password.clone(),
            phone_password: s.phone_password.clone(),
            dial_template: DIAL_TEMPLATE.to_string(),
        }
    }

    fn pool(&self, name: &str) -> &PoolView {
        self.pool_views
            .get(name)
            .map(|p| p.as_ref())
            .unwrap_or(&self.empty_pool)
    }

    fn pool_arc(&self, name: &str) -> Arc<PoolView> {
        self.pool_views
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.empty_pool.clone())
    }

    fn pool_locales(&self, name: &str) -> (&str, &str) {
        self.pools
            .iter()
            .find(|p| p.name == name)
            .map(|p| (p.user_locale.as_str(), p.network_locale.as_str()))
            .unwrap_or(("English_United_States", "United_States"))
    }

    /// Device override, else the database's per-model default, else the catalogue's.
    fn effective_load(&self, d: &Device, m: &ModelInfo) -> String {
        if !d.load_override.is_empty() {
            return d.load_override.clone();
        }
        if let Some(l) = self.model_loads.get(&(m.name.to_string(), d.protocol)) {
            return l.clone();
        }
        m.default_load(d.protocol).unwrap_or("").to_string()
    }

    /// The load a file may name: `configured` when the firmware library holds it complete
    /// (its library spelling), else "" and why.
    fn offered_load(&self, configured: &str) -> (String, Option<String>) {
        let configured = configured.strip_suffix(".loads").unwrap_or(configured);
        if configured.is_empty() {
            return (String::new(), None);
        }
        match self.firmware.get(&configured.to_ascii_lowercase()) {
            Some(l) if l.complete => (l.name.clone(), None),
            Some(l) => (
                String::new(),
                Some(format!(
                    "load {} is incomplete in the firmware library (missing {}); loadInformation left empty",
                    l.name,
                    l.missing().join(", ")
                )),
            ),
            None => (
                String::new(),
                Some(format!(
                    "load {configured} is not in the firmware library; loadInformation left empty (phoneboot firmware import)"
                )),
            ),
        }
    }

    /// Renders one device's file and resolves its [`DeviceInfo`].
    fn build_device(&self, d: &Device) -> Option<(cnf::Rendered, DeviceInfo)> {
        // The store keeps canonical names: compare first, parse spellings only as a fallback.
        let model = cnf::catalog::MODELS
            .iter()
            .find(|m| m.name == d.model)
            .or_else(|| cnf::lookup(&d.model))?;
        let pool = self.pool(&d.device_pool);
        let (user_locale, network_locale) = self.pool_locales(&d.device_pool);
        let configured_load = self.effective_load(d, model);
        let (load, load_withheld) = self.offered_load(&configured_load);
        let empty = Line::default();
        let lines: Vec<cnf::LineView<'_>> = d
            .lines
            .iter()
            .map(|a| {
                let l = self.lines.get(&a.dn).unwrap_or(&empty);
                cnf::LineView {
                    dn: &a.dn,
                    label: if a.label.is_empty() {
                        &l.label
                    } else {
                        &a.label
                    },
                    display: if a.display.is_empty() {
                        &l.display_name
                    } else {
                        &a.display
                    },
                    auth_user: &l.auth_user,
                    auth_password: &l.auth_password,
                    voicemail: &l.voicemail,
                    shared: self.line_users.get(&a.dn).is_some_and(|u| u.len() > 1),
                }
            })
            .collect();
        let view = DeviceView {
            name: &d.name,
            model,
            protocol: d.protocol,
            load: &load,
            security_mode: d.security_mode,
            user_locale,
            network_locale,
            softkey_template: &d.softkey_template,
            pool,
            globals: &self.globals,
            lines,
            speed_dials: d
                .speed_dials
                .iter()
                .map(|s| cnf::SpeedDialView {
                    number: &s.number,
                    label: &s.label,
                })
                .collect(),
        };
        let rendered = cnf::render_sep(&view);
        let info = DeviceInfo {
            name: d.name.clone(),
            mac: d.mac,
            model,
            protocol: d.protocol,
            description: d.description.clone(),
            device_pool: d.device_pool.clone(),
            button_template: d.button_template.clone(),
            softkey_template: d.softkey_template.clone(),
            security_mode: d.security_mode,
            load: load.clone(),
            configured_load,
            load_withheld,
            lines: view
                .lines
                .iter()
                .map(|l| DeviceLine {
                    dn: l.dn.to_string(),
                    label: l.label.to_string(),
                    display: l.display.to_string(),
                    auth_user: if l.auth_user.is_empty() {
                        l.dn
                    } else {
                        l.auth_user
                    }
                    .to_string(),
                    auth_password: l.auth_password.to_string(),
                    voicemail: l.voicemail.to_string(),
                    shared: l.shared,
                })
                .collect(),
            speed_dials: d.speed_dials.clone(),
            pool: self.pool_arc(&d.device_pool),
            config_stamp: rendered.stamp.clone(),
        };
        Some((rendered, info))
    }

    fn render_xml_default(&self) -> cnf::Rendered {
        let pool = self.pool(&self.settings.autoreg_pool);
        let loads: Vec<(&'static ModelInfo, String)> = cnf::catalog::MODELS
            .iter()
            .filter_map(|m| {
                // The auto-registration protocol's load where the model has it, else the other.
                let proto: Protocol = self
                    .settings
                    .autoreg_protocol
                    .parse()
                    .unwrap_or(Protocol::Sccp);
                let proto = if m.supports(proto) {
                    proto
                } else if m.sip {
                    Protocol::Sip
                } else {
                    Protocol::Sccp
                };
                let load = self
                    .model_loads
                    .get(&(m.name.to_string(), proto))
                    .cloned()
                    .or_else(|| m.default_load(proto).map(str::to_string))?;
                // Only loads the library holds complete (else the model gets no line).
                let (load, _) = self.offered_load(&load);
                (!load.is_empty()).then_some((m, load))
            })
            .collect();
        let view = cnf::DefaultView {
            call_managers: &pool.call_managers,
            loads: loads.iter().map(|(m, l)| (*m, l.as_str())).collect(),
            globals: &self.globals,
        };
        cnf::render_xml_default(&view)
    }
}

struct Published {
    files: HashMap<String, Arc<GeneratedFile>>,
    devices: HashMap<String, Arc<DeviceInfo>>,
}

/// The file builder and in-memory view of the device database.
pub struct Provisioner {
    store: Arc<dyn Store>,
    /// Last seen external-change token of the store (see `reload_if_changed`).
    seen_token: Mutex<Option<i64>>,
    state: Mutex<State>,
    published: RwLock<Published>,
    next_version: AtomicU64,
    changes: broadcast::Sender<Arc<Change>>,
    /// Compression dictionaries for device files, renewed by every full rebuild (files built
    /// against an older one keep it alive until they are rebuilt themselves).
    dicts: Mutex<HashMap<DictKey, Arc<[u8]>>>,
}

/// One device rendered and packed, ready to publish.
struct BuiltDevice {
    body: Body,
    stamp: String,
    info: DeviceInfo,
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner").finish_non_exhaustive()
    }
}

/// Which shared files to rebuild.
#[derive(Clone, Copy)]
struct Statics {
    xml_default: bool,
    dial: bool,
    softkeys: bool,
    rings: bool,
}

impl Statics {
    const NONE: Statics = Statics {
        xml_default: false,
        dial: false,
        softkeys: false,
        rings: false,
    };
    const ALL: Statics = Statics {
        xml_default: true,
        dial: true,
        softkeys: true,
        rings: true,
    };
    const XML_DEFAULT: Statics = Statics {
        xml_default: true,
        ..Statics::NONE
    };
}

/// What a change touched, i.e. what must be re-read from the store.
enum Touch {
    Devices(Vec<String>),
    /// Many new devices at once: re-read everything, rebuild the new devices and their
    /// line-mates.
    Import(Vec<String>),
    Line(String),
    Topology,
    Loads,
    Settings,
    DialRules,
    Rings,
}

impl Provisioner {
    /// Loads everything from `store` and builds every file.
    pub fn new(store: Arc<dyn Store>) -> Result<Self, ProvisionError> {
        let token = store.external_change_token()?;
        let snap = store.snapshot()?;
        let (tx, _) = broadcast::channel(256);
        let p = Provisioner {
            seen_token: Mutex::new(token),
            store,
            state: Mutex::new(State::from_snapshot(snap)),
            published: RwLock::new(Published {
                files: HashMap::new(),
                devices: HashMap::new(),
            }),
            next_version: AtomicU64::new(1),
            changes: tx,
            dicts: Mutex::new(HashMap::new()),
        };
        p.rebuild_all_locked(&p.lock_state(), false);
        Ok(p)
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn read_published(&self) -> std::sync::RwLockReadGuard<'_, Published> {
        match self.published.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn write_published(&self) -> std::sync::RwLockWriteGuard<'_, Published> {
        match self.published.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The store, for reads the provisioner does not mirror. Writes must go through the
    /// provisioner or be followed by [`Provisioner::reload`].
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// A file by name, case-insensitively (`sep001b54aabbcc.CNF.XML` works).
    pub fn get(&self, name: &str) -> Option<Arc<GeneratedFile>> {
        self.read_published()
            .files
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    /// Every file, sorted by name.
    pub fn list(&self) -> Vec<Arc<GeneratedFile>> {
        let mut v: Vec<_> = self.read_published().files.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Number of files published.
    pub fn file_count(&self) -> usize {
        self.read_published().files.len()
    }

    /// A device by `SEP<MAC>` name (any case) or MAC in any notation.
    pub fn device(&self, name: &str) -> Option<Arc<DeviceInfo>> {
        let key = Mac::from_device_name(name).ok()?.device_name();
        self.read_published().devices.get(&key).cloned()
    }

    pub fn device_by_mac(&self, mac: Mac) -> Option<Arc<DeviceInfo>> {
        self.read_published()
            .devices
            .get(&mac.device_name())
            .cloned()
    }

    /// Change notifications (a slow receiver may miss some: it gets `Lagged` and should
    /// re-read what it needs).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    /// Opens (creating and migrating) the SQLite database at `path` and builds every file.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, ProvisionError> {
        let store: Arc<dyn Store> = Arc::new(store::SqliteStore::open(path)?);
        Self::new(store)
    }

    /// Reloads when another process (e.g. the `phoneboot phone ...` CLI) committed since
    /// the last look; cheap enough to call every second. Returns the change, if any.
    pub fn reload_if_changed(&self) -> Result<Option<Change>, ProvisionError> {
        let token = self.store.external_change_token()?;
        {
            let mut seen = match self.seen_token.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if token.is_none() || *seen == token {
                return Ok(None);
            }
            *seen = token;
        }
        self.reload().map(Some)
    }

    /// Re-reads the whole database (after changes made by another process) and republishes;
    /// only files whose content changed get a new version.
    pub fn reload(&self) -> Result<Change, ProvisionError> {
        let snap = self.store.snapshot()?;
        let mut st = self.lock_state();
        // The old model goes before the new one is indexed: never two in memory at once.
        drop(std::mem::take(&mut *st));
        *st = State::from_snapshot(snap);
        let mut change = self.rebuild_all_locked(&st, true);
        // Published devices are the old model's (those it could build a file for).
        let removed: Vec<String> = self
            .read_published()
            .devices
            .keys()
            .filter(|n| !st.devices.contains_key(*n))
            .cloned()
            .collect();
        self.unpublish(&removed);
        change.removed = removed;
        drop(st);
        let _ = self.changes.send(Arc::new(change.clone()));
        Ok(change)
    }

    /// Renders every file again (used at start and by the benchmark). With `keep_unchanged`,
    /// files whose bytes did not change keep their version.
    pub fn rebuild_all(&self) -> Change {
        let st = self.lock_state();
        self.rebuild_all_locked(&st, true)
    }

    fn rebuild_all_locked(&self, st: &State, keep_unchanged: bool) -> Change {
        // Fresh dictionaries, so they follow what the pools render to now.
        self.dicts.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let names: Vec<&String> = st.devices.keys().collect();
        let mut change = self.render_and_publish(st, &names, keep_unchanged);
        change
            .files
            .extend(self.publish_static(st, Statics::ALL, keep_unchanged));
        change
    }

    /// Renders and publishes `names` in slices of [`PUBLISH_CHUNK`]: each slice replaces its
    /// files (each file atomically) before the next is rendered, so the memory of the files
    /// it replaces is reused by the next slice instead of two whole generations coexisting.
    /// After a large rebuild the freed memory goes back to the system.
    fn render_and_publish(&self, st: &State, names: &[&String], keep_unchanged: bool) -> Change {
        let mut change = Change::default();
        for chunk in names.chunks(PUBLISH_CHUNK) {
            let built = self.render_devices(st, chunk);
            let c = self.publish(st, built, keep_unchanged);
            change.rebuilt.extend(c.rebuilt);
            change.content_changed.extend(c.content_changed);
        }
        if names.len() >= TRIM_AFTER {
            release_freed_memory();
        }
        change
    }

    /// The dictionary for `key`, made from `bytes` (a file of that kind) when there is none.
    fn dict_for(&self, key: DictKey, bytes: &[u8]) -> Arc<[u8]> {
        let mut dicts = self.dicts.lock().unwrap_or_else(|p| p.into_inner());
        dicts.entry(key).or_insert_with(|| Arc::from(bytes)).clone()
    }

    /// Renders devices and packs their files, in parallel when there are many. Each file is
    /// compressed as soon as it is rendered, so a full rebuild never holds 100,000 plain
    /// files at once.
    fn render_devices(&self, st: &State, names: &[&String]) -> Vec<BuiltDevice> {
        let work = |chunk: &[&String]| -> Vec<BuiltDevice> {
            let mut scratch = Vec::new();
            let mut last: Option<(DictKey, Arc<[u8]>)> = None;
            let mut out = Vec::with_capacity(chunk.len());
            for d in chunk.iter().filter_map(|n| st.devices.get(*n)) {
                let Some((r, info)) = st.build_device(d) else {
                    continue;
                };
                let dict = match &last {
                    Some(((pool, model, proto), dict))
                        if *pool == info.device_pool
                            && *model == info.model.name
                            && *proto == info.protocol =>
                    {
                        dict.clone()
                    }
                    _ => {
                        let key = (info.device_pool.clone(), info.model.name, info.protocol);
                        let dict = self.dict_for(key.clone(), &r.bytes);
                        last = Some((key, dict.clone()));
                        dict
                    }
                };
                out.push(BuiltDevice {
                    body: Body::pack(r.bytes, &dict, &mut scratch),
                    stamp: r.stamp,
                    info,
                });
            }
            out
        };
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        if names.len() < 512 || threads < 2 {
            return work(names);
        }
        let chunk = names.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = names
                .chunks(chunk)
                .map(|c| s.spawn(move || work(c)))
                .collect();
            let mut out = Vec::with_capacity(names.len());
            for h in handles {
                match h.join() {
                    Ok(v) => out.extend(v),
                    Err(_) => tracing::error!("a render thread panicked"),
                }
            }
            out
        })
    }

    fn new_file(
        &self,
        name: String,
        kind: FileKind,
        body: Body,
        stamp: String,
        now: SystemTime,
    ) -> GeneratedFile {
        GeneratedFile {
            name,
            kind,
            body,
            version: self.next_version.fetch_add(1, Ordering::Relaxed),
            stamp,
            modified: now,
        }
    }

    /// Swaps built device files in under one write lock.
    fn publish(&self, _st: &State, built: Vec<BuiltDevice>, keep_unchanged: bool) -> Change {
        let now = SystemTime::now();
        let mut change = Change::default();
        let mut staged = Vec::with_capacity(built.len());
        {
            let published = self.read_published();
            for BuiltDevice { body, stamp, info } in built {
                let fname = cnf::sep_file_name(&info.name);
                let key = fname.to_ascii_lowercase();
                // The stamp is a 64-bit hash of the whole content: equal stamps and lengths
                // mean equal files (comparing them would mean decompressing 100,000 files).
                let same = published
                    .files
                    .get(&key)
                    .is_some_and(|f| f.stamp == stamp && f.len() == body.len());
                if !same {
                    change.content_changed.push(info.name.clone());
                }
                if same && keep_unchanged {
                    continue;
                }
                change.rebuilt.push(info.name.clone());
                let file = Arc::new(self.new_file(fname, FileKind::Device, body, stamp, now));
                staged.push((key, file, Arc::new(info)));
            }
        }
        let mut published = self.write_published();
        for (key, file, info) in staged {
            published.devices.insert(info.name.clone(), info);
            published.files.insert(key, file);
        }
        change
    }

    fn unpublish(&self, names: &[String]) {
        let mut published = self.write_published();
        for n in names {
            published.devices.remove(n);
            published
                .files
                .remove(&cnf::sep_file_name(n).to_ascii_lowercase());
        }
    }

    /// Rebuilds the shared files; returns the names of those (re)published.
    fn publish_static(&self, st: &State, which: Statics, keep_unchanged: bool) -> Vec<String> {
        let Statics {
            xml_default,
            dial,
            softkeys,
            rings,
        } = which;
        let now = SystemTime::now();
        let mut out: Vec<(String, FileKind, cnf::Rendered)> = Vec::new();
        if xml_default {
            out.push((
                cnf::XML_DEFAULT.to_string(),
                FileKind::XmlDefault,
                st.render_xml_default(),
            ));
        }
        if dial {
            out.push((
                DIAL_TEMPLATE.to_string(),
                FileKind::DialTemplate,
                cnf::render_dial_template(&st.dial_rules),
            ));
        }
        if softkeys {
            for t in cnf::catalog::SOFTKEY_TEMPLATES {
                out.push((
                    cnf::catalog::softkey_file_name(t),
                    FileKind::SoftKeys,
                    cnf::render_softkeys(t),
                ));
            }
        }
        if rings {
            out.push((
                cnf::RING_LIST.to_string(),
                FileKind::RingList,
                cnf::render_ring_list(&st.rings),
            ));
        }
        let mut names = Vec::new();
        let mut published = self.write_published();
        for (name, kind, r) in out {
            let key = name.to_ascii_lowercase();
            if keep_unchanged
                && published
                    .files
                    .get(&key)
                    .is_some_and(|f| *f.bytes() == *r.bytes)
            {
                continue;
            }
            names.push(name.clone());
            let body = Body::Plain(bytes::Bytes::from(r.bytes.into_boxed_slice()));
            let file = Arc::new(self.new_file(name, kind, body, r.stamp, now));
            published.files.insert(key, file);
        }
        names
    }

    /// Runs a store operation, then refreshes the in-memory model for what it touched and
    /// rebuilds exactly the affected files.
    fn apply<T>(
        &self,
        op: impl FnOnce(&dyn Store) -> Result<T, StoreError>,
        touch: impl FnOnce(&T) -> Touch,
    ) -> Result<T, ProvisionError> {
        let mut st = self.lock_state();
        let before = self.store.external_change_token().ok().flatten();
        let out = op(self.store.as_ref())?;
        // Our own write is not an outside change: if nothing else was pending, remember the
        // new generation so `reload_if_changed` does not reload everything for it.
        if let Ok(after) = self.store.external_change_token() {
            let mut seen = self.seen_token.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == before {
                *seen = after;
            }
        }
        let change = self.refresh(&mut st, touch(&out))?;
        drop(st);
        if !(change.rebuilt.is_empty() && change.removed.is_empty() && change.files.is_empty()) {
            let _ = self.changes.send(Arc::new(change));
        }
        Ok(out)
    }

    fn refresh(&self, st: &mut State, touch: Touch) -> Result<Change, ProvisionError> {
        let mut affected: BTreeSet<String> = BTreeSet::new();
        let mut removed = Vec::new();
        let mut files = Vec::new();
        match touch {
            Touch::Devices(names) => {
                for name in names {
                    if let Some(old) = st.devices.remove(&name) {
                        st.unindex_device(&old);
                        for l in &old.lines {
                            affected
                                .extend(st.line_users.get(&l.dn).into_iter().flatten().cloned());
                        }
                    }
                    match self.store.device(&name)? {
                        Some(d) => {
                            for l in &d.lines {
                                if !st.lines.contains_key(&l.dn) {
                                    if let Some(line) = self.store.line(&l.dn)? {
                                        st.lines.insert(line.dn.clone(), line);
                                    }
                                }
                                affected.extend(
                                    st.line_users.get(&l.dn).into_iter().flatten().cloned(),
                                );
                            }
                            st.index_device(&d);
                            affected.insert(d.name.clone());
                            st.devices.insert(d.name.clone(), d);
                        }
                        None => removed.push(name),
                    }
                }
            }
            Touch::Import(names) => {
                let new = State::from_snapshot(self.store.snapshot()?);
                for n in &names {
                    affected.insert(n.clone());
                    if let Some(d) = new.devices.get(n) {
                        for l in &d.lines {
                            affected
                                .extend(new.line_users.get(&l.dn).into_iter().flatten().cloned());
                        }
                    }
                }
                *st = new;
            }
            Touch::Line(dn) => {
                match self.store.line(&dn)? {
                    Some(l) => {
                        st.lines.insert(dn.clone(), l);
                    }
                    None => {
                        st.lines.remove(&dn);
                    }
                }
                affected.extend(st.line_users.get(&dn).into_iter().flatten().cloned());
            }
            Touch::Topology => {
                let new_pools = self.store.pools()?;
                // Locales live on the pool row, not in the pool view: compare rows too.
                for p in st.pools.iter().chain(new_pools.iter()) {
                    let old = st.pools.iter().find(|x| x.name == p.name);
                    let new = new_pools.iter().find(|x| x.name == p.name);
                    if old != new {
                        affected
                            .extend(st.pool_members.get(&p.name).into_iter().flatten().cloned());
                    }
                }
                st.pools = new_pools;
                st.groups = self.store.groups()?;
                st.nodes = self.store.nodes()?;
                st.date_time_groups = self.store.date_time_groups()?;
                let new_views = st.compute_pool_views();
                let mut pools: HashSet<&String> = st.pool_views.keys().collect();
                pools.extend(new_views.keys());
                for p in pools {
                    if st.pool_views.get(p) != new_views.get(p) {
                        affected.extend(st.pool_members.get(p).into_iter().flatten().cloned());
                    }
                }
                st.pool_views = new_views;
                files.extend(self.publish_static(st, Statics::XML_DEFAULT, true));
            }
            Touch::Loads => {
                let new: HashMap<(String, Protocol), String> = self
                    .store
                    .model_loads()?
                    .into_iter()
                    .map(|m| ((m.model, m.protocol), m.load))
                    .collect();
                let old = std::mem::replace(&mut st.model_loads, new);
                for d in st.devices.values() {
                    if !d.load_override.is_empty() {
                        continue;
                    }
                    let k = (d.model.clone(), d.protocol);
                    if old.get(&k) != st.model_loads.get(&k) {
                        affected.insert(d.name.clone());
                    }
                }
                files.extend(self.publish_static(st, Statics::XML_DEFAULT, true));
            }
            Touch::Settings => {
                st.settings = self.store.settings()?;
                let g = st.compute_globals();
                if g != st.globals {
                    st.globals = g;
                    affected.extend(st.devices.keys().cloned());
                }
                files.extend(self.publish_static(st, Statics::XML_DEFAULT, true));
            }
            Touch::DialRules => {
                st.dial_rules = self.store.dial_rules()?;
                files.extend(self.publish_static(
                    st,
                    Statics {
                        dial: true,
                        ..Statics::NONE
                    },
                    false,
                ));
            }
            Touch::Rings => {
                st.rings = self.store.rings()?;
                files.extend(self.publish_static(
                    st,
                    Statics {
                        rings: true,
                        ..Statics::NONE
                    },
                    false,
                ));
            }
        }
        for r in &removed {
            affected.remove(r);
        }
        self.unpublish(&removed);
        let names: Vec<&String> = affected.iter().collect();
        let mut change = self.render_and_publish(st, &names, false);
        change.removed = removed;
        change.files = files;
        Ok(change)
    }

    // ---- changes, mirroring the Store API ----

    pub fn add_device(&self, d: &NewDevice) -> Result<Device, ProvisionError> {
        self.apply(
            |s| s.add_device(d),
            |d| Touch::Devices(vec![d.name.clone()]),
        )
    }

    pub fn edit_device(&self, name: &str, patch: &DevicePatch) -> Result<Device, ProvisionError> {
        self.apply(
            |s| s.edit_device(name, patch),
            |d| Touch::Devices(vec![d.name.clone()]),
        )
    }

    pub fn remove_device(&self, name: &str) -> Result<Device, ProvisionError> {
        self.apply(
            |s| s.remove_device(name),
            |d| Touch::Devices(vec![d.name.clone()]),
        )
    }

    /// Creates an unknown phone with the next free auto-registration DN and builds its file.
    pub fn auto_register(
        &self,
        name: &str,
        model: &str,
        protocol: Option<Protocol>,
    ) -> Result<Device, ProvisionError> {
        self.apply(
            |s| s.auto_register(name, model, protocol),
            |d| Touch::Devices(vec![d.name.clone()]),
        )
    }

    pub fn add_line(&self, l: &Line) -> Result<Line, ProvisionError> {
        self.apply(|s| s.add_line(l), |l| Touch::Line(l.dn.clone()))
    }

    pub fn edit_line(&self, dn: &str, patch: &LinePatch) -> Result<Line, ProvisionError> {
        self.apply(|s| s.edit_line(dn, patch), |l| Touch::Line(l.dn.clone()))
    }

    pub fn remove_line(&self, dn: &str) -> Result<Line, ProvisionError> {
        self.apply(|s| s.remove_line(dn), |l| Touch::Line(l.dn.clone()))
    }

    pub fn put_pool(&self, p: &DevicePool) -> Result<(), ProvisionError> {
        self.apply(|s| s.put_pool(p), |_| Touch::Topology)
    }

    pub fn remove_pool(&self, name: &str) -> Result<(), ProvisionError> {
        self.apply(|s| s.remove_pool(name), |_| Touch::Topology)
    }

    pub fn put_group(&self, g: &CmGroup) -> Result<(), ProvisionError> {
        self.apply(|s| s.put_group(g), |_| Touch::Topology)
    }

    pub fn remove_group(&self, name: &str) -> Result<(), ProvisionError> {
        self.apply(|s| s.remove_group(name), |_| Touch::Topology)
    }

    pub fn put_node(&self, n: &CmNode) -> Result<(), ProvisionError> {
        self.apply(|s| s.put_node(n), |_| Touch::Topology)
    }

    pub fn remove_node(&self, name: &str) -> Result<(), ProvisionError> {
        self.apply(|s| s.remove_node(name), |_| Touch::Topology)
    }

    pub fn put_date_time_group(&self, d: &DateTimeGroup) -> Result<(), ProvisionError> {
        self.apply(|s| s.put_date_time_group(d), |_| Touch::Topology)
    }

    pub fn set_model_load(
        &self,
        model: &str,
        protocol: Protocol,
        load: &str,
    ) -> Result<(), ProvisionError> {
        self.apply(
            |s| s.set_model_load(model, protocol, load),
            |_| Touch::Loads,
        )
    }

    pub fn put_settings(&self, settings: &Settings) -> Result<(), ProvisionError> {
        self.apply(|s| s.put_settings(settings), |_| Touch::Settings)
    }

    pub fn set_dial_rules(&self, rules: &[DialRule]) -> Result<(), ProvisionError> {
        self.apply(|s| s.set_dial_rules(rules), |_| Touch::DialRules)
    }

    pub fn set_rings(&self, rings: &[Ring]) -> Result<(), ProvisionError> {
        self.apply(|s| s.set_rings(rings), |_| Touch::Rings)
    }

    pub fn set_dn_ranges(&self, ranges: &[DnRange]) -> Result<(), ProvisionError> {
        // DN ranges only constrain future edits; no file depends on them.
        Ok(self.store.set_dn_ranges(ranges)?)
    }

    /// Imports BAT rows (all or nothing) and builds the new phones' files.
    pub fn import(&self, rows: &[ImportRow]) -> Result<ImportReport, ProvisionError> {
        self.apply(|s| s.import(rows), |r| Touch::Import(r.devices.clone()))
    }
}

/// The journal's protocol for a device protocol (services stamp events with it).
pub fn journal_protocol(p: Protocol) -> journal::Protocol {
    match p {
        Protocol::Sccp => journal::Protocol::Sccp,
        Protocol::Sip => journal::Protocol::Sip,
    }
}
