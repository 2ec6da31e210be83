//! Governance on the seeded demo organisation: tag transitions → outbox content, scoped
//! profiles, severities, the built-in policies' alerts, repeat triggers and SIEM export, and
//! block lists from the cache.
use shadowscope::actions::apply::{self, Actor, AlertFormat, SeverityScope};
use shadowscope::actions::blocklist::BlocklistFormat;
use shadowscope::actions::indicators::{IndicatorAction, OutboxOp, ScopedProfile};
use shadowscope::actions::policy::PolicyKind;
use shadowscope::catalog::Catalog;
use shadowscope::demo::{DemoOptions, DemoSummary, generate};
use shadowscope::domain::{AppId, Day, Severity, Tag};
use shadowscope::store::Store;
use shadowscope::store::governance::AlertStatus;
use shadowscope::store::write::{Counters, FactBatch, FactKey};

const NOW: i64 = 1_764_000_000;

fn demo() -> (Store, DemoSummary) {
    let store = Store::open_in_memory().unwrap();
    let s = generate(&store, Catalog::builtin(), &DemoOptions { users: 120, days: 40, ..Default::default() }).unwrap();
    (store, s)
}

fn actor() -> Actor<'static> {
    Actor { name: "analyst", now: NOW }
}

fn app(store: &Store, name: &str) -> AppId {
    store.app_by_key_or_name(name).unwrap().unwrap_or_else(|| panic!("{name} not in the demo cache"))
}

/// The outbox operations queued after row `after`, decoded.
fn outbox_after(store: &Store, after: i64) -> Vec<OutboxOp> {
    store.outbox_since(after).unwrap().into_iter().map(|(_, op)| op).collect()
}

fn last_outbox_id(store: &Store) -> i64 {
    store.outbox_since(0).unwrap().last().map(|(id, _)| *id).unwrap_or(0)
}

fn tag(store: &Store, a: AppId, t: Tag, profile: Option<&str>) -> Vec<OutboxOp> {
    let mark = last_outbox_id(store);
    apply::tag_apps(store, Catalog::builtin(), &[a], t, profile, "test", actor()).unwrap();
    outbox_after(store, mark)
}

fn catalog_domains(key: &str) -> Vec<String> {
    let c = Catalog::builtin();
    let mut d: Vec<String> =
        c.get(c.find_by_id(key).unwrap()).domains.iter().filter(|d| !d.contains(':')).cloned().collect();
    d.sort();
    d.dedup();
    d
}

#[test]
fn every_tag_transition_writes_the_right_indicators() {
    let (store, s) = demo();
    let deepseek = app(&store, &s.genai_app);
    let domains = catalog_domains("deepseek");
    assert!(!domains.is_empty());

    // none → unsanctioned: one Block per catalog domain, all devices, global severity.
    let ops = tag(&store, deepseek, Tag::Unsanctioned, None);
    assert_eq!(ops.len(), domains.len());
    for (op, d) in ops.iter().zip(&domains) {
        let OutboxOp::Upsert(spec) = op else { panic!("{op:?}") };
        assert_eq!(&spec.indicator_value, d);
        assert_eq!(spec.indicator_type, "DomainName");
        assert_eq!(spec.action, IndicatorAction::Block);
        assert_eq!(spec.title, "Unsanctioned cloud app access was blocked");
        assert_eq!(spec.severity, Severity::Medium);
        assert!(spec.rbac_group_names.is_empty(), "no profile = every device");
    }
    // Re-tagging the same way queues nothing.
    assert!(tag(&store, deepseek, Tag::Unsanctioned, None).is_empty());

    // unsanctioned → monitored: the same values become Warn (an update, never a gap).
    let ops = tag(&store, deepseek, Tag::Monitored, None);
    assert!(ops.iter().all(|o| matches!(o, OutboxOp::Upsert(s) if s.action == IndicatorAction::Warn
        && s.title == "Connection to a risky cloud application was detected")));

    // monitored → sanctioned: every indicator is deleted.
    let ops = tag(&store, deepseek, Tag::Sanctioned, None);
    let deleted: Vec<&str> = ops
        .iter()
        .map(|o| match o {
            OutboxOp::Delete { indicator_value, indicator_type } => {
                assert_eq!(indicator_type, "DomainName");
                indicator_value.as_str()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(deleted, domains.iter().map(String::as_str).collect::<Vec<_>>());

    // sanctioned → none: nothing to remove twice.
    assert!(tag(&store, deepseek, Tag::None, None).is_empty());

    // A scoped profile "all but the kiosks": the groups are every known group minus Kiosks.
    let groups = store.device_groups().unwrap();
    assert!(groups.iter().any(|g| g == "Kiosks"), "{groups:?}");
    let p = ScopedProfile { name: "no-kiosks".into(), include_groups: vec![], exclude_groups: vec!["Kiosks".into()] };
    store.save_profile(&p, "analyst", NOW).unwrap();
    let ops = tag(&store, deepseek, Tag::Unsanctioned, Some("no-kiosks"));
    let expected: Vec<String> = groups.iter().filter(|g| *g != "Kiosks").cloned().collect();
    for op in &ops {
        let OutboxOp::Upsert(spec) = op else { panic!("{op:?}") };
        assert_eq!(spec.rbac_group_names, expected);
    }
    // An unknown profile is refused, nothing changes.
    assert!(apply::tag_apps(&store, Catalog::builtin(), &[deepseek], Tag::None, Some("nope"), "t", actor()).is_err());
    assert_eq!(store.app_tag(deepseek).unwrap(), Tag::Unsanctioned);

    // A new global severity re-queues the enforcing apps' indicators with it.
    let mark = last_outbox_id(&store);
    let o = apply::set_severity(&store, Catalog::builtin(), SeverityScope::Global, Severity::High, actor()).unwrap();
    assert_eq!(o.old, None);
    let ops = outbox_after(&store, mark);
    assert_eq!(o.requeued, ops.len());
    assert!(ops.iter().any(|op| matches!(op, OutboxOp::Upsert(s) if s.indicator_value == "deepseek.com"
        && s.severity == Severity::High && s.rbac_group_names == expected)));

    // Every change is in the audit log with who, old → new, the profile and the reason.
    let audit = store.audit_entries(Some("deepseek"), 20).unwrap();
    let trail: Vec<(&str, &str)> = audit.iter().rev().map(|e| (e.old_value.as_str(), e.new_value.as_str())).collect();
    assert!(trail.ends_with(&[
        ("none", "unsanctioned"),
        ("unsanctioned", "unsanctioned"),
        ("unsanctioned", "monitored"),
        ("monitored", "sanctioned"),
        ("sanctioned", "none"),
        ("none", "unsanctioned"),
    ]));
    assert!(audit[0].detail.contains("\"profile\":\"no-kiosks\""), "{}", audit[0].detail);
}

#[test]
fn the_planted_stories_raise_exactly_their_alerts() {
    let (store, s) = demo();
    let mega = app(&store, &s.exfil_app);
    let deepseek = app(&store, &s.genai_app);
    let exfil = store.user_by_upn(&s.exfil_user).unwrap().unwrap();
    let mut keys: Vec<String> =
        store.alerts_for_export(true).unwrap().into_iter().map(|a| a.record.key).collect::<Vec<_>>();
    keys.sort();
    let mut want = vec![
        format!("unsanctioned-app-used:{exfil}:{mega}"),
        format!("anomalous-upload:{exfil}:{mega}"),
        format!("risky-user-risky-app:{exfil}:{mega}"),
        format!("new-generative-ai-app:-:{deepseek}"),
    ];
    want.sort();
    assert_eq!(keys, want);
    let alerts = store.alerts().unwrap();
    let upload = alerts.iter().find(|a| a.policy == "anomalous-upload").unwrap();
    assert!(upload.evidence.contains(&s.exfil_user) && upload.evidence.contains("above the threshold"));
    assert_eq!(upload.severity, Severity::Medium);
    let used = alerts.iter().find(|a| a.policy == "unsanctioned-app-used").unwrap();
    assert!(used.evidence.contains(&s.exfil_devices[0]) && used.evidence.contains(&s.exfil_devices[1]));

    // Evaluating the same data again changes nothing.
    assert_eq!(apply::evaluate_alerts(&store, None).unwrap(), apply::AlertRun::default());

    // A per-policy severity re-labels exactly that policy's open alerts.
    let scope = SeverityScope::Policy(PolicyKind::AnomalousUpload);
    let o = apply::set_severity(&store, Catalog::builtin(), scope, Severity::High, actor()).unwrap();
    assert_eq!((o.relabelled, o.requeued), (1, 0));
    let by_policy = |p: &str| store.alerts().unwrap().into_iter().find(|a| a.policy == p).unwrap().severity;
    assert_eq!(by_policy("anomalous-upload"), Severity::High);
    assert_eq!(by_policy("unsanctioned-app-used"), Severity::Medium);
}

#[test]
fn repeat_triggers_update_the_open_alert_and_reach_the_siem() {
    let (store, s) = demo();
    let (text, n) = apply::export_alerts(&store, AlertFormat::Json, false, NOW).unwrap();
    assert_eq!(n, 4);
    assert!(text.lines().all(|l| l.contains("\"event\":\"new\"")), "{text}");
    // Nothing changed: nothing to send.
    assert_eq!(apply::export_alerts(&store, AlertFormat::Json, false, NOW).unwrap().1, 0);

    // The risky user uses MEGA again the next day: the open alerts are bumped, not duplicated.
    let mega = app(&store, &s.exfil_app);
    let exfil = store.user_by_upn(&s.exfil_user).unwrap().unwrap();
    let device = store.device_by_name(&s.exfil_devices[0]).unwrap().unwrap();
    let (domain, host_app) = store.intern_host("mega.nz", Catalog::builtin()).unwrap();
    assert_eq!(host_app, mega);
    let next = Day(store.latest_day().unwrap().unwrap().0 + 1);
    let mut batch = FactBatch::default();
    let key = FactKey { day: next, app: mega, domain, user: exfil, device };
    batch.add_fact(key, &Counters { bytes_up: 5_000_000, bytes_down: 100_000, transactions: 10, blocked: 0 });
    store.in_transaction(|s| s.apply_batch(&batch)).unwrap();
    store.refresh_summaries().unwrap();
    let before = store.alerts().unwrap().len();
    let run = apply::evaluate_alerts(&store, None).unwrap();
    assert_eq!(run.new, 0);
    assert!(run.updated >= 2, "{run:?}");
    assert_eq!(store.alerts().unwrap().len(), before);
    let used = store.alerts().unwrap().into_iter().find(|a| a.policy == "unsanctioned-app-used").unwrap();
    assert_eq!(Day::from_unix(used.last_seen), next);

    // The updates are exported as such, in CEF too.
    let (cef, n) = apply::export_alerts(&store, AlertFormat::Cef, false, NOW).unwrap();
    assert_eq!(n, run.updated);
    assert!(cef.lines().all(|l| l.starts_with("CEF:0|shadowscope|") && l.contains(" act=update ")), "{cef}");
    assert!(cef.contains(&format!("suser={}", s.exfil_user)));
}

#[test]
fn resolving_and_dismissing_is_audited_and_reversible() {
    let (store, _) = demo();
    let first = store.alerts().unwrap()[0].clone();
    let id = shadowscope::domain::AlertId(first.id);
    assert_eq!(apply::set_alert_status(&store, id, AlertStatus::Resolved, actor()).unwrap(), AlertStatus::Open);
    let row = store.alerts().unwrap().into_iter().find(|a| a.id == first.id).unwrap();
    assert_eq!(row.status, "resolved");
    let audit = &store.audit_entries(None, 1).unwrap()[0];
    assert_eq!(
        (audit.action.as_str(), audit.old_value.as_str(), audit.new_value.as_str()),
        ("alert", "open", "resolved")
    );
    // Resolved alerts leave the open set: the next trigger opens a fresh one.
    assert!(store.open_policy_alerts().unwrap().iter().all(|a| a.id != id));
    apply::set_alert_status(&store, id, AlertStatus::Dismissed, actor()).unwrap();
    apply::set_alert_status(&store, id, AlertStatus::Open, actor()).unwrap();
    assert!(store.open_policy_alerts().unwrap().iter().any(|a| a.id == id));
}

#[test]
fn block_lists_come_from_the_unsanctioned_apps_in_the_cache() {
    let (store, s) = demo();
    let mega = catalog_domains("mega");
    let squid = apply::blocklist(&store, Catalog::builtin(), BlocklistFormat::Squid).unwrap();
    for d in &mega {
        assert!(squid.text.contains(&format!("dstdomain .{d}")), "{d} missing:\n{}", squid.text);
    }
    // Sanctioned and monitored apps are never on a block list.
    assert!(!squid.text.contains("dropbox") && !squid.text.contains("office"), "{}", squid.text);
    for f in BlocklistFormat::ALL {
        let b = apply::blocklist(&store, Catalog::builtin(), f).unwrap();
        assert_eq!(b.domains, mega.len(), "{f:?}");
        assert!(b.rejected.is_empty(), "{f:?}: {:?}", b.rejected);
    }
    // Tagging another app adds its domains.
    let deepseek = app(&store, &s.genai_app);
    tag(&store, deepseek, Tag::Unsanctioned, None);
    let hosts = apply::blocklist(&store, Catalog::builtin(), BlocklistFormat::Hosts).unwrap();
    assert!(hosts.text.contains("0.0.0.0 deepseek.com"), "{}", hosts.text);
}

#[test]
fn the_reduced_policy_input_finds_what_the_full_one_does() {
    use shadowscope::actions::policy::{PolicyInput, PolicySettings, evaluate};
    let (store, _) = demo();
    // Make the data interesting for every policy: a high-risk user's apps, a second
    // unsanctioned app, and a low floor so many pairs are upload candidates.
    let dropbox = app(&store, "Dropbox");
    tag(&store, dropbox, Tag::Unsanctioned, None);
    let latest = store.latest_day().unwrap().unwrap();
    for floor in [100 * 1024 * 1024, 1_000_000, 0] {
        let settings = PolicySettings { upload_floor_bytes: floor, ..PolicySettings::default() };
        let history_from = Day(latest.0 - settings.lookback_days - settings.baseline_days);
        let window_from = Day(latest.0 - settings.lookback_days + 1);
        let input = |usage| PolicyInput {
            apps: store.policy_apps().unwrap(),
            usage,
            users: store.policy_users().unwrap(),
            severities: store.policy_severities().unwrap(),
            settings: settings.clone(),
            device_names: Default::default(),
        };
        let full = evaluate(&input(store.usage_facts(history_from, None).unwrap()), latest);
        let reduced = evaluate(&input(store.policy_usage(window_from, history_from, floor).unwrap()), latest);
        assert!(!full.is_empty());
        assert_eq!(full, reduced, "floor {floor}");
    }
}
