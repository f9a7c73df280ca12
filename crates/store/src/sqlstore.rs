//! The store's logic, written once for both backends: every [`Store`] method as statements
//! on a [`Tx`]. A backend ([`crate::sqlite`], [`crate::postgres`]) only says how a
//! transaction begins, runs a statement and commits.
//!
//! Every configuration write first bumps the one-row `config_generation` counter. On SQLite
//! the transaction already holds the database write lock (`BEGIN IMMEDIATE`); on PostgreSQL
//! that `UPDATE` takes the row lock, so concurrent writers from every node queue in one
//! order, exactly like SQLite's single writer, and commit order equals generation order.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::args;
use crate::error::{AutoRegRefusal, StoreError};
use crate::model::*;
use crate::sql::{Backend, Dialect, Row, Tx, TxMode};
use crate::{schema, validate, ImportReport, ImportRow, Store};

/// A [`Store`] on an SQL backend `B`.
pub struct SqlStore<B> {
    pub(crate) db: B,
    /// Where the search for the next free auto-registration DN starts: the number after the
    /// last one given out, so a storm of unknown phones costs one lookup each, not a range scan.
    autoreg_next: Mutex<u128>,
}

impl<B: Backend> SqlStore<B> {
    pub(crate) fn with_backend(db: B) -> Self {
        SqlStore {
            db,
            autoreg_next: Mutex::new(0),
        }
    }

    /// Runs `f` in a write transaction that holds the configuration write lock from its first
    /// statement on, and bumps the configuration generation.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.db.transaction(TxMode::Write, |tx| {
            tx.exec(
                "UPDATE config_generation SET value = value + 1 WHERE id = 1",
                args![],
            )?;
            let out = f(tx)?;
            if tx.dialect() == Dialect::Postgres {
                // Delivered to every LISTENing node when (and only if) this commits.
                tx.exec(
                    &format!(
                        "SELECT pg_notify('{}', CAST((SELECT value FROM config_generation WHERE id = 1) AS TEXT))",
                        crate::postgres::CONFIG_CHANNEL
                    ),
                    args![],
                )?;
            }
            Ok(out)
        })
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.db.transaction(TxMode::Read, f)
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.read(schema::version)
    }
}

impl<B> std::fmt::Debug for SqlStore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::any::type_name::<B>())
    }
}

fn protocol_of(s: &str) -> Protocol {
    s.parse().unwrap_or(Protocol::Sccp)
}

fn read_device_row(r: &Row) -> Result<Device, StoreError> {
    let name: String = r.get(0)?;
    let mac = Mac::from_device_name(&name).unwrap_or_default();
    Ok(Device {
        name,
        mac,
        model: r.get(2)?,
        protocol: protocol_of(&r.get::<String>(3)?),
        description: r.get(4)?,
        device_pool: r.get(5)?,
        button_template: r.get(6)?,
        softkey_template: r.get(7)?,
        owner: r.get(8)?,
        security_mode: r.get(9)?,
        load_override: r.get(10)?,
        revision: r.get(11)?,
        lines: Vec::new(),
        speed_dials: Vec::new(),
    })
}

const DEVICE_COLS: &str = "name, mac, model, protocol, description, device_pool, button_template, softkey_template, owner, security_mode, load_override, revision";

fn load_device(tx: &mut dyn Tx, name: &str) -> Result<Option<Device>, StoreError> {
    let Some(row) = tx.query_opt(
        &format!("SELECT {DEVICE_COLS} FROM devices WHERE name = ?1"),
        args![name],
    )?
    else {
        return Ok(None);
    };
    let mut d = read_device_row(&row)?;
    d.lines = tx
        .query(
            "SELECT dn, label, display FROM device_lines WHERE device = ?1 ORDER BY position",
            args![name],
        )?
        .iter()
        .map(|r| {
            Ok(LineAppearance {
                dn: r.get(0)?,
                label: r.get(1)?,
                display: r.get(2)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    d.speed_dials = tx
        .query(
            "SELECT number, label FROM speed_dials WHERE device = ?1 ORDER BY position",
            args![name],
        )?
        .iter()
        .map(|r| {
            Ok(SpeedDial {
                number: r.get(0)?,
                label: r.get(1)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Some(d))
}

fn load_devices(tx: &mut dyn Tx) -> Result<Vec<Device>, StoreError> {
    let mut devices: Vec<Device> = tx
        .query(
            &format!("SELECT {DEVICE_COLS} FROM devices ORDER BY name"),
            args![],
        )?
        .iter()
        .map(read_device_row)
        .collect::<Result<_, _>>()?;
    let index: HashMap<String, usize> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.name.clone(), i))
        .collect();
    for r in tx.query(
        "SELECT device, dn, label, display FROM device_lines ORDER BY device, position",
        args![],
    )? {
        let dev: String = r.get(0)?;
        if let Some(&i) = index.get(&dev) {
            devices[i].lines.push(LineAppearance {
                dn: r.get(1)?,
                label: r.get(2)?,
                display: r.get(3)?,
            });
        }
    }
    for r in tx.query(
        "SELECT device, number, label FROM speed_dials ORDER BY device, position",
        args![],
    )? {
        let dev: String = r.get(0)?;
        if let Some(&i) = index.get(&dev) {
            devices[i].speed_dials.push(SpeedDial {
                number: r.get(1)?,
                label: r.get(2)?,
            });
        }
    }
    Ok(devices)
}

const LINE_COLS: &str = "dn, label, display_name, auth_user, auth_password, voicemail";

fn load_line(tx: &mut dyn Tx, dn: &str) -> Result<Option<Line>, StoreError> {
    tx.query_opt(
        &format!("SELECT {LINE_COLS} FROM lines WHERE dn = ?1"),
        args![dn],
    )?
    .map(|r| read_line_row(&r))
    .transpose()
}

fn read_line_row(r: &Row) -> Result<Line, StoreError> {
    Ok(Line {
        dn: r.get(0)?,
        label: r.get(1)?,
        display_name: r.get(2)?,
        auth_user: r.get(3)?,
        auth_password: r.get(4)?,
        voicemail: r.get(5)?,
    })
}

fn load_lines(tx: &mut dyn Tx) -> Result<Vec<Line>, StoreError> {
    tx.query(
        &format!("SELECT {LINE_COLS} FROM lines ORDER BY dn"),
        args![],
    )?
    .iter()
    .map(read_line_row)
    .collect()
}

fn insert_line(tx: &mut dyn Tx, l: &Line) -> Result<(), StoreError> {
    tx.exec(
        "INSERT INTO lines (dn, label, display_name, auth_user, auth_password, voicemail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![&l.dn, &l.label, &l.display_name, &l.auth_user, &l.auth_password, &l.voicemail],
    )?;
    Ok(())
}

fn write_line(tx: &mut dyn Tx, l: &Line) -> Result<(), StoreError> {
    tx.exec(
        "UPDATE lines SET label = ?2, display_name = ?3, auth_user = ?4, auth_password = ?5, voicemail = ?6 WHERE dn = ?1",
        args![&l.dn, &l.label, &l.display_name, &l.auth_user, &l.auth_password, &l.voicemail],
    )?;
    Ok(())
}

fn load_pools(tx: &mut dyn Tx) -> Result<Vec<DevicePool>, StoreError> {
    tx.query(
        "SELECT name, cm_group, date_time_group, user_locale, network_locale, connection_monitor_duration, sip_register_interval FROM device_pools ORDER BY name",
        args![],
    )?
    .iter()
    .map(|r| {
        Ok(DevicePool {
            name: r.get(0)?,
            cm_group: r.get(1)?,
            date_time_group: r.get(2)?,
            user_locale: r.get(3)?,
            network_locale: r.get(4)?,
            connection_monitor_duration: r.get(5)?,
            sip_register_interval: r.get(6)?,
        })
    })
    .collect()
}

fn load_groups(tx: &mut dyn Tx) -> Result<Vec<CmGroup>, StoreError> {
    let mut groups: Vec<CmGroup> = tx
        .query(
            "SELECT name, tftp_default FROM cm_groups ORDER BY name",
            args![],
        )?
        .iter()
        .map(|r| {
            Ok(CmGroup {
                name: r.get(0)?,
                tftp_default: r.get(1)?,
                members: Vec::new(),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    for r in tx.query(
        "SELECT group_name, node_name FROM cm_group_members ORDER BY group_name, priority",
        args![],
    )? {
        let g: String = r.get(0)?;
        if let Some(group) = groups.iter_mut().find(|x| x.name == g) {
            group.members.push(r.get(1)?);
        }
    }
    Ok(groups)
}

fn load_nodes(tx: &mut dyn Tx) -> Result<Vec<CmNode>, StoreError> {
    tx.query(
        "SELECT name, host, description, sccp_port, sip_port, sccp_tls_port, sip_tls_port FROM cm_nodes ORDER BY name",
        args![],
    )?
    .iter()
    .map(|r| {
        Ok(CmNode {
            name: r.get(0)?,
            host: r.get(1)?,
            description: r.get(2)?,
            sccp_port: r.get(3)?,
            sip_port: r.get(4)?,
            sccp_tls_port: r.get(5)?,
            sip_tls_port: r.get(6)?,
        })
    })
    .collect()
}

fn load_date_time_groups(tx: &mut dyn Tx) -> Result<Vec<DateTimeGroup>, StoreError> {
    tx.query(
        "SELECT name, date_template, time_zone, ntp_servers FROM date_time_groups ORDER BY name",
        args![],
    )?
    .iter()
    .map(|r| {
        let ntp: String = r.get(3)?;
        Ok(DateTimeGroup {
            name: r.get(0)?,
            date_template: r.get(1)?,
            time_zone: r.get(2)?,
            ntp_servers: ntp
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        })
    })
    .collect()
}

fn load_model_loads(tx: &mut dyn Tx) -> Result<Vec<ModelLoad>, StoreError> {
    tx.query(
        "SELECT model, protocol, load_name FROM model_loads ORDER BY model, protocol",
        args![],
    )?
    .iter()
    .map(|r| {
        Ok(ModelLoad {
            model: r.get(0)?,
            protocol: protocol_of(&r.get::<String>(1)?),
            load: r.get(2)?,
        })
    })
    .collect()
}

fn load_firmware(tx: &mut dyn Tx) -> Result<Vec<FirmwareLoad>, StoreError> {
    let mut loads: Vec<FirmwareLoad> = tx
        .query(
            "SELECT name, protocol, models, manifest_file, complete, package, signer, header,
             imported_at FROM firmware_loads ORDER BY name",
            args![],
        )?
        .iter()
        .map(|r| {
            let models: String = r.get(2)?;
            Ok(FirmwareLoad {
                name: r.get(0)?,
                protocol: r.get(1)?,
                models: models
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
                manifest_file: r.get(3)?,
                complete: r.get(4)?,
                images: Vec::new(),
                package: r.get(5)?,
                signer: r.get(6)?,
                header: r.get(7)?,
                imported_at: r.get(8)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let index: HashMap<String, usize> = loads
        .iter()
        .enumerate()
        .map(|(i, l)| (l.name.clone(), i))
        .collect();
    let rows = tx.query(
        "SELECT load_name, platform, file_name, size, declared_size, optional
         FROM firmware_images ORDER BY load_name, position",
        args![],
    )?;
    for r in rows.iter() {
        let load: String = r.get(0)?;
        let img = FirmwareImage {
            platform: r.get(1)?,
            name: r.get(2)?,
            size: r.get(3)?,
            declared_size: r.get(4)?,
            optional: r.get(5)?,
        };
        if let Some(&i) = index.get(&load) {
            loads[i].images.push(img);
        }
    }
    Ok(loads)
}

fn load_settings(tx: &mut dyn Tx) -> Result<Settings, StoreError> {
    let kv: HashMap<String, String> = tx
        .query("SELECT key, value FROM settings", args![])?
        .iter()
        .map(|r| Ok((r.get(0)?, r.get(1)?)))
        .collect::<Result<_, StoreError>>()?;
    let mut s = Settings::default();
    let get = |k: &str, into: &mut String| {
        if let Some(v) = kv.get(k) {
            *into = v.clone();
        }
    };
    get("authentication_url", &mut s.authentication_url);
    get("directory_url", &mut s.directory_url);
    get("idle_url", &mut s.idle_url);
    get("information_url", &mut s.information_url);
    get("messages_url", &mut s.messages_url);
    get("proxy_server_url", &mut s.proxy_server_url);
    get("services_url", &mut s.services_url);
    get("ssh_user", &mut s.ssh_user);
    get("ssh_password", &mut s.ssh_password);
    get("phone_password", &mut s.phone_password);
    get("autoreg_dn_start", &mut s.autoreg_dn_start);
    get("autoreg_dn_end", &mut s.autoreg_dn_end);
    get("autoreg_pool", &mut s.autoreg_pool);
    get("autoreg_protocol", &mut s.autoreg_protocol);
    s.idle_timeout = kv
        .get("idle_timeout")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    s.autoreg_enabled = kv.get("autoreg_enabled").is_some_and(|v| v == "1");
    Ok(s)
}

fn load_dn_ranges(tx: &mut dyn Tx) -> Result<Vec<DnRange>, StoreError> {
    tx.query(
        "SELECT start_dn, end_dn FROM dn_ranges ORDER BY start_dn",
        args![],
    )?
    .iter()
    .map(|r| {
        Ok(DnRange {
            start: r.get(0)?,
            end: r.get(1)?,
        })
    })
    .collect()
}

fn load_dial_rules(tx: &mut dyn Tx) -> Result<Vec<DialRule>, StoreError> {
    tx.query(
        "SELECT pattern, timeout, rewrite FROM dial_rules ORDER BY position",
        args![],
    )?
    .iter()
    .map(|r| {
        Ok(DialRule {
            pattern: r.get(0)?,
            timeout: r.get(1)?,
            rewrite: r.get(2)?,
        })
    })
    .collect()
}

fn load_rings(tx: &mut dyn Tx) -> Result<Vec<Ring>, StoreError> {
    tx.query(
        "SELECT display_name, file_name FROM rings ORDER BY position",
        args![],
    )?
    .iter()
    .map(|r| {
        Ok(Ring {
            display_name: r.get(0)?,
            file_name: r.get(1)?,
        })
    })
    .collect()
}

/// Deletes the row `name` of a `kind` only when `users_sql` (one `?1` parameter) names no
/// row that still refers to it, so a removal never leaves a dangling reference.
fn delete_unless_used(
    tx: &mut dyn Tx,
    kind: &'static str,
    name: &str,
    users_sql: &str,
    delete_sql: &str,
) -> Result<(), StoreError> {
    let users: Vec<String> = tx
        .query(users_sql, args![name])?
        .iter()
        .map(|r| r.get(0))
        .collect::<Result<_, _>>()?;
    if !users.is_empty() {
        return Err(StoreError::InUse {
            kind,
            name: name.into(),
            by: users.join(", "),
        });
    }
    if tx.exec(delete_sql, args![name])? == 0 {
        return Err(StoreError::not_found(kind, name));
    }
    Ok(())
}

/// The first DN of `start..=end` (as `width` digits) that no line uses, searching from `from`
/// to the end and then wrapping to `start`, one indexed lookup per candidate.
fn free_dn_from(
    tx: &mut dyn Tx,
    start: u128,
    end: u128,
    from: u128,
    width: usize,
) -> Result<Option<u128>, StoreError> {
    for n in (from..=end).chain(start..from) {
        if !tx.exists(
            "SELECT 1 FROM lines WHERE dn = ?1",
            args![format!("{n:0width$}")],
        )? {
            return Ok(Some(n));
        }
    }
    Ok(None)
}

fn exists(tx: &mut dyn Tx, sql: &str, key: &str) -> Result<bool, StoreError> {
    tx.exists(sql, args![key])
}
/// Canonicalises names and fills a `Device` from a `NewDevice`, checking every field.
fn canonical(d: &NewDevice) -> Result<Device, StoreError> {
    let (name, mac) = validate::device_name("mac", &d.name)?;
    let m = validate::model("model", &d.model, d.protocol)?;
    let dev = Device {
        name,
        mac,
        model: m.name.to_string(),
        protocol: d.protocol,
        description: d.description.clone(),
        device_pool: d.device_pool.clone(),
        button_template: canonical_template(cnf::catalog::BUTTON_TEMPLATES, &d.button_template),
        softkey_template: canonical_template(cnf::catalog::SOFTKEY_TEMPLATES, &d.softkey_template),
        owner: d.owner.clone(),
        security_mode: d.security_mode,
        load_override: d.load_override.clone(),
        lines: d.lines.clone(),
        speed_dials: d.speed_dials.clone(),
        revision: 1,
    };
    validate::device(&dev)?;
    Ok(dev)
}

fn canonical_template(known: &[&str], s: &str) -> String {
    known
        .iter()
        .find(|t| t.eq_ignore_ascii_case(s))
        .map(|t| t.to_string())
        .unwrap_or_else(|| s.to_string())
}

/// Checks references of a device: pool exists, every line exists and is in a DN range.
fn check_refs(tx: &mut dyn Tx, d: &Device, ranges: &[DnRange]) -> Result<(), StoreError> {
    if !exists(
        tx,
        "SELECT 1 FROM device_pools WHERE name = ?1",
        &d.device_pool,
    )? {
        return Err(StoreError::invalid(
            "device pool",
            "an existing device pool (see `pool list`)",
            &d.device_pool,
        ));
    }
    for (i, l) in d.lines.iter().enumerate() {
        let field = format!("line {}", i + 1);
        validate::dn_in_ranges(&field, &l.dn, ranges)?;
        if !exists(tx, "SELECT 1 FROM lines WHERE dn = ?1", &l.dn)? {
            return Err(StoreError::invalid(
                field,
                "an existing line (create it first with `line add`)",
                &l.dn,
            ));
        }
    }
    Ok(())
}

fn insert_device(tx: &mut dyn Tx, d: &Device) -> Result<(), StoreError> {
    tx.exec(
        "INSERT INTO devices (name, mac, model, protocol, description, device_pool, button_template, softkey_template, owner, security_mode, load_override, revision)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        args![
            &d.name,
            d.mac.to_bare_upper(),
            &d.model,
            d.protocol.as_str(),
            &d.description,
            &d.device_pool,
            &d.button_template,
            &d.softkey_template,
            &d.owner,
            d.security_mode,
            &d.load_override,
            d.revision,
        ],
    )?;
    write_children(tx, d)
}

fn write_children(tx: &mut dyn Tx, d: &Device) -> Result<(), StoreError> {
    for (i, l) in d.lines.iter().enumerate() {
        tx.exec(
            "INSERT INTO device_lines (device, position, dn, label, display) VALUES (?1, ?2, ?3, ?4, ?5)",
            args![&d.name, i + 1, &l.dn, &l.label, &l.display],
        )?;
    }
    for (i, s) in d.speed_dials.iter().enumerate() {
        tx.exec(
            "INSERT INTO speed_dials (device, position, number, label) VALUES (?1, ?2, ?3, ?4)",
            args![&d.name, i + 1, &s.number, &s.label],
        )?;
    }
    Ok(())
}

fn device_key(name: &str) -> Result<String, StoreError> {
    Ok(validate::device_name("device name", name)?.0)
}

impl<B: Backend> Store for SqlStore<B> {
    fn add_device(&self, d: &NewDevice) -> Result<Device, StoreError> {
        let dev = canonical(d)?;
        self.write(|tx| {
            if exists(tx, "SELECT 1 FROM devices WHERE name = ?1", &dev.name)? {
                return Err(StoreError::Duplicate {
                    kind: "device",
                    name: dev.name.clone(),
                });
            }
            let ranges = load_dn_ranges(tx)?;
            check_refs(tx, &dev, &ranges)?;
            insert_device(tx, &dev)?;
            Ok(dev)
        })
    }

    fn device(&self, name: &str) -> Result<Option<Device>, StoreError> {
        let key = device_key(name)?;
        self.read(|tx| load_device(tx, &key))
    }

    fn devices(&self) -> Result<Vec<Device>, StoreError> {
        self.read(load_devices)
    }

    fn edit_device(&self, name: &str, patch: &DevicePatch) -> Result<Device, StoreError> {
        let key = device_key(name)?;
        self.write(|tx| {
            let mut d =
                load_device(tx, &key)?.ok_or_else(|| StoreError::not_found("device", &key))?;
            if let Some(expected) = patch.expected_revision {
                if expected != d.revision {
                    return Err(StoreError::Conflict {
                        name: key.clone(),
                        expected,
                        found: d.revision,
                    });
                }
            }
            let p = patch.clone();
            if let Some(v) = p.model {
                d.model = v;
            }
            if let Some(v) = p.protocol {
                d.protocol = v;
            }
            if let Some(v) = p.description {
                d.description = v;
            }
            if let Some(v) = p.device_pool {
                d.device_pool = v;
            }
            if let Some(v) = p.button_template {
                d.button_template = v;
            }
            if let Some(v) = p.softkey_template {
                d.softkey_template = v;
            }
            if let Some(v) = p.owner {
                d.owner = v;
            }
            if let Some(v) = p.security_mode {
                d.security_mode = v;
            }
            if let Some(v) = p.load_override {
                d.load_override = v;
            }
            if let Some(v) = p.lines {
                d.lines = v;
            }
            if let Some(v) = p.add_line {
                d.lines.push(v);
            }
            if let Some(dn) = p.remove_line {
                let before = d.lines.len();
                d.lines.retain(|l| l.dn != dn);
                if d.lines.len() == before {
                    return Err(StoreError::invalid(
                        "remove line",
                        format!("a DN shown on {key}"),
                        dn,
                    ));
                }
            }
            if let Some(v) = p.speed_dials {
                d.speed_dials = v;
            }
            if let Some(v) = p.add_speed_dial {
                d.speed_dials.push(v);
            }
            // Re-canonicalise (model spelling, templates) and validate the result.
            let mut nd = NewDevice::new(&d.name, &d.model, d.protocol);
            nd.description = d.description.clone();
            nd.device_pool = d.device_pool.clone();
            nd.button_template = d.button_template.clone();
            nd.softkey_template = d.softkey_template.clone();
            nd.owner = d.owner.clone();
            nd.security_mode = d.security_mode;
            nd.load_override = d.load_override.clone();
            nd.lines = d.lines.clone();
            nd.speed_dials = d.speed_dials.clone();
            let mut new = canonical(&nd)?;
            new.revision = d.revision + 1;
            let ranges = load_dn_ranges(tx)?;
            check_refs(tx, &new, &ranges)?;
            tx.exec(
                "UPDATE devices SET model = ?2, protocol = ?3, description = ?4, device_pool = ?5, button_template = ?6, softkey_template = ?7, owner = ?8, security_mode = ?9, load_override = ?10, revision = ?11 WHERE name = ?1",
                args![&new.name, &new.model, new.protocol.as_str(), &new.description, &new.device_pool, &new.button_template, &new.softkey_template, &new.owner, &new.security_mode, &new.load_override, new.revision as i64],
            )?;
            tx.exec("DELETE FROM device_lines WHERE device = ?1", args![&new.name])?;
            tx.exec("DELETE FROM speed_dials WHERE device = ?1", args![&new.name])?;
            write_children(tx, &new)?;
            Ok(new)
        })
    }

    fn remove_device(&self, name: &str) -> Result<Device, StoreError> {
        let key = device_key(name)?;
        self.write(|tx| {
            let d = load_device(tx, &key)?.ok_or_else(|| StoreError::not_found("device", &key))?;
            tx.exec("DELETE FROM device_lines WHERE device = ?1", args![&key])?;
            tx.exec("DELETE FROM speed_dials WHERE device = ?1", args![&key])?;
            tx.exec("DELETE FROM devices WHERE name = ?1", args![&key])?;
            Ok(d)
        })
    }

    fn add_line(&self, l: &Line) -> Result<Line, StoreError> {
        validate::line(l)?;
        self.write(|tx| {
            validate::dn_in_ranges("directory number", &l.dn, &load_dn_ranges(tx)?)?;
            if exists(tx, "SELECT 1 FROM lines WHERE dn = ?1", &l.dn)? {
                return Err(StoreError::Duplicate {
                    kind: "line",
                    name: l.dn.clone(),
                });
            }
            insert_line(tx, l)?;
            Ok(l.clone())
        })
    }

    fn line(&self, dn: &str) -> Result<Option<Line>, StoreError> {
        self.read(|tx| load_line(tx, dn))
    }

    fn lines(&self) -> Result<Vec<Line>, StoreError> {
        self.read(load_lines)
    }

    fn edit_line(&self, dn: &str, patch: &LinePatch) -> Result<Line, StoreError> {
        self.write(|tx| {
            let mut l = load_line(tx, dn)?.ok_or_else(|| StoreError::not_found("line", dn))?;
            let p = patch.clone();
            if let Some(v) = p.label {
                l.label = v;
            }
            if let Some(v) = p.display_name {
                l.display_name = v;
            }
            if let Some(v) = p.auth_user {
                l.auth_user = v;
            }
            if let Some(v) = p.auth_password {
                l.auth_password = v;
            }
            if let Some(v) = p.voicemail {
                l.voicemail = v;
            }
            validate::line(&l)?;
            write_line(tx, &l)?;
            Ok(l)
        })
    }

    fn remove_line(&self, dn: &str) -> Result<Line, StoreError> {
        self.write(|tx| {
            let l = load_line(tx, dn)?.ok_or_else(|| StoreError::not_found("line", dn))?;
            let users = devices_with_line(tx, dn)?;
            if !users.is_empty() {
                return Err(StoreError::InUse {
                    kind: "line",
                    name: dn.to_string(),
                    by: users.join(", "),
                });
            }
            tx.exec("DELETE FROM lines WHERE dn = ?1", args![dn])?;
            Ok(l)
        })
    }

    fn devices_with_line(&self, dn: &str) -> Result<Vec<String>, StoreError> {
        self.read(|tx| devices_with_line(tx, dn))
    }

    fn put_pool(&self, p: &DevicePool) -> Result<(), StoreError> {
        validate::name("device pool", &p.name)?;
        validate::text("user locale", &p.user_locale, 50)?;
        validate::text("network locale", &p.network_locale, 50)?;
        validate::sip_register_interval("SIP registration interval", p.sip_register_interval)?;
        self.write(|tx| {
            if !exists(tx, "SELECT 1 FROM cm_groups WHERE name = ?1", &p.cm_group)? {
                return Err(StoreError::invalid("CallManager group", "an existing CallManager group", &p.cm_group));
            }
            if !exists(tx, "SELECT 1 FROM date_time_groups WHERE name = ?1", &p.date_time_group)? {
                return Err(StoreError::invalid("date/time group", "an existing date/time group", &p.date_time_group));
            }
            tx.exec(
                "INSERT INTO device_pools (name, cm_group, date_time_group, user_locale, network_locale, connection_monitor_duration, sip_register_interval)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (name) DO UPDATE SET cm_group = excluded.cm_group, date_time_group = excluded.date_time_group,
                   user_locale = excluded.user_locale, network_locale = excluded.network_locale,
                   connection_monitor_duration = excluded.connection_monitor_duration,
                   sip_register_interval = excluded.sip_register_interval",
                args![&p.name, &p.cm_group, &p.date_time_group, &p.user_locale, &p.network_locale, &p.connection_monitor_duration, &p.sip_register_interval],
            )?;
            Ok(())
        })
    }

    fn pools(&self) -> Result<Vec<DevicePool>, StoreError> {
        self.read(load_pools)
    }

    fn remove_pool(&self, name: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let n: i64 = tx.query_value(
                "SELECT COUNT(*) FROM devices WHERE device_pool = ?1",
                args![name],
            )?;
            if n > 0 {
                return Err(StoreError::InUse {
                    kind: "device pool",
                    name: name.into(),
                    by: format!("{n} devices"),
                });
            }
            if load_settings(tx)?.autoreg_pool == name {
                return Err(StoreError::InUse {
                    kind: "device pool",
                    name: name.into(),
                    by: "auto-registration".into(),
                });
            }
            if tx.exec("DELETE FROM device_pools WHERE name = ?1", args![name])? == 0 {
                return Err(StoreError::not_found("device pool", name));
            }
            Ok(())
        })
    }

    fn put_group(&self, g: &CmGroup) -> Result<(), StoreError> {
        validate::name("CallManager group", &g.name)?;
        if g.members.len() > 5 {
            return Err(StoreError::invalid(
                "members",
                "at most 5 nodes (phones accept priorities 0-4)",
                g.members.len().to_string(),
            ));
        }
        self.write(|tx| {
            let mut seen = HashSet::new();
            for (i, m) in g.members.iter().enumerate() {
                if !exists(tx, "SELECT 1 FROM cm_nodes WHERE name = ?1", m)? {
                    return Err(StoreError::invalid(format!("member {}", i + 1), "an existing node", m));
                }
                if !seen.insert(m) {
                    return Err(StoreError::invalid(format!("member {}", i + 1), "each node at most once", m));
                }
            }
            tx.exec(
                "INSERT INTO cm_groups (name, tftp_default) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET tftp_default = excluded.tftp_default",
                args![&g.name, g.tftp_default as i64],
            )?;
            tx.exec("DELETE FROM cm_group_members WHERE group_name = ?1", args![&g.name])?;
            for (i, m) in g.members.iter().enumerate() {
                tx.exec(
                    "INSERT INTO cm_group_members (group_name, priority, node_name) VALUES (?1, ?2, ?3)",
                    args![&g.name, i as i64, m],
                )?;
            }
            Ok(())
        })
    }

    fn groups(&self) -> Result<Vec<CmGroup>, StoreError> {
        self.read(load_groups)
    }

    fn remove_group(&self, name: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            delete_unless_used(
                tx,
                "CallManager group",
                name,
                "SELECT name FROM device_pools WHERE cm_group = ?1",
                "DELETE FROM cm_groups WHERE name = ?1",
            )
        })
    }

    fn put_node(&self, n: &CmNode) -> Result<(), StoreError> {
        validate::name("node", &n.name)?;
        validate::host("host", &n.host)?;
        validate::text("description", &n.description, 128)?;
        self.write(|tx| {
            tx.exec(
                "INSERT INTO cm_nodes (name, host, description, sccp_port, sip_port, sccp_tls_port, sip_tls_port)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (name) DO UPDATE SET host = excluded.host, description = excluded.description,
                   sccp_port = excluded.sccp_port, sip_port = excluded.sip_port,
                   sccp_tls_port = excluded.sccp_tls_port, sip_tls_port = excluded.sip_tls_port",
                args![&n.name, &n.host, &n.description, &n.sccp_port, &n.sip_port, &n.sccp_tls_port, &n.sip_tls_port],
            )?;
            Ok(())
        })
    }

    fn nodes(&self) -> Result<Vec<CmNode>, StoreError> {
        self.read(load_nodes)
    }

    fn remove_node(&self, name: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            delete_unless_used(
                tx,
                "node",
                name,
                "SELECT DISTINCT group_name FROM cm_group_members WHERE node_name = ?1",
                "DELETE FROM cm_nodes WHERE name = ?1",
            )
        })
    }

    fn put_date_time_group(&self, d: &DateTimeGroup) -> Result<(), StoreError> {
        validate::name("date/time group", &d.name)?;
        validate::text("date template", &d.date_template, 16)?;
        validate::text("time zone", &d.time_zone, 64)?;
        for (i, n) in d.ntp_servers.iter().enumerate() {
            validate::host(&format!("NTP server {}", i + 1), n)?;
        }
        self.write(|tx| {
            tx.exec(
                "INSERT INTO date_time_groups (name, date_template, time_zone, ntp_servers) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET date_template = excluded.date_template, time_zone = excluded.time_zone, ntp_servers = excluded.ntp_servers",
                args![&d.name, &d.date_template, &d.time_zone, d.ntp_servers.join(",")],
            )?;
            Ok(())
        })
    }

    fn date_time_groups(&self) -> Result<Vec<DateTimeGroup>, StoreError> {
        self.read(load_date_time_groups)
    }

    fn set_model_load(
        &self,
        model: &str,
        protocol: Protocol,
        load: &str,
    ) -> Result<(), StoreError> {
        let m = validate::model("model", model, protocol)?;
        validate::load("load", load)?;
        self.write(|tx| {
            if load.is_empty() {
                tx.exec(
                    "DELETE FROM model_loads WHERE model = ?1 AND protocol = ?2",
                    args![m.name, protocol.as_str()],
                )?;
            } else {
                tx.exec(
                    "INSERT INTO model_loads (model, protocol, load_name) VALUES (?1, ?2, ?3)
                     ON CONFLICT (model, protocol) DO UPDATE SET load_name = excluded.load_name",
                    args![m.name, protocol.as_str(), load],
                )?;
            }
            Ok(())
        })
    }

    fn model_loads(&self) -> Result<Vec<ModelLoad>, StoreError> {
        self.read(load_model_loads)
    }

    fn put_firmware_load(&self, l: &FirmwareLoad) -> Result<(), StoreError> {
        validate::load("load", &l.name)?;
        self.write(|tx| {
            tx.exec(
                "DELETE FROM firmware_images WHERE load_name = ?1",
                args![&l.name],
            )?;
            tx.exec("DELETE FROM firmware_loads WHERE name = ?1", args![&l.name])?;
            tx.exec(
                "INSERT INTO firmware_loads (name, protocol, models, manifest_file, complete,
                 package, signer, header, imported_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                args![
                    &l.name,
                    &l.protocol,
                    l.models.join(","),
                    &l.manifest_file,
                    l.complete,
                    &l.package,
                    &l.signer,
                    &l.header,
                    l.imported_at
                ],
            )?;
            for (i, im) in l.images.iter().enumerate() {
                tx.exec(
                    "INSERT INTO firmware_images (load_name, position, platform, file_name, size,
                     declared_size, optional) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    args![
                        &l.name,
                        i,
                        &im.platform,
                        &im.name,
                        im.size,
                        im.declared_size,
                        im.optional
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn firmware_loads(&self) -> Result<Vec<FirmwareLoad>, StoreError> {
        self.read(load_firmware)
    }

    fn settings(&self) -> Result<Settings, StoreError> {
        self.read(load_settings)
    }

    fn put_settings(&self, s: &Settings) -> Result<(), StoreError> {
        validate::settings(s)?;
        self.write(|tx| {
            if s.autoreg_enabled && !exists(tx, "SELECT 1 FROM device_pools WHERE name = ?1", &s.autoreg_pool)? {
                return Err(StoreError::invalid("auto-registration device pool", "an existing device pool", &s.autoreg_pool));
            }
            let idle = s.idle_timeout.to_string();
            let enabled = if s.autoreg_enabled { "1" } else { "0" };
            let kv: [(&str, &str); 16] = [
                ("authentication_url", &s.authentication_url),
                ("directory_url", &s.directory_url),
                ("idle_url", &s.idle_url),
                ("information_url", &s.information_url),
                ("messages_url", &s.messages_url),
                ("proxy_server_url", &s.proxy_server_url),
                ("services_url", &s.services_url),
                ("idle_timeout", &idle),
                ("ssh_user", &s.ssh_user),
                ("ssh_password", &s.ssh_password),
                ("phone_password", &s.phone_password),
                ("autoreg_enabled", enabled),
                ("autoreg_dn_start", &s.autoreg_dn_start),
                ("autoreg_dn_end", &s.autoreg_dn_end),
                ("autoreg_pool", &s.autoreg_pool),
                ("autoreg_protocol", &s.autoreg_protocol),
            ];
            for (k, v) in kv {
                tx.exec(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    args![k, v],
                )?;
            }
            Ok(())
        })
    }

    fn dial_rules(&self) -> Result<Vec<DialRule>, StoreError> {
        self.read(load_dial_rules)
    }

    fn set_dial_rules(&self, rules: &[DialRule]) -> Result<(), StoreError> {
        for (i, r) in rules.iter().enumerate() {
            let ok = r.pattern.len() <= 32
                && r.pattern
                    .chars()
                    .all(|c| c.is_ascii_digit() || ".*,#+".contains(c));
            if !ok {
                return Err(StoreError::invalid(
                    format!("rule {} pattern", i + 1),
                    "digits and . * , # +",
                    &r.pattern,
                ));
            }
            if !r.rewrite.is_empty() {
                validate::speed_dial_number(&format!("rule {} rewrite", i + 1), &r.rewrite)?;
            }
        }
        self.write(|tx| {
            tx.exec("DELETE FROM dial_rules", args![])?;
            for (i, r) in rules.iter().enumerate() {
                tx.exec(
                    "INSERT INTO dial_rules (position, pattern, timeout, rewrite) VALUES (?1, ?2, ?3, ?4)",
                    args![i as i64 + 1, &r.pattern, &r.timeout, &r.rewrite],
                )?;
            }
            Ok(())
        })
    }

    fn rings(&self) -> Result<Vec<Ring>, StoreError> {
        self.read(load_rings)
    }

    fn set_rings(&self, rings: &[Ring]) -> Result<(), StoreError> {
        if rings.len() > 50 {
            return Err(StoreError::invalid(
                "rings",
                "at most 50 rings",
                rings.len().to_string(),
            ));
        }
        for (i, r) in rings.iter().enumerate() {
            validate::text(&format!("ring {} name", i + 1), &r.display_name, 25)?;
            validate::load(&format!("ring {} file", i + 1), &r.file_name)?;
        }
        self.write(|tx| {
            tx.exec("DELETE FROM rings", args![])?;
            for (i, r) in rings.iter().enumerate() {
                tx.exec(
                    "INSERT INTO rings (position, display_name, file_name) VALUES (?1, ?2, ?3)",
                    args![i as i64 + 1, &r.display_name, &r.file_name],
                )?;
            }
            Ok(())
        })
    }

    fn dn_ranges(&self) -> Result<Vec<DnRange>, StoreError> {
        self.read(load_dn_ranges)
    }

    fn set_dn_ranges(&self, ranges: &[DnRange]) -> Result<(), StoreError> {
        for (i, r) in ranges.iter().enumerate() {
            let f = format!("range {}", i + 1);
            let a: Option<u128> = r.start.parse().ok();
            let b: Option<u128> = r.end.parse().ok();
            if !matches!((a, b), (Some(a), Some(b)) if a <= b) {
                return Err(StoreError::invalid(
                    f,
                    "START-END with numeric START <= END",
                    format!("{}-{}", r.start, r.end),
                ));
            }
        }
        self.write(|tx| {
            tx.exec("DELETE FROM dn_ranges", args![])?;
            for r in ranges {
                tx.exec(
                    "INSERT INTO dn_ranges (start_dn, end_dn) VALUES (?1, ?2)",
                    args![&r.start, &r.end],
                )?;
            }
            Ok(())
        })
    }

    fn auto_register(
        &self,
        name: &str,
        model: &str,
        protocol: Option<Protocol>,
    ) -> Result<Device, StoreError> {
        self.write(|tx| {
            let s = load_settings(tx)?;
            if !s.autoreg_enabled {
                return Err(StoreError::AutoRegistration(AutoRegRefusal::Disabled));
            }
            let m = cnf::lookup(model)
                .ok_or_else(|| StoreError::invalid("model", "a known model", model))?;
            // The cluster's auto-registration protocol, unless the model only speaks the other.
            let wanted = protocol.unwrap_or_else(|| protocol_of(&s.autoreg_protocol));
            let proto = if m.supports(wanted) {
                wanted
            } else if m.sip {
                Protocol::Sip
            } else {
                Protocol::Sccp
            };
            let (start, end): (u128, u128) =
                match (s.autoreg_dn_start.parse(), s.autoreg_dn_end.parse()) {
                    (Ok(a), Ok(b)) => (a, b),
                    _ => {
                        return Err(StoreError::invalid(
                            "auto-registration DN range",
                            "numeric start and end",
                            format!("{}-{}", s.autoreg_dn_start, s.autoreg_dn_end),
                        ))
                    }
                };
            let width = s.autoreg_dn_start.len();
            let dn_num = {
                let mut next = self.autoreg_next.lock().unwrap_or_else(|e| e.into_inner());
                let found = free_dn_from(tx, start, end, (*next).clamp(start, end), width)?;
                if let Some(n) = found {
                    *next = n.saturating_add(1);
                }
                found
            }
            .ok_or_else(|| {
                StoreError::AutoRegistration(AutoRegRefusal::RangeFull {
                    start: start.to_string(),
                    end: end.to_string(),
                })
            })?;
            let dn = format!("{dn_num:0width$}");
            let mut nd = NewDevice::new(name, m.name, proto);
            nd.device_pool = s.autoreg_pool.clone();
            nd.lines = vec![LineAppearance {
                dn: dn.clone(),
                ..Default::default()
            }];
            nd.description = format!("Auto {dn}");
            let dev = canonical(&nd)?;
            if exists(tx, "SELECT 1 FROM devices WHERE name = ?1", &dev.name)? {
                return Err(StoreError::Duplicate {
                    kind: "device",
                    name: dev.name.clone(),
                });
            }
            insert_line(
                tx,
                &Line {
                    dn: dn.clone(),
                    label: dn.clone(),
                    display_name: dn.clone(),
                    ..Default::default()
                },
            )?;
            check_refs(tx, &dev, &[])?;
            insert_device(tx, &dev)?;
            Ok(dev)
        })
    }

    fn import(&self, rows: &[ImportRow]) -> Result<ImportReport, StoreError> {
        self.write(|tx| import_rows(tx, rows))
    }

    fn external_change_token(&self) -> Result<Option<i64>, StoreError> {
        self.read(|tx| {
            tx.query_value("SELECT value FROM config_generation WHERE id = 1", args![])
                .map(Some)
        })
    }

    fn change_feed(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.db.change_feed()
    }

    fn check_import(&self, rows: &[ImportRow]) -> Result<ImportReport, StoreError> {
        self.db
            .transaction(TxMode::DryRun, |tx| import_rows(tx, rows))
    }

    fn reservations(&self) -> Result<Vec<(Mac, std::net::Ipv4Addr)>, StoreError> {
        self.read(|tx| {
            let rows = tx.query("SELECT mac, ip FROM dhcp_reservations ORDER BY ip", args![])?;
            let mut out = Vec::new();
            for row in rows {
                let (m, ip): (String, String) = (row.get(0)?, row.get(1)?);
                // Rows are only written through `set_reservation`, which checks both.
                if let (Ok(m), Ok(ip)) = (m.parse::<Mac>(), ip.parse()) {
                    out.push((m, ip));
                }
            }
            Ok(out)
        })
    }

    fn set_reservation(&self, mac: Mac, ip: Option<std::net::Ipv4Addr>) -> Result<(), StoreError> {
        self.write(|tx| {
            let key = mac.to_string();
            match ip {
                None => {
                    tx.exec("DELETE FROM dhcp_reservations WHERE mac = ?1", args![&key])?;
                }
                Some(ip) => {
                    let holder: Option<String> = tx
                        .query_opt(
                            "SELECT mac FROM dhcp_reservations WHERE ip = ?1 AND mac <> ?2",
                            args![ip.to_string(), &key],
                        )?
                        .map(|r| r.get(0))
                        .transpose()?;
                    if let Some(other) = holder {
                        return Err(StoreError::Invalid {
                            field: "ip".into(),
                            expected: format!(
                                "an address not reserved for another phone ({other} has it)"
                            ),
                            found: ip.to_string(),
                        });
                    }
                    tx.exec(
                        "INSERT INTO dhcp_reservations (mac, ip) VALUES (?1, ?2)
                         ON CONFLICT (mac) DO UPDATE SET ip = excluded.ip",
                        args![key, ip.to_string()],
                    )?;
                }
            }
            Ok(())
        })
    }

    fn blob(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|tx| {
            tx.query_opt(
                "SELECT value FROM cluster_blobs WHERE name = ?1",
                args![name],
            )?
            .map(|r| r.get(0))
            .transpose()
        })
    }

    fn put_blob(&self, name: &str, value: Option<&[u8]>) -> Result<(), StoreError> {
        self.write(|tx| {
            match value {
                Some(v) => tx.exec(
                    "INSERT INTO cluster_blobs (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    args![name, v],
                )?,
                None => tx.exec("DELETE FROM cluster_blobs WHERE name = ?1", args![name])?,
            };
            Ok(())
        })
    }

    fn put_blob_if_absent(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.write(|tx| {
            tx.exec(
                "INSERT INTO cluster_blobs (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO NOTHING",
                args![name, value],
            )?;
            tx.query_value(
                "SELECT value FROM cluster_blobs WHERE name = ?1",
                args![name],
            )
        })
    }

    fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.read(|tx| {
            Ok(Snapshot {
                devices: load_devices(tx)?,
                lines: load_lines(tx)?,
                pools: load_pools(tx)?,
                groups: load_groups(tx)?,
                nodes: load_nodes(tx)?,
                date_time_groups: load_date_time_groups(tx)?,
                model_loads: load_model_loads(tx)?,
                settings: load_settings(tx)?,
                dial_rules: load_dial_rules(tx)?,
                rings: load_rings(tx)?,
                dn_ranges: load_dn_ranges(tx)?,
                firmware: load_firmware(tx)?,
            })
        })
    }
}

fn devices_with_line(tx: &mut dyn Tx, dn: &str) -> Result<Vec<String>, StoreError> {
    tx.query(
        "SELECT DISTINCT device FROM device_lines WHERE dn = ?1 ORDER BY device",
        args![dn],
    )?
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Maps store field names to the CSV column that held the value.
fn csv_field(field: &str) -> String {
    if let Some(n) = field.strip_prefix("line ") {
        if let Some(n) = n.strip_suffix(" label") {
            return format!("LINE TEXT LABEL {n}");
        }
        if let Some(n) = n.strip_suffix(" display") {
            return format!("DISPLAY {n}");
        }
        return format!("DIRECTORY NUMBER {n}");
    }
    if let Some(n) = field.strip_prefix("speed dial ") {
        if let Some(n) = n.strip_suffix(" label") {
            return format!("SPEED DIAL LABEL {n}");
        }
        return format!("SPEED DIAL NUMBER {n}");
    }
    match field {
        "mac" | "device name" => "MAC ADDRESS".into(),
        "model" => "DEVICE TYPE".into(),
        "description" => "DESCRIPTION".into(),
        "device pool" => "DEVICE POOL".into(),
        "owner" => "USER ID".into(),
        "lines" => "DIRECTORY NUMBER".into(),
        other => other.to_string(),
    }
}

fn import_rows(tx: &mut dyn Tx, rows: &[ImportRow]) -> Result<ImportReport, StoreError> {
    let ranges = load_dn_ranges(tx)?;
    let pools: HashSet<String> = load_pools(tx)?.into_iter().map(|p| p.name).collect();
    let mut lines: HashMap<String, Line> = load_lines(tx)?
        .into_iter()
        .map(|l| (l.dn.clone(), l))
        .collect();
    let mut names: HashSet<String> = HashSet::new();
    for row in tx.query("SELECT name FROM devices", args![])? {
        names.insert(row.get(0)?);
    }
    let mut report = ImportReport::default();
    let mut changed_lines: HashSet<String> = HashSet::new();
    let mut new_lines: Vec<String> = Vec::new();
    let mut devices = Vec::with_capacity(rows.len());
    for row in rows {
        let at = |e: StoreError| -> StoreError {
            let e = match e {
                StoreError::Invalid {
                    field,
                    expected,
                    found,
                } => StoreError::Invalid {
                    field: csv_field(&field),
                    expected,
                    found,
                },
                other => other,
            };
            e.at_row(row.row)
        };
        let mut dev = canonical(&row.device).map_err(at)?;
        if !names.insert(dev.name.clone()) {
            return Err(at(StoreError::invalid(
                "MAC ADDRESS",
                format!(
                    "a device not yet in the database or earlier in the file ({} is a duplicate)",
                    dev.name
                ),
                &row.device.name,
            )));
        }
        if !pools.contains(&dev.device_pool) {
            return Err(at(StoreError::invalid(
                "DEVICE POOL",
                "an existing device pool (see `pool list`)",
                &dev.device_pool,
            )));
        }
        for (i, app) in dev.lines.iter_mut().enumerate() {
            validate::dn_in_ranges(&format!("line {}", i + 1), &app.dn, &ranges).map_err(at)?;
            let auth = row.auth.get(i).cloned().flatten();
            match lines.get_mut(&app.dn) {
                None => {
                    let (auth_user, auth_password) = auth.unwrap_or_default();
                    let l = Line {
                        dn: app.dn.clone(),
                        label: std::mem::take(&mut app.label),
                        display_name: std::mem::take(&mut app.display),
                        auth_user,
                        auth_password,
                        voicemail: String::new(),
                    };
                    new_lines.push(l.dn.clone());
                    lines.insert(l.dn.clone(), l);
                }
                Some(l) => {
                    if app.label == l.label {
                        app.label.clear();
                    }
                    if app.display == l.display_name {
                        app.display.clear();
                    }
                    if let Some((u, p)) = auth {
                        if u != l.auth_user || p != l.auth_password {
                            l.auth_user = u;
                            l.auth_password = p;
                            changed_lines.insert(l.dn.clone());
                        }
                    }
                }
            }
        }
        devices.push(dev);
    }
    for dn in &new_lines {
        if let Some(l) = lines.get(dn) {
            validate::line(l)?;
            insert_line(tx, l)?;
        }
    }
    for dn in &changed_lines {
        if let Some(l) = lines.get(dn) {
            if !new_lines.contains(dn) {
                write_line(tx, l)?;
                report.lines_updated += 1;
            }
        }
    }
    for d in &devices {
        insert_device(tx, d)?;
        report.devices.push(d.name.clone());
    }
    report.devices_added = devices.len();
    report.lines_added = new_lines.len();
    Ok(report)
}
