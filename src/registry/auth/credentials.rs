//! Registry credentials: explicit options, docker `config.json` (and containers' `auth.json`),
//! and `docker-credential-*` helpers, looked up the way the docker CLI does.
//!
//! Order, first match wins: explicit username/password; then, file by file,
//! `credHelpers[registry]`, `auths[registry]`, `credsStore`; else anonymous.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::reference::DEFAULT_REGISTRY;
use crate::registry::error::RegistryError;

/// The key docker stores Docker Hub credentials under.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// Other names Docker Hub credentials are found under.
const DOCKER_HUB_ALIASES: [&str; 3] = ["index.docker.io", "docker.io", "registry-1.docker.io"];
/// Config files are small; refuse anything absurd rather than reading it all.
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;
/// What a helper prints when it has nothing for the server (docker-credential-helpers).
const HELPER_NOT_FOUND: &str = "credentials not found";

/// How long a credential helper may run before it is killed (docker's CLI has no limit; a
/// hung helper, e.g. one waiting for a locked keychain, must not hang sigbridge forever).
pub(crate) const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
/// A helper's answer is a small JSON object; more than this is refused.
const MAX_HELPER_OUTPUT: u64 = 64 * 1024;

/// A secret the registry or its token server accepts.
#[derive(Clone)]
pub(crate) enum Secret {
    /// Username and password (HTTP Basic, or the basic auth of a token request).
    Basic {
        username: String,
        password: SecretString,
    },
    /// An OAuth2 refresh token (`identitytoken`, or a helper's `<token>` username).
    IdentityToken(SecretString),
    /// A bearer token used as is (`registrytoken`).
    RegistryToken(SecretString),
}

/// A secret plus where it came from (shown in auth errors; never the secret itself).
#[derive(Clone)]
pub(crate) struct Credential {
    pub secret: Secret,
    pub source: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.secret {
            Secret::Basic { .. } => "basic",
            Secret::IdentityToken(_) => "identity-token",
            Secret::RegistryToken(_) => "registry-token",
        };
        f.debug_struct("Credential")
            .field("kind", &kind)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Where credentials are looked for.
#[derive(Clone)]
pub(crate) struct CredentialSources {
    /// Username (and password) for every registry.
    pub explicit: Option<(String, SecretString)>,
    /// Credential files, in the order they are consulted.
    pub files: Vec<PathBuf>,
    /// Where `docker-credential-*` helpers live; `None` means `PATH`. Tests point it at a
    /// temporary directory instead of changing `PATH` for the whole process.
    pub helper_dir: Option<PathBuf>,
    /// How long a helper may run ([`HELPER_TIMEOUT`]; tests shorten it).
    pub helper_timeout: Duration,
}

impl Default for CredentialSources {
    fn default() -> Self {
        Self {
            explicit: None,
            files: Vec::new(),
            helper_dir: None,
            helper_timeout: HELPER_TIMEOUT,
        }
    }
}

impl fmt::Debug for CredentialSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialSources")
            .field("explicit", &self.explicit.as_ref().map(|_| "[set]"))
            .field("files", &self.files)
            .field("helper_dir", &self.helper_dir)
            .field("helper_timeout", &self.helper_timeout)
            .finish()
    }
}

/// The default credential files: `REGISTRY_AUTH_FILE` (containers tools) if set, then
/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. An explicit file replaces both.
pub(crate) fn default_files(explicit: Option<&Path>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.to_path_buf()];
    }
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(f));
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(dir).join("config.json"));
    } else if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(home).join(".docker").join("config.json"));
    }
    files
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<SecretString>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<SecretString>,
    #[serde(default)]
    identitytoken: Option<SecretString>,
    #[serde(default)]
    registrytoken: Option<SecretString>,
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: SecretString,
}

/// `host` from a config key that may carry a scheme and a path (`https://host/v1/`).
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn is_docker_hub(registry: &str) -> bool {
    registry == DEFAULT_REGISTRY
}

/// The config key to try first for `registry` (what `docker login` writes).
fn primary_key(registry: &str) -> &str {
    if is_docker_hub(registry) {
        DOCKER_HUB_KEY
    } else {
        registry
    }
}

/// Whether config key `key` names `registry`.
fn key_matches(key: &str, registry: &str) -> bool {
    let host = key_host(key);
    if is_docker_hub(registry) {
        key == DOCKER_HUB_KEY
            || DOCKER_HUB_ALIASES
                .iter()
                .any(|a| host.eq_ignore_ascii_case(a))
    } else {
        host.eq_ignore_ascii_case(registry)
    }
}

/// The entry of `map` for `registry`: the exact key first, then any key naming the same host
/// (in key order, so the choice is stable).
fn lookup<'m, V>(map: &'m BTreeMap<String, V>, registry: &str) -> Option<(&'m str, &'m V)> {
    if let Some((k, v)) = map.get_key_value(primary_key(registry)) {
        return Some((k.as_str(), v));
    }
    map.iter()
        .find(|(k, _)| key_matches(k, registry))
        .map(|(k, v)| (k.as_str(), v))
}

impl CredentialSources {
    /// Credentials for `registry`, or `None` for anonymous access. Blocking: it reads files
    /// and may run a helper process.
    pub fn resolve(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        if let Some((username, password)) = &self.explicit {
            return Ok(Some(Credential {
                secret: Secret::Basic {
                    username: username.clone(),
                    password: password.clone(),
                },
                source: "--registry-username / SIGBRIDGE_REGISTRY_USERNAME".to_string(),
            }));
        }
        for file in &self.files {
            let Some(config) = read_config(file)? else {
                continue;
            };
            if let Some(c) = self.resolve_in(&config, file, registry)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    fn resolve_in(
        &self,
        config: &ConfigFile,
        file: &Path,
        registry: &str,
    ) -> Result<Option<Credential>, RegistryError> {
        if let Some((key, helper)) = lookup(&config.cred_helpers, registry) {
            let source = format!(
                "credential helper {helper:?} (credHelpers in {})",
                file.display()
            );
            return self.run_helper(helper, key, registry, source);
        }
        if let Some((key, entry)) = lookup(&config.auths, registry) {
            if let Some(secret) = entry_secret(entry, file, key)? {
                return Ok(Some(Credential {
                    secret,
                    source: format!("auths[{key:?}] in {}", file.display()),
                }));
            }
        }
        if let Some(store) = config.creds_store.as_deref().filter(|s| !s.is_empty()) {
            let source = format!(
                "credential store {store:?} (credsStore in {})",
                file.display()
            );
            return self.run_helper(store, primary_key(registry), registry, source);
        }
        Ok(None)
    }

    /// `docker-credential-<helper> get` with `server` on stdin.
    fn run_helper(
        &self,
        helper: &str,
        server: &str,
        registry: &str,
        source: String,
    ) -> Result<Option<Credential>, RegistryError> {
        let fail = |detail: String| RegistryError::CredentialHelper {
            helper: helper.to_string(),
            registry: registry.to_string(),
            detail,
        };
        // A name with a path separator would run an arbitrary program; docker refuses too.
        if helper.is_empty() || helper.contains(['/', '\\']) {
            return Err(fail("the helper name is not a plain name".into()));
        }
        let program = format!("docker-credential-{helper}");
        let program = match &self.helper_dir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        };
        tracing::debug!(helper, server, "running credential helper");
        let mut child = Command::new(&program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    fail(format!(
                        "{} is not installed or not on PATH (it is configured by {source}); install it or remove it from the configuration",
                        program.display()
                    ))
                } else {
                    fail(format!("cannot run {}: {e}", program.display()))
                }
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading makes this fail; its exit status tells more.
            let _ = stdin.write_all(server.as_bytes());
        }
        let output = wait_bounded(child, self.helper_timeout).map_err(|e| match e {
            HelperWait::TimedOut => fail(format!(
                "it did not finish within {} s and was stopped (is it waiting for input, e.g. an unlocked keychain or a login prompt?); fix the helper or remove it from the configuration",
                self.helper_timeout.as_secs_f32()
            )),
            HelperWait::TooMuchOutput => fail(format!(
                "it printed more than {MAX_HELPER_OUTPUT} bytes; that is not a credential helper answer"
            )),
            HelperWait::Io(e) => fail(format!("waiting for it failed: {e}")),
        })?;
        let stdout = Zeroizing::new(output.stdout);
        if !output.status.success() {
            // "not found" arrives on stdout; it is not a secret, but only that phrase is shown.
            if String::from_utf8_lossy(&stdout).contains(HELPER_NOT_FOUND) {
                return Ok(None);
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            let stderr: String = stderr.trim().chars().take(300).collect();
            return Err(fail(format!("it exited with {} ({stderr})", output.status)));
        }
        let parsed: HelperOutput = serde_json::from_slice(&stdout)
            .map_err(|_| fail("its output is not the expected JSON {Username, Secret}".into()))?;
        if parsed.secret.expose_secret().is_empty() {
            return Ok(None);
        }
        let secret = if parsed.username == "<token>" {
            Secret::IdentityToken(parsed.secret)
        } else {
            Secret::Basic {
                username: parsed.username,
                password: parsed.secret,
            }
        };
        Ok(Some(Credential { secret, source }))
    }
}

/// Why a helper gave no output.
enum HelperWait {
    TimedOut,
    TooMuchOutput,
    Io(std::io::Error),
}

/// What a helper printed and how it exited.
struct HelperRun {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Wait for `child` at most `timeout`, reading at most [`MAX_HELPER_OUTPUT`] (+1) bytes of
/// each output stream; a helper that overruns is killed. The readers run on their own threads
/// and are waited for only until the deadline: a helper's own child may keep a pipe open.
fn wait_bounded(mut child: Child, timeout: Duration) -> Result<HelperRun, HelperWait> {
    use std::io::Read as _;
    let deadline = Instant::now() + timeout;
    let reader = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let result = match pipe {
                Some(p) => p
                    .take(MAX_HELPER_OUTPUT + 1)
                    .read_to_end(&mut buf)
                    .map(|_| buf),
                None => Ok(buf),
            };
            let _ = tx.send(result);
        });
        rx
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as _));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                // Already-exited or unkillable: either way we stop waiting for it.
                let _ = child.kill();
                let _ = child.wait();
                return Err(HelperWait::TimedOut);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                let _ = child.kill();
                return Err(HelperWait::Io(e));
            }
        }
    };
    let collect = |rx: mpsc::Receiver<std::io::Result<Vec<u8>>>| {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(buf)) if buf.len() as u64 > MAX_HELPER_OUTPUT => Err(HelperWait::TooMuchOutput),
            Ok(Ok(buf)) => Ok(buf),
            Ok(Err(e)) => Err(HelperWait::Io(e)),
            Err(_) => Err(HelperWait::TimedOut),
        }
    };
    Ok(HelperRun {
        status,
        stdout: collect(stdout)?,
        stderr: collect(stderr)?,
    })
}

/// Read and parse one credentials file; `None` if it does not exist.
fn read_config(path: &Path) -> Result<Option<ConfigFile>, RegistryError> {
    let fail = |detail: String| RegistryError::CredentialsFile {
        path: path.display().to_string(),
        detail,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(e.to_string())),
    };
    let mut bytes = Zeroizing::new(Vec::new());
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_CONFIG_BYTES + 1),
        &mut bytes,
    )
    .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(fail(format!("larger than {MAX_CONFIG_BYTES} bytes")));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(ConfigFile::default()));
    }
    // serde_json's message names a line and column, never the value.
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| fail(format!("not valid JSON: {e}")))
}

/// The secret of an `auths` entry; `None` when the entry is a bare marker (`{}`), as docker
/// writes when a credential store holds the real secret.
fn entry_secret(
    entry: &AuthEntry,
    file: &Path,
    key: &str,
) -> Result<Option<Secret>, RegistryError> {
    if let Some(token) = entry
        .registrytoken
        .as_ref()
        .filter(|t| !t.expose_secret().is_empty())
    {
        return Ok(Some(Secret::RegistryToken(token.clone())));
    }
    if let Some(token) = entry
        .identitytoken
        .as_ref()
        .filter(|t| !t.expose_secret().is_empty())
    {
        return Ok(Some(Secret::IdentityToken(token.clone())));
    }
    if let Some(auth) = entry
        .auth
        .as_ref()
        .filter(|a| !a.expose_secret().is_empty())
    {
        let bad = || {
            RegistryError::CredentialsFile {
            path: file.display().to_string(),
            detail: format!(
                "auths[{key:?}].auth is not base64 of \"username:password\"; run `docker login` again"
            ),
        }
        };
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(auth.expose_secret().trim())
                .map_err(|_| bad())?,
        );
        let text = std::str::from_utf8(&decoded).map_err(|_| bad())?;
        let (user, pass) = text.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Secret::Basic {
            username: user.to_string(),
            password: SecretString::from(pass.to_string()),
        }));
    }
    if let Some(username) = entry.username.as_ref().filter(|u| !u.is_empty()) {
        return Ok(Some(Secret::Basic {
            username: username.clone(),
            password: entry
                .password
                .clone()
                .unwrap_or_else(|| SecretString::from(String::new())),
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(c: &Credential) -> (String, String) {
        match &c.secret {
            Secret::Basic { username, password } => {
                (username.clone(), password.expose_secret().to_string())
            }
            _ => panic!("not basic: {c:?}"),
        }
    }

    fn sources(dir: &Path, config: &str) -> CredentialSources {
        let file = dir.join("config.json");
        std::fs::write(&file, config).unwrap();
        CredentialSources {
            explicit: None,
            files: vec![file],
            helper_dir: Some(dir.to_path_buf()),
            helper_timeout: HELPER_TIMEOUT,
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn auths_forms() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = format!(
            r#"{{"auths": {{
                "reg.example:5000": {{"auth": "{}"}},
                "https://other.example/v1/": {{"username": "u2", "password": "p2"}},
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "tok.example": {{"identitytoken": "refresh"}},
                "marker.example": {{}}
            }}}}"#,
            b64("alice:pa:ss"),
            b64("hubuser:hubpass")
        );
        let s = sources(dir.path(), &cfg);
        let c = s.resolve("reg.example:5000").unwrap().unwrap();
        assert_eq!(basic(&c), ("alice".into(), "pa:ss".into()));
        assert!(c.source.contains("auths"));
        let c = s.resolve("other.example").unwrap().unwrap();
        assert_eq!(basic(&c), ("u2".into(), "p2".into()));
        let c = s.resolve("index.docker.io").unwrap().unwrap();
        assert_eq!(basic(&c), ("hubuser".into(), "hubpass".into()));
        let c = s.resolve("tok.example").unwrap().unwrap();
        assert!(matches!(c.secret, Secret::IdentityToken(ref t) if t.expose_secret() == "refresh"));
        assert!(s.resolve("marker.example").unwrap().is_none());
        assert!(s.resolve("unknown.example").unwrap().is_none());
        // The port is part of the key.
        assert!(s.resolve("reg.example").unwrap().is_none());
        // Debug never shows the secret.
        assert!(!format!("{c:?}").contains("refresh"));
    }

    #[test]
    fn docker_hub_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let s = sources(
            dir.path(),
            &format!(r#"{{"auths":{{"docker.io":{{"auth":"{}"}}}}}}"#, b64("a:b")),
        );
        let c = s.resolve("index.docker.io").unwrap().unwrap();
        assert_eq!(basic(&c), ("a".into(), "b".into()));
    }

    #[test]
    fn explicit_wins_and_missing_file_is_anonymous() {
        let s = CredentialSources {
            explicit: Some(("me".into(), SecretString::from("pw".to_string()))),
            files: vec![PathBuf::from("/nonexistent/config.json")],
            helper_dir: None,
            helper_timeout: HELPER_TIMEOUT,
        };
        assert_eq!(
            basic(&s.resolve("x").unwrap().unwrap()),
            ("me".into(), "pw".into())
        );
        let s = CredentialSources {
            files: vec![PathBuf::from("/nonexistent/config.json")],
            ..Default::default()
        };
        assert!(s.resolve("x").unwrap().is_none());
    }

    #[test]
    fn malformed_file_is_an_error_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let s = sources(dir.path(), r#"{"auths": {"h": {"auth": "c2VjcmV0"#);
        let e = s.resolve("h").unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
        assert!(!e.contains("c2VjcmV0"), "{e}");
        let s = sources(dir.path(), r#"{"auths": {"h": {"auth": "bm9jb2xvbg=="}}}"#);
        let e = s.resolve("h").unwrap_err().to_string();
        assert!(e.contains("docker login"), "{e}");
    }

    #[cfg(unix)]
    fn write_helper(dir: &Path, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Another test thread forking while the file was open for writing can make exec fail
        // with ETXTBSY for a moment; wait until the script runs.
        for _ in 0..50 {
            match Command::new(&path).arg("probe").output() {
                Err(e) if e.raw_os_error() == Some(26) => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                _ => break,
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn hung_or_flooding_helpers_are_stopped() {
        let dir = tempfile::tempdir().unwrap();
        // The sleep is a grandchild holding stdout open after its shell is killed: the lookup
        // must not wait for the pipe to close either.
        write_helper(
            dir.path(),
            "hang",
            "[ \"$1\" = get ] || exit 0\nsleep 30; echo '{}'",
        );
        write_helper(
            dir.path(),
            "flood",
            "[ \"$1\" = get ] || exit 0\nhead -c 1000000 /dev/zero",
        );
        let mut s = sources(
            dir.path(),
            r#"{"credHelpers":{"hung.example":"hang","flood.example":"flood"}}"#,
        );
        s.helper_timeout = Duration::from_millis(300);
        let e = s.resolve("hung.example").unwrap_err().to_string();
        assert!(e.contains("docker-credential-hang"), "{e}");
        assert!(
            e.contains("did not finish within 0.3 s and was stopped"),
            "{e}"
        );
        s.helper_timeout = HELPER_TIMEOUT;
        let e = s.resolve("flood.example").unwrap_err().to_string();
        assert!(e.contains("docker-credential-flood"), "{e}");
        assert!(e.contains("more than 65536 bytes"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn cred_helpers_and_store() {
        let dir = tempfile::tempdir().unwrap();
        // Echoes back the server it was asked about, so the test sees what was on stdin.
        write_helper(
            dir.path(),
            "echo",
            r#"[ "$1" = get ] || exit 3
read -r server
case "$server" in
  none.example) echo "credentials not found in native keychain"; exit 1 ;;
  broken.example) echo "oops" >&2; exit 2 ;;
  tok.example) printf '{"ServerURL":"%s","Username":"<token>","Secret":"idtok"}' "$server" ;;
  *) printf '{"ServerURL":"%s","Username":"%s","Secret":"s3cret"}' "$server" "$server" ;;
esac"#,
        );
        let s = sources(
            dir.path(),
            &format!(
                r#"{{"credHelpers":{{"helped.example":"echo","tok.example":"echo","none.example":"echo","broken.example":"echo","missing.example":"nosuch"}},
                    "auths":{{"helped.example":{{"auth":"{}"}}}},
                    "credsStore":"echo"}}"#,
                b64("file:wins-not")
            ),
        );
        // credHelpers beats auths.
        let c = s.resolve("helped.example").unwrap().unwrap();
        assert_eq!(basic(&c), ("helped.example".into(), "s3cret".into()));
        assert!(c.source.contains("credHelpers"));
        let c = s.resolve("tok.example").unwrap().unwrap();
        assert!(matches!(c.secret, Secret::IdentityToken(ref t) if t.expose_secret() == "idtok"));
        assert!(s.resolve("none.example").unwrap().is_none());
        let e = s.resolve("broken.example").unwrap_err().to_string();
        assert!(
            e.contains("oops") && e.contains("docker-credential-echo"),
            "{e}"
        );
        let e = s.resolve("missing.example").unwrap_err().to_string();
        assert!(
            e.contains("docker-credential-nosuch") && e.contains("not installed"),
            "{e}"
        );
        // credsStore for everything else; Docker Hub is asked for by its v1 URL.
        let c = s.resolve("index.docker.io").unwrap().unwrap();
        assert_eq!(basic(&c).0, DOCKER_HUB_KEY);
        assert!(c.source.contains("credsStore"));
    }

    #[test]
    fn helper_names_with_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = sources(dir.path(), r#"{"credHelpers":{"h":"../../bin/sh"}}"#);
        assert!(s.resolve("h").is_err());
    }

    #[test]
    fn default_files_prefer_explicit() {
        assert_eq!(
            default_files(Some(Path::new("/x/c.json"))),
            vec![PathBuf::from("/x/c.json")]
        );
    }
}
