//! Whole-cache invariants the sync tests compare between a split and an uninterrupted run.
use std::path::Path;

/// Counts and sums that must not depend on how a sync was split into runs.
pub const SYNC_INVARIANTS: &[&str] = &[
    "SELECT count(*) FROM users",
    "SELECT count(*) FROM devices",
    "SELECT count(*) FROM devices WHERE mde_id IS NOT NULL",
    "SELECT count(*) FROM user_devices",
    "SELECT coalesce(sum(logons), 0) FROM user_devices",
    "SELECT coalesce(sum(last_seen - first_seen), 0) FROM user_devices",
    "SELECT count(*) FROM traffic_daily",
    "SELECT coalesce(sum(transactions), 0) FROM traffic_daily",
    "SELECT coalesce(sum(bytes_up + bytes_down), 0) FROM traffic_daily",
    "SELECT coalesce(sum(transactions), 0) FROM app_day",
    "SELECT count(*) FROM app_user",
    "SELECT count(*) FROM app_device",
    "SELECT count(*) FROM domains",
    "SELECT count(*) FROM apps",
    "SELECT count(*) FROM apps WHERE mdca_score IS NOT NULL",
    "SELECT count(*) FROM alerts",
    "SELECT coalesce(sum(count), 0) FROM alerts",
    "SELECT coalesce(sum(identity_risk), 0) FROM users",
    "SELECT count(*) FROM user_summary",
    "SELECT count(*) FROM app_summary",
];

/// Each of [`SYNC_INVARIANTS`] and `extra` with its value in the cache at `db`.
pub fn snapshot(db: &Path, extra: &[&str]) -> Vec<(String, i64)> {
    let conn = shadowscope::store::raw_connection(db).unwrap();
    SYNC_INVARIANTS
        .iter()
        .chain(extra)
        .map(|sql| (sql.to_string(), conn.query_row(sql, [], |r| r.get(0)).unwrap()))
        .collect()
}
