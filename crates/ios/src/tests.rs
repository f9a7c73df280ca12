//! Layouts and messages compared with Cisco's published CLI chapter: "Using the
//! Command-Line Interface", Cisco ME 3800X/3600X Switch Software Configuration Guide
//! (https://www.cisco.com/en/US/docs/switches/metro/me3600x_3800x/trash/swcli.html),
//! sections "Understanding the Help System", "Understanding Abbreviated Commands" and
//! "Understanding CLI Error Messages" (`% Ambiguous command: "show con"`,
//! `% Incomplete command.`, `% Invalid input detected at '^' marker.` with the caret "at the
//! point at which you entered the incorrect command").

use super::*;

fn ctx() -> Context {
    Context {
        hostname: "Switch".into(),
        interfaces: vec!["sw-ph0".into(), "sw-ph1".into(), "eth0".into()],
    }
}

fn cmd(mode: &Mode, line: &str) -> Command {
    parse(&ctx(), mode, line)
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
        .unwrap_or_else(|| panic!("{line:?}: empty"))
        .command
}

fn err(mode: &Mode, line: &str) -> ParseError {
    match parse(&ctx(), mode, line) {
        Err(e) => e,
        Ok(p) => panic!("{line:?} parsed as {p:?}"),
    }
}

#[test]
fn abbreviations_match_unique_prefixes() {
    assert_eq!(
        cmd(&Mode::Exec, "sh cdp nei det"),
        Command::ShowCdpNeighbors {
            interface: None,
            detail: true
        }
    );
    assert_eq!(
        cmd(&Mode::Exec, "SH CDP NEI sw-ph1 DE"),
        Command::ShowCdpNeighbors {
            interface: Some("sw-ph1".into()),
            detail: true
        }
    );
    assert_eq!(cmd(&Mode::Exec, "sh cdp"), Command::ShowCdp);
    assert_eq!(cmd(&Mode::Exec, "sh cdp tr"), Command::ShowCdpTraffic);
    assert_eq!(
        cmd(&Mode::Exec, "sh power in"),
        Command::ShowPowerInline { interface: None }
    );
    assert_eq!(cmd(&Mode::Exec, "conf t"), Command::ConfigureTerminal);
    assert_eq!(
        cmd(&Mode::Config, "int eth0"),
        Command::Interface {
            name: "eth0".into()
        }
    );
    // An interface by unique prefix and in any case, as IOS takes `gi1/0/1`.
    assert_eq!(
        cmd(&Mode::Config, "int ETH"),
        Command::Interface {
            name: "eth0".into()
        }
    );
}

#[test]
fn show_cdp_entry_takes_a_name_or_star() {
    assert_eq!(
        cmd(&Mode::Exec, "show cdp entry SEP001122334455"),
        Command::ShowCdpEntry {
            name: "SEP001122334455".into()
        }
    );
    assert_eq!(
        cmd(&Mode::Exec, "show cdp entry *"),
        Command::ShowCdpEntry { name: "*".into() }
    );
}

#[test]
fn ambiguous_prefix_is_ios_message() {
    // `c` is clear or configure in exec.
    let e = err(&Mode::Exec, "c");
    assert_eq!(e, ParseError::Ambiguous { line: "c".into() });
    assert_eq!(e.render("c", 7), "% Ambiguous command:  \"c\"\n");
    // `e` is end or exit in configuration mode; the whole line is quoted.
    let e = err(&Mode::Config, "e");
    assert_eq!(e, ParseError::Ambiguous { line: "e".into() });
    let e = err(&Mode::Exec, "show cdp n x | c");
    assert_eq!(e, ParseError::Invalid { at: 11 });
}

#[test]
fn incomplete_commands() {
    for (mode, line) in [
        (Mode::Exec, "show cdp entry"),
        (Mode::Exec, "sh"),
        (Mode::Exec, "debug cdp"),
        (Mode::Config, "cdp timer"),
        (Mode::Config, "interface"),
        (Mode::Interface("eth0".into()), "power inline"),
        (Mode::Exec, "show running-config | section"),
    ] {
        let e = err(&mode, line);
        assert_eq!(e, ParseError::Incomplete, "{line}");
        assert_eq!(e.render(line, 7), "% Incomplete command.\n");
    }
}

#[test]
fn invalid_input_caret_is_under_the_bad_word() {
    let line = "show cdp neighbours detail";
    let e = err(&Mode::Exec, line);
    assert_eq!(e, ParseError::Invalid { at: 9 });
    let prompt = Mode::Exec.prompt("Switch");
    assert_eq!(prompt, "Switch#");
    // Switch#show cdp neighbours detail
    //                 ^
    assert_eq!(
        e.render(line, prompt.len()),
        format!(
            "{}^\n% Invalid input detected at '^' marker.\n",
            " ".repeat(16)
        )
    );
    // Extra blanks keep the caret under the word.
    assert_eq!(
        err(&Mode::Exec, "sh  cdp   xyz"),
        ParseError::Invalid { at: 10 }
    );
    // Unknown interface.
    assert_eq!(
        err(&Mode::Exec, "show cdp neighbors gi1/0/9"),
        ParseError::Invalid { at: 19 }
    );
    assert_eq!(
        err(&Mode::Config, "interface nope"),
        ParseError::Invalid { at: 10 }
    );
    // A pipe after a command that is not a show command.
    assert_eq!(
        err(&Mode::Exec, "clear cdp table | include x"),
        ParseError::Invalid { at: 16 }
    );
}

#[test]
fn ranges_are_ios_ranges() {
    // cdp timer 5-254, cdp holdtime 10-255 (IOS `cdp timer ?` / `cdp holdtime ?`).
    assert_eq!(
        cmd(&Mode::Config, "cdp timer 5"),
        Command::CdpTimer { secs: 5 }
    );
    assert_eq!(
        cmd(&Mode::Config, "cdp timer 254"),
        Command::CdpTimer { secs: 254 }
    );
    assert_eq!(
        err(&Mode::Config, "cdp timer 4"),
        ParseError::Invalid { at: 10 }
    );
    assert_eq!(
        err(&Mode::Config, "cdp timer 255"),
        ParseError::Invalid { at: 10 }
    );
    assert_eq!(
        err(&Mode::Config, "cdp timer x1"),
        ParseError::Invalid { at: 10 }
    );
    assert_eq!(
        cmd(&Mode::Config, "cdp holdtime 10"),
        Command::CdpHoldtime { secs: 10 }
    );
    assert_eq!(
        cmd(&Mode::Config, "cdp holdtime 255"),
        Command::CdpHoldtime { secs: 255 }
    );
    assert_eq!(
        err(&Mode::Config, "cdp holdtime 9"),
        ParseError::Invalid { at: 13 }
    );
    assert_eq!(
        err(&Mode::Config, "cdp holdtime 256"),
        ParseError::Invalid { at: 13 }
    );
    assert_eq!(
        err(&Mode::Config, "cdp holdtime 99999999999"),
        ParseError::Invalid { at: 13 }
    );
    assert_eq!(
        cmd(&Mode::Config, "lldp timer 65534"),
        Command::LldpTimer { secs: 65534 }
    );
    assert_eq!(
        err(&Mode::Config, "lldp timer 4"),
        ParseError::Invalid { at: 11 }
    );
    // `no` forms restore IOS defaults.
    assert_eq!(
        cmd(&Mode::Config, "no cdp timer"),
        Command::CdpTimer { secs: 60 }
    );
    assert_eq!(
        cmd(&Mode::Config, "no cdp holdtime"),
        Command::CdpHoldtime { secs: 180 }
    );
}

#[test]
fn negation_and_interface_commands() {
    let ifm = Mode::Interface("sw-ph0".into());
    assert_eq!(
        cmd(&Mode::Config, "no cdp run"),
        Command::CdpRun { on: false }
    );
    assert_eq!(cmd(&Mode::Config, "cdp run"), Command::CdpRun { on: true });
    assert_eq!(
        cmd(&Mode::Config, "no cdp adv"),
        Command::CdpAdvertiseV2 { on: false }
    );
    assert_eq!(
        cmd(&Mode::Config, "no lldp run"),
        Command::LldpRun { on: false }
    );
    assert_eq!(cmd(&ifm, "no cdp enable"), Command::CdpEnable { on: false });
    assert_eq!(cmd(&ifm, "cdp en"), Command::CdpEnable { on: true });
    assert_eq!(cmd(&ifm, "no lldp tr"), Command::LldpTransmit { on: false });
    assert_eq!(cmd(&ifm, "lldp rec"), Command::LldpReceive { on: true });
    assert_eq!(
        cmd(&ifm, "power inline never"),
        Command::PowerInline {
            mode: PowerInline::Never
        }
    );
    // Interface commands are not global ones.
    assert_eq!(
        err(&Mode::Config, "cdp enable"),
        ParseError::Invalid { at: 4 }
    );
    // Debugging, in exec.
    assert_eq!(
        cmd(&Mode::Exec, "debug cdp ip"),
        Command::Debug {
            category: DebugCdp::Ip,
            on: true
        }
    );
    assert_eq!(
        cmd(&Mode::Exec, "no debug cdp pa"),
        Command::Debug {
            category: DebugCdp::Packets,
            on: false
        }
    );
    assert_eq!(
        cmd(&Mode::Exec, "undebug cdp adj"),
        Command::Debug {
            category: DebugCdp::Adjacency,
            on: false
        }
    );
    assert_eq!(cmd(&Mode::Exec, "u all"), Command::UndebugAll);
}

#[test]
fn modes_move_like_ios() {
    let c = ctx();
    let step = |mode: &Mode, line: &str| {
        let p = parse(&c, mode, line).expect("parses").expect("not empty");
        next_mode(mode, &p)
    };
    assert_eq!(step(&Mode::Exec, "configure terminal"), Some(Mode::Config));
    assert_eq!(
        step(&Mode::Config, "interface sw-ph0"),
        Some(Mode::Interface("sw-ph0".into()))
    );
    let ifm = Mode::Interface("sw-ph0".into());
    assert_eq!(step(&ifm, "exit"), Some(Mode::Config));
    assert_eq!(step(&ifm, "end"), Some(Mode::Exec));
    assert_eq!(step(&Mode::Config, "exit"), Some(Mode::Exec));
    assert_eq!(step(&Mode::Config, "end"), Some(Mode::Exec));
    assert_eq!(step(&Mode::Exec, "exit"), None);
    // Another interface straight from interface mode.
    assert_eq!(
        step(&ifm, "int sw-ph1"),
        Some(Mode::Interface("sw-ph1".into()))
    );
    // A global command in interface mode runs globally and leaves interface mode.
    let p = parse(&c, &ifm, "cdp timer 30")
        .expect("parses")
        .expect("not empty");
    assert_eq!(p.command, Command::CdpTimer { secs: 30 });
    assert_eq!(p.runs_in, Mode::Config);
    assert_eq!(next_mode(&ifm, &p), Some(Mode::Config));
    // `do` runs exec commands and stays.
    let p = parse(&c, &ifm, "do sh cdp nei")
        .expect("parses")
        .expect("not empty");
    assert_eq!(
        p.command,
        Command::ShowCdpNeighbors {
            interface: None,
            detail: false
        }
    );
    assert!(p.via_do);
    assert_eq!(p.runs_in, Mode::Exec);
    assert_eq!(next_mode(&ifm, &p), Some(ifm.clone()));
    assert_eq!(Mode::Config.prompt("Switch"), "Switch(config)#");
    assert_eq!(ifm.prompt("Switch"), "Switch(config-if)#");
    assert_eq!(parse(&c, &Mode::Exec, "   ").expect("empty ok"), None);
}

#[test]
fn question_mark_lists_what_can_follow() {
    let c = ctx();
    let h = help(&c, &Mode::Exec, "show cdp ").expect("help");
    let Help::Next(items) = &h else {
        panic!("{h:?}")
    };
    let words: Vec<&str> = items.iter().map(|i| i.word.as_str()).collect();
    assert_eq!(
        words,
        ["entry", "interface", "neighbors", "traffic", "|", "<cr>"]
    );
    // IOS pads the words to one column.
    let text = h.render();
    assert!(
        text.starts_with("  entry      Information for specific neighbor entry\n"),
        "{text}"
    );
    assert!(text.contains("  |          Output modifiers\n"), "{text}");
    assert!(text.ends_with("  <cr>\n"), "{text}");
    // A number's range.
    let h = help(&c, &Mode::Config, "cdp timer ").expect("help");
    assert_eq!(
        h.render(),
        "  <5-254>  Rate at which CDP packets are sent (in  sec)\n"
    );
    let h = help(&c, &Mode::Config, "cdp holdtime ").expect("help");
    assert!(h.render().starts_with("  <10-255>  "), "{}", h.render());
    // Interfaces by name.
    let h = help(&c, &Mode::Config, "interface ").expect("help");
    let Help::Next(items) = h else { panic!() };
    assert_eq!(
        items.iter().map(|i| i.word.as_str()).collect::<Vec<_>>(),
        ["eth0", "sw-ph0", "sw-ph1"]
    );
    // Right after letters: the words that start with them.
    assert_eq!(
        help(&c, &Mode::Exec, "sh cdp n").expect("help"),
        Help::Words(vec!["neighbors".into()])
    );
    assert_eq!(
        help(&c, &Mode::Exec, "c").expect("help").render(),
        "clear  configure  \n"
    );
    assert_eq!(help(&c, &Mode::Exec, "zz"), Err(ParseError::Unrecognized));
    // Exec at the top level.
    let Help::Next(items) = help(&c, &Mode::Exec, "").expect("help") else {
        panic!()
    };
    assert!(items.iter().any(|i| i.word == "show"));
    assert!(!items.iter().any(|i| i.word == "<cr>"));
    // A bad word before the `?` gives the caret.
    assert_eq!(
        help(&c, &Mode::Exec, "show cdx "),
        Err(ParseError::Invalid { at: 5 })
    );
    // In config mode `do` reaches exec commands.
    let Help::Next(items) = help(&c, &Mode::Config, "do ").expect("help") else {
        panic!()
    };
    assert!(items.iter().any(|i| i.word == "show"));
}

#[test]
fn tab_completes_unique_words() {
    let c = ctx();
    assert_eq!(
        complete(&c, &Mode::Exec, "sh"),
        (0, vec!["show".to_string()])
    );
    assert_eq!(
        complete(&c, &Mode::Exec, "show cdp nei"),
        (9, vec!["neighbors".to_string()])
    );
    assert_eq!(
        complete(&c, &Mode::Exec, "c"),
        (0, vec!["clear".to_string(), "configure".to_string()])
    );
    assert_eq!(
        complete(&c, &Mode::Config, "interface sw-ph"),
        (10, vec!["sw-ph0".to_string(), "sw-ph1".to_string()])
    );
    assert_eq!(complete(&c, &Mode::Exec, "show "), (5, vec![]));
    assert_eq!(complete(&c, &Mode::Exec, "xyz"), (0, vec![]));
}

#[test]
fn output_modifiers() {
    let c = ctx();
    let p = parse(&c, &Mode::Exec, "sh run | sec cdp")
        .expect("parses")
        .expect("not empty");
    assert_eq!(p.command, Command::ShowRunningConfig);
    let f = p.filter.expect("filter");
    assert_eq!(f.kind, FilterKind::Section);
    let running = "hostname Switch\ncdp timer 30\ninterface eth0\n switchport voice vlan 100\ninterface sw-ph0\n switchport voice vlan 100\n no cdp enable\nlldp run\n";
    assert_eq!(
        f.apply(running),
        "cdp timer 30\ninterface sw-ph0\n switchport voice vlan 100\n no cdp enable\n"
    );
    let p = parse(&c, &Mode::Exec, "show cdp neighbors|include SEP")
        .expect("parses")
        .expect("not empty");
    assert_eq!(p.filter.expect("filter").kind, FilterKind::Include);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Nothing typed panics the parser, the help or the completion; an invalid-input
        /// caret always points inside the line.
        #[test]
        fn any_line_is_answered(line in "[ a-z0-9|*?-]{0,40}", m in 0u8..3) {
            let mode = match m { 0 => Mode::Exec, 1 => Mode::Config, _ => Mode::Interface("eth0".into()) };
            let c = ctx();
            if let Err(ParseError::Invalid { at }) = parse(&c, &mode, &line) {
                prop_assert!(at < line.len());
            }
            let _ = help(&c, &mode, &line);
            let (start, _) = complete(&c, &mode, &line);
            prop_assert!(start <= line.len());
        }

        /// Every full keyword path abbreviated to its shortest unique prefixes means the same.
        #[test]
        fn abbreviation_is_transparent(n in 5u16..=254) {
            let c = ctx();
            let full = parse(&c, &Mode::Config, &format!("cdp timer {n}")).expect("ok");
            let short = parse(&c, &Mode::Config, &format!("cd ti {n}")).expect("ok");
            prop_assert_eq!(full, short);
        }
    }
}
