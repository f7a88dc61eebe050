//! Authentication as registries ask for it: challenge parsing, credentials (explicit, docker
//! and podman files, helpers), Basic, and bearer tokens from a token server kept in a typed
//! cache.

pub(crate) mod challenge;
pub(crate) mod credentials;
mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Response, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::OnceCell;
use url::Url;

use self::challenge::AuthScheme;
use self::credentials::{Credential, CredentialSources, Secret};
use self::tokens::{TokenCache, TokenKey};
use super::error::{login_command, RegistryError, HTTP_FLAG};
use super::lock;
use super::plain_http::plain_http_allowed;
use super::transport::{read_limited, redact, response_excerpt, status_error, Call, Transport};
use crate::reference::Repository;

/// Token responses larger than this are refused.
const MAX_TOKEN_RESPONSE: u64 = 1024 * 1024;
/// Token lifetime when the token server does not say (the distribution token spec's default).
const DEFAULT_TOKEN_SECONDS: u64 = 60;

/// Pull, or pull and push.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Pull,
    Push,
}

impl Access {
    /// The token scope for this access to `repo`.
    pub fn scope(self, repo: &Repository) -> String {
        let actions = match self {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        format!("repository:{}:{actions}", repo.path())
    }

    fn verb(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push => "push",
        }
    }
}

/// What the client knows about authenticating to each registry.
pub(crate) struct Auth {
    credentials: CredentialSources,
    allow_http: bool,
    /// How each registry asked to be authenticated (from the probe or a later 401).
    schemes: Mutex<HashMap<String, AuthScheme>>,
    /// Credentials per registry, looked up once and only when a registry asks for them.
    resolved: Mutex<HashMap<String, Arc<OnceCell<Option<Credential>>>>>,
    tokens: TokenCache,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Nothing known yet; credentials come from `credentials` when a registry asks.
    pub fn new(credentials: CredentialSources, allow_http: bool) -> Self {
        Self {
            credentials,
            allow_http,
            schemes: Mutex::default(),
            resolved: Mutex::default(),
            tokens: TokenCache::default(),
        }
    }

    /// Record the scheme the probe saw, unless a 401 already told us better.
    pub fn note_probed_scheme(&self, registry: &str, scheme: AuthScheme) {
        lock(&self.schemes)
            .entry(registry.to_string())
            .or_insert(scheme);
    }

    /// Take in a 401's challenge: records the registry's scheme and adds the scopes a Bearer
    /// challenge names to `scopes`. Whether asking again with fresh authorization can help.
    pub async fn answer_challenge(
        &self,
        registry: &str,
        headers: &HeaderMap,
        scopes: &mut Vec<String>,
    ) -> Result<bool, RegistryError> {
        let scheme = AuthScheme::from_challenges(&challenge::from_headers(headers));
        let previous = lock(&self.schemes).get(registry).cloned();
        let retry = match &scheme {
            AuthScheme::Bearer { scopes: named, .. } => {
                for s in named {
                    if !scopes.contains(s) {
                        scopes.push(s.clone());
                    }
                }
                true
            }
            AuthScheme::Basic => {
                previous != Some(AuthScheme::Basic) && self.credential(registry).await?.is_some()
            }
            AuthScheme::Anonymous => false,
        };
        lock(&self.schemes).insert(registry.to_string(), scheme);
        Ok(retry)
    }

    /// The `Authorization` value for `registry` and `scopes`, or `None` for anonymous.
    /// `fresh` skips cached tokens (after a 401).
    pub async fn authorization(
        &self,
        transport: &Transport,
        registry: &str,
        scopes: &[String],
        fresh: bool,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let scheme = lock(&self.schemes)
            .get(registry)
            .cloned()
            .unwrap_or(AuthScheme::Anonymous);
        let (realm, service) = match scheme {
            AuthScheme::Anonymous => return Ok(None),
            AuthScheme::Basic => {
                return Ok(match self.credential(registry).await?.map(|c| c.secret) {
                    Some(Secret::Basic { username, password }) => {
                        Some(basic_header(&username, &password))
                    }
                    Some(Secret::RegistryToken(t)) => Some(bearer_header(&t)),
                    // An OAuth refresh token means nothing to a Basic registry.
                    Some(Secret::IdentityToken(_)) | None => None,
                });
            }
            AuthScheme::Bearer { realm, service, .. } => (realm, service),
        };
        let credential = self.credential(registry).await?;
        if let Some(Credential {
            secret: Secret::RegistryToken(t),
            ..
        }) = &credential
        {
            return Ok(Some(bearer_header(t)));
        }
        let key = TokenKey::new(registry, scopes);
        if !fresh {
            if let Some(t) = self.tokens.get(&key, Instant::now()) {
                return Ok(Some(bearer_header(&t)));
            }
        }
        let (token, expires) = self
            .fetch_token(
                transport,
                registry,
                &realm,
                service.as_deref(),
                scopes,
                credential.as_ref(),
            )
            .await?;
        let header = bearer_header(&token);
        self.tokens.insert(key, token, expires);
        Ok(Some(header))
    }

    /// Ask the token server for a bearer token: OAuth2 refresh-token POST when we hold an
    /// identity token, else GET with Basic credentials (or none). The token and when to stop
    /// using it.
    async fn fetch_token(
        &self,
        transport: &Transport,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credential: Option<&Credential>,
    ) -> Result<(SecretString, Instant), RegistryError> {
        let mut url = Url::parse(realm).map_err(|_| RegistryError::Protocol {
            registry: registry.to_string(),
            detail: format!("token realm {realm:?} is not a URL"),
        })?;
        match url.scheme() {
            "https" => {}
            "http" if plain_http_allowed(&url, self.allow_http) => {}
            _ => {
                return Err(RegistryError::Protocol {
                    registry: registry.to_string(),
                    detail: format!(
                        "its token server {} is not HTTPS; refusing to send credentials there (pass {HTTP_FLAG} if plain HTTP is intended)",
                        redact(&url)
                    ),
                })
            }
        }
        let mut headers = HeaderMap::new();
        let (method, body) = match credential.map(|c| &c.secret) {
            Some(Secret::IdentityToken(refresh)) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token");
                form.append_pair("refresh_token", refresh.expose_secret());
                form.append_pair("client_id", "sigbridge");
                if let Some(s) = service {
                    form.append_pair("service", s);
                }
                form.append_pair("scope", &scopes.join(" "));
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                (Method::POST, Some(Bytes::from(form.finish())))
            }
            other => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    // Docker sends the account too; some token servers log or require it.
                    if let Some(Secret::Basic { username, .. }) = other {
                        q.append_pair("account", username);
                    }
                    for scope in scopes {
                        q.append_pair("scope", scope);
                    }
                }
                if let Some(Secret::Basic { username, password }) = other {
                    headers.insert(AUTHORIZATION, basic_header(username, password));
                }
                (Method::GET, None)
            }
        };
        let resp = transport
            .execute(&Call {
                method: method.clone(),
                url: &url,
                headers,
                body,
                retry_transport: true,
            })
            .await?;
        let timeout = transport.timeout();
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let said = response_excerpt(resp, &method, timeout).await;
            let used = self.describe(credential);
            let detail = if said.is_empty() {
                format!("its token server refused {used}")
            } else {
                format!("its token server refused {used}: {said}")
            };
            return Err(RegistryError::Unauthorized {
                registry: registry.to_string(),
                detail,
                login: login_command(registry),
            });
        }
        if !status.is_success() {
            return Err(status_error(resp, &method, timeout).await);
        }
        let body =
            read_limited(resp, MAX_TOKEN_RESPONSE, "token response", &method, timeout).await?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            token: Option<SecretString>,
            #[serde(default)]
            access_token: Option<SecretString>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                registry: registry.to_string(),
                detail: format!("token response is not JSON: {e}"),
            })?;
        let value = [parsed.token, parsed.access_token]
            .into_iter()
            .flatten()
            .find(|t| !t.expose_secret().is_empty())
            .ok_or_else(|| RegistryError::Protocol {
                registry: registry.to_string(),
                detail: "token response has neither `token` nor `access_token`".into(),
            })?;
        let lifetime = parsed
            .expires_in
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_TOKEN_SECONDS);
        // Renew a little early so a token does not expire between check and use.
        let margin = (lifetime / 2).min(10);
        Ok((
            value,
            Instant::now() + Duration::from_secs(lifetime - margin),
        ))
    }

    /// The registry's credentials, looked up on first need and kept.
    pub async fn credential(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        let cell = lock(&self.resolved)
            .entry(registry.to_string())
            .or_default()
            .clone();
        let found = cell
            .get_or_try_init(|| async {
                let sources = self.credentials.clone();
                let reg = registry.to_string();
                // Reads files and may run a helper process: keep it off the async threads.
                tokio::task::spawn_blocking(move || sources.resolve(&reg))
                    .await
                    .map_err(|e| {
                        RegistryError::Client(format!("credential lookup did not finish: {e}"))
                    })?
            })
            .await?;
        Ok(found.clone())
    }

    /// Who we were, for auth errors (never the secret).
    fn describe(&self, credential: Option<&Credential>) -> String {
        match credential {
            Some(c) => format!("credentials from {}", c.source),
            None => {
                let files = &self.credentials.files;
                if files.is_empty() {
                    "anonymous access (no credentials configured)".to_string()
                } else {
                    let names: Vec<String> =
                        files.iter().map(|f| f.display().to_string()).collect();
                    format!(
                        "anonymous access (no credentials for it in {})",
                        names.join(", ")
                    )
                }
            }
        }
    }

    /// The error for a 401 that remains after answering the challenge.
    pub async fn unauthorized(
        &self,
        registry: &str,
        resp: Response,
        method: &Method,
        timeout: Duration,
    ) -> RegistryError {
        let challenge_error = challenge::from_headers(resp.headers())
            .iter()
            .find_map(|c| c.param("error").map(str::to_string));
        let said = response_excerpt(resp, method, timeout).await;
        let used = match self.credential(registry).await {
            Ok(c) => self.describe(c.as_ref()),
            Err(e) => format!("no credentials ({e})"),
        };
        let mut detail = format!("tried {used}");
        if !said.is_empty() {
            detail.push_str("; registry said: ");
            detail.push_str(&said);
        }
        if let Some(e) = challenge_error {
            detail.push_str(&format!(" [{e}]"));
        }
        RegistryError::Unauthorized {
            registry: registry.to_string(),
            detail,
            login: login_command(registry),
        }
    }

    /// The error for a 403.
    pub async fn forbidden(
        &self,
        repo: &Repository,
        access: Access,
        resp: Response,
        method: &Method,
        timeout: Duration,
    ) -> RegistryError {
        let said = response_excerpt(resp, method, timeout).await;
        let used = match self.credential(repo.registry()).await {
            Ok(c) => self.describe(c.as_ref()),
            Err(e) => format!("no credentials ({e})"),
        };
        let detail = if said.is_empty() {
            used
        } else {
            format!("{used}; registry said: {said}")
        };
        RegistryError::Forbidden {
            registry: repo.registry().to_string(),
            repository: repo.path().to_string(),
            action: access.verb(),
            detail,
            login: login_command(repo.registry()),
        }
    }
}

fn basic_header(username: &str, password: &SecretString) -> HeaderValue {
    let raw = zeroize::Zeroizing::new(format!("{username}:{}", password.expose_secret()));
    let encoded = zeroize::Zeroizing::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
    ));
    sensitive_header(&encoded)
}

fn bearer_header(token: &SecretString) -> HeaderValue {
    let value = zeroize::Zeroizing::new(format!("Bearer {}", token.expose_secret()));
    sensitive_header(&value)
}

/// A header value hidden from `Debug` output. A value with characters HTTP cannot carry
/// becomes an empty one; the registry then refuses it like any wrong credential.
fn sensitive_header(value: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_sensitive() {
        let h = basic_header("u", &SecretString::from("p".to_string()));
        assert!(h.is_sensitive());
        assert!(!format!("{h:?}").contains("dTpw"));
        assert_eq!(h.to_str().unwrap(), "Basic dTpw");
    }
}
