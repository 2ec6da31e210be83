//! The client secret and access tokens never reach Debug/Display output, errors or tracing.
use shadowscope::sync::fake_tenant::{FakeTenantOptions, FaultKind, FaultRule, serve_fake_tenant};
use shadowscope::sync::memory_sink::MemorySink;
use shadowscope::sync::{IndicatorClient, SyncConfig, SyncError, check_config, run_sync};
use std::io::Write;
use std::sync::{Arc, Mutex};

const CANARY: &str = "CANARY-s3cr3t-7f1b9e2d-do-not-leak";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn secret_file(secret: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "{secret}").unwrap();
    f
}

#[tokio::test]
async fn canary_secret_and_tokens_never_appear_anywhere() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let o = FakeTenantOptions {
        devices: 6,
        users: 20,
        days: 1,
        client_secret: CANARY.into(),
        now_unix: Some(1_750_000_000),
        ..FakeTenantOptions::default()
    };
    let fake = serve_fake_tenant(o.clone()).await.unwrap();
    let sf = secret_file(CANARY);
    let cfg = fake.sync_config(sf.path());
    // Exercise the noisy paths: 401 refresh, 403, 429, 5xx.
    fake.add_fault(FaultRule::new("/mde/api/machines", FaultKind::ExpireTokens, Some(1)));
    fake.add_fault(FaultRule::new("riskyUsers", FaultKind::Forbidden, None));
    fake.add_fault(FaultRule::new("/la/", FaultKind::ServerError(500), None));
    fake.add_fault(FaultRule::new("alerts", FaultKind::TooManyRequests(None), Some(1)));
    let mut sink = MemorySink::default();
    let report = run_sync(&cfg, &mut sink, &|p| {
        tracing::info!(?p, "progress");
    })
    .await;
    assert_eq!(report.errors().len(), 2, "{:?}", report.errors());
    let tokens = fake.issued_tokens();
    assert!(!tokens.is_empty());

    let checks = check_config(&cfg).await;
    let ind = IndicatorClient::new(&cfg).unwrap();
    ind.list(None).await.unwrap();

    // Wrong secret: the error must not echo what was sent either.
    let wrong = secret_file("CANARY-wrong-secret-value");
    let mut bad_cfg = cfg.clone();
    bad_cfg.secret_file = Some(wrong.path().to_path_buf());
    let bad = run_sync(&bad_cfg, &mut MemorySink::default(), &|_| {}).await;
    assert!(!bad.is_ok());

    let mut texts = vec![
        format!("{cfg:?}"),
        format!("{report:?}"),
        format!("{bad:?}"),
        format!("{checks:?}"),
        format!("{ind:?}"),
        format!("{:?}", cfg.load_secret().unwrap()),
        format!("{sink:?}"),
    ];
    for e in report.errors().into_iter().chain(bad.errors()) {
        texts.push(e.to_string());
        texts.push(format!("{e:?}"));
    }
    texts.push(String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned());
    let logs = texts.last().unwrap().clone();
    assert!(logs.contains("401: refreshing the token once"), "tracing was captured");
    for t in &texts {
        assert!(!t.contains(CANARY), "secret leaked: {t}");
        assert!(!t.contains("CANARY-wrong"), "wrong secret leaked: {t}");
        for tok in &tokens {
            assert!(!t.contains(tok.as_str()), "token leaked: {t}");
        }
    }
    // The secret itself is still usable where it is meant to be.
    use secrecy::ExposeSecret;
    assert_eq!(cfg.load_secret().unwrap().expose_secret(), CANARY);
}

#[test]
fn group_or_world_readable_secret_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let f = secret_file(CANARY);
    std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cfg = SyncConfig::for_base_url("http://127.0.0.1:1", "t", "c");
    cfg.secret_file = Some(f.path().to_path_buf());
    let e = cfg.load_secret().unwrap_err();
    let m = e.to_string();
    assert!(matches!(e, SyncError::Secret(_)));
    assert!(m.contains("644") && m.contains("chmod 600"), "{m}");
    assert!(!m.contains(CANARY));
    std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(cfg.load_secret().is_err());
    std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o400)).unwrap();
    assert!(cfg.load_secret().is_ok());
}

#[test]
fn missing_or_ambiguous_secret_source_is_explained() {
    let mut cfg = SyncConfig::for_base_url("http://127.0.0.1:1", "t", "c");
    assert!(cfg.load_secret().unwrap_err().to_string().contains("neither secret_env nor secret_file"));
    cfg.secret_env = Some("SHADOWSCOPE_TEST_SECRET_THAT_IS_NOT_SET".into());
    assert!(cfg.load_secret().unwrap_err().to_string().contains("is not set"));
    cfg.secret_file = Some("/nonexistent".into());
    assert!(cfg.load_secret().unwrap_err().to_string().contains("exactly one"));
}
