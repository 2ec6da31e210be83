//! Sync errors. Every message says what to do next; none ever carries the client secret or a
//! token (server text is sanitised and truncated before it lands here).
use thiserror::Error;

/// A store-side failure while committing a page.
#[derive(Debug, Clone, Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
}

impl SinkError {
    pub fn new(message: impl Into<String>) -> SinkError {
        SinkError { message: message.into() }
    }
}

#[derive(Debug, Clone, Error)]
pub enum SyncError {
    #[error("sync configuration is invalid: {0}")]
    Config(String),
    #[error("client secret unavailable: {0}")]
    Secret(String),
    #[error(
        "token request to {endpoint} failed: {detail}. Check tenant, client_id and that the client secret has not expired"
    )]
    Token { endpoint: String, detail: String },
    #[error(
        "{api} rejected a freshly issued token (401 twice): {detail}. Check that admin consent was granted for the app and the machine clock is correct"
    )]
    Unauthorized { api: String, detail: String },
    #[error(
        "{api} answered 403 Forbidden: the app registration lacks the application permission `{permission}` ({detail}). Add it under Entra ID > App registrations > API permissions and grant admin consent; this source was stopped"
    )]
    PermissionDenied { api: String, permission: String, detail: String },
    #[error(
        "{api} kept throttling (429) after {attempts} attempts. Wait a few minutes and rerun; the sync resumes from its watermark"
    )]
    Throttled { api: String, attempts: u32 },
    #[error(
        "{api} answered HTTP {status} after {attempts} attempts: {detail}. The service looks unhealthy; rerun later, the sync resumes from its watermark"
    )]
    Server { api: String, status: u16, attempts: u32, detail: String },
    #[error(
        "{api} could not be reached after {attempts} attempts: {detail}. Check network, proxy (HTTPS_PROXY) and the configured base URL"
    )]
    Transport { api: String, attempts: u32, detail: String },
    #[error("{api} answered HTTP {status}: {detail}")]
    Http { api: String, status: u16, detail: String },
    #[error("{api} returned a body this client does not understand: {detail}")]
    Decode { api: String, detail: String },
    #[error(
        "{api}: a {window_secs} s window starting at {start} still returns at least {limit} rows; lower windows.min_window_seconds or narrow the query"
    )]
    WindowTooDense { api: String, start: String, window_secs: i64, limit: u32 },
    #[error("the local cache rejected a page: {0}. Fix the cache and rerun; committed pages are kept")]
    Sink(#[from] SinkError),
}

impl SyncError {
    /// Errors that end only the source that met them; everything else ends it too, but
    /// `Sink` means the cache is unusable and the whole run stops.
    pub fn stops_run(&self) -> bool {
        matches!(self, SyncError::Sink(_) | SyncError::Secret(_))
    }
}

/// Server text shown to people: sanitised and cut to a readable length.
pub(crate) fn server_detail(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    // Defender/Graph errors: {"error":{"code":..,"message":..}}; token errors: error_description.
    let picked = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            if let Some(obj) = e.as_object() {
                let code = obj.get("code").and_then(|c| c.as_str()).unwrap_or("");
                let msg = obj.get("message").and_then(|c| c.as_str()).unwrap_or("");
                Some(format!("{code}: {msg}"))
            } else {
                let desc = v.get("error_description").and_then(|c| c.as_str()).unwrap_or("");
                Some(format!("{}: {desc}", e.as_str().unwrap_or("")))
            }
        })
        .unwrap_or_else(|| text.into_owned());
    let cut: String = picked.chars().take(300).collect();
    crate::sanitize::display_safe(cut.trim()).into_owned()
}
