//! Real `docker-registry` (CNCF distribution 2.8) processes: one shared per test process and
//! kind (plain, TLS, Basic, bearer) for tests that only need somewhere to push, each test using
//! its own repositories; or one per test for tests that read the registry's log, count its
//! tokens or put something in front of it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tempfile::TempDir;

use crate::token::{self, TokenRequest, TokenServer};
use crate::tools::{run_checked, spawn_tied_to_process, Tools};
use crate::{certs, http};

/// How clients must authenticate to a [`Registry`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Anyone may push and pull.
    Anonymous,
    /// `auth.htpasswd` with one bcrypt user.
    Basic { user: String, pass: String },
    /// `auth.token`: bearer challenge, tokens from the kit's token server for one user.
    Bearer { user: String, pass: String },
}

/// Chooses TLS and auth before starting; the `Registry::plain/tls/basic/bearer` shortcuts
/// cover the usual cases.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistryBuilder {
    tls: bool,
    auth: Auth,
}

impl RegistryBuilder {
    /// Serve HTTPS with a fresh CA (see [`Registry::ca_pem_path`]).
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Require this kind of authentication.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Starts the registry and waits until `/v2/` answers; panics if it cannot.
    pub fn start(self) -> Registry {
        Registry::start(self)
    }

    /// The registry of this kind shared by every test of this process, started on first use
    /// and stopped (its files removed) when the process exits. Tests sharing it must use
    /// repositories no other test uses, and must not depend on its log or token count.
    pub fn shared(self) -> SharedRegistry {
        SharedRegistry(shared::get(self))
    }
}

/// A registry shared by the tests of this process (see [`RegistryBuilder::shared`]); derefs
/// to [`Registry`], so `&shared` goes wherever `&Registry` does.
#[derive(Clone, Copy, Debug)]
pub struct SharedRegistry(&'static Registry);

impl std::ops::Deref for SharedRegistry {
    type Target = Registry;

    fn deref(&self) -> &Registry {
        self.0
    }
}

struct TlsFiles {
    ca_pem: PathBuf,
    cert_dir: PathBuf,
}

/// A running `docker-registry serve` on 127.0.0.1; killed and reaped on drop.
pub struct Registry {
    // First field, so the process is gone before anything else is torn down.
    child: Reaped,
    port: u16,
    auth: Auth,
    tls: Option<TlsFiles>,
    // Declared before `work` so the token server stops before its files go away.
    token: Option<TokenServer>,
    storage: PathBuf,
    log_path: PathBuf,
    work: TempDir,
}

impl Registry {
    /// A builder defaulting to plain HTTP and anonymous access.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder {
            tls: false,
            auth: Auth::Anonymous,
        }
    }

    /// Plain HTTP, anonymous.
    pub fn plain() -> Self {
        Self::builder().start()
    }

    /// HTTPS with a per-registry CA, anonymous.
    pub fn tls() -> Self {
        Self::builder().tls(true).start()
    }

    /// Plain HTTP, htpasswd Basic auth for one user.
    pub fn basic(user: &str, pass: &str) -> Self {
        Self::builder()
            .auth(Auth::Basic {
                user: user.into(),
                pass: pass.into(),
            })
            .start()
    }

    /// Plain HTTP, bearer-token auth through the kit's token server for one user.
    pub fn bearer(user: &str, pass: &str) -> Self {
        Self::builder()
            .auth(Auth::Bearer {
                user: user.into(),
                pass: pass.into(),
            })
            .start()
    }

    /// The shared plain-HTTP, anonymous registry (see [`RegistryBuilder::shared`]).
    pub fn shared_plain() -> SharedRegistry {
        Self::builder().shared()
    }

    /// The shared HTTPS, anonymous registry (see [`RegistryBuilder::shared`]).
    pub fn shared_tls() -> SharedRegistry {
        Self::builder().tls(true).shared()
    }

    /// The shared plain-HTTP registry with Basic auth for this user (see
    /// [`RegistryBuilder::shared`]).
    pub fn shared_basic(user: &str, pass: &str) -> SharedRegistry {
        Self::builder()
            .auth(Auth::Basic {
                user: user.into(),
                pass: pass.into(),
            })
            .shared()
    }

    /// The shared plain-HTTP registry with bearer-token auth for this user (see
    /// [`RegistryBuilder::shared`]); tests that count tokens need their own.
    pub fn shared_bearer(user: &str, pass: &str) -> SharedRegistry {
        Self::builder()
            .auth(Auth::Bearer {
                user: user.into(),
                pass: pass.into(),
            })
            .shared()
    }

    fn start(opts: RegistryBuilder) -> Self {
        let work = tempfile::Builder::new()
            .prefix("sigbridge-registry-")
            .tempdir()
            .expect("create registry work dir");
        let dir = work.path();
        let storage = dir.join("storage");
        std::fs::create_dir_all(&storage).expect("create storage dir");
        let log_path = dir.join("registry.log");

        let tls = opts.tls.then(|| make_tls_files(dir));
        let mut token = None;
        let mut auth_yaml = String::new();
        match &opts.auth {
            Auth::Anonymous => {}
            Auth::Basic { user, pass } => {
                let out = run_checked(Command::new(Tools::htpasswd()).args(["-Bbn", user, pass]));
                let htpasswd = dir.join("htpasswd");
                std::fs::write(&htpasswd, out.stdout).expect("write htpasswd");
                auth_yaml = format!(
                    "auth:\n  htpasswd:\n    realm: sigbridge-testkit\n    path: {}\n",
                    yaml_str(&htpasswd)
                );
            }
            Auth::Bearer { user, pass } => {
                let server = TokenServer::start(dir, user, pass);
                auth_yaml = format!(
                    "auth:\n  token:\n    realm: \"{}\"\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    server.realm(),
                    token::SERVICE,
                    token::ISSUER,
                    yaml_str(server.cert_path())
                );
                token = Some(server);
            }
        }
        let tls_yaml = match &tls {
            Some(_) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                yaml_str(&dir.join("server.pem")),
                yaml_str(&dir.join("server.key"))
            ),
            None => String::new(),
        };

        // A free port can be taken by someone else between probing and binding; retry then.
        let mut last_failure = String::new();
        for _ in 0..8 {
            let port = free_port();
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: info\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
                 \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: sigbridge-testkit-{port}\n{tls_yaml}\
                 health:\n  storagedriver:\n    enabled: false\n\
                 {auth_yaml}",
                storage = yaml_str(&storage),
            );
            let config_path = dir.join("config.yml");
            std::fs::write(&config_path, config).expect("write registry config");
            let log = std::fs::File::create(&log_path).expect("create registry log");
            let mut cmd = Command::new(Tools::docker_registry());
            cmd.arg("serve")
                .arg(&config_path)
                // REGISTRY_* variables would override the config file.
                .env_clear()
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log);
            let mut child = Reaped(spawn_tied_to_process(cmd).expect("start docker-registry"));
            let scheme = if tls.is_some() { "https" } else { "http" };
            let url = format!("{scheme}://127.0.0.1:{port}/v2/");
            let ca = tls.as_ref().map(|t| t.ca_pem.as_path());
            match wait_ready(&mut child.0, &url, ca) {
                Ok(()) => {
                    return Registry {
                        child,
                        port,
                        auth: opts.auth,
                        tls,
                        token,
                        storage,
                        log_path,
                        work,
                    }
                }
                Err(why) => {
                    drop(child);
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    if !log.contains("address already in use") {
                        panic!("docker-registry did not start: {why}\n{log}");
                    }
                    last_failure = why;
                }
            }
        }
        panic!("docker-registry could not get a free port: {last_failure}");
    }

    /// `127.0.0.1:PORT`: the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The docker-registry process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// Whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The auth mode it was started with.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// `(user, pass)` for Basic and Bearer modes.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match &self.auth {
            Auth::Anonymous => None,
            Auth::Basic { user, pass } | Auth::Bearer { user, pass } => Some((user, pass)),
        }
    }

    /// The storage root (`storage.filesystem.rootdirectory`).
    pub fn root_dir(&self) -> &Path {
        &self.storage
    }

    /// The registry's own log (stdout and stderr), useful in failure messages.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The registry's log contents.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The temporary folder holding config, certificates and storage.
    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    /// The CA certificate (PEM) that signed the server certificate, for TLS registries.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca_pem.as_path())
    }

    /// A folder holding only `ca.crt`, as containers/image's `--*-cert-dir` wants.
    pub fn cert_dir(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.cert_dir.as_path())
    }

    /// `HOST/REPO:TAG`, or `HOST/REPO@DIGEST` when `tag_or_digest` starts with `sha256:`.
    pub fn image_ref(&self, repo: &str, tag_or_digest: &str) -> String {
        let sep = if tag_or_digest.starts_with("sha256:") {
            '@'
        } else {
            ':'
        };
        format!("{}/{repo}{sep}{tag_or_digest}", self.host())
    }

    /// Tokens the token server has issued so far (0 when not in bearer mode).
    pub fn tokens_issued(&self) -> usize {
        self.token.as_ref().map_or(0, TokenServer::tokens_issued)
    }

    /// Every request the token server answered, in order (empty when not in bearer mode).
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.token
            .as_ref()
            .map_or_else(Vec::new, TokenServer::requests)
    }

    /// The token endpoint (`realm`) in bearer mode.
    pub fn token_realm(&self) -> Option<String> {
        self.token.as_ref().map(TokenServer::realm)
    }

    /// The `service` the registry names in its challenge (and the tokens' `aud`).
    pub fn token_service(&self) -> &'static str {
        token::SERVICE
    }

    /// The value of an `Authorization` header good for pull and push on `repo`: Basic for
    /// basic mode, a fresh token (counted in [`Registry::tokens_issued`]) for bearer mode.
    pub fn authorization(&self, repo: &str) -> Option<String> {
        match &self.auth {
            Auth::Anonymous => None,
            Auth::Basic { user, pass } => Some(format!(
                "Basic {}",
                STANDARD.encode(format!("{user}:{pass}"))
            )),
            Auth::Bearer { user, pass } => {
                let url = format!(
                    "{}?service={}&scope=repository:{repo}:pull,push",
                    self.token_realm().expect("bearer mode has a realm"),
                    token::SERVICE
                );
                let (user, pass) = (user.clone(), pass.clone());
                let token = http::off_runtime(move || {
                    let resp = http::client(None)
                        .get(&url)
                        .basic_auth(user, Some(pass))
                        .send()
                        .expect("token request");
                    assert!(
                        resp.status().is_success(),
                        "token server: {}",
                        resp.status()
                    );
                    let body: serde_json::Value = serde_json::from_slice(&resp.bytes().unwrap())
                        .expect("token response is JSON");
                    body["token"].as_str().expect("token field").to_owned()
                });
                Some(format!("Bearer {token}"))
            }
        }
    }

    /// A blocking HTTP client that trusts this registry's CA. Build and use it outside any
    /// async runtime (reqwest's blocking client panics inside one).
    pub fn blocking_client(&self) -> reqwest::blocking::Client {
        http::client(self.ca_pem_path())
    }

    /// cosign's registry flags: `--allow-http-registry --allow-insecure-registry` for plain
    /// HTTP, `--registry-cacert CA` for TLS. Credentials go through DOCKER_CONFIG instead.
    pub fn cosign_args(&self) -> Vec<String> {
        match self.ca_pem_path() {
            Some(ca) => vec!["--registry-cacert".into(), ca.display().to_string()],
            None => vec![
                "--allow-http-registry".into(),
                "--allow-insecure-registry".into(),
            ],
        }
    }

    /// skopeo's flags for reading from this registry (`--src-tls-verify=false` or
    /// `--src-cert-dir`, plus `--src-creds`).
    pub fn skopeo_src_args(&self) -> Vec<String> {
        self.skopeo_args("src")
    }

    /// skopeo's flags for writing to this registry (`--dest-...`).
    pub fn skopeo_dest_args(&self) -> Vec<String> {
        self.skopeo_args("dest")
    }

    /// Flags for single-registry skopeo commands such as `inspect` (`--tls-verify`, `--creds`).
    pub fn skopeo_args_unprefixed(&self) -> Vec<String> {
        self.skopeo_args("")
    }

    fn skopeo_args(&self, side: &str) -> Vec<String> {
        let p = if side.is_empty() {
            String::new()
        } else {
            format!("{side}-")
        };
        let mut args = match self.cert_dir() {
            Some(dir) => vec![format!("--{p}cert-dir"), dir.display().to_string()],
            None => vec![format!("--{p}tls-verify=false")],
        };
        if let Some((u, pw)) = self.credentials() {
            args.push(format!("--{p}creds"));
            args.push(format!("{u}:{pw}"));
        }
        args
    }

    /// Writes `DIR/config.json` with an `auths` entry for this registry (empty `auths` when
    /// anonymous) and returns its path; point `DOCKER_CONFIG` at DIR.
    pub fn write_docker_config(&self, dir: &Path) -> PathBuf {
        let auths = match self.credentials() {
            Some((u, p)) => serde_json::json!({
                self.host(): {"auth": STANDARD.encode(format!("{u}:{p}"))}
            }),
            None => serde_json::json!({}),
        };
        std::fs::create_dir_all(dir).expect("create docker config dir");
        let path = dir.join("config.json");
        std::fs::write(&path, serde_json::json!({ "auths": auths }).to_string())
            .expect("write docker config.json");
        path
    }
}

mod shared {
    //! Registries that live as long as the test process.
    //!
    //! Statics are never dropped, so the registry's process dies with the process through
    //! PR_SET_PDEATHSIG (see `spawn_tied_to_process`) and an `atexit` hook removes its files.

    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::{Mutex, OnceLock};

    use super::{Registry, RegistryBuilder};

    type Started = HashMap<RegistryBuilder, &'static OnceLock<Registry>>;

    static STARTED: Mutex<Option<Started>> = Mutex::new(None);
    static CLEANUP: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());

    pub(super) fn get(opts: RegistryBuilder) -> &'static Registry {
        // The map lock is held only to find the slot; start-up runs under the slot's own
        // OnceLock, so tests waiting on another kind are not held up.
        let slot = {
            let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
            let map = started.get_or_insert_with(|| {
                // SAFETY: registering a plain `extern "C" fn` that only touches our statics.
                unsafe { libc::atexit(remove_at_exit) };
                HashMap::new()
            });
            *map.entry(opts.clone())
                .or_insert_with(|| Box::leak(Box::new(OnceLock::new())))
        };
        slot.get_or_init(|| {
            let reg = opts.start();
            CLEANUP
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((reg.pid(), reg.work_dir().to_path_buf()));
            reg
        })
    }

    extern "C" fn remove_at_exit() {
        let Ok(list) = CLEANUP.lock() else { return };
        for (pid, dir) in list.iter() {
            // The registry is our own child; stop it before deleting the files it serves.
            if let Ok(pid) = libc::pid_t::try_from(*pid) {
                // SAFETY: plain syscalls on our own child's pid.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Kills and reaps its process on drop (also when a panic unwinds through start-up), so no
/// server or zombie is left behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("url", &self.url())
            .field("auth", &self.auth)
            .field("work_dir", &self.work.path())
            .finish_non_exhaustive()
    }
}

/// Polls `url` until the registry answers; 401 counts, since it means the auth layer is up.
fn wait_ready(child: &mut Child, url: &str, ca: Option<&Path>) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = {
        let ca = ca.map(Path::to_path_buf);
        http::off_runtime(move || http::client(ca.as_deref()))
    };
    let result = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Err(format!("exited early with {status}"));
        }
        let probe = {
            let (client, url) = (&client, url.to_owned());
            http::off_runtime(move || {
                client
                    .get(&url)
                    .timeout(Duration::from_secs(2))
                    .send()
                    .map(|r| r.status())
            })
        };
        if let Ok(status) = probe {
            if status.is_success() || status.as_u16() == 401 {
                break Ok(());
            }
        }
        if Instant::now() > deadline {
            break Err(format!("{url} did not answer within 30 s"));
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    // The blocking client must not be dropped inside an async runtime either.
    http::off_runtime(move || drop(client));
    result
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("probe a free port")
        .port()
}

fn yaml_str(path: &Path) -> String {
    let s = path.display().to_string();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A CA and a server certificate for IP 127.0.0.1 (and localhost), both P-256.
fn make_tls_files(dir: &Path) -> TlsFiles {
    let chain = certs::tls_chain("sigbridge-testkit CA");
    let ca_pem = dir.join("ca.pem");
    std::fs::write(&ca_pem, &chain.ca.cert_pem).expect("write ca.pem");
    std::fs::write(dir.join("server.pem"), &chain.server.cert_pem).expect("write server.pem");
    std::fs::write(dir.join("server.key"), &chain.server.key_pem).expect("write server.key");
    let cert_dir = dir.join("certs");
    std::fs::create_dir_all(&cert_dir).expect("create cert dir");
    std::fs::write(cert_dir.join("ca.crt"), &chain.ca.cert_pem).expect("write certs/ca.crt");
    TlsFiles { ca_pem, cert_dir }
}
