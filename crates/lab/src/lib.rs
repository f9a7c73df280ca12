//! A small network for phoneboot, built from Linux network namespaces.
//!
//! ```text
//!   N-ph (phones)                  N-sw (switch: Open vSwitch, userspace datapath)     N-srv (server)
//!   phone0 ---- veth ---- sw-ph0   [trunk: VLAN 1 untagged + voice VLAN tagged]
//!   voice0 ---- veth ---- sw-vo0   [access: voice VLAN]          sw-srv0 ---- veth ---- srv0  198.18.100.1/16
//!   data0  ---- veth ---- sw-da0   [access: VLAN 1]              sw-srv1 ---- veth ---- srv1  198.19.1.1/24
//! ```
//!
//! The kernel of these machines has no 802.1Q module and no VLAN-filtering bridge, so the
//! switch is Open vSwitch with `datapath_type=netdev`, which tags and untags in user space
//! (see `shared/reference/lab-switch.md`). TX checksum offload is turned off on every veth,
//! or TCP and UDP fail through the userspace datapath. Each lab has a name; its namespaces,
//! Open vSwitch state, configuration and logs live under one state directory, so several labs
//! can exist at once and `down` removes exactly what `up` made.

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The voice VLAN subnet's server address.
pub const SERVER_VOICE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
/// The data VLAN subnet's server address.
pub const SERVER_DATA_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 1);
/// The voice VLAN's prefix length: a /16, so that a storm of tens of thousands of phones fits.
pub const VOICE_PREFIX: u8 = 16;
/// Extra nodes (further CallManagers, see [`Lab::add_node`]) are numbered 2 to this.
pub const MAX_NODE: u8 = 9;

/// The voice-VLAN address of extra node `index`: 198.18.100.`index`.
pub fn node_address(index: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 100, index)
}

/// What went wrong building, inspecting or removing a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the lab needs root (network namespaces, Open vSwitch): run it as root or with CAP_NET_ADMIN+CAP_SYS_ADMIN")]
    NotRoot,
    #[error("{tool} is not installed ({package}); run scripts/install-deps")]
    MissingTool {
        tool: &'static str,
        package: &'static str,
    },
    #[error("invalid lab name {0:?}: use 1 to 12 characters of a-z, 0-9 and '-'")]
    BadName(String),
    #[error("network namespace {0} exists but does not belong to a phoneboot lab; remove it or pick another --name")]
    Clash(String),
    #[error("lab {0} does not exist (run `phoneboot lab up --name {0}`)")]
    NoSuchLab(String),
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Timeout(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
    let what = what.into();
    move |source| LabError::Io { what, source }
}

/// The three hosts of a lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Host {
    Switch,
    Server,
    Phones,
}

impl std::str::FromStr for Host {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "switch" | "sw" => Ok(Host::Switch),
            "server" | "srv" => Ok(Host::Server),
            "phones" | "ph" | "phone" => Ok(Host::Phones),
            _ => Err(format!(
                "unknown host {s:?}: expected switch, server or phones"
            )),
        }
    }
}

/// Which role an interface plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A phone's port: data VLAN untagged, voice VLAN tagged (phone side).
    PhonePort,
    /// The switch side of the phone port, where discovery's switch role runs.
    SwitchPhonePort,
    /// An access port in the voice VLAN, for tools that cannot tag.
    VoiceAccess,
    /// An access port in the data VLAN.
    DataAccess,
    /// The server's port in the voice VLAN.
    ServerVoice,
    /// The server's port in the data VLAN.
    ServerData,
    /// A switch-side port other than the phone port.
    SwitchPort,
}

/// One interface of the lab.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Interface {
    pub host: Host,
    pub netns: String,
    pub name: String,
    pub role: Role,
    pub addresses: Vec<String>,
}

/// What a lab is made of and what runs in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabStatus {
    pub name: String,
    pub state_dir: PathBuf,
    pub voice_vlan: u16,
    pub namespaces: Vec<NamespaceState>,
    pub interfaces: Vec<Interface>,
    pub admin_url: String,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    pub database_path: PathBuf,
    pub tftp_root: PathBuf,
    pub switch_running: bool,
    pub server_pid: Option<u32>,
    pub server_running: bool,
    /// Whether this kernel could tag VLANs itself (informational: the lab uses OVS either way).
    pub kernel_8021q: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamespaceState {
    pub host: Host,
    pub name: String,
    pub exists: bool,
}

/// What `up` remembers in the state directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    name: String,
    voice_vlan: u16,
    admin_port: u16,
}

/// A named lab.
#[derive(Debug, Clone)]
pub struct Lab {
    name: String,
    dir: PathBuf,
}

impl Lab {
    /// The default directory under which labs keep their state.
    pub fn default_root() -> PathBuf {
        std::env::var_os("PHONEBOOT_LAB_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/run/phoneboot-lab"))
    }

    pub fn new(name: &str, root: &Path) -> Result<Lab, LabError> {
        let ok = !name.is_empty()
            && name.len() <= 12
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(LabError::BadName(name.into()));
        }
        Ok(Lab {
            name: name.into(),
            dir: root.join(name),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    /// The network namespace of a host.
    pub fn netns(&self, host: Host) -> String {
        let suffix = match host {
            Host::Switch => "sw",
            Host::Server => "srv",
            Host::Phones => "ph",
        };
        format!("pb-{}-{suffix}", self.name)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("server.toml")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }
    pub fn database_path(&self) -> PathBuf {
        self.dir.join("phoneboot.db")
    }
    pub fn tftp_root(&self) -> PathBuf {
        self.dir.join("tftp")
    }
    fn ovs_dir(&self) -> PathBuf {
        self.dir.join("ovs")
    }
    fn pid_path(&self) -> PathBuf {
        self.dir.join("server.pid")
    }

    fn saved(&self) -> Option<Saved> {
        let text = fs::read_to_string(self.dir.join("lab.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether `up` completed for this lab.
    pub fn exists(&self) -> bool {
        self.saved().is_some()
    }

    /// The admin URL from the host (127.0.0.1), once the lab is up.
    pub fn admin_url(&self) -> Option<String> {
        self.saved()
            .map(|s| format!("http://127.0.0.1:{}", s.admin_port))
    }

    /// Builds the lab; does nothing if it is already up. On failure, removes what it made.
    /// Returns the admin password written into the server configuration the first time.
    pub fn up(&self, voice_vlan: u16) -> Result<Option<String>, LabError> {
        preflight()?;
        if let Some(saved) = self.saved() {
            if self.all_namespaces_exist() && self.switch_running() {
                let _ = saved;
                return Ok(None);
            }
            // A half-present lab (e.g. after a reboot): rebuild it from scratch.
            self.down()?;
        }
        for host in [Host::Switch, Host::Server, Host::Phones] {
            let ns = self.netns(host);
            if netns_exists(&ns) {
                return Err(LabError::Clash(ns));
            }
        }
        fs::create_dir_all(&self.dir).map_err(io(format!("creating {}", self.dir.display())))?;
        match self.build(voice_vlan) {
            Ok(pw) => Ok(Some(pw)),
            Err(e) => {
                let _ = self.down();
                Err(e)
            }
        }
    }

    fn build(&self, voice_vlan: u16) -> Result<String, LabError> {
        let sw = self.netns(Host::Switch);
        let srv = self.netns(Host::Server);
        let ph = self.netns(Host::Phones);
        for ns in [&sw, &srv, &ph] {
            run("ip", &["netns", "add", ns])?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        self.start_switch()?;
        // (host-side name, host ns, switch-side name, OVS port settings)
        let vlan = voice_vlan.to_string();
        let trunk = format!("trunks=1,{voice_vlan}");
        let voice_tag = format!("tag={voice_vlan}");
        let links: [(&str, &str, &str, Vec<&str>); 5] = [
            (
                "phone0",
                &ph,
                "sw-ph0",
                vec!["vlan_mode=native-untagged", "tag=1", &trunk],
            ),
            ("voice0", &ph, "sw-vo0", vec![&voice_tag]),
            ("data0", &ph, "sw-da0", vec!["tag=1"]),
            ("srv0", &srv, "sw-srv0", vec![&voice_tag]),
            ("srv1", &srv, "sw-srv1", vec!["tag=1"]),
        ];
        let _ = vlan;
        for (host_if, host_ns, sw_if, settings) in &links {
            run(
                "ip",
                &[
                    "link", "add", host_if, "netns", host_ns, "type", "veth", "peer", "name",
                    sw_if, "netns", &sw,
                ],
            )?;
            for (ns, ifname) in [(*host_ns, *host_if), (sw.as_str(), *sw_if)] {
                run(
                    "ip",
                    &["netns", "exec", ns, "ethtool", "-K", ifname, "tx", "off"],
                )?;
                run("ip", &["-n", ns, "link", "set", ifname, "up"])?;
            }
            let mut args = vec!["add-port", "br0", sw_if];
            if !settings.is_empty() {
                args.push("--");
                args.push("set");
                args.push("port");
                args.push(sw_if);
                args.extend(settings.iter().copied());
            }
            self.vsctl(&args)?;
        }
        run(
            "ip",
            &[
                "-n",
                &srv,
                "addr",
                "add",
                &format!("{SERVER_VOICE_IP}/{VOICE_PREFIX}"),
                "dev",
                "srv0",
            ],
        )?;
        run(
            "ip",
            &[
                "-n",
                &srv,
                "addr",
                "add",
                &format!("{SERVER_DATA_IP}/24"),
                "dev",
                "srv1",
            ],
        )?;
        // Let many emulated phones' addresses live on the phones side.
        for ns in [&srv, &ph] {
            let _ = run(
                "ip",
                &[
                    "netns",
                    "exec",
                    ns,
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv4.ip_nonlocal_bind=1",
                ],
            );
        }

        fs::create_dir_all(self.tftp_root()).map_err(io("creating the TFTP root"))?;
        let admin_port = free_local_port()?;
        let password = random_password();
        let text = config::lab_config(&config::LabParams {
            server_address: SERVER_VOICE_IP,
            voice_subnet: config::Ipv4Net {
                addr: SERVER_VOICE_IP,
                prefix: VOICE_PREFIX,
            },
            voice_vlan,
            database: &self.database_path(),
            tftp_root: &self.tftp_root(),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], admin_port)),
            admin_password: &password,
            phone_ports: vec![(sw.clone(), "sw-ph0".into())],
            server_interface: "srv0",
        });
        write_file(&self.config_path(), text.as_bytes())?;
        let saved = Saved {
            name: self.name.clone(),
            voice_vlan,
            admin_port,
        };
        let json = serde_json::to_vec_pretty(&saved).map_err(|e| LabError::Io {
            what: "encoding lab.json".into(),
            source: std::io::Error::other(e),
        })?;
        write_file(&self.dir.join("lab.json"), &json)?;
        Ok(password)
    }

    fn ovs_env(&self, cmd: &mut Command) {
        let d = self.ovs_dir();
        cmd.env("OVS_RUNDIR", &d)
            .env("OVS_DBDIR", &d)
            .env("OVS_LOGDIR", &d)
            .env("OVS_SYSCONFDIR", &d);
    }

    fn vsctl(&self, args: &[&str]) -> Result<(), LabError> {
        let db = format!("--db=unix:{}", self.ovs_dir().join("db.sock").display());
        let mut full = vec![db.as_str(), "--timeout=10"];
        full.extend_from_slice(args);
        let mut cmd = Command::new("ovs-vsctl");
        cmd.args(&full);
        self.ovs_env(&mut cmd);
        check(cmd, &format!("ovs-vsctl {}", args.join(" ")))
    }

    fn start_switch(&self) -> Result<(), LabError> {
        let d = self.ovs_dir();
        fs::create_dir_all(&d).map_err(io("creating the switch state directory"))?;
        let schema = ["/usr/share/openvswitch/vswitch.ovsschema"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .ok_or(LabError::MissingTool {
                tool: "vswitch.ovsschema",
                package: "openvswitch-switch",
            })?;
        let conf = d.join("conf.db");
        let mut c = Command::new("ovsdb-tool");
        c.arg("create").arg(&conf).arg(schema);
        check(c, "ovsdb-tool create")?;
        let sw = self.netns(Host::Switch);
        let p = |f: &str| d.join(f).display().to_string();
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &sw, "ovsdb-server"])
            .arg(&conf)
            .arg(format!("--remote=punix:{}", p("db.sock")))
            .arg(format!("--unixctl={}", p("ovsdb-server.ctl")))
            .arg(format!("--log-file={}", p("ovsdb-server.log")))
            .arg(format!("--pidfile={}", p("ovsdb-server.pid")))
            .args(["--no-chdir", "--detach"]);
        self.ovs_env(&mut c);
        check(c, "ovsdb-server")?;
        let mut c = Command::new("ovs-vsctl");
        c.arg(format!("--db=unix:{}", p("db.sock")))
            .args(["--no-wait", "init"]);
        self.ovs_env(&mut c);
        check(c, "ovs-vsctl init")?;
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &sw, "ovs-vswitchd"])
            .arg(format!("unix:{}", p("db.sock")))
            .arg(format!("--unixctl={}", p("ovs-vswitchd.ctl")))
            .arg(format!("--log-file={}", p("ovs-vswitchd.log")))
            .arg(format!("--pidfile={}", p("ovs-vswitchd.pid")))
            .args(["--no-chdir", "--detach"]);
        self.ovs_env(&mut c);
        check(c, "ovs-vswitchd")?;
        self.vsctl(&[
            "add-br",
            "br0",
            "--",
            "set",
            "bridge",
            "br0",
            "datapath_type=netdev",
            // One lab phone port carries every phone of a storm: room for their MACs
            // (the default 8,192 would flood a 10,000-phone storm's unicast).
            "other_config:mac-table-size=131072",
        ])?;
        run("ip", &["-n", &sw, "link", "set", "br0", "up"])?;
        Ok(())
    }

    fn daemon_pid(&self, file: &str) -> Option<u32> {
        let pid: u32 = fs::read_to_string(self.ovs_dir().join(file))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        pid_alive(pid).then_some(pid)
    }

    fn switch_running(&self) -> bool {
        self.daemon_pid("ovs-vswitchd.pid").is_some()
            && self.daemon_pid("ovsdb-server.pid").is_some()
    }

    fn all_namespaces_exist(&self) -> bool {
        [Host::Switch, Host::Server, Host::Phones]
            .iter()
            .all(|h| netns_exists(&self.netns(*h)))
    }

    /// The running server's pid, if any.
    pub fn server_pid(&self) -> Option<u32> {
        let pid: u32 = fs::read_to_string(self.pid_path())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        pid_alive(pid).then_some(pid)
    }

    /// Starts `BINARY serve --config <lab config> --netns <server ns>` in the background, with
    /// its log in the state directory, and returns once its admin port answers.
    pub fn serve(&self, binary: &Path, timeout: Duration) -> Result<u32, LabError> {
        let saved = self
            .saved()
            .ok_or_else(|| LabError::NoSuchLab(self.name.clone()))?;
        if let Some(pid) = self.server_pid() {
            return Ok(pid);
        }
        self.spawn_serve(
            binary,
            &self.config_path(),
            &self.netns(Host::Server),
            &self.log_path(),
            &self.pid_path(),
            saved.admin_port,
            timeout,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn_serve(
        &self,
        binary: &Path,
        config: &Path,
        netns: &str,
        log_path: &Path,
        pid_path: &Path,
        admin_port: u16,
        timeout: Duration,
    ) -> Result<u32, LabError> {
        let log = fs::File::create(log_path).map_err(io("creating the server log"))?;
        let log2 = log.try_clone().map_err(io("opening the server log"))?;
        let mut cmd = Command::new(binary);
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--netns")
            .arg(netns)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // Own process group: the server outlives this command and is stopped by `down`.
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(io(format!("starting {}", binary.display())))?;
        let pid = child.id();
        write_file(pid_path, pid.to_string().as_bytes())?;
        let addr = SocketAddr::from(([127, 0, 0, 1], admin_port));
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let _ = fs::remove_file(pid_path);
                let tail = fs::read_to_string(log_path).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(15).collect();
                return Err(LabError::Command {
                    command: format!("{} serve", binary.display()),
                    stderr: format!(
                        "exited with {status} before it was ready; last log lines:\n{}",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    ),
                });
            }
            // The admin port is bound before the server opens its databases: ready means
            // /healthz answers (a second node started earlier could race the first one's
            // first-start work on the shared database).
            if healthy(addr) {
                return Ok(pid);
            }
            if Instant::now() > deadline {
                stop_pid_file(pid_path);
                return Err(LabError::Timeout(format!(
                    "the server did not answer on {addr} within {timeout:?}; see {}",
                    log_path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server started by `serve`, if it runs.
    pub fn stop_server(&self) -> Result<(), LabError> {
        stop_pid_file(&self.pid_path());
        Ok(())
    }

    /// The namespace of extra node `index` (2..=[`MAX_NODE`]).
    pub fn node_netns(&self, index: u8) -> String {
        format!("pb-{}-srv{index}", self.name)
    }

    fn node_file(&self, index: u8, ext: &str) -> PathBuf {
        self.dir.join(format!("node{index}.{ext}"))
    }

    /// The configuration, log and pid files of extra node `index`.
    pub fn node_config_path(&self, index: u8) -> PathBuf {
        self.node_file(index, "toml")
    }
    pub fn node_log_path(&self, index: u8) -> PathBuf {
        self.node_file(index, "log")
    }

    /// The extra node `index` as `add_node` made it, if it did.
    pub fn node(&self, index: u8) -> Option<ExtraNode> {
        let text = fs::read_to_string(self.node_file(index, "json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Adds a further phoneboot node, a second (third...) CallManager: its own namespace
    /// `pb-N-srvI` with one port (`srv0`, 198.18.100.I) in the voice VLAN, and a configuration
    /// that shares the lab's device database and runs only the registration services (SCCP
    /// and SIP; no DHCP, TFTP/HTTP or discovery, which the first server provides). Start it
    /// with [`Lab::serve_node`]. Does nothing if the node exists.
    pub fn add_node(&self, index: u8) -> Result<ExtraNode, LabError> {
        if !(2..=MAX_NODE).contains(&index) {
            return Err(LabError::BadName(format!(
                "node {index} (expected 2 to {MAX_NODE})"
            )));
        }
        let saved = self
            .saved()
            .ok_or_else(|| LabError::NoSuchLab(self.name.clone()))?;
        if let Some(n) = self.node(index) {
            if netns_exists(&n.netns) {
                return Ok(n);
            }
        }
        let ns = self.node_netns(index);
        if netns_exists(&ns) {
            return Err(LabError::Clash(ns));
        }
        let main = config::Config::load(&self.config_path()).map_err(|e| LabError::Io {
            what: format!("reading {}", self.config_path().display()),
            source: std::io::Error::other(e.to_string()),
        })?;
        let address = node_address(index);
        let admin_port = free_local_port()?;
        let built = (|| {
            run("ip", &["netns", "add", &ns])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            let sw = self.netns(Host::Switch);
            let sw_if = format!("sw-n{index}");
            run(
                "ip",
                &[
                    "link", "add", "srv0", "netns", &ns, "type", "veth", "peer", "name", &sw_if,
                    "netns", &sw,
                ],
            )?;
            for (n, ifname) in [(ns.as_str(), "srv0"), (sw.as_str(), sw_if.as_str())] {
                run(
                    "ip",
                    &["netns", "exec", n, "ethtool", "-K", ifname, "tx", "off"],
                )?;
                run("ip", &["-n", n, "link", "set", ifname, "up"])?;
            }
            let tag = format!("tag={}", saved.voice_vlan);
            self.vsctl(&["add-port", "br0", &sw_if, "--", "set", "port", &sw_if, &tag])?;
            run(
                "ip",
                &[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{address}/{VOICE_PREFIX}"),
                    "dev",
                    "srv0",
                ],
            )
        })();
        if let Err(e) = built {
            let _ = self.remove_node(index);
            return Err(e);
        }
        let text = node_config(&main, index, address, admin_port);
        write_file(&self.node_config_path(index), text.as_bytes())?;
        let node = ExtraNode {
            index,
            netns: ns,
            address,
            admin_url: format!("http://127.0.0.1:{admin_port}"),
            admin_port,
            config_path: self.node_config_path(index),
            log_path: self.node_log_path(index),
        };
        let json = serde_json::to_vec_pretty(&node).map_err(|e| LabError::Io {
            what: "encoding the node's state".into(),
            source: std::io::Error::other(e),
        })?;
        write_file(&self.node_file(index, "json"), &json)?;
        Ok(node)
    }

    /// The pid of extra node `index`'s server, if it runs.
    pub fn node_pid(&self, index: u8) -> Option<u32> {
        let pid: u32 = fs::read_to_string(self.node_file(index, "pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        pid_alive(pid).then_some(pid)
    }

    /// Starts `BINARY serve` for extra node `index` in its namespace, like [`Lab::serve`].
    pub fn serve_node(&self, binary: &Path, index: u8, timeout: Duration) -> Result<u32, LabError> {
        let node = self
            .node(index)
            .ok_or_else(|| LabError::NoSuchLab(format!("{} node {index}", self.name)))?;
        if let Some(pid) = self.node_pid(index) {
            return Ok(pid);
        }
        self.spawn_serve(
            binary,
            &node.config_path,
            &node.netns,
            &node.log_path,
            &self.node_file(index, "pid"),
            node.admin_port,
            timeout,
        )
    }

    /// Stops extra node `index`'s server, if it runs.
    pub fn stop_node(&self, index: u8) {
        stop_pid_file(&self.node_file(index, "pid"));
    }

    /// Stops and removes extra node `index` (its namespace and switch port).
    fn remove_node(&self, index: u8) -> Result<(), LabError> {
        self.stop_node(index);
        let ns = self.node_netns(index);
        if netns_exists(&ns) {
            kill_netns_pids(&ns);
            run("ip", &["netns", "del", &ns])?;
        }
        for ext in ["json", "toml"] {
            let _ = fs::remove_file(self.node_file(index, ext));
        }
        Ok(())
    }

    /// Removes everything `up` and `serve` made. Safe to call on a lab that is partly there.
    pub fn down(&self) -> Result<(), LabError> {
        self.stop_server()?;
        for index in 2..=MAX_NODE {
            self.remove_node(index)?;
        }
        // Processes started with `lab exec` in the background die with their namespace's
        // interfaces gone; kill anything still inside our namespaces so that they vanish.
        for host in [Host::Phones, Host::Server, Host::Switch] {
            let ns = self.netns(host);
            if netns_exists(&ns) {
                kill_netns_pids(&ns);
            }
        }
        for f in ["ovs-vswitchd.pid", "ovsdb-server.pid"] {
            if let Some(pid) = self.daemon_pid(f) {
                signal(pid, libc::SIGKILL);
            }
        }
        for host in [Host::Phones, Host::Server, Host::Switch] {
            let ns = self.netns(host);
            if netns_exists(&ns) {
                run("ip", &["netns", "del", &ns])?;
            }
        }
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir)
                .map_err(io(format!("removing {}", self.dir.display())))?;
        }
        Ok(())
    }

    /// Runs a command inside a host's namespace, inheriting stdio.
    pub fn exec(&self, host: Host, argv: &[String]) -> Result<ExitStatus, LabError> {
        if !self.exists() {
            return Err(LabError::NoSuchLab(self.name.clone()));
        }
        let ns = self.netns(host);
        Command::new("ip")
            .args(["netns", "exec", &ns])
            .args(argv)
            .status()
            .map_err(io(format!("running {argv:?} in {ns}")))
    }

    /// A `Command` that runs inside a host's namespace (for tests that capture output).
    pub fn command(&self, host: Host, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns(host), program]);
        c
    }

    pub fn status(&self) -> Result<LabStatus, LabError> {
        let saved = self
            .saved()
            .ok_or_else(|| LabError::NoSuchLab(self.name.clone()))?;
        let mut namespaces = Vec::new();
        let mut interfaces = Vec::new();
        let roles: [(Host, &str, Role); 9] = [
            (Host::Phones, "phone0", Role::PhonePort),
            (Host::Phones, "voice0", Role::VoiceAccess),
            (Host::Phones, "data0", Role::DataAccess),
            (Host::Server, "srv0", Role::ServerVoice),
            (Host::Server, "srv1", Role::ServerData),
            (Host::Switch, "sw-ph0", Role::SwitchPhonePort),
            (Host::Switch, "sw-vo0", Role::SwitchPort),
            (Host::Switch, "sw-da0", Role::SwitchPort),
            (Host::Switch, "sw-srv0", Role::SwitchPort),
        ];
        for host in [Host::Switch, Host::Server, Host::Phones] {
            let ns = self.netns(host);
            namespaces.push(NamespaceState {
                host,
                exists: netns_exists(&ns),
                name: ns,
            });
        }
        for (host, name, role) in roles {
            let ns = self.netns(host);
            interfaces.push(Interface {
                host,
                addresses: addresses(&ns, name),
                netns: ns,
                name: name.into(),
                role,
            });
        }
        let server_pid = self.server_pid();
        Ok(LabStatus {
            name: self.name.clone(),
            state_dir: self.dir.clone(),
            voice_vlan: saved.voice_vlan,
            namespaces,
            interfaces,
            admin_url: format!("http://127.0.0.1:{}", saved.admin_port),
            config_path: self.config_path(),
            log_path: self.log_path(),
            database_path: self.database_path(),
            tftp_root: self.tftp_root(),
            switch_running: self.switch_running(),
            server_running: server_pid.is_some(),
            server_pid,
            kernel_8021q: kernel_has_8021q(),
        })
    }
}

/// A further node of a lab (see [`Lab::add_node`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtraNode {
    pub index: u8,
    pub netns: String,
    /// Its address in the voice VLAN (the CallManager address phones use).
    pub address: Ipv4Addr,
    /// Its admin listener, from the host.
    pub admin_url: String,
    pub admin_port: u16,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
}

/// The configuration of an extra node: the lab server's database, TFTP root, admin password,
/// auto-registration and CallManager list; registration services only.
fn node_config(main: &config::Config, index: u8, address: Ipv4Addr, admin_port: u16) -> String {
    let a = &main.autoregistration;
    let mut s = format!(
        r#"# Written by the lab: node {index}, a further CallManager sharing the lab's database.
[node]
name = "lab-cm{index}"
address = "{address}"
database = "{db}"
{root}
[admin]
listen = "127.0.0.1:{admin_port}"
{pw}
# The first server runs the rest of the chain for the whole lab.
[discovery]
run = false

[dhcp]
enabled = false

[files]
enabled = false

[sccp]
listen = "0.0.0.0:{sccp}"
keepalive_secs = {ka}

[sip]
listen = "0.0.0.0:{sip}"
realm = "{realm}"

# Must match the first server's: both seed the shared database from their file.
[autoregistration]
enabled = {ar}
dn_first = "{first}"
dn_last = "{last}"
device_pool = "{pool}"
"#,
        db = main.node.database.display(),
        root = main
            .node
            .tftp_root
            .as_ref()
            .map(|r| format!("tftp_root = \"{}\"\n", r.display()))
            .unwrap_or_default(),
        pw = main
            .admin
            .initial_password
            .as_ref()
            .map(|p| format!("initial_password = \"{p}\"\n"))
            .unwrap_or_default(),
        sccp = main.sccp.listen.port(),
        ka = main.sccp.keepalive_secs,
        sip = main.sip.listen.port(),
        realm = main.sip.realm,
        ar = a.enabled,
        first = a.dn_first,
        last = a.dn_last,
        pool = a.device_pool,
    );
    for cm in main.callmanagers.iter() {
        s.push_str(&format!(
            "\n[[callmanager]]\nhost = \"{}\"\nsccp_port = {}\nsip_port = {}\n",
            cm.host, cm.sccp_port, cm.sip_port
        ));
    }
    s
}

/// Whether a phoneboot admin listener at `addr` answers `GET /healthz` with 200.
fn healthy(addr: SocketAddr) -> bool {
    use std::io::Read;
    let Ok(mut c) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = c.set_write_timeout(Some(Duration::from_millis(500)));
    if c.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    c.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

fn stop_pid_file(path: &Path) {
    let pid = fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .filter(|p| pid_alive(*p));
    if let Some(pid) = pid {
        signal(pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while pid_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if pid_alive(pid) {
            signal(pid, libc::SIGKILL);
        }
    }
    let _ = fs::remove_file(path);
}

fn kill_netns_pids(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            signal(pid, libc::SIGKILL);
        }
    }
}

impl LabStatus {
    /// A human-readable summary.
    pub fn render(&self) -> String {
        let mut s = format!(
            "lab {} (voice VLAN {}, state {})\n",
            self.name,
            self.voice_vlan,
            self.state_dir.display()
        );
        for n in &self.namespaces {
            s.push_str(&format!(
                "  netns {:<18} {:<8} {}\n",
                n.name,
                format!("{:?}", n.host).to_lowercase(),
                if n.exists { "present" } else { "MISSING" }
            ));
        }
        s.push_str("  interfaces:\n");
        for i in &self.interfaces {
            s.push_str(&format!(
                "    {:<8} {:<8} {:<18} {}\n",
                format!("{:?}", i.host).to_lowercase(),
                i.name,
                format!("{:?}", i.role),
                i.addresses.join(" ")
            ));
        }
        s.push_str(&format!(
            "  switch (Open vSwitch, userspace datapath): {}\n",
            if self.switch_running {
                "running"
            } else {
                "STOPPED"
            }
        ));
        s.push_str(&format!(
            "  server: {}\n  admin:  {}\n  config: {}\n  log:    {}\n",
            match self.server_pid {
                Some(p) => format!("running (pid {p})"),
                None => "not running (phoneboot lab serve)".into(),
            },
            self.admin_url,
            self.config_path.display(),
            self.log_path.display()
        ));
        s
    }
}

/// Checks root and the tools the lab needs, before touching anything.
pub fn preflight() -> Result<(), LabError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LabError::NotRoot);
    }
    for (tool, package) in [
        ("ip", "iproute2"),
        ("ethtool", "ethtool"),
        ("ovs-vsctl", "openvswitch-switch"),
        ("ovsdb-server", "openvswitch-switch"),
        ("ovs-vswitchd", "openvswitch-switch"),
        ("ovsdb-tool", "openvswitch-switch"),
    ] {
        if !in_path(tool) {
            return Err(LabError::MissingTool { tool, package });
        }
    }
    Ok(())
}

fn in_path(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    dirs.iter().any(|d| d.join(tool).is_file())
}

fn netns_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

fn kernel_has_8021q() -> bool {
    Path::new("/proc/net/vlan").exists() || Path::new("/sys/module/8021q").exists()
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // A zombie still answers kill(0); treat it as dead.
    if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
        if let Some(state) = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
        {
            return state != "Z";
        }
    }
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn signal(pid: u32, sig: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: sending a signal to a pid we started or found in our namespaces.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

fn addresses(ns: &str, ifname: &str) -> Vec<String> {
    let Ok(out) = Command::new("ip")
        .args(["-n", ns, "-j", "addr", "show", "dev", ifname])
        .output()
    else {
        return vec![];
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        return vec![];
    };
    let mut list = Vec::new();
    if let Some(arr) = v.as_array() {
        for link in arr {
            if let Some(infos) = link["addr_info"].as_array() {
                for a in infos {
                    if a["family"] == "inet" {
                        list.push(format!(
                            "{}/{}",
                            a["local"].as_str().unwrap_or("?"),
                            a["prefixlen"]
                        ));
                    }
                }
            }
        }
    }
    list
}

fn free_local_port() -> Result<u16, LabError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free admin port"))?;
    let port = l
        .local_addr()
        .map_err(io("finding a free admin port"))?
        .port();
    Ok(port)
}

fn random_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), LabError> {
    let mut f = fs::File::create(path).map_err(io(format!("writing {}", path.display())))?;
    f.write_all(bytes)
        .map_err(io(format!("writing {}", path.display())))
}

fn run(program: &str, args: &[&str]) -> Result<(), LabError> {
    let mut c = Command::new(program);
    c.args(args);
    check(c, &format!("{program} {}", args.join(" ")))
}

fn check(mut cmd: Command, label: &str) -> Result<(), LabError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("running {label}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Command {
            command: label.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        let root = Path::new("/tmp/x");
        assert!(Lab::new("demo", root).is_ok());
        assert!(matches!(Lab::new("", root), Err(LabError::BadName(_))));
        assert!(matches!(Lab::new("UPPER", root), Err(LabError::BadName(_))));
        assert!(matches!(
            Lab::new("much-too-long-name", root),
            Err(LabError::BadName(_))
        ));
        let lab = Lab::new("demo", root).unwrap();
        assert_eq!(lab.netns(Host::Server), "pb-demo-srv");
        assert_eq!("phones".parse::<Host>().unwrap(), Host::Phones);
        assert!("router".parse::<Host>().is_err());
        assert_eq!(lab.node_netns(2), "pb-demo-srv2");
        assert_eq!(node_address(2), Ipv4Addr::new(198, 18, 100, 2));
    }

    #[test]
    fn node_config_is_valid_and_runs_registration_only() {
        let main_text = config::lab_config(&config::LabParams {
            server_address: SERVER_VOICE_IP,
            voice_subnet: "198.18.0.0/16".parse().unwrap(),
            voice_vlan: 100,
            database: Path::new("/tmp/x.db"),
            tftp_root: Path::new("/tmp/tftp"),
            admin_listen: "127.0.0.1:8080".parse().unwrap(),
            admin_password: "secret-pw",
            phone_ports: vec![("lab-sw".into(), "sw-ph0".into())],
            server_interface: "srv0",
        });
        let main = config::Config::parse(&main_text).unwrap();
        let text = node_config(&main, 2, node_address(2), 8082);
        let cfg = config::Config::parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_eq!(cfg.node.name, "lab-cm2");
        assert_eq!(cfg.node.address, Ipv4Addr::new(198, 18, 100, 2));
        assert_eq!(cfg.node.database, main.node.database);
        assert_eq!(cfg.autoregistration, main.autoregistration);
        assert_eq!(cfg.admin.initial_password.as_deref(), Some("secret-pw"));
        assert!(cfg.sccp.enabled && cfg.sip.enabled);
        assert!(!cfg.dhcp.enabled && !cfg.files.enabled && !cfg.discovery.run);
    }
}
