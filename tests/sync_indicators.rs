//! Push path: MDE URL/domain indicators, idempotent ensure, list with $filter, delete.
use shadowscope::domain::Severity;
use shadowscope::sync::fake_tenant::{FakeTenantOptions, FaultKind, FaultRule, serve_fake_tenant};
use shadowscope::sync::{IndicatorAction, IndicatorClient, IndicatorKind, IndicatorRequest, SyncError};
use std::io::Write;

fn req(value: &str, kind: IndicatorKind, action: IndicatorAction) -> IndicatorRequest {
    IndicatorRequest {
        value: value.into(),
        kind,
        action,
        title: format!("shadowscope: {value}"),
        description: "Unsanctioned by the Shadow IT review".into(),
        severity: Severity::Medium,
        rbac_group_names: vec!["Finance".into(), "HR".into()],
        generate_alert: false,
        expiration_unix: Some(1_900_000_000),
        educate_url: Some("https://intranet.example/approved-apps".into()),
    }
}

#[tokio::test]
async fn ensure_is_idempotent_and_list_filter_delete_work() {
    let o = FakeTenantOptions::default();
    let fake = serve_fake_tenant(o.clone()).await.unwrap();
    let mut sf = tempfile::NamedTempFile::new().unwrap();
    write!(sf, "{}", o.client_secret).unwrap();
    let mut cfg = fake.sync_config(sf.path());
    cfg.windows.mde_page_size = 2; // force $skip paging of the list

    let client = IndicatorClient::new(&cfg).unwrap();
    // Someone else already blocks mega.nz.
    client.create(&req("mega.nz", IndicatorKind::DomainName, IndicatorAction::Block)).await.unwrap();
    let wanted = vec![
        req("mega.nz", IndicatorKind::DomainName, IndicatorAction::Block),
        req("wetransfer.com", IndicatorKind::DomainName, IndicatorAction::Block),
        req("https://pastebin.com/raw", IndicatorKind::Url, IndicatorAction::Warn),
        req("chat.example.ai", IndicatorKind::DomainName, IndicatorAction::Warn),
    ];
    let r1 = client.ensure(&wanted).await.unwrap();
    assert_eq!(r1.created.len(), 3);
    assert_eq!(r1.already_present.len(), 1);
    assert_eq!(r1.already_present[0].value, "mega.nz");
    let before = fake.requests().iter().filter(|r| r.method == "POST").count();
    let r2 = client.ensure(&wanted).await.unwrap();
    assert!(r2.created.is_empty());
    assert_eq!(r2.already_present.len(), 4);
    assert_eq!(fake.requests().iter().filter(|r| r.method == "POST").count(), before);
    assert_eq!(fake.indicators().len(), 4);

    // The body carries what MDE expects.
    let stored = fake.indicators();
    let warn = stored.iter().find(|i| i["indicatorValue"] == "https://pastebin.com/raw").unwrap();
    assert_eq!(warn["action"], "Warn");
    assert_eq!(warn["indicatorType"], "Url");
    assert_eq!(warn["rbacGroupNames"], serde_json::json!(["Finance", "HR"]));
    assert_eq!(warn["severity"], "Medium");
    assert_eq!(warn["educateUrl"], "https://intranet.example/approved-apps");
    assert!(warn["expirationTime"].as_str().unwrap().starts_with("2030-"));

    // List is filtered server-side and paged with $skip.
    let all = client.list(None).await.unwrap();
    assert_eq!(all.len(), 4);
    let found = client.find("wetransfer.com").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].rbac_group_names, vec!["Finance", "HR"]);
    assert!(client.find("o'reilly.example").await.unwrap().is_empty());
    assert!(fake.requests().iter().any(|r| { r.path.contains("$filter=indicatorValue eq 'o''reilly.example'") }));

    // Delete, then delete again → already gone.
    assert!(client.delete(&found[0].id).await.unwrap());
    assert!(!client.delete(&found[0].id).await.unwrap());
    assert_eq!(fake.indicators().len(), 3);
    let r3 = client.ensure(&wanted).await.unwrap();
    assert_eq!(r3.created.len(), 1);
    assert_eq!(r3.created[0].value, "wetransfer.com");
}

#[tokio::test]
async fn indicator_403_names_ti_permission() {
    let o = FakeTenantOptions::default();
    let fake = serve_fake_tenant(o.clone()).await.unwrap();
    fake.add_fault(FaultRule::new("/mde/api/indicators", FaultKind::Forbidden, None));
    let mut sf = tempfile::NamedTempFile::new().unwrap();
    write!(sf, "{}", o.client_secret).unwrap();
    let client = IndicatorClient::new(&fake.sync_config(sf.path())).unwrap();
    let e = client.ensure(&[req("mega.nz", IndicatorKind::DomainName, IndicatorAction::Block)]).await.unwrap_err();
    assert!(matches!(e, SyncError::PermissionDenied { .. }));
    assert!(e.to_string().contains("Ti.ReadWrite.All"), "{e}");
}

#[tokio::test]
async fn indicator_create_retries_429_with_retry_after() {
    let o = FakeTenantOptions::default();
    let fake = serve_fake_tenant(o.clone()).await.unwrap();
    fake.add_fault(FaultRule::new(
        "/mde/api/indicators",
        FaultKind::TooManyRequests(Some(shadowscope::sync::fake_tenant::RetryAfter::Seconds(0))),
        Some(1),
    ));
    let mut sf = tempfile::NamedTempFile::new().unwrap();
    write!(sf, "{}", o.client_secret).unwrap();
    let client = IndicatorClient::new(&fake.sync_config(sf.path())).unwrap();
    let r = client.ensure(&[req("mega.nz", IndicatorKind::DomainName, IndicatorAction::Block)]).await.unwrap();
    assert_eq!(r.created.len(), 1);
    assert_eq!(client.api_stats()[&shadowscope::sync::ApiKind::Mde].throttled, 1);
}
