//! An in-process token server for docker-registry's `auth.token` mode.
//!
//! Policy: a request with the right Basic credentials gets every action it asked for; a request
//! with no or wrong credentials gets 401 (there is no anonymous access at all), so a client that
//! forgets its credentials fails loudly instead of getting an empty token.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use rand_core::{OsRng, RngCore};
use serde_json::json;

use crate::background::BackgroundServer;
use crate::certs;

/// How long issued tokens live, in seconds.
pub const TOKEN_TTL_SECS: u64 = 300;

/// One request the token server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The Basic-auth user name, if one was sent.
    pub user: Option<String>,
    /// The `scope` parameters as sent (each `type:name:actions`).
    pub scopes: Vec<String>,
    /// Whether a token was issued.
    pub granted: bool,
}

struct Shared {
    user: String,
    pass: String,
    service: String,
    issuer: String,
    key: SigningKey,
    x5c: String,
    issued: AtomicUsize,
    log: Mutex<Vec<TokenRequest>>,
}

pub(crate) struct TokenServer {
    shared: Arc<Shared>,
    cert_path: PathBuf,
    server: BackgroundServer,
}

pub(crate) const SERVICE: &str = "sigbridge-testkit-registry";
pub(crate) const ISSUER: &str = "sigbridge-testkit-token-issuer";

impl TokenServer {
    /// Makes a self-signed P-256 signing certificate in `dir` (it doubles as the registry's
    /// rootcertbundle) and serves `/token` on 127.0.0.1 from its own thread and runtime.
    pub(crate) fn start(dir: &Path, user: &str, pass: &str) -> Self {
        let key_path = dir.join("token-signing.key");
        let cert_path = dir.join("token-signing.pem");
        let made = certs::self_signed_p256("sigbridge-testkit token signer");
        std::fs::write(&key_path, &made.key_pem).expect("write token key");
        std::fs::write(&cert_path, &made.cert_pem).expect("write token cert");
        let key = SigningKey::from_pkcs8_pem(&made.key_pem).expect("a PKCS#8 P-256 key");
        let cert_pem = made.cert_pem;
        let shared = Arc::new(Shared {
            user: user.to_owned(),
            pass: pass.to_owned(),
            service: SERVICE.to_owned(),
            issuer: ISSUER.to_owned(),
            key,
            x5c: STANDARD.encode(pem_to_der(&cert_pem)),
            issued: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
        });

        let app = Router::new()
            .route("/token", get(issue_token))
            .with_state(shared.clone());
        let server = BackgroundServer::start("token-server", app);
        Self {
            server,
            shared,
            cert_path,
        }
    }

    pub(crate) fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.server.port())
    }

    pub(crate) fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    pub(crate) fn tokens_issued(&self) -> usize {
        self.shared.issued.load(Ordering::SeqCst)
    }

    pub(crate) fn requests(&self) -> Vec<TokenRequest> {
        self.shared.log.lock().expect("token log").clone()
    }
}

async fn issue_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let scopes: Vec<String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "scope")
        // Some clients put several scopes in one parameter, separated by spaces.
        .flat_map(|(_, v)| {
            v.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let creds = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_basic);
    let user = creds.as_ref().map(|(u, _)| u.clone());
    let granted = matches!(&creds, Some((u, p)) if *u == shared.user && *p == shared.pass);
    shared.log.lock().expect("token log").push(TokenRequest {
        user: user.clone(),
        scopes: scopes.clone(),
        granted,
    });
    if !granted {
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"sigbridge-testkit\"",
            )],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"valid credentials required"}]}"#,
        )
            .into_response();
    }

    let access: Vec<serde_json::Value> = scopes.iter().filter_map(|s| parse_scope(s)).collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let mut jti = [0u8; 16];
    OsRng.fill_bytes(&mut jti);
    let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [shared.x5c]});
    let claims = json!({
        "iss": shared.issuer,
        "sub": user.unwrap_or_default(),
        "aud": shared.service,
        "exp": now + TOKEN_TTL_SECS,
        "nbf": now,
        "iat": now,
        "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    // JWS ES256 wants the raw r||s form, not DER.
    let signature: Signature = shared.key.sign(signing_input.as_bytes());
    let jwt = format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    );
    shared.issued.fetch_add(1, Ordering::SeqCst);
    let body = json!({
        "token": jwt,
        "access_token": jwt,
        "expires_in": TOKEN_TTL_SECS,
        "issued_at": rfc3339(now),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn parse_basic(value: &str) -> Option<(String, String)> {
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// `type:name:actions`; the name may itself contain ':' (e.g. a port), so split at both ends.
fn parse_scope(scope: &str) -> Option<serde_json::Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
    Some(json!({"type": kind, "name": name, "actions": actions}))
}

pub(crate) fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    STANDARD.decode(body).expect("PEM body is base64")
}

/// UTC seconds to `YYYY-MM-DDTHH:MM:SSZ` (days-to-civil, proleptic Gregorian).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn scopes_split_at_both_ends() {
        assert_eq!(
            parse_scope("repository:a/b:pull,push").unwrap(),
            json!({"type": "repository", "name": "a/b", "actions": ["pull", "push"]})
        );
        assert_eq!(
            parse_scope("registry:catalog:*").unwrap(),
            json!({"type": "registry", "name": "catalog", "actions": ["*"]})
        );
    }
}
