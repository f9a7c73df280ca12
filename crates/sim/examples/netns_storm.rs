//! Storm benchmark without the full server: N phones boot in a throw-away namespace pair
//! against dnsmasq (DHCP + TFTP) and the in-process SCCP CallManager of the tests.
//! `cargo run --release -p sim --example netns_storm -- PHONES [CONCURRENCY] [RATE]`
//! (root). Prints the storm summary; see bench/sim/README.md. A benchmark tool: it panics on
//! setup errors.

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use journal::Step;
use sim::phone::{BootOptions, Env, PhoneSpec};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let conc: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let rate: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    if !common::can_run() {
        eprintln!("needs root, ip and dnsmasq");
        std::process::exit(2);
    }
    let lab = common::lab_sized(&[], "02:00:00:00:00:01".parse().unwrap(), false, n);
    let srv = lab.srv;
    std::fs::write(
        lab._dir.path().join("tftp/XMLDefault.cnf.xml"),
        common::xml_default(&[srv]),
    )
    .unwrap();
    let ifn = lab.phone_if.clone();
    let t0 = Instant::now();
    let out = common::in_ns(&lab.phone_ns, move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let opts = BootOptions {
                static_vlan: Some(4095),
                optional_files: false,
                ..Default::default()
            };
            let env = Env::open(&ifn, &ifn, opts, None).unwrap();
            let mix = sim::cli::parse_mix("7965:sccp,7941:sccp,7940").unwrap();
            let base: mac::Mac = "02:1b:54:00:00:00".parse().unwrap();
            let phones = (0..n)
                .map(|i| PhoneSpec {
                    mac: base.offset(i as u64),
                    model: mix[i % mix.len()].0,
                    protocol: mix[i % mix.len()].1,
                })
                .collect();
            let storm = sim::storm::run(
                Arc::clone(&env),
                sim::storm::StormConfig {
                    phones,
                    rate: (rate > 0.0).then_some(rate),
                    concurrency: conc,
                    progress: true,
                },
            )
            .await;
            let s = storm.summary();
            eprintln!("{}", env.raw.stats_line());
            let held = storm.counters.ok(Step::Registration);
            tokio::time::sleep(Duration::from_secs(1)).await;
            let stop = Instant::now();
            let finals = storm.stop().await;
            (s, held, finals.len(), stop.elapsed())
        })
    })
    .join()
    .unwrap();
    let (summary, held, finals, stop_time) = out;
    let _ = std::fs::copy(lab._dir.path().join("log"), "/tmp/netns_storm-dnsmasq.log");
    print!("{}", summary.render_text());
    println!(
        "held {held} registrations; {finals} phones unregistered in {:.2} s; total {:.2} s",
        stop_time.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
