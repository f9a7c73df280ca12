//! The admin surfaces' view of the real node: [`admin::AdminBackend`] over the provisioner
//! (every write rebuilds the affected files at once), the DHCP lease table, the discovery
//! agent and the registration services; and [`admin::EventSource`] for the event bus.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use admin::backend::BackendResult;
use admin::{
    AdminBackend, AutoRegistration, BackendError, CmGroup, CmNode, Device, DevicePool,
    DeviceProtocol, FieldError, ImportReport, Lease, Line, Load, Neighbour, NeighbourProtocol,
    PhoneFile, PoolUse, Template,
};
use journal::{Event, Mac, ResetKind};
use provision::{ProvisionError, Provisioner};
use store::{LineAppearance, Protocol, StoreError};
use tokio::sync::broadcast;

use crate::{EventBus, Shared};

impl admin::EventSource for EventBus {
    fn subscribe(&self) -> broadcast::Receiver<Event> {
        EventBus::subscribe(self)
    }
    fn recent(&self) -> Vec<Event> {
        EventBus::recent(self)
    }
}

/// The last discovery snapshot, refreshed by [`refresh_neighbours`]: the agent answers
/// asynchronously and the backend's methods are synchronous.
pub type NeighbourCache = Arc<RwLock<Option<discovery::Snapshot>>>;

/// Keeps `cache` at most about a second old until the agent or the node stops.
pub async fn refresh_neighbours(
    shared: Arc<Shared>,
    cache: NeighbourCache,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let Some(sw) = shared.services.discovery.as_ref() else {
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
        let Some(snap) = sw.snapshot().await else {
            break;
        };
        *cache.write().unwrap_or_else(|p| p.into_inner()) = Some(snap);
    }
}

/// [`AdminBackend`] over the node's shared state.
pub struct NodeBackend {
    shared: Arc<Shared>,
    neighbours: NeighbourCache,
    /// The database holding the DHCP lease table.
    leases_db: PathBuf,
    runtime: tokio::runtime::Handle,
}

impl NodeBackend {
    /// Must be called inside the tokio runtime that runs the services (actions are spawned on it).
    pub fn new(shared: Arc<Shared>, neighbours: NeighbourCache) -> Self {
        let leases_db = shared.config.node.database.clone();
        NodeBackend {
            shared,
            neighbours,
            leases_db,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    fn prov(&self) -> &Provisioner {
        &self.shared.provisioner
    }

    fn to_admin(&self, d: store::Device, lines: &HashMap<String, store::Line>) -> Device {
        Device {
            name: d.name,
            mac: Some(d.mac),
            model: d.model,
            protocol: protocol_out(d.protocol),
            description: d.description,
            device_pool: d.device_pool,
            load: d.load_override,
            lines: d
                .lines
                .into_iter()
                .enumerate()
                .map(|(i, a)| {
                    let line = lines.get(&a.dn);
                    Line {
                        index: (i + 1) as u8,
                        label: if a.label.is_empty() {
                            line.map(|l| l.label.clone()).unwrap_or_default()
                        } else {
                            a.label
                        },
                        display_name: if a.display.is_empty() {
                            line.map(|l| l.display_name.clone()).unwrap_or_default()
                        } else {
                            a.display
                        },
                        sip_user: line.map(|l| l.auth_user.clone()).filter(|u| !u.is_empty()),
                        sip_password: None,
                        dn: a.dn,
                    }
                })
                .collect(),
        }
    }

    fn line_map(&self) -> BackendResult<HashMap<String, store::Line>> {
        Ok(self
            .prov()
            .store()
            .lines()
            .map_err(store_err)?
            .into_iter()
            .map(|l| (l.dn.clone(), l))
            .collect())
    }

    fn load_device(&self, name: &str) -> BackendResult<Device> {
        let d = self
            .prov()
            .store()
            .device(name)
            .map_err(store_err)?
            .ok_or_else(|| BackendError::not_found(format!("device {name}")))?;
        let lines = self.line_map()?;
        Ok(self.to_admin(d, &lines))
    }

    /// Creates the lines a device refers to that do not exist yet and updates the SIP
    /// credentials given. Returns the DNs created, so a failed device write can undo them.
    fn ensure_lines(&self, lines: &[Line]) -> BackendResult<Vec<String>> {
        let existing = self.line_map()?;
        let mut created = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let dn = l.dn.trim();
            if dn.is_empty() {
                self.undo_lines(&created);
                return Err(BackendError::field(format!("lines[{i}].dn"), "required"));
            }
            let result = match existing.get(dn) {
                None if !created.iter().any(|c| c == dn) => {
                    let new = store::Line {
                        dn: dn.to_string(),
                        label: l.label.clone(),
                        display_name: l.display_name.clone(),
                        auth_user: l.sip_user.clone().unwrap_or_default(),
                        auth_password: l.sip_password.clone().unwrap_or_default(),
                        voicemail: String::new(),
                    };
                    self.prov()
                        .add_line(&new)
                        .map(|_| created.push(dn.to_string()))
                }
                Some(_) if l.sip_user.is_some() || l.sip_password.is_some() => {
                    let patch = store::LinePatch {
                        auth_user: l.sip_user.clone(),
                        auth_password: l.sip_password.clone(),
                        ..store::LinePatch::default()
                    };
                    self.prov().edit_line(dn, &patch).map(|_| ())
                }
                _ => Ok(()),
            };
            if let Err(e) = result {
                self.undo_lines(&created);
                return Err(prefix_fields(prov_err(e), &format!("lines[{i}].")));
            }
        }
        Ok(created)
    }

    fn undo_lines(&self, created: &[String]) {
        for dn in created {
            if let Err(e) = self.prov().remove_line(dn) {
                tracing::warn!(dn = %dn, error = %e, "could not remove a line created for a failed device write");
            }
        }
    }

    fn settings(&self) -> BackendResult<store::Settings> {
        self.prov().store().settings().map_err(store_err)
    }
}

fn protocol_out(p: Protocol) -> DeviceProtocol {
    match p {
        Protocol::Sip => DeviceProtocol::Sip,
        _ => DeviceProtocol::Sccp,
    }
}

fn protocol_in(p: DeviceProtocol) -> Protocol {
    match p {
        DeviceProtocol::Sip => Protocol::Sip,
        DeviceProtocol::Sccp => Protocol::Sccp,
    }
}

fn appearances(lines: &[Line]) -> Vec<LineAppearance> {
    let mut sorted: Vec<&Line> = lines.iter().collect();
    // Button order: explicit indexes first, in order; unnumbered ones keep their position.
    sorted.sort_by_key(|l| if l.index == 0 { u8::MAX } else { l.index });
    sorted
        .into_iter()
        .map(|l| LineAppearance {
            dn: l.dn.trim().to_string(),
            label: l.label.clone(),
            display: l.display_name.clone(),
        })
        .collect()
}

/// The admin API's name for a store field.
fn field_name(f: &str) -> String {
    if let Some(n) = f
        .strip_prefix("line ")
        .and_then(|n| n.trim().parse::<usize>().ok())
    {
        return format!("lines[{}].dn", n.saturating_sub(1));
    }
    match f {
        "device pool" | "device_pool" | "DEVICE POOL" => "device_pool".into(),
        "MAC ADDRESS" | "mac" => "mac".into(),
        "device type" | "DEVICE TYPE" | "model" => "model".into(),
        "load" | "load override" | "load_override" => "load".into(),
        // A line's fields, under the API's names (the UI shows the message next to them).
        "directory number" => "dn".into(),
        "SIP auth user" => "sip_user".into(),
        "SIP auth password" => "sip_password".into(),
        other => other.replace(' ', "_"),
    }
}

fn prefix_fields(e: BackendError, prefix: &str) -> BackendError {
    match e {
        BackendError::Invalid(fields) => BackendError::Invalid(
            fields
                .into_iter()
                .map(|f| FieldError::new(format!("{prefix}{}", f.field), f.message))
                .collect(),
        ),
        other => other,
    }
}

/// Store errors as the API reports them: a bad value names its field.
pub fn store_err(e: StoreError) -> BackendError {
    match e {
        StoreError::Invalid {
            field,
            expected,
            found,
        } => BackendError::field(
            field_name(&field),
            format!("expected {expected}, found {found:?}"),
        ),
        StoreError::NotFound { kind, name } => BackendError::not_found(format!("{kind} {name}")),
        e @ StoreError::Duplicate { .. } => BackendError::Conflict {
            field: "name".into(),
            message: e.to_string(),
        },
        e @ StoreError::InUse { .. } => BackendError::Conflict {
            field: "name".into(),
            message: e.to_string(),
        },
        e @ StoreError::Conflict { .. } => BackendError::Conflict {
            field: "revision".into(),
            message: e.to_string(),
        },
        StoreError::Row { row, source } => {
            prefix_fields(store_err(*source), &format!("csv.row[{row}]."))
        }
        StoreError::Csv(m) => BackendError::field("csv", m),
        StoreError::AutoRegistration(r) => {
            let (field, expected, found) = r.as_invalid();
            BackendError::field(
                field_name(field),
                format!("expected {expected}, found {found:?}"),
            )
        }
        e => BackendError::Unavailable(e.to_string()),
    }
}

fn prov_err(e: ProvisionError) -> BackendError {
    match e {
        ProvisionError::Store(e) => store_err(e),
    }
}

fn secs(t: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.max(0) as u64)
}

impl AdminBackend for NodeBackend {
    fn list_devices(&self) -> BackendResult<Vec<Device>> {
        let lines = self.line_map()?;
        Ok(self
            .prov()
            .store()
            .devices()
            .map_err(store_err)?
            .into_iter()
            .map(|d| self.to_admin(d, &lines))
            .collect())
    }

    fn get_device(&self, name: &str) -> BackendResult<Device> {
        self.load_device(name)
    }

    fn create_device(&self, device: Device) -> BackendResult<Device> {
        let name = match (&device.mac, device.name.trim()) {
            (Some(m), "") => m.device_name(),
            (Some(m), n) => {
                if Mac::from_device_name(n).ok() != Some(*m) {
                    return Err(BackendError::field(
                        "name",
                        format!("{n} does not match mac {m} (expected {})", m.device_name()),
                    ));
                }
                m.device_name()
            }
            (None, "") => {
                return Err(BackendError::field(
                    "mac",
                    "give a MAC address or a SEP name",
                ))
            }
            (None, n) => n.to_string(),
        };
        let new = store::NewDevice {
            description: device.description.clone(),
            device_pool: device.device_pool.clone(),
            load_override: device.load.clone(),
            lines: appearances(&device.lines),
            ..store::NewDevice::new(&name, &device.model, protocol_in(device.protocol))
        };
        // Check the device itself (name, model, pool) before creating any line for it.
        if let Some(existing) = self.prov().store().device(&name).map_err(store_err)? {
            return Err(BackendError::Conflict {
                field: "name".into(),
                message: format!("device {} already exists", existing.name),
            });
        }
        let created = self.ensure_lines(&device.lines)?;
        match self.prov().add_device(&new) {
            Ok(d) => self.load_device(&d.name),
            Err(e) => {
                self.undo_lines(&created);
                Err(prov_err(e))
            }
        }
    }

    fn update_device(&self, name: &str, device: Device) -> BackendResult<Device> {
        let current = self.load_device(name)?;
        if let Some(m) = device.mac {
            if Some(m) != current.mac {
                return Err(BackendError::field(
                    "mac",
                    "the MAC address of a device cannot change; create a new device",
                ));
            }
        }
        let created = self.ensure_lines(&device.lines)?;
        let patch = store::DevicePatch {
            model: Some(device.model.clone()),
            protocol: Some(protocol_in(device.protocol)),
            description: Some(device.description.clone()),
            device_pool: Some(device.device_pool.clone()),
            load_override: Some(device.load.clone()),
            lines: Some(appearances(&device.lines)),
            ..store::DevicePatch::default()
        };
        match self.prov().edit_device(&current.name, &patch) {
            Ok(d) => self.load_device(&d.name),
            Err(e) => {
                self.undo_lines(&created);
                Err(prov_err(e))
            }
        }
    }

    fn delete_device(&self, name: &str) -> BackendResult<()> {
        self.prov().remove_device(name).map_err(prov_err)?;
        Ok(())
    }

    fn list_pools(&self) -> BackendResult<Vec<DevicePool>> {
        Ok(self
            .prov()
            .store()
            .pools()
            .map_err(store_err)?
            .into_iter()
            .map(|p| DevicePool {
                name: p.name,
                cm_group: p.cm_group,
                region: String::new(),
                date_time_group: p.date_time_group,
            })
            .collect())
    }

    fn put_pool(&self, pool: DevicePool) -> BackendResult<DevicePool> {
        let pools = self.prov().store().pools().map_err(store_err)?;
        let base = pools
            .iter()
            .find(|p| p.name == pool.name)
            .or_else(|| pools.iter().find(|p| p.name == store::DEFAULT_POOL))
            .cloned();
        let dtg = if pool.date_time_group.is_empty() {
            store::DEFAULT_DATETIME.to_string()
        } else {
            pool.date_time_group.clone()
        };
        let p = match base {
            Some(b) => store::DevicePool {
                name: pool.name.clone(),
                cm_group: pool.cm_group.clone(),
                date_time_group: dtg,
                ..b
            },
            None => store::DevicePool {
                name: pool.name.clone(),
                cm_group: pool.cm_group.clone(),
                date_time_group: dtg,
                user_locale: String::new(),
                network_locale: String::new(),
                connection_monitor_duration: 120,
                sip_register_interval: store::DEFAULT_SIP_REGISTER_INTERVAL,
            },
        };
        self.prov().put_pool(&p).map_err(prov_err)?;
        self.list_pools()?
            .into_iter()
            .find(|x| x.name == pool.name)
            .ok_or_else(|| BackendError::not_found(format!("device pool {}", pool.name)))
    }

    fn delete_pool(&self, name: &str) -> BackendResult<()> {
        self.prov().remove_pool(name).map_err(prov_err)
    }

    fn list_cm_groups(&self) -> BackendResult<Vec<CmGroup>> {
        let store = self.prov().store();
        let nodes: HashMap<String, store::CmNode> = store
            .nodes()
            .map_err(store_err)?
            .into_iter()
            .map(|n| (n.name.clone(), n))
            .collect();
        Ok(store
            .groups()
            .map_err(store_err)?
            .into_iter()
            .map(|g| CmGroup {
                name: g.name,
                nodes: g
                    .members
                    .iter()
                    .filter_map(|m| nodes.get(m))
                    .map(|n| CmNode {
                        name: n.name.clone(),
                        address: n.host.clone(),
                        sccp_port: n.sccp_port,
                        sip_port: n.sip_port,
                    })
                    .collect(),
            })
            .collect())
    }

    fn put_cm_group(&self, group: CmGroup) -> BackendResult<CmGroup> {
        if group.nodes.is_empty() || group.nodes.len() > 5 {
            return Err(BackendError::field("nodes", "1 to 5 nodes, primary first"));
        }
        let store = self.prov().store();
        let existing: HashMap<String, store::CmNode> = store
            .nodes()
            .map_err(store_err)?
            .into_iter()
            .map(|n| (n.name.clone(), n))
            .collect();
        let tftp_default = store
            .groups()
            .map_err(store_err)?
            .iter()
            .find(|g| g.name == group.name)
            .is_some_and(|g| g.tftp_default);
        for (i, n) in group.nodes.iter().enumerate() {
            let mut node = existing
                .get(&n.name)
                .cloned()
                .unwrap_or_else(|| store::CmNode::new(&n.name, &n.address));
            node.host = n.address.clone();
            node.sccp_port = n.sccp_port;
            node.sip_port = n.sip_port;
            self.prov()
                .put_node(&node)
                .map_err(|e| prefix_fields(prov_err(e), &format!("nodes[{i}].")))?;
        }
        let g = store::CmGroup {
            name: group.name.clone(),
            tftp_default,
            members: group.nodes.iter().map(|n| n.name.clone()).collect(),
        };
        self.prov().put_group(&g).map_err(prov_err)?;
        self.list_cm_groups()?
            .into_iter()
            .find(|x| x.name == group.name)
            .ok_or_else(|| BackendError::not_found(format!("CallManager group {}", group.name)))
    }

    fn delete_cm_group(&self, name: &str) -> BackendResult<()> {
        self.prov().remove_group(name).map_err(prov_err)
    }

    fn list_templates(&self) -> BackendResult<Vec<Template>> {
        let mut out: Vec<Template> = cnf::catalog::SOFTKEY_TEMPLATES
            .iter()
            .map(|t| Template {
                name: (*t).to_string(),
                produces: format!("{} (softkey template)", cnf::catalog::softkey_file_name(t)),
                source: String::from_utf8_lossy(&cnf::render_softkeys(t).bytes).into_owned(),
            })
            .collect();
        out.extend(cnf::catalog::BUTTON_TEMPLATES.iter().map(|t| Template {
            name: (*t).to_string(),
            produces: "button layout of SEP<MAC>.cnf.xml".into(),
            source: String::new(),
        }));
        if let Some(f) = self.prov().get(provision::DIAL_TEMPLATE) {
            out.push(Template {
                name: f.name.clone(),
                produces: format!("{} (SIP dial template)", f.name),
                source: String::from_utf8_lossy(&f.bytes()).into_owned(),
            });
        }
        Ok(out)
    }

    fn list_loads(&self) -> BackendResult<Vec<Load>> {
        let overrides: HashMap<(String, Protocol), String> = self
            .prov()
            .store()
            .model_loads()
            .map_err(store_err)?
            .into_iter()
            .map(|m| ((m.model, m.protocol), m.load))
            .collect();
        let root = &self.shared.config.node.tftp_root;
        let mut out = Vec::new();
        for m in cnf::catalog::MODELS {
            for p in [Protocol::Sccp, Protocol::Sip] {
                if !m.supports(p) {
                    continue;
                }
                let load = overrides
                    .get(&(m.name.to_string(), p))
                    .cloned()
                    .or_else(|| m.default_load(p).map(str::to_string));
                let Some(load) = load.filter(|l| !l.is_empty()) else {
                    continue;
                };
                // Without a TFTP root only generated files are served: no load is present.
                let present = root.as_ref().is_some_and(|r| {
                    r.join(format!("{load}.loads")).is_file() || r.join(&load).is_file()
                });
                out.push(Load {
                    model: m.name.to_string(),
                    name: load,
                    present,
                });
            }
        }
        Ok(out)
    }

    fn auto_registration(&self) -> BackendResult<AutoRegistration> {
        let s = self.settings()?;
        Ok(AutoRegistration {
            enabled: s.autoreg_enabled,
            protocol: if s.autoreg_protocol.eq_ignore_ascii_case("SIP") {
                DeviceProtocol::Sip
            } else {
                DeviceProtocol::Sccp
            },
            device_pool: s.autoreg_pool,
            dn_first: s.autoreg_dn_start,
            dn_last: s.autoreg_dn_end,
        })
    }

    fn set_auto_registration(&self, a: AutoRegistration) -> BackendResult<AutoRegistration> {
        let mut s = self.settings()?;
        s.autoreg_enabled = a.enabled;
        s.autoreg_protocol = match a.protocol {
            DeviceProtocol::Sip => "SIP".into(),
            DeviceProtocol::Sccp => "SCCP".into(),
        };
        s.autoreg_pool = a.device_pool;
        s.autoreg_dn_start = a.dn_first;
        s.autoreg_dn_end = a.dn_last;
        self.prov().put_settings(&s).map_err(|e| {
            // The store names these by their settings keys; the API by its own.
            match prov_err(e) {
                BackendError::Invalid(fields) => BackendError::Invalid(
                    fields
                        .into_iter()
                        .map(|f| {
                            let field = match f.field.as_str() {
                                "autoreg_dn_start" => "dn_first".to_string(),
                                "autoreg_dn_end" => "dn_last".to_string(),
                                "autoreg_pool" => "device_pool".to_string(),
                                "autoreg_protocol" => "protocol".to_string(),
                                other => other.to_string(),
                            };
                            FieldError::new(field, f.message)
                        })
                        .collect(),
                ),
                other => other,
            }
        })?;
        self.auto_registration()
    }

    fn import_csv(&self, csv: &str) -> BackendResult<ImportReport> {
        let parsed = store::bat::parse(csv.as_bytes()).map_err(store_err)?;
        let r = self.prov().import(&parsed.rows).map_err(prov_err)?;
        Ok(ImportReport {
            created: r.devices_added,
            updated: 0,
        })
    }

    fn export_csv(&self) -> BackendResult<String> {
        let store = self.prov().store();
        let devices = store.devices().map_err(store_err)?;
        let lines = store.lines().map_err(store_err)?;
        let mut out = Vec::new();
        store::bat::export(&devices, &lines, false, &mut out).map_err(store_err)?;
        String::from_utf8(out).map_err(|e| BackendError::Unavailable(e.to_string()))
    }

    fn leases(&self) -> BackendResult<Vec<Lease>> {
        read_leases(&self.leases_db).map_err(BackendError::Unavailable)
    }

    fn pool_use(&self) -> BackendResult<Vec<PoolUse>> {
        let leases = self.leases()?;
        Ok(self
            .shared
            .config
            .dhcp
            .pools
            .iter()
            .map(|p| {
                let (lo, hi) = (u32::from(p.range.0), u32::from(p.range.1));
                PoolUse {
                    name: p.name.clone(),
                    size: hi.saturating_sub(lo).saturating_add(1),
                    used: leases.iter().filter(|l| l.pool == p.name).count() as u32,
                }
            })
            .collect())
    }

    fn neighbours(&self) -> BackendResult<Vec<Neighbour>> {
        if self.shared.services.discovery.is_none() {
            return Ok(Vec::new());
        }
        let snap = self.neighbours.read().unwrap_or_else(|p| p.into_inner());
        let now = SystemTime::now();
        Ok(snap
            .as_ref()
            .map(|s| {
                s.neighbours
                    .iter()
                    .map(|n| {
                        let age = u64::from(n.info.holdtime_secs)
                            .saturating_sub(u64::from(n.holdtime_left));
                        Neighbour {
                            mac: n.info.mac,
                            port: n.info.local_port.clone(),
                            protocol: match n.info.protocol {
                                discovery::neighbors::Proto::Cdp => NeighbourProtocol::Cdp,
                                discovery::neighbors::Proto::Lldp => NeighbourProtocol::Lldp,
                            },
                            platform: n.info.platform.clone().or_else(|| n.info.model.clone()),
                            voice_vlan: n.info.voice_vlan_sent,
                            power_mw: n.info.power_granted_mw.or(n.info.power_drawn_mw),
                            last_seen: now.checked_sub(Duration::from_secs(age)).unwrap_or(now),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn files_for(&self, name: &str) -> BackendResult<Vec<PhoneFile>> {
        let info = self
            .prov()
            .device(name)
            .or_else(|| {
                Mac::from_device_name(name)
                    .ok()
                    .or_else(|| name.parse().ok())
                    .and_then(|m| self.prov().device_by_mac(m))
            })
            .ok_or_else(|| BackendError::not_found(format!("device {name}")))?;
        let mut names = vec![
            format!("{}.cnf.xml", info.name),
            "XMLDefault.cnf.xml".to_string(),
            cnf::catalog::softkey_file_name(&info.softkey_template),
        ];
        if info.protocol == Protocol::Sip {
            names.push(provision::DIAL_TEMPLATE.to_string());
        }
        Ok(names
            .iter()
            .filter_map(|n| self.prov().get(n))
            .map(|f| PhoneFile {
                name: f.name.clone(),
                content_type: "text/xml".into(),
                content: String::from_utf8_lossy(&f.bytes()).into_owned(),
            })
            .collect())
    }

    fn action(&self, name: &str, action: ResetKind) -> BackendResult<()> {
        let device = Mac::from_device_name(name)
            .ok()
            .or_else(|| name.parse::<Mac>().ok())
            .map(|m| m.device_name())
            .ok_or_else(|| BackendError::field("name", "a SEP<MAC> name or a MAC address"))?;
        if self.shared.ris.of_device(&device).is_empty() {
            return Err(BackendError::Conflict {
                field: "name".into(),
                message: format!("{device} is not registered on this node"),
            });
        }
        let shared = self.shared.clone();
        self.runtime.spawn(async move {
            match crate::actions::reset(&shared, &device, action).await {
                Ok(how) => tracing::info!(device = %device, sent = %how, "reset sent"),
                Err(e) => tracing::warn!(device = %device, error = %e, "reset failed"),
            }
        });
        Ok(())
    }
}

/// The DHCP server's bound, unexpired leases (table `dhcp_leases`, shared database).
fn read_leases(db: &std::path::Path) -> Result<Vec<Lease>, String> {
    if !db.exists() {
        return Ok(Vec::new());
    }
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    let _ = conn.busy_timeout(Duration::from_secs(2));
    let has_table: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'dhcp_leases'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(|e| e.to_string())?
        > 0;
    if !has_table {
        return Ok(Vec::new());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut stmt = conn
        .prepare(
            "SELECT ip, mac, expires, vendor_class, hostname, pool FROM dhcp_leases
             WHERE state = 'bound' AND expires > ?1 ORDER BY ip",
        )
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([now], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for row in rows {
        let (ip, mac, expires, vendor_class, hostname, pool) = row.map_err(|e| e.to_string())?;
        let Ok(mac) = <[u8; 6]>::try_from(mac.as_slice()) else {
            continue;
        };
        out.push(Lease {
            mac: Mac::from(mac),
            ip: Ipv4Addr::from(ip as u32),
            pool,
            expires: secs(expires),
            vendor_class,
            hostname,
        });
    }
    Ok(out)
}
