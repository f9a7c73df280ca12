//! Schema migrations, one list for both backends: the SQL is written portably (plain types,
//! `INSERT ... ON CONFLICT`), and [`crate::sql::postgres_ddl`] maps SQLite's type names to
//! PostgreSQL's (`INTEGER` -> `BIGINT`, `BLOB` -> `BYTEA`). The version is the entry's index
//! + 1; a database at a newer version than this program knows is refused, never touched.

use crate::args;
use crate::error::StoreError;
use crate::sql::{postgres_ddl, Dialect, Tx};

/// Schema migrations, applied in order; the index + 1 is the schema version.
/// Never edit a released entry: append a new one.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the device model
    "
    CREATE TABLE date_time_groups (
        name TEXT PRIMARY KEY,
        date_template TEXT NOT NULL,
        time_zone TEXT NOT NULL,
        ntp_servers TEXT NOT NULL
    );
    CREATE TABLE cm_nodes (
        name TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        description TEXT NOT NULL,
        sccp_port INTEGER NOT NULL,
        sip_port INTEGER NOT NULL,
        sccp_tls_port INTEGER NOT NULL,
        sip_tls_port INTEGER NOT NULL
    );
    CREATE TABLE cm_groups (
        name TEXT PRIMARY KEY,
        tftp_default INTEGER NOT NULL
    );
    CREATE TABLE cm_group_members (
        group_name TEXT NOT NULL REFERENCES cm_groups(name) ON DELETE CASCADE,
        priority INTEGER NOT NULL,
        node_name TEXT NOT NULL REFERENCES cm_nodes(name),
        PRIMARY KEY (group_name, priority)
    );
    CREATE TABLE device_pools (
        name TEXT PRIMARY KEY,
        cm_group TEXT NOT NULL REFERENCES cm_groups(name),
        date_time_group TEXT NOT NULL REFERENCES date_time_groups(name),
        user_locale TEXT NOT NULL,
        network_locale TEXT NOT NULL,
        connection_monitor_duration INTEGER NOT NULL
    );
    CREATE TABLE lines (
        dn TEXT PRIMARY KEY,
        label TEXT NOT NULL,
        display_name TEXT NOT NULL,
        auth_user TEXT NOT NULL,
        auth_password TEXT NOT NULL,
        voicemail TEXT NOT NULL
    );
    CREATE TABLE devices (
        name TEXT PRIMARY KEY,
        mac TEXT NOT NULL UNIQUE,
        model TEXT NOT NULL,
        protocol TEXT NOT NULL,
        description TEXT NOT NULL,
        device_pool TEXT NOT NULL REFERENCES device_pools(name),
        button_template TEXT NOT NULL,
        softkey_template TEXT NOT NULL,
        owner TEXT NOT NULL,
        security_mode INTEGER NOT NULL,
        load_override TEXT NOT NULL,
        revision INTEGER NOT NULL
    );
    CREATE INDEX devices_pool ON devices(device_pool);
    CREATE TABLE device_lines (
        device TEXT NOT NULL REFERENCES devices(name) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        dn TEXT NOT NULL REFERENCES lines(dn),
        label TEXT NOT NULL,
        display TEXT NOT NULL,
        PRIMARY KEY (device, position)
    );
    CREATE INDEX device_lines_dn ON device_lines(dn);
    CREATE TABLE speed_dials (
        device TEXT NOT NULL REFERENCES devices(name) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        number TEXT NOT NULL,
        label TEXT NOT NULL,
        PRIMARY KEY (device, position)
    );
    CREATE TABLE model_loads (
        model TEXT NOT NULL,
        protocol TEXT NOT NULL,
        load_name TEXT NOT NULL,
        PRIMARY KEY (model, protocol)
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE dn_ranges (
        start_dn TEXT NOT NULL,
        end_dn TEXT NOT NULL,
        PRIMARY KEY (start_dn, end_dn)
    );
    CREATE TABLE dial_rules (
        position INTEGER PRIMARY KEY,
        pattern TEXT NOT NULL,
        timeout INTEGER NOT NULL,
        rewrite TEXT NOT NULL
    );
    CREATE TABLE rings (
        position INTEGER PRIMARY KEY,
        display_name TEXT NOT NULL,
        file_name TEXT NOT NULL
    );
    INSERT INTO date_time_groups VALUES ('CMLocal', 'M/D/Y', 'Greenwich Standard Time', '');
    INSERT INTO cm_groups VALUES ('Default', 1);
    INSERT INTO device_pools VALUES ('Default', 'Default', 'CMLocal', 'English_United_States', 'United_States', 120);
    INSERT INTO dial_rules VALUES (1, '911', 0, '');
    INSERT INTO dial_rules VALUES (2, '*', 5, '');
    INSERT INTO rings VALUES (1, 'Chirp 1', 'Chirp1.raw');
    INSERT INTO rings VALUES (2, 'Chirp 2', 'Chirp2.raw');
    ",
    // 2: a counter every configuration write bumps, so other processes sharing the file can
    // tell a configuration change from other tables' writes (DHCP leases, the journal).
    "
    CREATE TABLE config_generation (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        value INTEGER NOT NULL
    );
    INSERT INTO config_generation (id, value) VALUES (1, 0);
    ",
    // 3: fixed addresses for provisioned phones, handed out by phoneboot's DHCP.
    "
    CREATE TABLE dhcp_reservations (
        mac TEXT PRIMARY KEY,
        ip TEXT NOT NULL UNIQUE
    );
    ",
    // 4: opaque values kept with the cluster (the trust identity: keys and certificates).
    "
    CREATE TABLE cluster_blobs (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    ",
    // 5: the longest SIP registration a pool's phones are granted (CUCM's "SIP Station
    // KeepAlive Interval", 120 s), so a dead phone leaves RIS within two minutes.
    "
    ALTER TABLE device_pools ADD COLUMN sip_register_interval INTEGER NOT NULL DEFAULT 120;
    ",
    // 6: the firmware library: one row per load (.loads manifest), its images in fetch order.
    "
    CREATE TABLE firmware_loads (
        name TEXT PRIMARY KEY,
        protocol TEXT NOT NULL,
        models TEXT NOT NULL,
        manifest_file TEXT NOT NULL,
        complete INTEGER NOT NULL,
        package TEXT NOT NULL,
        signer TEXT NOT NULL,
        header TEXT NOT NULL,
        imported_at INTEGER NOT NULL
    );
    CREATE TABLE firmware_images (
        load_name TEXT NOT NULL REFERENCES firmware_loads(name) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        platform TEXT NOT NULL,
        file_name TEXT NOT NULL,
        size INTEGER,
        declared_size INTEGER,
        optional INTEGER NOT NULL,
        PRIMARY KEY (load_name, position)
    );
    ",
];

/// The version a database is at (0 = empty).
pub(crate) fn version(tx: &mut dyn Tx) -> Result<i64, StoreError> {
    tx.query_value::<Option<i64>>("SELECT MAX(version) FROM schema_migrations", args![])
        .map(|v| v.unwrap_or(0))
}

/// The newest schema version this program knows.
pub fn known_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database to [`known_version`] inside the caller's transaction (the caller
/// holds whatever lock keeps two processes from migrating at once).
pub(crate) fn migrate(tx: &mut dyn Tx) -> Result<(), StoreError> {
    let ddl = |tx: &mut dyn Tx, sql: &str| match tx.dialect() {
        Dialect::Sqlite => tx.batch(sql),
        Dialect::Postgres => tx.batch(&postgres_ddl(sql)),
    };
    ddl(
        tx,
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )?;
    let current = version(tx)?;
    let known = known_version();
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        ddl(tx, sql)?;
        tx.exec(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, CAST(CURRENT_TIMESTAMP AS TEXT))",
            args![i + 1],
        )?;
    }
    Ok(())
}
