//! The database schema and its migrations, keyed by `PRAGMA user_version`.

use rusqlite::Connection;

use super::error::{Error, Result};

/// Each entry moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE pools (
    name         TEXT PRIMARY KEY,
    driver       TEXT NOT NULL,
    spec         TEXT NOT NULL,          -- cairn_backends::PoolSpec as JSON
    created_at   TEXT NOT NULL,          -- RFC 3339 UTC
    mounted_boot TEXT                    -- boot id at the last mount_pool
);
CREATE TABLE images (
    fingerprint  TEXT PRIMARY KEY,       -- sha256 of the image file, lowercase hex
    format       TEXT NOT NULL,          -- "unified" or "rootfs"
    compression  TEXT NOT NULL,
    size         INTEGER NOT NULL,       -- bytes of the image file
    metadata     TEXT NOT NULL,          -- ImageMetadata as JSON
    imported_at  TEXT NOT NULL
);
CREATE TABLE image_aliases (
    alias        TEXT PRIMARY KEY,
    fingerprint  TEXT NOT NULL REFERENCES images(fingerprint) ON DELETE CASCADE
);
CREATE TABLE image_volumes (
    fingerprint  TEXT NOT NULL REFERENCES images(fingerprint) ON DELETE CASCADE,
    pool         TEXT NOT NULL REFERENCES pools(name),
    volume       TEXT NOT NULL,
    PRIMARY KEY (fingerprint, pool)
);
CREATE TABLE containers (
    name         TEXT PRIMARY KEY,
    pool         TEXT NOT NULL REFERENCES pools(name),
    image        TEXT REFERENCES images(fingerprint),
    volume       TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE TABLE snapshot_labels (
    container    TEXT NOT NULL REFERENCES containers(name) ON DELETE CASCADE ON UPDATE CASCADE,
    snapshot     TEXT NOT NULL,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (container, snapshot, key)
);
"#,
    r#"
CREATE TABLE snapshot_meta (
    container    TEXT NOT NULL REFERENCES containers(name) ON DELETE CASCADE ON UPDATE CASCADE,
    snapshot     TEXT NOT NULL,
    origin       TEXT NOT NULL,          -- "manual" or "policy"
    taken_at     TEXT,                   -- cairn's clock when it took the snapshot
    expires_at   TEXT,                   -- RFC 3339 UTC; pruned from then on
    held         INTEGER NOT NULL DEFAULT 0,
    hold_reason  TEXT,
    held_at      TEXT,
    PRIMARY KEY (container, snapshot)
);
CREATE TABLE policies (
    target       TEXT PRIMARY KEY,       -- a container name, or "*" for all
    schedule     TEXT,                   -- cron line or @daily-style; NULL: none
    keep         TEXT NOT NULL,          -- retention rules, canonical text
    grid         TEXT,                   -- zrepl grid; NULL: none
    pre_hook     TEXT,
    post_hook    TEXT,
    updated_at   TEXT NOT NULL
);
CREATE TABLE policy_runs (
    container    TEXT PRIMARY KEY REFERENCES containers(name) ON DELETE CASCADE ON UPDATE CASCADE,
    last_run     TEXT NOT NULL
);
CREATE TABLE prune_log (                 -- outlives the containers it names
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    container    TEXT NOT NULL,
    snapshot     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    rule         TEXT NOT NULL
);
"#,
    r#"
-- A container's own policy follows it through a rename and goes with it on delete.
CREATE TRIGGER policy_follows_container_rename AFTER UPDATE OF name ON containers
BEGIN
    UPDATE policies SET target = NEW.name WHERE target = OLD.name;
END;
CREATE TRIGGER policy_goes_with_container AFTER DELETE ON containers
BEGIN
    DELETE FROM policies WHERE target = OLD.name;
END;
"#,
    r#"
-- Before the triggers above, a renamed or deleted container left its policy behind.
DELETE FROM policies WHERE target <> '*' AND target NOT IN (SELECT name FROM containers);
"#,
];

/// Brings the schema to the newest version, one transaction per step.
pub fn migrate(conn: &Connection) -> Result<()> {
    let version: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(|e| Error::db("read schema version", e))? as usize;
    if version > MIGRATIONS.len() {
        return Err(Error::corrupt(
            "schema",
            format!(
                "version {version} is newer than this cairn knows ({}); upgrade cairn",
                MIGRATIONS.len()
            ),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let step = format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        );
        if let Err(e) = conn.execute_batch(&step) {
            let _ = conn.execute_batch("ROLLBACK");
            // Another process may have migrated at the same time.
            let now: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap_or(0);
            if now as usize > i {
                continue;
            }
            return Err(Error::db(format!("migrate schema to version {}", i + 1), e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(conn: &Connection) -> Vec<String> {
        let mut st = conn
            .prepare("SELECT target FROM policies ORDER BY target")
            .unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn migration_4_drops_orphan_policies_and_keeps_live_ones() {
        let conn = Connection::open_in_memory().unwrap();
        // A database at version 3, with the policy of a container renamed or deleted
        // before the triggers of migration 3 existed.
        for sql in &MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "PRAGMA user_version = 3;
             INSERT INTO pools VALUES ('default', 'dir', '{}', '2030-01-01T00:00:00Z', NULL);
             INSERT INTO containers VALUES ('live', 'default', NULL, 'v', '2030-01-01T00:00:00Z');
             INSERT INTO policies (target, keep, updated_at)
                 VALUES ('*', 'last=1', 't'), ('live', 'last=2', 't'), ('gone', 'last=3', 't');",
        )
        .unwrap();
        assert_eq!(targets(&conn), ["*", "gone", "live"]);
        migrate(&conn).unwrap();
        assert_eq!(targets(&conn), ["*", "live"]);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
    }
}
