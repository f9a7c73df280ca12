//! The device database as each protocol service asks for it.
//!
//! Every service defines the narrow view it needs (`fileserver::FileSource`,
//! `sccp::SccpDirectory`, `sip::SipDirectory`); these adapters answer them from the
//! provisioner's in-memory, always-current model, so a lookup on a hot path is an index read.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use cnf::Protocol;
use mac::Mac;
use provision::{DeviceInfo, Provisioner};

/// Generated files (SEP, XMLDefault, dial template, softkeys, ring list) for TFTP/HTTP.
/// With a sink, a device file served without its configured load (not in the firmware
/// library, or incomplete) puts the reason in the boot journal.
pub struct ProvisionedFiles(pub Arc<Provisioner>, pub Option<journal::SharedSink>);

impl fileserver::FileSource for ProvisionedFiles {
    fn get(&self, name: &str) -> Option<Arc<fileserver::File>> {
        let f = self.0.get(name)?;
        if let (Some(sink), Some(stem)) = (&self.1, name.strip_suffix(".cnf.xml")) {
            if let Some(d) = self.0.device(stem) {
                if let Some(reason) = &d.load_withheld {
                    sink.emit(journal::Event::server(
                        std::time::SystemTime::now(),
                        d.mac,
                        journal::EventKind::LoadWithheld {
                            load: d.configured_load.clone(),
                            reason: reason.clone(),
                        },
                    ));
                }
            }
        }
        // A fresh buffer per request (device files are held compressed): an in-flight
        // transfer never keeps a replaced generation's storage alive.
        Some(Arc::new(fileserver::File::with_version(
            f.bytes(),
            f.version,
            f.modified,
        )))
    }
}

fn ipv4_of(host: &str) -> Option<Ipv4Addr> {
    host.parse().ok()
}

/// The SCCP view of a provisioned device.
fn sccp_device(d: &DeviceInfo, keepalive: u32) -> sccp::SccpDevice {
    sccp::SccpDevice {
        name: d.name.clone(),
        device_type: d.model.device_type,
        model: d.model.name.to_string(),
        lines: d
            .lines
            .iter()
            .map(|l| sccp::SccpLine {
                dn: l.dn.clone(),
                label: l.label.clone(),
                display: l.display.clone(),
            })
            .collect(),
        speed_dials: d
            .speed_dials
            .iter()
            .map(|s| sccp::SpeedDial {
                number: s.number.clone(),
                label: s.label.clone(),
            })
            .collect(),
        keepalive_secs: Some(keepalive),
        call_managers: d
            .call_managers()
            .iter()
            .filter_map(|c| {
                Some(sccp::CallManager {
                    name: c.name.clone(),
                    ip: ipv4_of(&c.host)?,
                    port: c.sccp_port,
                })
            })
            .collect(),
        date_format: "M/D/Y".into(),
        tz_offset_secs: 0,
        user_name: d.description.clone(),
        forward_all: None,
        firmware: d.load.clone(),
    }
}

/// SCCP devices from the database; unknown phones auto-register through it.
pub struct SccpDirectory {
    pub prov: Arc<Provisioner>,
    pub keepalive_secs: u32,
}

impl sccp::SccpDirectory for SccpDirectory {
    fn device(&self, name: &str) -> Option<sccp::SccpDevice> {
        let d = self.prov.device(name)?;
        (d.protocol == Protocol::Sccp).then(|| sccp_device(&d, self.keepalive_secs))
    }

    fn auto_register(
        &self,
        name: &str,
        device_type: u32,
    ) -> Result<sccp::SccpDevice, sccp::AutoRegisterError> {
        let model = model_for_device_type(device_type)
            .ok_or(sccp::AutoRegisterError::UnsupportedModel(device_type))?;
        self.prov
            .auto_register(name, model, Some(Protocol::Sccp))
            .map_err(autoreg_error)?;
        let d = self
            .prov
            .device(name)
            .ok_or_else(|| sccp::AutoRegisterError::Store("device vanished".into()))?;
        Ok(sccp_device(&d, self.keepalive_secs))
    }
}

/// The store's typed refusal as the SCCP service's reason (no reading of messages).
fn autoreg_error(e: provision::ProvisionError) -> sccp::AutoRegisterError {
    use store::{AutoRegRefusal, StoreError};
    match e {
        provision::ProvisionError::Store(StoreError::AutoRegistration(r)) => match r {
            AutoRegRefusal::Disabled => sccp::AutoRegisterError::Disabled,
            AutoRegRefusal::RangeFull { .. } => sccp::AutoRegisterError::RangeExhausted,
        },
        other => sccp::AutoRegisterError::Store(other.to_string()),
    }
}

/// The catalogue model whose SCCP device type is `t` (e.g. 7 = 7960).
fn model_for_device_type(t: u32) -> Option<&'static str> {
    cnf::catalog::by_device_type(t).map(|m| m.name)
}

/// SIP lines by directory number, kept current from the provisioner's change feed (the
/// registrar asks "whose line is this AOR?" for every REGISTER).
#[derive(Default)]
pub struct SipLineIndex {
    inner: std::sync::RwLock<SipLineMaps>,
}

#[derive(Default)]
struct SipLineMaps {
    /// DN -> every SIP device showing it, with its appearance; the first owns the line for
    /// phones that do not name their device (a shared line's credentials are the line's,
    /// the same on every device).
    by_dn: HashMap<String, Vec<(String, provision::DeviceLine)>>,
    /// Device (upper case) -> its pool's registration interval.
    intervals: HashMap<String, u32>,
    /// device -> its DNs, to unindex on change.
    by_device: HashMap<String, Vec<String>>,
}

impl SipLineIndex {
    /// Indexes every SIP device the provisioner knows.
    pub fn build(prov: &Provisioner) -> Self {
        let idx = SipLineIndex::default();
        if let Ok(devices) = prov.store().devices() {
            for d in devices {
                idx.refresh(prov, &d.name);
            }
        }
        idx
    }

    /// Re-reads one device (after a change) and re-indexes its lines.
    pub fn refresh(&self, prov: &Provisioner, device: &str) {
        let info = prov.device(device);
        let mut m = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let key = device.to_ascii_uppercase();
        if let Some(old) = m.by_device.remove(&key) {
            for dn in old {
                if let Some(devs) = m.by_dn.get_mut(&dn) {
                    devs.retain(|(d, _)| !d.eq_ignore_ascii_case(device));
                    if devs.is_empty() {
                        m.by_dn.remove(&dn);
                    }
                }
            }
        }
        m.intervals.remove(&key);
        let Some(info) = info.filter(|i| i.protocol == Protocol::Sip) else {
            return;
        };
        let mut dns = Vec::new();
        for l in &info.lines {
            m.by_dn
                .entry(l.dn.clone())
                .or_default()
                .push((info.name.clone(), l.clone()));
            dns.push(l.dn.clone());
        }
        m.intervals
            .insert(key.clone(), info.pool.sip_register_interval);
        m.by_device.insert(key, dns);
    }

    /// The line's owner: the first SIP device showing it.
    pub fn get(&self, dn: &str) -> Option<(String, provision::DeviceLine)> {
        let m = self.inner.read().unwrap_or_else(|p| p.into_inner());
        m.by_dn.get(dn).and_then(|v| v.first()).cloned()
    }

    /// The line as it appears on `device` (shared lines appear on several).
    pub fn get_on(&self, dn: &str, device: &str) -> Option<(String, provision::DeviceLine)> {
        let m = self.inner.read().unwrap_or_else(|p| p.into_inner());
        m.by_dn
            .get(dn)?
            .iter()
            .find(|(d, _)| d.eq_ignore_ascii_case(device))
            .cloned()
    }

    /// The registration interval of the device's pool.
    pub fn interval(&self, device: &str) -> Option<u32> {
        let m = self.inner.read().unwrap_or_else(|p| p.into_inner());
        m.intervals.get(&device.to_ascii_uppercase()).copied()
    }
}

/// SIP lines and devices from the database.
pub struct SipDirectory {
    pub prov: Arc<Provisioner>,
    pub lines: Arc<SipLineIndex>,
}

impl sip::SipDirectory for SipDirectory {
    fn line(&self, user: &str) -> Option<sip::SipLine> {
        let (device, line) = self.lines.get(user)?;
        Some(sip::SipLine {
            device,
            dn: line.dn.clone(),
            auth_user: line.auth_user.clone(),
            password: (!line.auth_password.is_empty()).then(|| line.auth_password.clone()),
        })
    }

    fn line_on_device(&self, user: &str, device: &str) -> Option<sip::SipLine> {
        let (device, line) = self.lines.get_on(user, device)?;
        Some(sip::SipLine {
            device,
            dn: line.dn.clone(),
            auth_user: line.auth_user.clone(),
            password: (!line.auth_password.is_empty()).then(|| line.auth_password.clone()),
        })
    }

    fn register_interval(&self, device: &str) -> Option<u32> {
        self.lines.interval(device)
    }

    fn device_by_mac(&self, mac: Mac) -> Option<sip::SipDevice> {
        let d = self.prov.device_by_mac(mac)?;
        Some(sip::SipDevice {
            device: d.name.clone(),
            mac: d.mac,
            model: Some(d.model.name.to_string()),
            lines: d.lines.iter().map(|l| l.dn.clone()).collect(),
        })
    }

    fn auto_register(&self, req: &sip::AutoRegisterRequest) -> Option<sip::SipLine> {
        let model = req
            .model
            .as_deref()
            .and_then(|m| cnf::catalog::lookup(m).map(|i| i.name))
            .unwrap_or("Cisco 8845");
        let name = req.mac.device_name();
        self.prov
            .auto_register(&name, model, Some(Protocol::Sip))
            .map_err(
                |e| tracing::info!(device = %name, error = %e, "sip: auto-registration refused"),
            )
            .ok()?;
        self.lines.refresh(&self.prov, &name);
        let d = self.prov.device(&name)?;
        let l = d.lines.first()?;
        Some(sip::SipLine {
            device: d.name.clone(),
            dn: l.dn.clone(),
            auth_user: l.auth_user.clone(),
            password: (!l.auth_password.is_empty()).then(|| l.auth_password.clone()),
        })
    }
}

/// Which MAC a client address belongs to, from the journal's DHCP acks (until the DHCP
/// service's lease table is wired in).
#[derive(Default)]
pub struct LeaseMacs {
    map: std::sync::RwLock<std::collections::HashMap<IpAddr, Mac>>,
}

impl LeaseMacs {
    pub fn record(&self, ip: IpAddr, mac: Mac) {
        let mut m = self.map.write().unwrap_or_else(|p| p.into_inner());
        m.insert(ip, mac);
    }

    pub fn lookup(&self, ip: IpAddr) -> Option<Mac> {
        let m = self.map.read().unwrap_or_else(|p| p.into_inner());
        m.get(&ip).copied()
    }
}

/// An event sink that records each DHCP ack in [`LeaseMacs`] synchronously, then passes the
/// event on.
pub struct LeaseRecorder {
    pub inner: journal::SharedSink,
    pub macs: std::sync::Arc<LeaseMacs>,
}

impl journal::EventSink for LeaseRecorder {
    fn emit(&self, event: journal::Event) {
        if let journal::EventKind::DhcpAck { ip, .. } = &event.kind {
            self.macs.record(IpAddr::from(*ip), event.mac);
        }
        self.inner.emit(event);
    }
}

impl fileserver::MacLookup for LeaseMacs {
    fn mac_for_ip(&self, ip: IpAddr) -> Option<Mac> {
        self.lookup(ip)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use fileserver::FileSource;
    use sccp::SccpDirectory as _;
    use store::{SqliteStore, Store};

    /// The SCCP service learns why auto-registration refused from the store's typed error:
    /// off, range full, and any other store error passed through with its text.
    #[test]
    fn auto_registration_refusals_are_typed() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
        let prov = Arc::new(Provisioner::new(Arc::clone(&store)).unwrap());
        let dir = SccpDirectory {
            prov: Arc::clone(&prov),
            keepalive_secs: 30,
        };
        // 7 = a 7960's SCCP device type.
        let e = dir.auto_register("SEP001B54000001", 7).unwrap_err();
        assert!(matches!(e, sccp::AutoRegisterError::Disabled), "{e:?}");
        let mut s = store.settings().unwrap();
        s.autoreg_enabled = true;
        s.autoreg_dn_start = "5000".into();
        s.autoreg_dn_end = "5001".into();
        store.put_settings(&s).unwrap();
        let d = dir.auto_register("SEP001B54000001", 7).unwrap();
        assert_eq!(d.lines[0].dn, "5000");
        dir.auto_register("SEP001B54000002", 7).unwrap();
        let e = dir.auto_register("SEP001B54000004", 7).unwrap_err();
        assert!(
            matches!(e, sccp::AutoRegisterError::RangeExhausted),
            "{e:?}"
        );
        // Not a refusal: the device exists already (with a DN free for it).
        s.autoreg_dn_end = "5002".into();
        store.put_settings(&s).unwrap();
        let e = dir.auto_register("SEP001B54000001", 7).unwrap_err();
        assert!(matches!(e, sccp::AutoRegisterError::Store(_)), "{e:?}");
        assert!(matches!(
            dir.auto_register("SEP001B54000003", 999_999).unwrap_err(),
            sccp::AutoRegisterError::UnsupportedModel(999_999)
        ));
    }

    /// A phone whose configured load the library lacks gets a file without it, and the boot
    /// journal says why when the file is served.
    #[test]
    fn withheld_load_is_journalled_when_the_file_is_served() {
        let s = store::SqliteStore::in_memory().expect("store");
        s.add_line(&store::Line {
            dn: "4101".into(),
            ..Default::default()
        })
        .expect("line");
        let mut d = store::NewDevice::new("SEP001B54000001", "Cisco 7965", Protocol::Sccp);
        d.lines = vec![store::LineAppearance {
            dn: "4101".into(),
            ..Default::default()
        }];
        s.add_device(&d).expect("device");
        let store: Arc<dyn Store> = Arc::new(s);
        let prov = Arc::new(Provisioner::new(store).expect("provisioner"));
        let sink = journal::VecSink::new();
        let files = ProvisionedFiles(prov, Some(sink.clone()));
        let f = files.get("sep001b54000001.cnf.xml").expect("file");
        assert!(String::from_utf8_lossy(&f.bytes).contains("<loadInformation></loadInformation>"));
        let ev = sink.events();
        assert_eq!(ev.len(), 1, "{ev:?}");
        match &ev[0].kind {
            journal::EventKind::LoadWithheld { load, reason } => {
                assert_eq!(load, "SCCP45.9-4-2SR3-1S");
                assert!(reason.contains("not in the firmware library"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Other files journal nothing.
        files.get("XMLDefault.cnf.xml").expect("xmldefault");
        assert_eq!(sink.events().len(), 1);
    }
}
