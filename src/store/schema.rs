//! Versioned schema. `MIGRATIONS[i]` takes the cache from version `i` to `i + 1`; a cache newer
//! than the binary is refused rather than guessed at.

/// `PRAGMA application_id`: marks the file as a shadowscope cache ("SSCP").
pub const APPLICATION_ID: i64 = 0x5353_4350;

/// The names of one packed app roll-up (schema V6), users' or devices': the table by app and
/// its blob column, the table by owner (its blob column is `apps`) and its key column, and the
/// views that unpack each end.
#[derive(Clone, Copy)]
pub(super) struct UsageTables {
    pub by_app: &'static str,
    pub owners: &'static str,
    pub by_owner: &'static str,
    pub owner: &'static str,
    pub app_view: &'static str,
    pub owner_view: &'static str,
}

impl UsageTables {
    pub const USER: UsageTables = UsageTables {
        by_app: "app_user_packed",
        owners: "users",
        by_owner: "user_app_packed",
        owner: "user_id",
        app_view: "app_user",
        owner_view: "user_app",
    };
    pub const DEVICE: UsageTables = UsageTables {
        by_app: "app_device_packed",
        owners: "devices",
        by_owner: "device_app_packed",
        owner: "device_id",
        app_view: "app_device",
        owner_view: "device_app",
    };
}

pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

const V1: &str = r#"
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

CREATE TABLE users(
    id INTEGER PRIMARY KEY,
    upn TEXT NOT NULL UNIQUE,
    display_name TEXT,
    department TEXT,
    identity_risk INTEGER NOT NULL DEFAULT 0,
    risk_state TEXT,
    risk_detail TEXT,
    risk_updated INTEGER
) STRICT;
INSERT INTO users(id, upn, display_name) VALUES (0, '(unknown user)', '(unknown user)');

CREATE TABLE devices(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    os TEXT,
    device_group TEXT,
    exposure TEXT,
    mde_risk TEXT,
    last_seen INTEGER,
    mde_id TEXT
) STRICT;
INSERT INTO devices(id, name) VALUES (0, '(unknown device)');

CREATE TABLE user_devices(
    user_id INTEGER NOT NULL,
    device_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    logons INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(user_id, device_id, source)
) STRICT, WITHOUT ROWID;
CREATE INDEX user_devices_by_device ON user_devices(device_id, user_id);

CREATE TABLE apps(
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    vendor TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL,
    unknown INTEGER NOT NULL DEFAULT 0,
    catalog_score REAL NOT NULL,
    risk_override REAL,
    score REAL NOT NULL,
    tag INTEGER NOT NULL DEFAULT 0,
    tag_profile TEXT,
    mdca_score REAL,
    mdca_tag TEXT
) STRICT;

CREATE TABLE domains(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    app_id INTEGER NOT NULL
) STRICT;
CREATE INDEX domains_by_app ON domains(app_id);

CREATE TABLE traffic_daily(
    day INTEGER NOT NULL,
    domain_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    device_id INTEGER NOT NULL,
    bytes_up INTEGER NOT NULL,
    bytes_down INTEGER NOT NULL,
    transactions INTEGER NOT NULL,
    blocked INTEGER NOT NULL,
    PRIMARY KEY(day, domain_id, user_id, device_id)
) STRICT, WITHOUT ROWID;

-- Per-domain totals, so an app page lists its domains without scanning the facts.
CREATE TABLE domain_total(
    domain_id INTEGER PRIMARY KEY,
    bytes_up INTEGER NOT NULL,
    bytes_down INTEGER NOT NULL,
    transactions INTEGER NOT NULL
) STRICT;

CREATE TABLE app_day(
    app_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    bytes_up INTEGER NOT NULL,
    bytes_down INTEGER NOT NULL,
    transactions INTEGER NOT NULL,
    blocked INTEGER NOT NULL,
    PRIMARY KEY(app_id, day)
) STRICT, WITHOUT ROWID;

CREATE TABLE app_user(
    app_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    first_day INTEGER NOT NULL,
    last_day INTEGER NOT NULL,
    bytes_up INTEGER NOT NULL,
    bytes_down INTEGER NOT NULL,
    transactions INTEGER NOT NULL,
    PRIMARY KEY(app_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX app_user_by_user ON app_user(user_id, app_id);

CREATE TABLE app_device(
    app_id INTEGER NOT NULL,
    device_id INTEGER NOT NULL,
    first_day INTEGER NOT NULL,
    last_day INTEGER NOT NULL,
    bytes_up INTEGER NOT NULL,
    bytes_down INTEGER NOT NULL,
    transactions INTEGER NOT NULL,
    PRIMARY KEY(app_id, device_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX app_device_by_device ON app_device(device_id, app_id);

CREATE TABLE user_day(
    user_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    bytes_up INTEGER NOT NULL,
    bytes_down INTEGER NOT NULL,
    transactions INTEGER NOT NULL,
    PRIMARY KEY(user_id, day)
) STRICT, WITHOUT ROWID;

CREATE TABLE device_day(
    device_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    bytes_up INTEGER NOT NULL,
    bytes_down INTEGER NOT NULL,
    transactions INTEGER NOT NULL,
    PRIMARY KEY(device_id, day)
) STRICT, WITHOUT ROWID;

-- Summaries, rebuilt after each import / sync so views never aggregate raw rows per keystroke.
-- period = number of days ending at the cache's latest day; 0 = everything.
CREATE TABLE app_summary(
    period INTEGER NOT NULL,
    app_id INTEGER NOT NULL,
    users INTEGER NOT NULL,
    devices INTEGER NOT NULL,
    bytes_up INTEGER NOT NULL,
    bytes_down INTEGER NOT NULL,
    transactions INTEGER NOT NULL,
    first_day INTEGER NOT NULL,
    last_day INTEGER NOT NULL,
    PRIMARY KEY(period, app_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE user_summary(
    user_id INTEGER PRIMARY KEY,
    devices INTEGER NOT NULL,
    apps INTEGER NOT NULL,
    bytes_up INTEGER NOT NULL,
    bytes_down INTEGER NOT NULL,
    unsanctioned_up INTEGER NOT NULL,
    risky_up INTEGER NOT NULL,
    alerts INTEGER NOT NULL,
    score INTEGER NOT NULL,
    last_day INTEGER
) STRICT;

CREATE TABLE device_summary(
    device_id INTEGER PRIMARY KEY,
    users INTEGER NOT NULL,
    apps INTEGER NOT NULL,
    bytes_up INTEGER NOT NULL,
    bytes_down INTEGER NOT NULL,
    last_day INTEGER
) STRICT;

CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

CREATE TABLE profiles(
    name TEXT PRIMARY KEY,
    include_groups TEXT NOT NULL DEFAULT '',
    exclude_groups TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE alerts(
    id INTEGER PRIMARY KEY,
    policy TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    title TEXT NOT NULL,
    severity INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    user_id INTEGER,
    device_id INTEGER,
    app_id INTEGER,
    evidence TEXT NOT NULL DEFAULT '',
    count INTEGER NOT NULL DEFAULT 1,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    exported_version INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE UNIQUE INDEX alerts_open_key ON alerts(dedup_key) WHERE status = 'open';

CREATE TABLE audit(
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    old_value TEXT NOT NULL DEFAULT '',
    new_value TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    undone_by INTEGER
) STRICT;
-- Append-only: the only permitted change is marking an entry as undone by a later entry.
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
WHEN NEW.ts IS NOT OLD.ts OR NEW.actor IS NOT OLD.actor OR NEW.action IS NOT OLD.action
  OR NEW.target IS NOT OLD.target OR NEW.old_value IS NOT OLD.old_value
  OR NEW.new_value IS NOT OLD.new_value OR NEW.detail IS NOT OLD.detail
  OR OLD.undone_by IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;

CREATE TABLE imports(
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    format TEXT NOT NULL,
    committed_offset INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    imported INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 0,
    started INTEGER NOT NULL,
    finished INTEGER
) STRICT;

CREATE TABLE import_skips(
    import_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY(import_id, reason)
) STRICT, WITHOUT ROWID;

CREATE TABLE outbox(
    id INTEGER PRIMARY KEY,
    app_id INTEGER NOT NULL,
    op TEXT NOT NULL,
    indicator_value TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_by_app ON outbox(app_id, status);

CREATE TABLE sync_state(
    source TEXT PRIMARY KEY,
    watermark TEXT,
    last_run INTEGER,
    last_error TEXT
) STRICT;
"#;

/// Governance and sync: alerts remember every device a trigger involved (the row's `device_id`
/// is the first, for the pivot); apps remember when their tag was set (use before an
/// Unsanctioned tag broke no rule) and MDCA's own app id; MDE machine tags; the lookups the sync
/// sink and the outbox pusher make on every page.
const V2: &str = r#"
ALTER TABLE alerts ADD COLUMN devices TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN tag_since INTEGER;
ALTER TABLE devices ADD COLUMN mde_tags TEXT;
ALTER TABLE apps ADD COLUMN mdca_id TEXT;
CREATE INDEX apps_by_lower_name ON apps(lower(name));
CREATE INDEX alerts_by_key ON alerts(dedup_key);
CREATE INDEX outbox_by_status ON outbox(status, id);
-- The user summaries count each user's open alerts: without this, users × open alerts.
CREATE INDEX alerts_open_by_user ON alerts(user_id) WHERE status = 'open';
-- An app page lists its heaviest users and devices first: read them in order, not by sorting
-- every user of a popular app.
CREATE INDEX app_user_rank ON app_user(app_id, bytes_up DESC);
CREATE INDEX app_device_rank ON app_device(app_id, bytes_up DESC);
-- An app page shows its tag history: look it up by target, newest first.
CREATE INDEX audit_by_target ON audit(target, id);
-- Free custom tags ("labels") beside the sanction tag, e.g. "pilot", "legal-review".
CREATE TABLE app_labels(
    app_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    PRIMARY KEY(app_id, label)
) STRICT, WITHOUT ROWID;
"#;

/// Version 3: Defender for Cloud Apps' own counts for a discovered app (over its sync period),
/// shown beside ours: MDCA may see users and traffic (other streams, other appliances) that
/// this cache never imported.
const V3: &str = r#"
ALTER TABLE apps ADD COLUMN mdca_users INTEGER;
ALTER TABLE apps ADD COLUMN mdca_transactions INTEGER;
ALTER TABLE apps ADD COLUMN mdca_upload INTEGER;
ALTER TABLE apps ADD COLUMN mdca_download INTEGER;
ALTER TABLE apps ADD COLUMN mdca_last_seen INTEGER;
"#;

/// Version 4: daily facts packed one row per day × user × device (see `store::packed`): SQLite's
/// cost is per row, and a proxy log has ~15 destinations per such row. `traffic_daily` becomes
/// a view with the same columns, so every reader of the facts is unchanged. Needs the functions
/// of `store::packed::register` on the connection.
const V4: &str = r#"
CREATE TABLE traffic_packed(
    day INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    device_id INTEGER NOT NULL,
    facts BLOB NOT NULL,
    PRIMARY KEY(day, user_id, device_id)
) STRICT, WITHOUT ROWID;
INSERT INTO traffic_packed(day, user_id, device_id, facts)
    SELECT day, user_id, device_id, pack_facts(domain_id, bytes_up, bytes_down, transactions, blocked)
    FROM traffic_daily GROUP BY day, user_id, device_id;
DROP TABLE traffic_daily;
CREATE VIEW traffic_daily(day, domain_id, user_id, device_id, bytes_up, bytes_down, transactions, blocked) AS
    SELECT p.day, f.domain_id, p.user_id, p.device_id, f.bytes_up, f.bytes_down, f.transactions, f.blocked
    FROM traffic_packed p, facts_of(p.facts) f;
"#;

/// Version 5: the apps of each user and of each device as a JSON array of app ids, in place of
/// the `app_user` / `app_device` indexes by user and by device. Those indexes took their rows
/// in a different order from the tables' keys, so every roll-up write scattered inserts over
/// them: 0.1 s of the 0.22 s that a 1 M-line import spent writing its 153,351 app × user rows.
/// A user's list is read once per user page (`json_each`), then each app's row by its key.
const V5: &str = r#"
CREATE TABLE user_apps(user_id INTEGER PRIMARY KEY, apps TEXT NOT NULL) STRICT;
CREATE TABLE device_apps(device_id INTEGER PRIMARY KEY, apps TEXT NOT NULL) STRICT;
INSERT INTO user_apps(user_id, apps) SELECT user_id, json_group_array(app_id) FROM app_user GROUP BY user_id;
INSERT INTO device_apps(device_id, apps) SELECT device_id, json_group_array(app_id) FROM app_device GROUP BY device_id;
DROP INDEX app_user_by_user;
DROP INDEX app_device_by_device;
"#;

/// Version 6: the app × user and app × device roll-ups packed (see `store::packed`), from both
/// ends: one row per app listing its users (devices), and one per user (device) listing its
/// apps, in place of one row per pair and the V5 app lists. A 1 M-line import wrote 153,351 app
/// × user rows and 1,501 lists at SQLite's per-row cost; it now writes 210 + 1,501 rows. An app
/// page reads its app's row, a user page its user's row. `app_user` and `app_device` become
/// views with the old columns, and `user_app` / `device_app` show the other end.
const V6: &str = r#"
CREATE TABLE app_user_packed(app_id INTEGER PRIMARY KEY, users BLOB NOT NULL) STRICT;
CREATE TABLE user_app_packed(user_id INTEGER PRIMARY KEY, apps BLOB NOT NULL) STRICT;
CREATE TABLE app_device_packed(app_id INTEGER PRIMARY KEY, devices BLOB NOT NULL) STRICT;
CREATE TABLE device_app_packed(device_id INTEGER PRIMARY KEY, apps BLOB NOT NULL) STRICT;
INSERT INTO app_user_packed(app_id, users)
    SELECT app_id, pack_usage(user_id, first_day, last_day, bytes_up, bytes_down, transactions)
    FROM app_user GROUP BY app_id;
INSERT INTO user_app_packed(user_id, apps)
    SELECT user_id, pack_usage(app_id, first_day, last_day, bytes_up, bytes_down, transactions)
    FROM app_user GROUP BY user_id;
INSERT INTO app_device_packed(app_id, devices)
    SELECT app_id, pack_usage(device_id, first_day, last_day, bytes_up, bytes_down, transactions)
    FROM app_device GROUP BY app_id;
INSERT INTO device_app_packed(device_id, apps)
    SELECT device_id, pack_usage(app_id, first_day, last_day, bytes_up, bytes_down, transactions)
    FROM app_device GROUP BY device_id;
DROP TABLE app_user;
DROP TABLE app_device;
DROP TABLE user_apps;
DROP TABLE device_apps;
CREATE VIEW app_user(app_id, user_id, first_day, last_day, bytes_up, bytes_down, transactions) AS
    SELECT p.app_id, u.id, u.first_day, u.last_day, u.bytes_up, u.bytes_down, u.transactions
    FROM app_user_packed p, usage_of(p.users) u;
CREATE VIEW user_app(user_id, app_id, first_day, last_day, bytes_up, bytes_down, transactions) AS
    SELECT p.user_id, u.id, u.first_day, u.last_day, u.bytes_up, u.bytes_down, u.transactions
    FROM user_app_packed p, usage_of(p.apps) u;
CREATE VIEW app_device(app_id, device_id, first_day, last_day, bytes_up, bytes_down, transactions) AS
    SELECT p.app_id, u.id, u.first_day, u.last_day, u.bytes_up, u.bytes_down, u.transactions
    FROM app_device_packed p, usage_of(p.devices) u;
CREATE VIEW device_app(device_id, app_id, first_day, last_day, bytes_up, bytes_down, transactions) AS
    SELECT p.device_id, u.id, u.first_day, u.last_day, u.bytes_up, u.bytes_down, u.transactions
    FROM device_app_packed p, usage_of(p.apps) u;
"#;
