//! OAuth2 client credentials against the Entra ID v2 token endpoint, one token per scope.
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::error::{SyncError, server_detail};

struct CachedToken {
    token: SecretString,
    refresh_at: Instant,
}

/// Hands out bearer tokens per audience and refreshes them before they expire. The secret and
/// the tokens stay inside `SecretString`, whose Debug prints `[REDACTED]`.
pub(crate) struct TokenProvider {
    client: reqwest::Client,
    token_url: String,
    client_id: String,
    secret: SecretString,
    cache: tokio::sync::Mutex<HashMap<String, CachedToken>>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("secret", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    pub(crate) fn new(
        client: reqwest::Client,
        login_base: &str,
        tenant: &str,
        client_id: &str,
        secret: SecretString,
    ) -> TokenProvider {
        TokenProvider {
            client,
            token_url: format!("{}/{}/oauth2/v2.0/token", login_base.trim_end_matches('/'), tenant),
            client_id: client_id.to_string(),
            secret,
            cache: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// A valid token for `scope`. The lock is held across the fetch so concurrent callers
    /// share one refresh instead of stampeding the token endpoint.
    pub(crate) async fn token(&self, scope: &str) -> Result<SecretString, SyncError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.get(scope)
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let fresh = self.fetch(scope).await?;
        let token = fresh.token.clone();
        cache.insert(scope.to_string(), fresh);
        Ok(token)
    }

    /// Forgets the cached token so the next call fetches a new one (after a 401).
    pub(crate) async fn invalidate(&self, scope: &str) {
        self.cache.lock().await.remove(scope);
    }

    async fn fetch(&self, scope: &str) -> Result<CachedToken, SyncError> {
        let err = |detail: String| SyncError::Token { endpoint: self.token_url.clone(), detail: self.redact(&detail) };
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.secret.expose_secret()),
            ("scope", scope),
        ];
        let resp = self
            .client
            .post(&self.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| err(format!("cannot reach the token endpoint: {e}")))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| err(format!("reading the token response: {e}")))?;
        if !status.is_success() {
            return Err(err(format!("HTTP {}: {}", status.as_u16(), server_detail(&body))));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| err(format!("token response is not JSON: {e}")))?;
        let access = v
            .get("access_token")
            .and_then(|t| t.as_str())
            .ok_or_else(|| err("token response has no access_token".into()))?;
        // v2 sends a number; v1 sent a string.
        let expires_in = match v.get("expires_in") {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(3599);
        tracing::debug!(scope, expires_in, "acquired access token");
        Ok(CachedToken {
            token: SecretString::from(access.to_string()),
            refresh_at: Instant::now() + refresh_margin(expires_in),
        })
    }

    /// Belt and braces: should a server ever echo the secret, it is cut out of the message.
    fn redact(&self, text: &str) -> String {
        let s = self.secret.expose_secret();
        if s.len() >= 4 && text.contains(s) { text.replace(s, "[REDACTED]") } else { text.to_string() }
    }
}

/// Refresh at 80 % of the lifetime, so a token never expires mid-request.
fn refresh_margin(expires_in: u64) -> Duration {
    Duration::from_millis(expires_in.saturating_mul(800))
}
