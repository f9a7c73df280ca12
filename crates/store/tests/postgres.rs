//! What only the PostgreSQL backend has: use from inside tokio, libpq multi-host URLs,
//! reconnecting after the server went away, and each start-up refusal as one clear line.
//! Every test starts its own private server; a machine without one fails, never skips.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use store::pgserver::{PgOptions, PgServer};
use store::*;

fn server(tcp: bool) -> PgServer {
    let opts = PgOptions {
        listen: tcp.then(|| IpAddr::from([127, 0, 0, 1])),
        ..PgOptions::default()
    };
    PgServer::start_temp(&opts).unwrap_or_else(|e| panic!("this test needs a real PostgreSQL: {e}"))
}

fn line(dn: &str) -> Line {
    Line {
        dn: dn.into(),
        ..Default::default()
    }
}

#[test]
fn works_when_called_from_tokio_tasks_of_either_runtime_flavour() {
    let pg = server(false);
    pg.create_db("pb").unwrap();
    let url = pg.socket_url("pb");
    let store = std::sync::Arc::new(PgStore::open(&url).unwrap());
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let s = store.clone();
    multi.block_on(async move {
        let t = tokio::spawn(async move { s.add_line(&line("1000")).map(|l| l.dn) });
        assert_eq!(t.await.unwrap().unwrap(), "1000");
    });
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let s = store.clone();
    current.block_on(async move {
        assert_eq!(s.lines().unwrap().len(), 1);
        // Opening and dropping a store inside a task must not panic either.
        let other = PgStore::open(&url).unwrap();
        assert_eq!(other.lines().unwrap().len(), 1);
        drop(other);
    });
}

#[test]
fn a_multi_host_url_skips_a_dead_host_and_a_read_only_one() {
    let pg = server(true);
    pg.create_db("pb").unwrap();
    // A port nobody listens on, then the real server.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let url = format!(
        "postgres://postgres@127.0.0.1:{dead_port},127.0.0.1:{}/pb?target_session_attrs=read-write&connect_timeout=2",
        pg.port()
    );
    let s = PgStore::open(&url).unwrap();
    s.add_line(&line("1000")).unwrap();
    assert_eq!(s.lines().unwrap().len(), 1);

    // A database in read-only mode is what a standby looks like to target_session_attrs.
    pg.psql(
        "postgres",
        "ALTER DATABASE pb SET default_transaction_read_only = on",
    )
    .unwrap();
    let only_ro = format!(
        "postgres://postgres@127.0.0.1:{}/pb?target_session_attrs=read-write&connect_timeout=2",
        pg.port()
    );
    let e = PgStore::open(&only_ro).unwrap_err().to_string();
    assert!(
        e.contains("database unavailable") && e.contains("cannot connect"),
        "{e}"
    );
}

#[test]
fn the_store_reconnects_after_the_server_restarts() {
    let mut pg = server(false);
    pg.create_db("pb").unwrap();
    let s = PgStore::open(&pg.socket_url("pb")).unwrap();
    s.add_line(&line("1000")).unwrap();
    pg.stop("immediate").unwrap();
    let e = s.add_line(&line("1001")).unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
    assert!(e.to_string().starts_with("database unavailable"), "{e}");
    pg.start().unwrap();
    s.add_line(&line("1001")).unwrap();
    assert_eq!(s.lines().unwrap().len(), 2, "nothing lost, nothing doubled");
}

#[test]
fn start_up_refusals_are_one_clear_line() {
    let pg = server(true);
    pg.create_db("pb").unwrap();
    pg.psql("postgres", "CREATE ROLE pbuser LOGIN PASSWORD 'right'")
        .unwrap();
    pg.psql("pb", "GRANT ALL ON SCHEMA public TO pbuser")
        .unwrap();
    let port = pg.port();
    let one_line = |e: &StoreError| {
        let t = e.to_string();
        assert!(!t.contains('\n'), "one line: {t}");
        assert!(!t.contains("wrong"), "the password never appears: {t}");
        t
    };

    let e = PgStore::open("postgres://pbuser:wrong@127.0.0.1:notaport/pb").unwrap_err();
    let t = one_line(&e);
    assert!(
        t.starts_with("database.url: expected a PostgreSQL connection string"),
        "{t}"
    );

    let e = PgStore::open(&format!("postgres://pbuser:wrong@127.0.0.1:{port}/pb")).unwrap_err();
    let t = one_line(&e);
    assert!(
        t.contains("password authentication failed for user \"pbuser\""),
        "{t}"
    );

    let e = PgStore::open(&format!("postgres://pbuser:right@127.0.0.1:{port}/nodb")).unwrap_err();
    let t = one_line(&e);
    assert!(t.contains("database \"nodb\" does not exist"), "{t}");

    // The right password works; then a newer program migrates further than this one knows.
    let url = format!("postgres://pbuser:right@127.0.0.1:{port}/pb");
    let s = PgStore::open(&url).unwrap();
    let known = s.schema_version().unwrap();
    drop(s);
    pg.psql(
        "pb",
        &format!(
            "INSERT INTO schema_migrations VALUES ({}, 'future')",
            known + 1
        ),
    )
    .unwrap();
    let e = PgStore::open(&url).unwrap_err();
    let t = one_line(&e);
    assert_eq!(
        t,
        format!(
            "database schema is at version {}, newer than this program ({known})",
            known + 1
        )
    );
}

/// Another node's commit wakes this node's change feed at once (LISTEN/NOTIFY), a refused
/// write does not, and after the server restarts the feed moves again on reconnect so the
/// node catches up on what it missed.
#[test]
fn commits_of_another_node_wake_the_change_feed() {
    let mut pg = server(false);
    pg.create_db("pb").unwrap();
    let url = pg.socket_url("pb");
    let writer = PgStore::open(&url).unwrap();
    let reader = PgStore::open(&url).unwrap();
    let mut feed = reader.change_feed().expect("PostgreSQL has a change feed");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let wait = |feed: &mut tokio::sync::watch::Receiver<u64>, limit_ms: u64| {
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(limit_ms), feed.changed())
                .await
                .is_ok()
        })
    };
    assert!(
        wait(&mut feed, 5000),
        "the listener connects (first wake-up)"
    );
    let before = reader.external_change_token().unwrap();

    let mut latencies = Vec::new();
    for i in 0..20 {
        let t = std::time::Instant::now();
        writer.add_line(&line(&format!("{}", 1000 + i))).unwrap();
        assert!(wait(&mut feed, 2000), "write {i} woke the other store");
        latencies.push(t.elapsed());
    }
    latencies.sort();
    eprintln!(
        "commit -> other connection woken: p50 {:?}, max {:?} (includes the commit)",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    assert!(reader.external_change_token().unwrap() > before);

    assert!(writer.add_line(&line("1000")).is_err());
    assert!(!wait(&mut feed, 300), "a rolled-back write notifies nobody");

    pg.stop("fast").unwrap();
    pg.start().unwrap();
    assert!(
        wait(&mut feed, 10_000),
        "reconnecting wakes the feed for a catch-up"
    );
}
