//! `phoneboot sim boot|storm`: clap arguments and entry points returning an exit status
//! (0 every phone registered, 1 some did not, 2 the emulator could not start).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use journal::Protocol;
use mac::Mac;

use crate::model::{parse_protocol, Model, ModelRef};
use crate::phone::{run_phone, BootOptions, Env, PhoneSpec, Timeouts};
use crate::register::{set_failover, Failover};
use crate::report::write_csv;
use crate::storm::{self, StormConfig};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_SETUP: i32 = 2;

/// Options shared by `boot` and `storm`.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Interface for raw frames (CDP/LLDP/DHCP) with each phone's MAC.
    #[arg(long, default_value = "phone0")]
    pub raw_if: String,
    /// Interface where leased addresses are added for TFTP/HTTP/SCCP/SIP sockets.
    #[arg(long, default_value = "voice0")]
    pub ip_if: String,
    /// Voice VLAN configured on the phone (skips CDP/LLDP-MED); 4095 = untagged.
    #[arg(long)]
    pub voice_vlan: Option<u16>,
    /// Do not send CDP/LLDP-MED; boot untagged.
    #[arg(long)]
    pub no_discovery: bool,
    /// Fetch only the configuration file (no trust lists, locale, tones, rings, loads).
    #[arg(long)]
    pub config_only: bool,
    /// Phones start out holding this trust list (an ITLFile.tlv, e.g. another cluster's):
    /// they then accept only configuration signed by a key it lists.
    #[arg(long, value_name = "FILE")]
    pub itl: Option<std::path::PathBuf>,
    /// Seconds to wait for a voice VLAN before going on untagged.
    #[arg(long, default_value_t = 5.0)]
    pub discovery_timeout: f64,
    /// Seconds to get a DHCP lease.
    #[arg(long, default_value_t = 30.0)]
    pub dhcp_timeout: f64,
    /// First DHCP retransmission, seconds (doubles each time).
    #[arg(long, default_value_t = 4.0)]
    pub dhcp_retransmit: f64,
    /// TFTP retransmission timeout, seconds.
    #[arg(long, default_value_t = 1.0)]
    pub tftp_timeout: f64,
    /// HTTP (port 6970) request timeout, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub http_timeout: f64,
    /// Whole file step limit, seconds.
    #[arg(long, default_value_t = 120.0)]
    pub files_timeout: f64,
    /// Per CallManager: connect and first answer, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub register_timeout: f64,
    /// Prefix length of leased addresses added to --ip-if (32 keeps each phone independent).
    #[arg(long, default_value_t = 32)]
    pub addr_prefix: u8,
    /// Leave the leased addresses on --ip-if at exit.
    #[arg(long)]
    pub keep_addresses: bool,
    /// Prefixes (CIDR, comma-separated) made local to --ip-if for the run (AnyIP local
    /// routes, removed at exit): leases inside them get no address of their own on the
    /// interface (adding one per phone costs the kernel more with every address). Only the
    /// phones' DHCP range: never a prefix holding a server.
    #[arg(long, value_delimiter = ',', value_parser = parse_cidr)]
    pub anyip: Vec<(std::net::Ipv4Addr, u8)>,
    /// Registered to a backup CallManager, go back to the primary after this many seconds
    /// (SCCP: RegisterTokenReq; SIP: REGISTER to the primary, then unregister from the
    /// backup). Default: the device pool's connectionMonitorDuration from the phone's
    /// configuration file, else 120 s.
    #[arg(long)]
    pub fallback_secs: Option<f64>,
    /// SCCP: unanswered keepalives before a CallManager is declared dead.
    #[arg(long, default_value_t = 3)]
    pub missed_keepalives: u32,
    /// SCCP: no standby connection to the next CallManager (fail over by connecting anew).
    #[arg(long)]
    pub no_standby: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl CommonArgs {
    /// The failover settings these options ask for.
    pub fn failover(&self) -> Failover {
        Failover {
            fallback_interval: self
                .fallback_secs
                .map(|s| Duration::from_secs_f64(s.clamp(0.1, 86_400.0))),
            missed_keepalives: self.missed_keepalives.max(1),
            standby: !self.no_standby,
        }
    }

    pub fn boot_options(&self) -> Result<BootOptions, String> {
        let s = |x: f64| Duration::from_secs_f64(x.max(0.001));
        let itl = match &self.itl {
            Some(p) => Some(std::sync::Arc::new(crate::trust::holding_file(p)?)),
            None => None,
        };
        Ok(BootOptions {
            timeouts: Timeouts {
                discovery: s(self.discovery_timeout),
                discovery_interval: Duration::from_secs(1),
                dhcp: s(self.dhcp_timeout),
                dhcp_retransmit: s(self.dhcp_retransmit),
                tftp: s(self.tftp_timeout),
                tftp_retries: 4,
                http: s(self.http_timeout),
                files: s(self.files_timeout),
                register: s(self.register_timeout),
            },
            static_vlan: self.voice_vlan,
            discovery: !self.no_discovery,
            optional_files: !self.config_only,
            addr_prefix: self.addr_prefix,
            remove_address: !self.keep_addresses,
            sip_expires: 3600,
            anyip: self.anyip.clone(),
            itl,
        })
    }
}

/// `phoneboot sim boot`: one phone, a readable timeline, exit 0 only when registered.
#[derive(Debug, Clone, Args)]
pub struct BootArgs {
    /// Phone model (CP-7965, 7965, 8845 ...).
    #[arg(long, default_value = "CP-7965")]
    pub model: ModelRef,
    /// sccp or sip (default: SCCP where the model supports it).
    #[arg(long, value_parser = parse_protocol)]
    pub protocol: Option<Protocol>,
    /// The phone's MAC (any notation, or SEP<MAC>).
    #[arg(long, value_parser = parse_mac)]
    pub mac: Mac,
    /// Stay registered this many seconds (keepalives, obeys resets) before unregistering.
    #[arg(long, default_value_t = 0.0)]
    pub hold: f64,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `phoneboot sim storm`: many phones, a progress line, a summary.
#[derive(Debug, Clone, Args)]
pub struct StormArgs {
    /// Number of phones.
    #[arg(long, default_value_t = 10)]
    pub phones: usize,
    /// First MAC of the range (phone i gets first + i).
    #[arg(long, value_parser = parse_mac, default_value = "02:1b:54:00:00:00")]
    pub mac_start: Mac,
    /// CSV of phones: `mac[,model[,protocol]]` per line (a header line is allowed); overrides
    /// --phones/--mac-start.
    #[arg(long)]
    pub macs: Option<PathBuf>,
    /// Model mix, used round-robin: `CP-7965:sccp,CP-8845,CP-7841`.
    #[arg(long, default_value = "CP-7965:sccp,CP-8845:sip")]
    pub models: String,
    /// Phones started per second (0 = all at once).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Most phones booting at the same time.
    #[arg(long, default_value_t = 1000)]
    pub concurrency: usize,
    /// Keep the registrations this many seconds after the last phone booted.
    #[arg(long, default_value_t = 0.0)]
    pub hold: f64,
    /// Keep the registrations until Ctrl-C / SIGTERM.
    #[arg(long)]
    pub hold_until_signal: bool,
    /// Write one CSV row per phone (its timeline) to this file.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write every phone's full JSON report (one per line) to this file.
    #[arg(long)]
    pub reports: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

fn parse_cidr(s: &str) -> Result<(std::net::Ipv4Addr, u8), String> {
    let (a, p) = s
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: expected ADDRESS/PREFIX"))?;
    let a = a.parse().map_err(|_| format!("{s:?}: bad IPv4 address"))?;
    let p: u8 = p
        .parse()
        .ok()
        .filter(|p| (1..=32).contains(p))
        .ok_or_else(|| format!("{s:?}: prefix length 1 to 32"))?;
    Ok((a, p))
}

fn parse_mac(s: &str) -> Result<Mac, String> {
    Mac::from_device_name(s).map_err(|e| e.to_string())
}

/// Parses `CP-7965:sccp,CP-8845` into (model, protocol) pairs.
pub fn parse_mix(s: &str) -> Result<Vec<(&'static Model, Protocol)>, String> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (m, p) = match part.split_once(':') {
            Some((m, p)) => (m, Some(parse_protocol(p)?)),
            None => (part, None),
        };
        let model = Model::lookup(m).map_err(|e| e.to_string())?;
        let proto = p.unwrap_or_else(|| model.default_protocol());
        if !model.supports(proto) {
            return Err(format!("{} does not run {proto:?}", model.name));
        }
        v.push((model, proto));
    }
    if v.is_empty() {
        return Err("empty model mix".into());
    }
    Ok(v)
}

/// Reads the phones CSV: `mac[,model[,protocol]]`; rows without a model take the mix.
pub fn read_phones_csv(
    path: &std::path::Path,
    mix: &[(&'static Model, Protocol)],
) -> Result<Vec<PhoneSpec>, String> {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_path(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| format!("{}: {e}", path.display()))?;
        let Some(first) = rec.get(0).filter(|s| !s.is_empty()) else {
            continue;
        };
        let mac = match parse_mac(first) {
            Ok(m) => m,
            Err(_) if i == 0 => continue, // header
            Err(e) => return Err(format!("{} line {}: {e}", path.display(), i + 1)),
        };
        let (def_model, def_proto) = mix[out.len() % mix.len().max(1)];
        let model = match rec.get(1).filter(|s| !s.is_empty()) {
            Some(m) => Model::lookup(m).map_err(|e| format!("line {}: {e}", i + 1))?,
            None => def_model,
        };
        let protocol = match rec.get(2).filter(|s| !s.is_empty()) {
            Some(p) => parse_protocol(p)?,
            None if rec.get(1).is_some_and(|s| !s.is_empty()) => model.default_protocol(),
            None => def_proto,
        };
        out.push(PhoneSpec {
            mac,
            model,
            protocol,
        });
    }
    Ok(out)
}

/// Runs `phoneboot sim boot`. Prints the timeline (or JSON) on stdout.
pub async fn run_boot(args: BootArgs) -> i32 {
    let model = args.model.0;
    let protocol = args.protocol.unwrap_or_else(|| model.default_protocol());
    set_failover(args.common.failover());
    let opts = match args.common.boot_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sim boot: {e}");
            return EXIT_SETUP;
        }
    };
    let env = match Env::open(&args.common.raw_if, &args.common.ip_if, opts, None) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sim boot: {e}");
            return EXIT_SETUP;
        }
    };
    let spec = PhoneSpec {
        mac: args.mac,
        model,
        protocol,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (btx, brx) = tokio::sync::oneshot::channel();
    let hold = args.hold;
    let task = tokio::spawn(run_phone(env, spec, stop_rx, None, Some(btx), hold > 0.0));
    let booted = brx.await.ok();
    let booted_ok = booted.as_ref().is_some_and(|r| r.registered);
    if hold > 0.0 && booted_ok {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(hold)) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    let _ = stop_tx.send(true);
    let report = match task.await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sim boot: phone task ended abnormally: {e}");
            match booted {
                Some(b) => b,
                None => return EXIT_SETUP,
            }
        }
    };
    if args.common.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("sim boot: {e}"),
        }
    } else {
        print!("{}", report.render_text());
    }
    if report.registered || booted_ok {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

/// Runs `phoneboot sim storm`. Prints the summary (or JSON) on stdout.
pub async fn run_storm(args: StormArgs) -> i32 {
    let mix = match parse_mix(&args.models) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("sim storm: --models: {e}");
            return EXIT_SETUP;
        }
    };
    let phones = match &args.macs {
        Some(p) => match read_phones_csv(p, &mix) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("sim storm: {e}");
                return EXIT_SETUP;
            }
        },
        None => (0..args.phones)
            .map(|i| {
                let (model, protocol) = mix[i % mix.len()];
                PhoneSpec {
                    mac: args.mac_start.offset(i as u64),
                    model,
                    protocol,
                }
            })
            .collect(),
    };
    set_failover(args.common.failover());
    let opts = match args.common.boot_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sim storm: {e}");
            return EXIT_SETUP;
        }
    };
    let env = match Env::open(&args.common.raw_if, &args.common.ip_if, opts, None) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sim storm: {e}");
            return EXIT_SETUP;
        }
    };
    let total = phones.len();
    let cfg = StormConfig {
        phones,
        rate: (args.rate > 0.0).then_some(args.rate),
        concurrency: args.concurrency,
        progress: !args.no_progress,
    };
    let storm = storm::run(Arc::clone(&env), cfg).await;
    let summary = storm.summary();
    if !args.common.json {
        print!("{}", summary.render_text());
    }
    eprintln!("{}", env.raw.stats_line());
    if args.hold_until_signal {
        eprintln!(
            "holding {} registrations until Ctrl-C / SIGTERM",
            storm.registered()
        );
        wait_signal().await;
    } else if args.hold > 0.0 {
        eprintln!(
            "holding {} registrations for {:.0} s",
            storm.registered(),
            args.hold
        );
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(args.hold)) => {}
            _ = wait_signal() => {}
        }
    }
    let registered = storm.registered();
    let finals = storm.stop().await;
    if args.common.json {
        let v = serde_json::json!({
            "summary": summary,
            "phones": finals.iter().map(|r| serde_json::json!({
                "mac": r.mac, "device": r.device, "model": r.model, "protocol": r.protocol,
                "registered": r.registered, "total_ms": r.total_ms,
                "failure": r.failure,
            })).collect::<Vec<_>>(),
        });
        match serde_json::to_string_pretty(&v) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("sim storm: {e}"),
        }
    }
    if let Some(p) = &args.csv {
        let res = std::fs::File::create(p)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                write_csv(std::io::BufWriter::new(f), &finals).map_err(|e| e.to_string())
            });
        if let Err(e) = res {
            eprintln!("sim storm: --csv {}: {e}", p.display());
        }
    }
    if let Some(p) = &args.reports {
        let res = std::fs::File::create(p)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                let mut w = std::io::BufWriter::new(f);
                for r in &finals {
                    serde_json::to_writer(&mut w, r).map_err(|e| e.to_string())?;
                    std::io::Write::write_all(&mut w, b"\n").map_err(|e| e.to_string())?;
                }
                Ok(())
            });
        if let Err(e) = res {
            eprintln!("sim storm: --reports {}: {e}", p.display());
        }
    }
    if registered == total {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

async fn wait_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: Cmd,
    }

    #[derive(clap::Subcommand)]
    enum Cmd {
        Boot(BootArgs),
        Storm(StormArgs),
    }

    #[test]
    fn anyip_prefixes_parse() {
        assert_eq!(
            parse_cidr("198.18.128.0/17"),
            Ok((std::net::Ipv4Addr::new(198, 18, 128, 0), 17))
        );
        assert!(parse_cidr("198.18.128.0").is_err());
        assert!(parse_cidr("198.18.128.0/33").is_err());
        assert!(parse_cidr("x/8").is_err());
    }

    #[test]
    fn boot_args_parse() {
        let t = T::parse_from([
            "x",
            "boot",
            "--model",
            "CP-7965",
            "--protocol",
            "sccp",
            "--mac",
            "001b.54aa.bbcc",
            "--json",
        ]);
        let Cmd::Boot(b) = t.cmd else { panic!() };
        assert_eq!(b.model.0.name, "CP-7965");
        assert_eq!(b.protocol, Some(Protocol::Sccp));
        assert_eq!(b.mac.device_name(), "SEP001B54AABBCC");
        assert!(b.common.json);
        assert_eq!(b.common.raw_if, "phone0");
        assert_eq!(b.common.failover(), Failover::default());
        let t = T::parse_from([
            "x",
            "boot",
            "--mac",
            "001b54aabbcc",
            "--hold",
            "30",
            "--fallback-secs",
            "4",
            "--missed-keepalives",
            "1",
        ]);
        let Cmd::Boot(b) = t.cmd else { panic!() };
        let f = b.common.failover();
        assert_eq!(f.fallback_interval, Some(Duration::from_secs(4)));
        assert_eq!(f.missed_keepalives, 1);
        assert!(f.standby);
        assert!(T::try_parse_from(["x", "boot", "--mac", "zz"]).is_err());
        assert!(
            T::try_parse_from(["x", "boot", "--mac", "001b54aabbcc", "--model", "9999"]).is_err()
        );
    }

    #[test]
    fn storm_args_and_mix() {
        let t = T::parse_from([
            "x",
            "storm",
            "--phones",
            "5",
            "--rate",
            "100",
            "--models",
            "7940,8845",
        ]);
        let Cmd::Storm(s) = t.cmd else { panic!() };
        assert_eq!(s.phones, 5);
        let mix = parse_mix(&s.models).unwrap();
        assert_eq!(mix[0], (Model::lookup("7940").unwrap(), Protocol::Sccp));
        assert_eq!(mix[1].1, Protocol::Sip);
        assert!(parse_mix("7940:sip").is_err());
        assert!(parse_mix("").is_err());
    }

    #[test]
    fn phones_csv() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.csv");
        std::fs::write(
            &p,
            "mac,model,protocol\n001b54000001,CP-7941,sip\n001b54000002\n# comment\n001b54000003,8845\n",
        )
        .unwrap();
        let mix = parse_mix("7965:sccp").unwrap();
        let v = read_phones_csv(&p, &mix).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!((v[0].model.name, v[0].protocol), ("CP-7941", Protocol::Sip));
        assert_eq!(
            (v[1].model.name, v[1].protocol),
            ("CP-7965", Protocol::Sccp)
        );
        assert_eq!((v[2].model.name, v[2].protocol), ("CP-8845", Protocol::Sip));
        std::fs::write(&p, "001b54000001\nnot-a-mac\n").unwrap();
        assert!(read_phones_csv(&p, &mix).is_err());
    }
}
