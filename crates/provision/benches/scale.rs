//! Scale benchmark (not a test): import 50,000 phones with 2 lines each from a BAT CSV into
//! a fresh SQLite file, then build every file, then time the incremental paths.
//!
//! Run: `cargo bench -p provision --bench scale` (optionally `-- 20000` for another size).
//! Targets from the issue: import < 10 s, full rebuild < 5 s on the 2-core machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use provision::Provisioner;
use store::{bat, CmGroup, CmNode, DevicePatch, DevicePool, SqliteStore, Store};

/// CPU time (user + system, all threads) this process has used so far.
fn cpu() -> Duration {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv =
        |t: libc::timeval| Duration::from_micros(t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Wall time and CPU time of one step. The machine is shared: CPU time shows the work
/// done, wall time what an administrator waits.
struct Step {
    wall: Instant,
    cpu: Duration,
}

impl Step {
    fn start() -> Self {
        Step {
            wall: Instant::now(),
            cpu: cpu(),
        }
    }
    fn stop(&self) -> (Duration, Duration) {
        (self.wall.elapsed(), cpu().saturating_sub(self.cpu))
    }
}

fn secs((wall, cpu): (Duration, Duration)) -> String {
    format!(
        "wall {:>7.3} s  cpu {:>7.3} s",
        wall.as_secs_f64(),
        cpu.as_secs_f64()
    )
}

fn add(a: (Duration, Duration), b: (Duration, Duration)) -> (Duration, Duration) {
    (a.0 + b.0, a.1 + b.1)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(50_000)
        .min(200_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    let store = Arc::new(SqliteStore::open(&path).expect("open"));
    store.put_node(&CmNode::new("pb-a", "198.18.0.1")).unwrap();
    store.put_node(&CmNode::new("pb-b", "198.18.0.2")).unwrap();
    store
        .put_group(&CmGroup {
            name: "CMG-BENCH".into(),
            tftp_default: true,
            members: vec!["pb-a".into(), "pb-b".into()],
        })
        .unwrap();
    store
        .put_pool(&DevicePool {
            name: "DP-BENCH".into(),
            cm_group: "CMG-BENCH".into(),
            date_time_group: store::DEFAULT_DATETIME.into(),
            user_locale: "English_United_States".into(),
            network_locale: "United_States".into(),
            connection_monitor_duration: 120,
            sip_register_interval: store::DEFAULT_SIP_REGISTER_INTERVAL,
        })
        .unwrap();

    // The CSV an administrator would upload: mixed models and protocols, 2 lines each.
    let t = Step::start();
    let mut csv = String::with_capacity(n * 120);
    csv.push_str("MAC ADDRESS,DESCRIPTION,DEVICE TYPE,DEVICE PROTOCOL,DEVICE POOL,DIRECTORY NUMBER  1,DISPLAY  1,LINE TEXT LABEL  1,DIRECTORY NUMBER  2,DISPLAY  2,LINE TEXT LABEL  2\n");
    let models = [
        ("Cisco 7965", "SCCP"),
        ("Cisco 8851", "SIP"),
        ("Cisco 7942", "SIP"),
        ("Cisco 7841", "SIP"),
    ];
    for i in 0..n {
        let (model, proto) = models[i % models.len()];
        let dn1 = 1_000_000 + 2 * i;
        let dn2 = dn1 + 1;
        let _ = writeln!(
            csv,
            "SEP0A00{:08X},Desk {i},{model},{proto},DP-BENCH,{dn1},User {i},{dn1} User {i},{dn2},User {i} B,{dn2}",
            i
        );
    }
    let gen = t.stop();

    let t = Step::start();
    let parsed = bat::parse(csv.as_bytes()).expect("parse");
    let parse = t.stop();
    let t = Step::start();
    let report = store.import(&parsed.rows).expect("import");
    let import = t.stop();
    assert_eq!(report.devices_added, n);
    assert_eq!(report.lines_added, 2 * n);

    let t = Step::start();
    let snap = store.snapshot().unwrap();
    let snapshot = t.stop();
    drop(snap);

    let t = Step::start();
    let dyn_store: Arc<dyn Store> = store.clone();
    let prov = Provisioner::new(dyn_store).expect("provisioner");
    let startup = t.stop();
    let files = prov.file_count();
    let bytes: usize = prov.list().iter().map(|f| f.len()).sum();
    let stored: usize = prov.list().iter().map(|f| f.stored_len()).sum();

    let t = Step::start();
    let ch = prov.rebuild_all();
    let rebuild = t.stop();
    assert!(
        ch.content_changed.is_empty(),
        "nothing changed, nothing should differ"
    );

    let t = Step::start();
    prov.edit_device(
        "SEP0A0000000007",
        &DevicePatch {
            description: Some("moved".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let one = t.stop();

    let t = Step::start();
    prov.put_node(&CmNode::new("pb-b", "198.18.0.3")).unwrap();
    let pool_change = t.stop();
    let f = prov.get("sep0a0000000007.cnf.xml").unwrap();
    assert!(String::from_utf8_lossy(&f.bytes()).contains("198.18.0.3"));

    let mut out = Vec::new();
    let t = Step::start();
    let devices = store.devices().unwrap();
    let lines = store.lines().unwrap();
    bat::export(&devices, &lines, false, &mut out).unwrap();
    let export = t.stop();

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("phoneboot store/provision scale benchmark, {n} devices x 2 lines");
    println!(
        "  machine: {} cpus, load average {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  generate CSV ({} bytes)          {}",
        csv.len(),
        secs(gen)
    );
    println!("  parse + validate CSV              {}", secs(parse));
    println!("  import (one transaction)          {}", secs(import));
    println!(
        "  IMPORT TOTAL (parse + import)     {}   target < 10 s",
        secs(add(parse, import))
    );
    println!("  snapshot (read whole database)    {}", secs(snapshot));
    println!(
        "  startup: snapshot + build all     {}   ({files} files, {} MB, held in {} MB)",
        secs(startup),
        bytes / 1_000_000,
        stored / 1_000_000
    );
    println!(
        "  FULL REBUILD (render all, in RAM) {}   target < 5 s",
        secs(rebuild)
    );
    println!("  edit one device (1 file)          {}", secs(one));
    println!(
        "  node change ({} phones in pool)  {}",
        n,
        secs(pool_change)
    );
    println!("  export CSV                        {}", secs(export));
}
