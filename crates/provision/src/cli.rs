//! Administration commands (`phoneboot phone|line|pool|node|group|load|settings|files|import|export`).
//!
//! clap `Subcommand` enums plus handlers that return the text to print; the binary wires
//! them in. [`run`] works on a database file (changes go to the store; a running server
//! picks them up with [`crate::Provisioner::reload`]); [`run_live`] works through a running
//! [`Provisioner`] so that files are rebuilt at once.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use store::{
    bat, CmGroup, CmNode, DevicePatch, DevicePool, Line, LineAppearance, LinePatch, NewDevice,
    Protocol, SpeedDial, SqliteStore, Store, StoreError,
};

use crate::{ProvisionError, Provisioner};

/// Top-level admin commands.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Phones (devices named SEP<MAC>).
    #[command(subcommand)]
    Phone(PhoneCmd),
    /// Lines (directory numbers), shareable between phones.
    #[command(subcommand)]
    Line(LineCmd),
    /// Device pools.
    #[command(subcommand)]
    Pool(PoolCmd),
    /// CallManager nodes (hosts phones register to).
    #[command(subcommand)]
    Node(NodeCmd),
    /// CallManager groups (ordered node lists).
    #[command(subcommand)]
    Group(GroupCmd),
    /// Firmware loads per model ("Device Defaults").
    #[command(subcommand)]
    Load(LoadCmd),
    /// URLs, logins, auto-registration.
    #[command(subcommand)]
    Settings(SettingsCmd),
    /// The files phones would get.
    #[command(subcommand)]
    Files(FilesCmd),
    /// Import phones from a CUCM BAT-style CSV (all rows or none).
    Import(ImportArgs),
    /// Export phones as a CUCM BAT-style CSV.
    Export(ExportArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PhoneFields {
    /// Model, e.g. "Cisco 7965", CP-7965G or 7965.
    #[arg(long)]
    pub model: Option<String>,
    /// SCCP or SIP.
    #[arg(long)]
    pub protocol: Option<Protocol>,
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long)]
    pub pool: Option<String>,
    #[arg(long)]
    pub owner: Option<String>,
    /// Firmware load for this phone only ("" = the model's default).
    #[arg(long)]
    pub load: Option<String>,
    #[arg(long)]
    pub button_template: Option<String>,
    #[arg(long)]
    pub softkey_template: Option<String>,
    /// 1 non-secure, 2 authenticated, 3 encrypted.
    #[arg(long)]
    pub security_mode: Option<u8>,
    /// Line appearances in order, DN[:LABEL[:DISPLAY]] (replaces all on edit).
    #[arg(long = "line")]
    pub lines: Vec<String>,
    /// Speed dials in order, NUMBER[:LABEL] (replaces all on edit).
    #[arg(long = "speed-dial")]
    pub speed_dials: Vec<String>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum PhoneCmd {
    /// Add a phone: `phone add 001B54AABBCC --model "Cisco 7965" --line 4101`.
    Add {
        /// MAC (any notation) or SEP<MAC>.
        name: String,
        #[command(flatten)]
        fields: PhoneFields,
    },
    List,
    Show {
        name: String,
    },
    Edit {
        name: String,
        #[command(flatten)]
        fields: PhoneFields,
        /// Append a line appearance DN[:LABEL[:DISPLAY]].
        #[arg(long)]
        add_line: Option<String>,
        /// Remove the appearance of this DN.
        #[arg(long)]
        remove_line: Option<String>,
        /// Drop all speed dials.
        #[arg(long)]
        clear_speed_dials: bool,
    },
    Rm {
        name: String,
    },
    /// Give a phone a fixed DHCP address: `phone reserve SEP001B54AABBCC 198.18.100.50`.
    Reserve {
        /// MAC (any notation) or SEP<MAC>.
        name: String,
        /// The address; omit it with --clear to remove the reservation.
        ip: Option<String>,
        #[arg(long)]
        clear: bool,
    },
    /// List the fixed DHCP addresses.
    Reservations,
}

#[derive(Debug, Clone, Args)]
pub struct LineFields {
    #[arg(long)]
    pub label: Option<String>,
    #[arg(long)]
    pub display: Option<String>,
    #[arg(long)]
    pub auth_user: Option<String>,
    #[arg(long)]
    pub auth_password: Option<String>,
    #[arg(long)]
    pub voicemail: Option<String>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum LineCmd {
    Add {
        dn: String,
        #[command(flatten)]
        fields: LineFields,
    },
    List,
    Show {
        dn: String,
    },
    Edit {
        dn: String,
        #[command(flatten)]
        fields: LineFields,
    },
    Rm {
        dn: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct PoolFields {
    /// CallManager group.
    #[arg(long)]
    pub group: Option<String>,
    /// Date/time group.
    #[arg(long)]
    pub date_time_group: Option<String>,
    #[arg(long)]
    pub user_locale: Option<String>,
    #[arg(long)]
    pub network_locale: Option<String>,
    /// Seconds before failing back to a higher-priority node.
    #[arg(long)]
    pub monitor_secs: Option<u32>,
    /// Longest SIP registration granted to the pool's phones (CUCM: 120 s).
    #[arg(long)]
    pub sip_register_secs: Option<u32>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum PoolCmd {
    Add {
        name: String,
        #[command(flatten)]
        fields: PoolFields,
    },
    List,
    Show {
        name: String,
    },
    Edit {
        name: String,
        #[command(flatten)]
        fields: PoolFields,
    },
    Rm {
        name: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum NodeCmd {
    /// Add or replace a node: `node set pb-a 192.0.2.21`.
    Set {
        name: String,
        host: String,
        #[arg(long, default_value_t = 2000)]
        sccp_port: u16,
        #[arg(long, default_value_t = 5060)]
        sip_port: u16,
        #[arg(long, default_value_t = 2443)]
        sccp_tls_port: u16,
        #[arg(long, default_value_t = 5061)]
        sip_tls_port: u16,
        #[arg(long, default_value = "")]
        description: String,
    },
    List,
    Rm {
        name: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum GroupCmd {
    /// Add or replace a group with its nodes in priority order: `group set CMG-HQ pb-a pb-b`.
    Set {
        name: String,
        nodes: Vec<String>,
    },
    List,
    Rm {
        name: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum LoadCmd {
    /// Set a model's default load ("" clears it): `load set "Cisco 7965" SCCP45.9-4-2SR4-3S`.
    Set {
        model: String,
        load: String,
        #[arg(long, default_value = "SCCP")]
        protocol: Protocol,
    },
    /// Effective default load of every model.
    List,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SettingsCmd {
    Show,
    /// Set one setting by name (as printed by `settings show`).
    Set {
        key: String,
        value: String,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum FilesCmd {
    /// Every generated file with size, version and stamp.
    List,
    /// The exact bytes a phone would get for NAME (case-insensitive).
    Show { name: String },
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    pub file: PathBuf,
    /// Check the file and report, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Output file (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Include SIP AUTH USER/PASSWORD columns (needed for an identical re-import).
    #[arg(long)]
    pub secrets: bool,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<ProvisionError> for CliError {
    fn from(e: ProvisionError) -> Self {
        match e {
            ProvisionError::Store(s) => CliError::Store(s),
        }
    }
}

/// Runs a command against the database file at `db` (created and migrated if needed).
pub fn run(db: &Path, cmd: &AdminCommand) -> Result<String, CliError> {
    run_on(Arc::new(SqliteStore::open(db)?), cmd)
}

/// Runs a command against an open store (either backend).
pub fn run_on(store: Arc<dyn Store>, cmd: &AdminCommand) -> Result<String, CliError> {
    match cmd {
        AdminCommand::Files(f) => {
            let prov = Provisioner::new(store)?;
            files(&prov, f)
        }
        other => exec(&StoreTarget(store), other),
    }
}

/// Runs a command through a running provisioner: changes rebuild files at once.
pub fn run_live(prov: &Provisioner, cmd: &AdminCommand) -> Result<String, CliError> {
    match cmd {
        AdminCommand::Files(f) => files(prov, f),
        other => exec(prov, other),
    }
}

/// The write operations the handlers need, from a bare store or through a provisioner.
trait Target {
    fn store(&self) -> &dyn Store;
    fn add_device(&self, d: &NewDevice) -> Result<store::Device, CliError>;
    fn edit_device(&self, n: &str, p: &DevicePatch) -> Result<store::Device, CliError>;
    fn remove_device(&self, n: &str) -> Result<store::Device, CliError>;
    fn add_line(&self, l: &Line) -> Result<Line, CliError>;
    fn edit_line(&self, dn: &str, p: &LinePatch) -> Result<Line, CliError>;
    fn remove_line(&self, dn: &str) -> Result<Line, CliError>;
    fn put_pool(&self, p: &DevicePool) -> Result<(), CliError>;
    fn remove_pool(&self, n: &str) -> Result<(), CliError>;
    fn put_node(&self, n: &CmNode) -> Result<(), CliError>;
    fn remove_node(&self, n: &str) -> Result<(), CliError>;
    fn put_group(&self, g: &CmGroup) -> Result<(), CliError>;
    fn remove_group(&self, n: &str) -> Result<(), CliError>;
    fn set_model_load(&self, m: &str, p: Protocol, l: &str) -> Result<(), CliError>;
    fn put_settings(&self, s: &store::Settings) -> Result<(), CliError>;
    fn import(&self, rows: &[store::ImportRow]) -> Result<store::ImportReport, CliError>;
}

struct StoreTarget(Arc<dyn Store>);

macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        impl Target for StoreTarget {
            fn store(&self) -> &dyn Store { self.0.as_ref() }
            $(fn $name(&self, $($arg: $ty),*) -> Result<$ret, CliError> { Ok(self.0.$name($($arg),*)?) })*
        }
        impl Target for Provisioner {
            fn store(&self) -> &dyn Store { Provisioner::store(self).as_ref() }
            $(fn $name(&self, $($arg: $ty),*) -> Result<$ret, CliError> { Ok(Provisioner::$name(self, $($arg),*)?) })*
        }
    };
}

forward! {
    add_device(d: &NewDevice) -> store::Device;
    edit_device(n: &str, p: &DevicePatch) -> store::Device;
    remove_device(n: &str) -> store::Device;
    add_line(l: &Line) -> Line;
    edit_line(dn: &str, p: &LinePatch) -> Line;
    remove_line(dn: &str) -> Line;
    put_pool(p: &DevicePool) -> ();
    remove_pool(n: &str) -> ();
    put_node(n: &CmNode) -> ();
    remove_node(n: &str) -> ();
    put_group(g: &CmGroup) -> ();
    remove_group(n: &str) -> ();
    set_model_load(m: &str, p: Protocol, l: &str) -> ();
    put_settings(s: &store::Settings) -> ();
    import(rows: &[store::ImportRow]) -> store::ImportReport;
}

fn parse_appearance(s: &str) -> LineAppearance {
    let mut it = s.splitn(3, ':');
    LineAppearance {
        dn: it.next().unwrap_or("").trim().to_string(),
        label: it.next().unwrap_or("").to_string(),
        display: it.next().unwrap_or("").to_string(),
    }
}

fn parse_speed_dial(s: &str) -> SpeedDial {
    let (number, label) = s.split_once(':').unwrap_or((s, ""));
    SpeedDial {
        number: number.trim().to_string(),
        label: label.to_string(),
    }
}

fn exec(t: &dyn Target, cmd: &AdminCommand) -> Result<String, CliError> {
    match cmd {
        AdminCommand::Phone(c) => phone(t, c),
        AdminCommand::Line(c) => line(t, c),
        AdminCommand::Pool(c) => pool(t, c),
        AdminCommand::Node(c) => node(t, c),
        AdminCommand::Group(c) => group(t, c),
        AdminCommand::Load(c) => load(t, c),
        AdminCommand::Settings(c) => settings(t, c),
        AdminCommand::Import(a) => import(t, a),
        AdminCommand::Export(a) => export(t.store(), a),
        AdminCommand::Files(_) => Err(CliError::Usage("files needs a provisioner".into())),
    }
}

fn phone(t: &dyn Target, c: &PhoneCmd) -> Result<String, CliError> {
    match c {
        PhoneCmd::Add { name, fields: f } => {
            let model = f.model.clone().ok_or_else(|| {
                CliError::Usage("phone add needs --model (e.g. \"Cisco 7965\")".into())
            })?;
            let protocol = match f.protocol {
                Some(p) => p,
                None => match cnf::lookup(&model) {
                    Some(m) if !m.sccp => Protocol::Sip,
                    _ => Protocol::Sccp,
                },
            };
            let mut d = NewDevice::new(name, &model, protocol);
            if let Some(v) = &f.description {
                d.description = v.clone();
            }
            if let Some(v) = &f.pool {
                d.device_pool = v.clone();
            }
            if let Some(v) = &f.owner {
                d.owner = v.clone();
            }
            if let Some(v) = &f.load {
                check_load(t.store(), v)?;
                d.load_override = v.clone();
            }
            if let Some(v) = &f.button_template {
                d.button_template = v.clone();
            }
            if let Some(v) = &f.softkey_template {
                d.softkey_template = v.clone();
            }
            if let Some(v) = f.security_mode {
                d.security_mode = v;
            }
            d.lines = f.lines.iter().map(|s| parse_appearance(s)).collect();
            d.speed_dials = f.speed_dials.iter().map(|s| parse_speed_dial(s)).collect();
            let dev = t.add_device(&d)?;
            Ok(format!(
                "added {} ({} {})\n",
                dev.name, dev.model, dev.protocol
            ))
        }
        PhoneCmd::List => {
            let devices = t.store().devices()?;
            let mut out = format!(
                "{:<16} {:<11} {:<5} {:<16} {:<16} DESCRIPTION\n",
                "NAME", "MODEL", "PROTO", "POOL", "LINES"
            );
            for d in &devices {
                let lines: Vec<&str> = d.lines.iter().map(|l| l.dn.as_str()).collect();
                let _ = writeln!(
                    out,
                    "{:<16} {:<11} {:<5} {:<16} {:<16} {}",
                    d.name,
                    d.model,
                    d.protocol,
                    d.device_pool,
                    lines.join(","),
                    d.description
                );
            }
            let _ = writeln!(out, "{} phones", devices.len());
            Ok(out)
        }
        PhoneCmd::Show { name } => {
            let d = t
                .store()
                .device(name)?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "device",
                    name: name.clone(),
                })?;
            let mut out = String::new();
            let _ = writeln!(out, "name:             {}", d.name);
            let _ = writeln!(out, "mac:              {}", d.mac);
            let _ = writeln!(out, "model:            {}", d.model);
            let _ = writeln!(out, "protocol:         {}", d.protocol);
            let _ = writeln!(out, "description:      {}", d.description);
            let _ = writeln!(out, "device pool:      {}", d.device_pool);
            let _ = writeln!(out, "button template:  {}", d.button_template);
            let _ = writeln!(out, "softkey template: {}", d.softkey_template);
            let _ = writeln!(out, "owner:            {}", d.owner);
            let _ = writeln!(out, "security mode:    {}", d.security_mode);
            let _ = writeln!(out, "load override:    {}", d.load_override);
            let _ = writeln!(out, "revision:         {}", d.revision);
            for (i, l) in d.lines.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "line {}:           {} label={:?} display={:?}",
                    i + 1,
                    l.dn,
                    l.label,
                    l.display
                );
            }
            for (i, s) in d.speed_dials.iter().enumerate() {
                let _ = writeln!(out, "speed dial {}:     {} {:?}", i + 1, s.number, s.label);
            }
            Ok(out)
        }
        PhoneCmd::Edit {
            name,
            fields: f,
            add_line,
            remove_line,
            clear_speed_dials,
        } => {
            if let Some(l) = &f.load {
                check_load(t.store(), l)?;
            }
            let patch = DevicePatch {
                model: f.model.clone(),
                protocol: f.protocol,
                description: f.description.clone(),
                device_pool: f.pool.clone(),
                button_template: f.button_template.clone(),
                softkey_template: f.softkey_template.clone(),
                owner: f.owner.clone(),
                security_mode: f.security_mode,
                load_override: f.load.clone(),
                lines: (!f.lines.is_empty())
                    .then(|| f.lines.iter().map(|s| parse_appearance(s)).collect()),
                add_line: add_line.as_deref().map(parse_appearance),
                remove_line: remove_line.clone(),
                speed_dials: if *clear_speed_dials {
                    Some(Vec::new())
                } else {
                    (!f.speed_dials.is_empty())
                        .then(|| f.speed_dials.iter().map(|s| parse_speed_dial(s)).collect())
                },
                add_speed_dial: None,
                expected_revision: None,
            };
            let d = t.edit_device(name, &patch)?;
            Ok(format!("updated {} (revision {})\n", d.name, d.revision))
        }
        PhoneCmd::Rm { name } => {
            let d = t.remove_device(name)?;
            Ok(format!("removed {}\n", d.name))
        }
        PhoneCmd::Reserve { name, ip, clear } => {
            let mac = mac::Mac::from_device_name(name)
                .map_err(|e| CliError::Usage(format!("name: {e}")))?;
            let ip = match (ip, clear) {
                (None, true) => None,
                (Some(text), false) => Some(text.parse().map_err(|_| {
                    CliError::Usage(format!("ip: expected an IPv4 address, found {text:?}"))
                })?),
                _ => {
                    return Err(CliError::Usage(
                        "give an address, or --clear to remove the reservation".into(),
                    ))
                }
            };
            t.store().set_reservation(mac, ip)?;
            Ok(match ip {
                Some(ip) => format!("{} gets {ip} from DHCP\n", mac.device_name()),
                None => format!("{} has no reserved address\n", mac.device_name()),
            })
        }
        PhoneCmd::Reservations => {
            let mut out = String::new();
            for (mac, ip) in t.store().reservations()? {
                let _ = writeln!(out, "{:<16} {ip}", mac.device_name());
            }
            Ok(out)
        }
    }
}

fn line(t: &dyn Target, c: &LineCmd) -> Result<String, CliError> {
    match c {
        LineCmd::Add { dn, fields: f } => {
            let l = Line {
                dn: dn.clone(),
                label: f.label.clone().unwrap_or_default(),
                display_name: f.display.clone().unwrap_or_default(),
                auth_user: f.auth_user.clone().unwrap_or_default(),
                auth_password: f.auth_password.clone().unwrap_or_default(),
                voicemail: f.voicemail.clone().unwrap_or_default(),
            };
            t.add_line(&l)?;
            Ok(format!("added line {dn}\n"))
        }
        LineCmd::List => {
            let lines = t.store().lines()?;
            let mut out = format!("{:<12} {:<20} {:<24} AUTH USER\n", "DN", "LABEL", "DISPLAY");
            for l in &lines {
                let _ = writeln!(
                    out,
                    "{:<12} {:<20} {:<24} {}",
                    l.dn, l.label, l.display_name, l.auth_user
                );
            }
            let _ = writeln!(out, "{} lines", lines.len());
            Ok(out)
        }
        LineCmd::Show { dn } => {
            let l = t.store().line(dn)?.ok_or_else(|| StoreError::NotFound {
                kind: "line",
                name: dn.clone(),
            })?;
            let users = t.store().devices_with_line(dn)?;
            Ok(format!(
                "dn:            {}\nlabel:         {}\ndisplay name:  {}\nauth user:     {}\nauth password: {}\nvoicemail:     {}\ndevices:       {}\n",
                l.dn,
                l.label,
                l.display_name,
                l.auth_user,
                if l.auth_password.is_empty() { "(none)" } else { "(set)" },
                l.voicemail,
                users.join(", ")
            ))
        }
        LineCmd::Edit { dn, fields: f } => {
            let p = LinePatch {
                label: f.label.clone(),
                display_name: f.display.clone(),
                auth_user: f.auth_user.clone(),
                auth_password: f.auth_password.clone(),
                voicemail: f.voicemail.clone(),
            };
            t.edit_line(dn, &p)?;
            Ok(format!("updated line {dn}\n"))
        }
        LineCmd::Rm { dn } => {
            t.remove_line(dn)?;
            Ok(format!("removed line {dn}\n"))
        }
    }
}

fn apply_pool_fields(p: &mut DevicePool, f: &PoolFields) {
    if let Some(v) = &f.group {
        p.cm_group = v.clone();
    }
    if let Some(v) = &f.date_time_group {
        p.date_time_group = v.clone();
    }
    if let Some(v) = &f.user_locale {
        p.user_locale = v.clone();
    }
    if let Some(v) = &f.network_locale {
        p.network_locale = v.clone();
    }
    if let Some(v) = f.monitor_secs {
        p.connection_monitor_duration = v;
    }
    if let Some(v) = f.sip_register_secs {
        p.sip_register_interval = v;
    }
}

fn find_pool(t: &dyn Target, name: &str) -> Result<Option<DevicePool>, CliError> {
    Ok(t.store().pools()?.into_iter().find(|p| p.name == name))
}

fn pool(t: &dyn Target, c: &PoolCmd) -> Result<String, CliError> {
    match c {
        PoolCmd::Add { name, fields } => {
            if find_pool(t, name)?.is_some() {
                return Err(StoreError::Duplicate {
                    kind: "device pool",
                    name: name.clone(),
                }
                .into());
            }
            let mut p = DevicePool {
                name: name.clone(),
                cm_group: store::DEFAULT_GROUP.into(),
                date_time_group: store::DEFAULT_DATETIME.into(),
                user_locale: "English_United_States".into(),
                network_locale: "United_States".into(),
                connection_monitor_duration: 120,
                sip_register_interval: store::DEFAULT_SIP_REGISTER_INTERVAL,
            };
            apply_pool_fields(&mut p, fields);
            t.put_pool(&p)?;
            Ok(format!("added device pool {name}\n"))
        }
        PoolCmd::List => {
            let mut out = format!(
                "{:<20} {:<20} {:<16} {:<24} NETWORK LOCALE\n",
                "NAME", "CM GROUP", "DATE/TIME", "USER LOCALE"
            );
            for p in t.store().pools()? {
                let _ = writeln!(
                    out,
                    "{:<20} {:<20} {:<16} {:<24} {}",
                    p.name, p.cm_group, p.date_time_group, p.user_locale, p.network_locale
                );
            }
            Ok(out)
        }
        PoolCmd::Show { name } => {
            let p = find_pool(t, name)?.ok_or_else(|| StoreError::NotFound {
                kind: "device pool",
                name: name.clone(),
            })?;
            let members = t
                .store()
                .groups()?
                .into_iter()
                .find(|g| g.name == p.cm_group)
                .map(|g| g.members)
                .unwrap_or_default();
            let n = t
                .store()
                .devices()?
                .iter()
                .filter(|d| d.device_pool == p.name)
                .count();
            Ok(format!(
                "name:             {}\ncallmanager group: {} ({})\ndate/time group:  {}\nuser locale:      {}\nnetwork locale:   {}\nmonitor duration: {}\nSIP registration: {} s\ndevices:          {}\n",
                p.name,
                p.cm_group,
                members.join(" > "),
                p.date_time_group,
                p.user_locale,
                p.network_locale,
                p.connection_monitor_duration,
                p.sip_register_interval,
                n
            ))
        }
        PoolCmd::Edit { name, fields } => {
            let mut p = find_pool(t, name)?.ok_or_else(|| StoreError::NotFound {
                kind: "device pool",
                name: name.clone(),
            })?;
            apply_pool_fields(&mut p, fields);
            t.put_pool(&p)?;
            Ok(format!("updated device pool {name}\n"))
        }
        PoolCmd::Rm { name } => {
            t.remove_pool(name)?;
            Ok(format!("removed device pool {name}\n"))
        }
    }
}

fn node(t: &dyn Target, c: &NodeCmd) -> Result<String, CliError> {
    match c {
        NodeCmd::Set {
            name,
            host,
            sccp_port,
            sip_port,
            sccp_tls_port,
            sip_tls_port,
            description,
        } => {
            t.put_node(&CmNode {
                name: name.clone(),
                host: host.clone(),
                description: description.clone(),
                sccp_port: *sccp_port,
                sip_port: *sip_port,
                sccp_tls_port: *sccp_tls_port,
                sip_tls_port: *sip_tls_port,
            })?;
            Ok(format!("node {name} -> {host}\n"))
        }
        NodeCmd::List => {
            let mut out = format!(
                "{:<16} {:<24} {:>5} {:>5} {:>5} {:>5}\n",
                "NAME", "HOST", "SCCP", "SIP", "SCCPS", "SIPS"
            );
            for n in t.store().nodes()? {
                let _ = writeln!(
                    out,
                    "{:<16} {:<24} {:>5} {:>5} {:>5} {:>5}",
                    n.name, n.host, n.sccp_port, n.sip_port, n.sccp_tls_port, n.sip_tls_port
                );
            }
            Ok(out)
        }
        NodeCmd::Rm { name } => {
            t.remove_node(name)?;
            Ok(format!("removed node {name}\n"))
        }
    }
}

fn group(t: &dyn Target, c: &GroupCmd) -> Result<String, CliError> {
    match c {
        GroupCmd::Set { name, nodes } => {
            t.put_group(&CmGroup {
                name: name.clone(),
                tftp_default: true,
                members: nodes.clone(),
            })?;
            Ok(format!("group {name}: {}\n", nodes.join(" > ")))
        }
        GroupCmd::List => {
            let mut out = String::new();
            for g in t.store().groups()? {
                let _ = writeln!(out, "{:<20} {}", g.name, g.members.join(" > "));
            }
            Ok(out)
        }
        GroupCmd::Rm { name } => {
            t.remove_group(name)?;
            Ok(format!("removed group {name}\n"))
        }
    }
}

/// A load may be named only when the firmware library holds it complete: otherwise every
/// phone told to fetch it fails its upgrade on every boot.
pub fn check_load(s: &dyn Store, load: &str) -> Result<(), CliError> {
    let load = load.strip_suffix(".loads").unwrap_or(load);
    if load.is_empty() {
        return Ok(());
    }
    let loads = s.firmware_loads()?;
    match loads.iter().find(|l| l.name.eq_ignore_ascii_case(load)) {
        None => Err(CliError::Usage(format!(
            "load {load} is not in the firmware library (import its package first: phoneboot firmware import FILE)"
        ))),
        Some(l) if !l.complete => Err(CliError::Usage(format!(
            "load {} is incomplete: missing {}",
            l.name,
            l.missing().join(", ")
        ))),
        Some(_) => Ok(()),
    }
}

fn load(t: &dyn Target, c: &LoadCmd) -> Result<String, CliError> {
    match c {
        LoadCmd::Set {
            model,
            load,
            protocol,
        } => {
            check_load(t.store(), load)?;
            t.set_model_load(model, *protocol, load)?;
            Ok(format!(
                "{model} {protocol}: {}\n",
                if load.is_empty() {
                    "(catalogue default)"
                } else {
                    load
                }
            ))
        }
        LoadCmd::List => {
            let db = t.store().model_loads()?;
            let mut out = format!("{:<12} {:<5} {:<28} SOURCE\n", "MODEL", "PROTO", "LOAD");
            for m in cnf::catalog::MODELS {
                for p in [Protocol::Sccp, Protocol::Sip] {
                    if !m.supports(p) {
                        continue;
                    }
                    let (l, src) = match db.iter().find(|x| x.model == m.name && x.protocol == p) {
                        Some(x) => (x.load.as_str(), "database"),
                        None => (m.default_load(p).unwrap_or(""), "catalogue"),
                    };
                    let _ = writeln!(out, "{:<12} {:<5} {:<28} {}", m.name, p, l, src);
                }
            }
            Ok(out)
        }
    }
}

fn settings(t: &dyn Target, c: &SettingsCmd) -> Result<String, CliError> {
    let mut s = t.store().settings()?;
    let fields: Vec<(&str, String)> = vec![
        ("authentication_url", s.authentication_url.clone()),
        ("directory_url", s.directory_url.clone()),
        ("idle_url", s.idle_url.clone()),
        ("information_url", s.information_url.clone()),
        ("messages_url", s.messages_url.clone()),
        ("proxy_server_url", s.proxy_server_url.clone()),
        ("services_url", s.services_url.clone()),
        ("idle_timeout", s.idle_timeout.to_string()),
        ("ssh_user", s.ssh_user.clone()),
        (
            "ssh_password",
            if s.ssh_password.is_empty() {
                String::new()
            } else {
                "(set)".into()
            },
        ),
        (
            "phone_password",
            if s.phone_password.is_empty() {
                String::new()
            } else {
                "(set)".into()
            },
        ),
        ("autoreg_enabled", s.autoreg_enabled.to_string()),
        ("autoreg_dn_start", s.autoreg_dn_start.clone()),
        ("autoreg_dn_end", s.autoreg_dn_end.clone()),
        ("autoreg_pool", s.autoreg_pool.clone()),
        ("autoreg_protocol", s.autoreg_protocol.clone()),
    ];
    match c {
        SettingsCmd::Show => {
            let mut out = String::new();
            for (k, v) in fields {
                let _ = writeln!(out, "{k:<20} {v}");
            }
            Ok(out)
        }
        SettingsCmd::Set { key, value } => {
            let v = value.clone();
            match key.as_str() {
                "authentication_url" => s.authentication_url = v,
                "directory_url" => s.directory_url = v,
                "idle_url" => s.idle_url = v,
                "information_url" => s.information_url = v,
                "messages_url" => s.messages_url = v,
                "proxy_server_url" => s.proxy_server_url = v,
                "services_url" => s.services_url = v,
                "idle_timeout" => {
                    s.idle_timeout = v.parse().map_err(|_| {
                        CliError::Usage(format!("idle_timeout: expected seconds, found {v:?}"))
                    })?
                }
                "ssh_user" => s.ssh_user = v,
                "ssh_password" => s.ssh_password = v,
                "phone_password" => s.phone_password = v,
                "autoreg_enabled" => {
                    s.autoreg_enabled =
                        matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "on" | "yes")
                }
                "autoreg_dn_start" => s.autoreg_dn_start = v,
                "autoreg_dn_end" => s.autoreg_dn_end = v,
                "autoreg_pool" => s.autoreg_pool = v,
                "autoreg_protocol" => s.autoreg_protocol = v.to_ascii_uppercase(),
                other => {
                    let known: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
                    return Err(CliError::Usage(format!(
                        "unknown setting {other:?}; expected one of {}",
                        known.join(", ")
                    )));
                }
            }
            t.put_settings(&s)?;
            Ok(format!("{key} set\n"))
        }
    }
}

fn files(p: &Provisioner, c: &FilesCmd) -> Result<String, CliError> {
    match c {
        FilesCmd::List => {
            let mut out = format!("{:<36} {:>7} {:>8} STAMP\n", "NAME", "BYTES", "VERSION");
            let list = p.list();
            for f in &list {
                let _ = writeln!(
                    out,
                    "{:<36} {:>7} {:>8} {}",
                    f.name,
                    f.len(),
                    f.version,
                    f.stamp
                );
            }
            let _ = writeln!(out, "{} files", list.len());
            Ok(out)
        }
        FilesCmd::Show { name } => {
            let f = p.get(name).ok_or_else(|| CliError::Usage(format!("no file {name:?} (a phone asking for it would get \"file not found\"; see `files list`)")))?;
            Ok(String::from_utf8_lossy(&f.bytes()).into_owned())
        }
    }
}

fn import(t: &dyn Target, a: &ImportArgs) -> Result<String, CliError> {
    let f = std::fs::File::open(&a.file).map_err(|e| CliError::Io {
        path: a.file.clone(),
        source: e,
    })?;
    let parsed = bat::parse(std::io::BufReader::new(f))?;
    let mut out = String::new();
    if !parsed.ignored_columns.is_empty() {
        let _ = writeln!(
            out,
            "ignored columns: {}",
            parsed.ignored_columns.join(", ")
        );
    }
    if a.dry_run {
        let r = t.store().check_import(&parsed.rows)?;
        let _ = writeln!(
            out,
            "dry run: would import {} phones, {} new lines, {} lines updated; nothing changed",
            r.devices_added, r.lines_added, r.lines_updated
        );
        return Ok(out);
    }
    let r = t.import(&parsed.rows)?;
    let _ = writeln!(
        out,
        "imported {} phones, {} new lines, {} lines updated",
        r.devices_added, r.lines_added, r.lines_updated
    );
    Ok(out)
}

fn export(s: &dyn Store, a: &ExportArgs) -> Result<String, CliError> {
    let devices = s.devices()?;
    let lines = s.lines()?;
    let mut buf = Vec::new();
    bat::export(&devices, &lines, a.secrets, &mut buf)?;
    match &a.out {
        Some(path) => {
            std::fs::write(path, &buf).map_err(|e| CliError::Io {
                path: path.clone(),
                source: e,
            })?;
            Ok(format!(
                "exported {} phones to {}\n",
                devices.len(),
                path.display()
            ))
        }
        None => Ok(String::from_utf8_lossy(&buf).into_owned()),
    }
}
