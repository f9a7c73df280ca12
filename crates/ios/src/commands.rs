//! phoneboot's IOS commands: the trees of each mode (help words as Catalyst IOS prints them)
//! and the typed [`Command`] a matched line turns into.

use serde::{Deserialize, Serialize};

use crate::tree::{Node, Value};

/// `debug cdp <category>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DebugCdp {
    Adjacency,
    Events,
    Ip,
    Packets,
}

impl DebugCdp {
    /// IOS's words in "CDP ... debugging is on".
    pub fn words(self) -> &'static str {
        match self {
            DebugCdp::Adjacency => "neighbor info",
            DebugCdp::Events => "events",
            DebugCdp::Ip => "ip info",
            DebugCdp::Packets => "packet info",
        }
    }
}

/// `power inline auto|never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerInline {
    Auto,
    Never,
}

/// One command, fully matched and checked (ranges, interface names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    // mode changes
    ConfigureTerminal,
    Interface {
        name: String,
    },
    End,
    Exit,
    // exec
    ShowCdp,
    ShowCdpNeighbors {
        interface: Option<String>,
        detail: bool,
    },
    /// `show cdp entry NAME`; `*` for all.
    ShowCdpEntry {
        name: String,
    },
    ShowCdpInterface {
        interface: Option<String>,
    },
    ShowCdpTraffic,
    ShowLldp,
    ShowLldpNeighbors {
        interface: Option<String>,
        detail: bool,
    },
    ShowLldpTraffic,
    ShowPowerInline {
        interface: Option<String>,
    },
    ShowRunningConfig,
    ClearCdpTable,
    ClearCdpCounters,
    ClearLldpTable,
    ClearLldpCounters,
    Debug {
        category: DebugCdp,
        on: bool,
    },
    UndebugAll,
    // global configuration
    CdpRun {
        on: bool,
    },
    CdpAdvertiseV2 {
        on: bool,
    },
    /// `cdp timer N`; `no cdp timer` sets the default (60).
    CdpTimer {
        secs: u16,
    },
    /// `cdp holdtime N`; `no cdp holdtime` sets the default (180).
    CdpHoldtime {
        secs: u16,
    },
    LldpRun {
        on: bool,
    },
    LldpTimer {
        secs: u16,
    },
    LldpHoldtime {
        secs: u16,
    },
    // interface configuration (of the interface the mode names)
    CdpEnable {
        on: bool,
    },
    LldpTransmit {
        on: bool,
    },
    LldpReceive {
        on: bool,
    },
    PowerInline {
        mode: PowerInline,
    },
}

/// IOS defaults for the `no` forms.
pub const CDP_TIMER_DEFAULT: u16 = 60;
pub const CDP_HOLDTIME_DEFAULT: u16 = 180;
pub const LLDP_TIMER_DEFAULT: u16 = 30;
pub const LLDP_HOLDTIME_DEFAULT: u16 = 120;

impl Command {
    /// Show commands may be followed by `| section|include|exclude|begin`.
    pub fn is_show(&self) -> bool {
        matches!(
            self,
            Command::ShowCdp
                | Command::ShowCdpNeighbors { .. }
                | Command::ShowCdpEntry { .. }
                | Command::ShowCdpInterface { .. }
                | Command::ShowCdpTraffic
                | Command::ShowLldp
                | Command::ShowLldpNeighbors { .. }
                | Command::ShowLldpTraffic
                | Command::ShowPowerInline { .. }
                | Command::ShowRunningConfig
        )
    }

    /// Changes settings (the server persists these).
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Command::CdpRun { .. }
                | Command::CdpAdvertiseV2 { .. }
                | Command::CdpTimer { .. }
                | Command::CdpHoldtime { .. }
                | Command::LldpRun { .. }
                | Command::LldpTimer { .. }
                | Command::LldpHoldtime { .. }
                | Command::CdpEnable { .. }
                | Command::LldpTransmit { .. }
                | Command::LldpReceive { .. }
                | Command::PowerInline { .. }
        )
    }
}

fn debug_categories(tag: &'static str) -> Vec<Node> {
    // Help texts: IOS `debug cdp ?` on Catalyst.
    vec![
        Node::kw("adjacency", "CDP neighbor info").ends(tag),
        Node::kw("events", "CDP events").ends(tag),
        Node::kw("ip", "CDP ip info").ends(tag),
        Node::kw("packets", "CDP packet-related information").ends(tag),
    ]
}

fn neighbors(tag: &'static str, help: &'static str) -> Node {
    Node::kw("neighbors", help).ends(tag).then([
        Node::iface("Interface to show neighbors of")
            .ends(tag)
            .then([Node::kw("detail", "Show detailed information").ends(tag)]),
        Node::kw("detail", "Show detailed information").ends(tag),
    ])
}

/// The exec (`Switch#`) tree.
pub fn exec_tree() -> Vec<Node> {
    vec![
        Node::kw("clear", "Reset functions").then([
            Node::kw("cdp", "Reset cdp information").then([
                Node::kw("counters", "Clear CDP counters").ends("clear-cdp-counters"),
                Node::kw("table", "Clear cdp table").ends("clear-cdp-table"),
            ]),
            Node::kw("lldp", "Clear LLDP information").then([
                Node::kw("counters", "Clear LLDP counters").ends("clear-lldp-counters"),
                Node::kw("table", "Clear LLDP table").ends("clear-lldp-table"),
            ]),
        ]),
        Node::kw("configure", "Enter configuration mode")
            .ends("configure")
            .then([Node::kw("terminal", "Configure from the terminal").ends("configure")]),
        Node::kw("debug", "Debugging functions (see also 'undebug')").then([Node::kw(
            "cdp",
            "CDP information",
        )
        .then(debug_categories("debug"))]),
        Node::kw("exit", "Exit from the EXEC").ends("exit"),
        Node::kw("no", "Disable debugging functions").then([Node::kw(
            "debug",
            "Disable debugging functions (see also 'undebug')",
        )
        .then([
            Node::kw("all", "Disable all debugging").ends("undebug-all"),
            Node::kw("cdp", "CDP information").then(debug_categories("debug")),
        ])]),
        Node::kw("show", "Show running system information").then([
            Node::kw("cdp", "CDP information").ends("show-cdp").then([
                Node::kw("entry", "Information for specific neighbor entry").then([
                    Node::kw("*", "all CDP neighbor entries").ends("show-cdp-entry"),
                    Node::word("WORD", "Name of CDP neighbor entry").ends("show-cdp-entry"),
                ]),
                Node::kw("interface", "CDP interface status and configuration")
                    .ends("show-cdp-interface")
                    .then([Node::iface("Interface to show").ends("show-cdp-interface")]),
                neighbors("show-cdp-neighbors", "CDP neighbor entries"),
                Node::kw("traffic", "CDP statistics").ends("show-cdp-traffic"),
            ]),
            Node::kw("lldp", "LLDP information")
                .ends("show-lldp")
                .then([
                    neighbors("show-lldp-neighbors", "LLDP neighbor entries"),
                    Node::kw("traffic", "LLDP statistics").ends("show-lldp-traffic"),
                ]),
            Node::kw("power", "Switch Power").then([Node::kw(
                "inline",
                "Inline power information",
            )
            .ends("show-power-inline")
            .then([Node::iface("Interface to show").ends("show-power-inline")])]),
            Node::kw("running-config", "Current operating configuration")
                .ends("show-running-config"),
        ]),
        Node::kw("undebug", "Disable debugging functions (see also 'debug')").then([
            Node::kw("all", "Disable all debugging").ends("undebug-all"),
            Node::kw("cdp", "CDP information").then(debug_categories("debug")),
        ]),
    ]
}

fn do_node() -> Node {
    Node::kw("do", "To run exec commands in config mode").then(exec_tree())
}

/// The global configuration (`Switch(config)#`) tree.
pub fn config_tree() -> Vec<Node> {
    vec![
        Node::kw("cdp", "Global CDP configuration subcommands").then([
            Node::kw("advertise-v2", "CDP sends version-2 advertisements").ends("cdp-advertise-v2"),
            Node::kw(
                "holdtime",
                "Specify the holdtime (in sec) to be sent in packets",
            )
            .then([Node::num(
                10,
                255,
                "Length  of time  (in sec) that receiver must keep this packet",
            )
            .ends("cdp-holdtime")]),
            Node::kw("run", "").ends("cdp-run"),
            Node::kw(
                "timer",
                "Specify the rate at which CDP packets are sent (in sec)",
            )
            .then([
                Node::num(5, 254, "Rate at which CDP packets are sent (in  sec)").ends("cdp-timer"),
            ]),
        ]),
        do_node(),
        Node::kw("end", "Exit from configure mode").ends("end"),
        Node::kw("exit", "Exit from configure mode").ends("exit"),
        Node::kw("interface", "Select an interface to configure")
            .then([Node::iface("Interface to configure").ends("interface")]),
        Node::kw("lldp", "LLDP configuration").then([
            Node::kw(
                "holdtime",
                "Specify the holdtime (in sec) to be sent in packets",
            )
            .then([Node::num(
                0,
                65535,
                "Length  of time  (in sec) that receiver must keep this packet",
            )
            .ends("lldp-holdtime")]),
            Node::kw("run", "Enable LLDP").ends("lldp-run"),
            Node::kw(
                "timer",
                "Specify the rate at which LLDP packets are sent (in sec)",
            )
            .then([Node::num(
                5,
                65534,
                "Rate at which LLDP packets are sent (in  sec)",
            )
            .ends("lldp-timer")]),
        ]),
        Node::kw("no", "Negate a command or set its defaults").then([
            Node::kw("cdp", "Global CDP configuration subcommands").then([
                Node::kw("advertise-v2", "CDP sends version-2 advertisements")
                    .ends("cdp-advertise-v2"),
                Node::kw(
                    "holdtime",
                    "Specify the holdtime (in sec) to be sent in packets",
                )
                .ends("cdp-holdtime"),
                Node::kw("run", "").ends("cdp-run"),
                Node::kw(
                    "timer",
                    "Specify the rate at which CDP packets are sent (in sec)",
                )
                .ends("cdp-timer"),
            ]),
            Node::kw("lldp", "LLDP configuration").then([
                Node::kw(
                    "holdtime",
                    "Specify the holdtime (in sec) to be sent in packets",
                )
                .ends("lldp-holdtime"),
                Node::kw("run", "Enable LLDP").ends("lldp-run"),
                Node::kw(
                    "timer",
                    "Specify the rate at which LLDP packets are sent (in sec)",
                )
                .ends("lldp-timer"),
            ]),
        ]),
    ]
}

fn interface_subcommands() -> Vec<Node> {
    vec![
        Node::kw("cdp", "CDP interface subcommands").then([Node::kw(
            "enable",
            "Enable CDP on interface",
        )
        .ends("cdp-enable")]),
        Node::kw("lldp", "LLDP interface subcommands").then([
            Node::kw("receive", "Enable LLDP reception on interface").ends("lldp-receive"),
            Node::kw("transmit", "Enable LLDP transmission on interface").ends("lldp-transmit"),
        ]),
    ]
}

/// The interface configuration (`Switch(config-if)#`) tree.
pub fn interface_tree() -> Vec<Node> {
    let mut v = interface_subcommands();
    v.extend([
        do_node(),
        Node::kw("end", "Exit from configure mode").ends("end"),
        Node::kw("exit", "Exit from interface configuration mode").ends("exit"),
        Node::kw("no", "Negate a command or set its defaults").then(interface_subcommands()),
        Node::kw("power", "Power configuration").then([Node::kw(
            "inline",
            "Inline power configuration",
        )
        .then([
            Node::kw("auto", "Automatically detect and power inline devices").ends("power-inline"),
            Node::kw("never", "Never apply inline power").ends("power-inline"),
        ])]),
    ]);
    v
}

/// The output modifiers after `|`.
pub fn pipe_tree() -> Vec<Node> {
    let re = || Node::line("Regular Expression").ends("pipe");
    vec![
        Node::kw("begin", "Begin with the line that matches").then([re()]),
        Node::kw("exclude", "Exclude lines that match").then([re()]),
        Node::kw("include", "Include lines that match").then([re()]),
        Node::kw("section", "Filter a section of output").then([re()]),
    ]
}

fn iface_of(values: &[Value]) -> Option<String> {
    values.iter().find_map(|v| match v {
        Value::Iface(n) => Some(n.clone()),
        _ => None,
    })
}

fn num_of(values: &[Value]) -> Option<u16> {
    values.iter().find_map(|v| match v {
        Value::Num(n) => u16::try_from(*n).ok(),
        _ => None,
    })
}

/// Builds the command a matched path names. `words` are the keywords matched (without a
/// leading `do`), `values` the parameters.
pub fn build(tag: &str, words: &[&str], values: &[Value]) -> Option<Command> {
    let no = words.first() == Some(&"no");
    let has = |w: &str| words.contains(&w);
    Some(match tag {
        "configure" => Command::ConfigureTerminal,
        "interface" => Command::Interface {
            name: iface_of(values)?,
        },
        "end" => Command::End,
        "exit" => Command::Exit,
        "show-cdp" => Command::ShowCdp,
        "show-cdp-neighbors" => Command::ShowCdpNeighbors {
            interface: iface_of(values),
            detail: has("detail"),
        },
        "show-cdp-entry" => Command::ShowCdpEntry {
            name: values
                .iter()
                .find_map(|v| match v {
                    Value::Word(w) => Some(w.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| "*".into()),
        },
        "show-cdp-interface" => Command::ShowCdpInterface {
            interface: iface_of(values),
        },
        "show-cdp-traffic" => Command::ShowCdpTraffic,
        "show-lldp" => Command::ShowLldp,
        "show-lldp-neighbors" => Command::ShowLldpNeighbors {
            interface: iface_of(values),
            detail: has("detail"),
        },
        "show-lldp-traffic" => Command::ShowLldpTraffic,
        "show-power-inline" => Command::ShowPowerInline {
            interface: iface_of(values),
        },
        "show-running-config" => Command::ShowRunningConfig,
        "clear-cdp-table" => Command::ClearCdpTable,
        "clear-cdp-counters" => Command::ClearCdpCounters,
        "clear-lldp-table" => Command::ClearLldpTable,
        "clear-lldp-counters" => Command::ClearLldpCounters,
        "debug" => Command::Debug {
            category: match *words.last()? {
                "adjacency" => DebugCdp::Adjacency,
                "events" => DebugCdp::Events,
                "ip" => DebugCdp::Ip,
                "packets" => DebugCdp::Packets,
                _ => return None,
            },
            on: !no && !has("undebug"),
        },
        "undebug-all" => Command::UndebugAll,
        "cdp-run" => Command::CdpRun { on: !no },
        "cdp-advertise-v2" => Command::CdpAdvertiseV2 { on: !no },
        "cdp-timer" => Command::CdpTimer {
            secs: if no {
                CDP_TIMER_DEFAULT
            } else {
                num_of(values)?
            },
        },
        "cdp-holdtime" => Command::CdpHoldtime {
            secs: if no {
                CDP_HOLDTIME_DEFAULT
            } else {
                num_of(values)?
            },
        },
        "lldp-run" => Command::LldpRun { on: !no },
        "lldp-timer" => Command::LldpTimer {
            secs: if no {
                LLDP_TIMER_DEFAULT
            } else {
                num_of(values)?
            },
        },
        "lldp-holdtime" => Command::LldpHoldtime {
            secs: if no {
                LLDP_HOLDTIME_DEFAULT
            } else {
                num_of(values)?
            },
        },
        "cdp-enable" => Command::CdpEnable { on: !no },
        "lldp-transmit" => Command::LldpTransmit { on: !no },
        "lldp-receive" => Command::LldpReceive { on: !no },
        "power-inline" => Command::PowerInline {
            mode: if has("never") {
                PowerInline::Never
            } else {
                PowerInline::Auto
            },
        },
        _ => return None,
    })
}
