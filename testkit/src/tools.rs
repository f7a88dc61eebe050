//! Finding the external tools and running them in a private, hermetic environment.

use std::io;
use std::ops::{Deref, DerefMut};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::mpsc;
use std::sync::OnceLock;

use tempfile::TempDir;

/// Where the test tools live. All functions panic (never skip) when a tool is missing.
pub struct Tools;

impl Tools {
    /// The workspace root (the parent of this crate's directory).
    pub fn workspace_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("testkit lives inside the workspace")
            .to_path_buf()
    }

    /// `$SIGBRIDGE_TOOLS_DIR` (relative paths are taken from the workspace root), else
    /// `<workspace>/target/test-tools`.
    pub fn tools_dir() -> PathBuf {
        match std::env::var_os("SIGBRIDGE_TOOLS_DIR") {
            Some(dir) if !dir.is_empty() => Self::workspace_root().join(dir),
            _ => Self::workspace_root().join("target/test-tools"),
        }
    }

    /// The folder the trixie packages were unpacked into.
    pub fn trixie_root() -> PathBuf {
        Self::tools_dir().join("trixie")
    }

    /// `/usr/bin/docker-registry`.
    pub fn docker_registry() -> PathBuf {
        require(PathBuf::from("/usr/bin/docker-registry"))
    }

    /// `/usr/bin/htpasswd` (apache2-utils).
    pub fn htpasswd() -> PathBuf {
        require(PathBuf::from("/usr/bin/htpasswd"))
    }

    /// Debian's Chromium (package `chromium`), and the DejaVu fonts (`fonts-dejavu-core`) so that
    /// screenshots show text.
    ///
    /// The program itself, not the `/usr/bin/chromium` launcher: that shell script adds desktop
    /// flags and sources `/etc/chromium.d/*` (whose /dev/shm check prints shell errors on some
    /// machines); [`crate::Browser`] passes every flag it needs.
    pub fn chromium() -> PathBuf {
        require(PathBuf::from(
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        ));
        require(PathBuf::from("/usr/lib/chromium/chromium"))
    }

    /// The cosign 2.5 binary from trixie.
    pub fn cosign_path() -> PathBuf {
        require(Self::trixie_root().join("usr/bin/cosign"))
    }

    /// The cosign 3.1.1 binary from Debian unstable (`sid`), beside the trixie tools.
    pub fn cosign3_path() -> PathBuf {
        require(Self::tools_dir().join("sid/usr/bin/cosign"))
    }

    /// [`Tools::cosign`] for cosign 3.1.1.
    pub fn cosign3() -> ToolCommand {
        let mut tool = ToolCommand::new(Command::new(Self::cosign3_path()));
        let docker = tool.home().join(".docker");
        std::fs::create_dir_all(&docker).expect("create private DOCKER_CONFIG");
        tool.env("DOCKER_CONFIG", docker);
        tool
    }

    /// The oras 1.3.3 binary from Debian unstable (`sid`), beside cosign 3.1.1.
    pub fn oras_path() -> PathBuf {
        require(Self::tools_dir().join("sid/usr/bin/oras"))
    }

    /// oras 1.3.3 with a private HOME and `DOCKER_CONFIG` (no credentials of the machine).
    pub fn oras() -> ToolCommand {
        let mut tool = ToolCommand::new(Command::new(Self::oras_path()));
        let docker = tool.home().join(".docker");
        std::fs::create_dir_all(&docker).expect("create private DOCKER_CONFIG");
        tool.env("DOCKER_CONFIG", docker);
        tool
    }

    /// Write to `path` a cosign 3 signing config with no Fulcio, OIDC, Rekor or TSA, so that
    /// `cosign sign --key K --signing-config PATH` signs a bundle without any transparency log.
    pub fn cosign3_signing_config(path: &std::path::Path) {
        let mut create = Self::cosign3();
        create.args([
            "signing-config",
            "create",
            "--no-default-fulcio",
            "--no-default-oidc",
            "--no-default-rekor",
            "--no-default-tsa",
            "--out",
        ]);
        create.arg(path);
        create.run_ok();
    }

    /// The skopeo 1.18 binary from trixie (it must be started through [`Tools::skopeo`]).
    pub fn skopeo_path() -> PathBuf {
        require(Self::trixie_root().join("usr/bin/skopeo"))
    }

    /// `cosign` with an empty private HOME and `DOCKER_CONFIG`, and no inherited variables
    /// (so no `COSIGN_*`, `SIGSTORE_*`, proxies or credentials from the caller leak in).
    pub fn cosign() -> ToolCommand {
        let mut tool = ToolCommand::new(Command::new(Self::cosign_path()));
        let docker = tool.home().join(".docker");
        std::fs::create_dir_all(&docker).expect("create private DOCKER_CONFIG");
        tool.env("DOCKER_CONFIG", docker);
        tool
    }

    /// `skopeo --policy HOME/policy.json --registries.d HOME/registries.d`, run through trixie's
    /// loader (skopeo 1.18 needs glibc 2.38), with a private HOME and no inherited variables.
    ///
    /// The policy starts as `insecureAcceptAnything`; registries.d says
    /// `use-sigstore-attachments: true`. Overwrite [`ToolCommand::policy_path`] to verify.
    pub fn skopeo() -> ToolCommand {
        let skopeo = Self::skopeo_path();
        let root = Self::trixie_root();
        let lib = root.join("usr/lib/x86_64-linux-gnu");
        let loader = require(lib.join("ld-linux-x86-64.so.2"));
        let mut library_path = lib.into_os_string();
        library_path.push(":/usr/lib/x86_64-linux-gnu");

        let mut cmd = Command::new(loader);
        cmd.arg("--library-path").arg(library_path).arg(skopeo);
        let mut tool = ToolCommand::new(cmd);
        let home = tool.home().to_path_buf();
        let registries_d = home.join("registries.d");
        std::fs::create_dir_all(&registries_d).expect("create registries.d");
        std::fs::write(
            registries_d.join("default.yaml"),
            "default-docker:\n  use-sigstore-attachments: true\n",
        )
        .expect("write registries.d");
        std::fs::write(
            tool.policy_path(),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .expect("write policy.json");
        // Empty files stop containers/image from reading /etc/containers/*.conf.
        std::fs::write(home.join("registries.conf"), "").expect("write registries.conf");
        std::fs::write(home.join("containers.conf"), "").expect("write containers.conf");
        tool.env("CONTAINERS_REGISTRIES_CONF", home.join("registries.conf"))
            .env("CONTAINERS_CONF", home.join("containers.conf"))
            .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
            .arg("--policy")
            .arg(home.join("policy.json"))
            .arg("--registries.d")
            .arg(registries_d);
        tool
    }
}

fn require(path: PathBuf) -> PathBuf {
    if !path.is_file() {
        panic!(
            "test tool {} is missing: run `sudo scripts/install-test-deps.sh` \
             (SIGBRIDGE_TOOLS_DIR={})",
            path.display(),
            Tools::tools_dir().display()
        );
    }
    path
}

/// A [`Command`] (through `Deref`) plus the private HOME it runs in, removed on drop.
pub struct ToolCommand {
    cmd: Command,
    home: TempDir,
}

impl ToolCommand {
    fn new(mut cmd: Command) -> Self {
        let home = tempfile::Builder::new()
            .prefix("sigbridge-tool-home-")
            .tempdir()
            .expect("create private HOME");
        let tmp = home.path().join("tmp");
        let run = home.path().join("run");
        for dir in [&tmp, &run] {
            std::fs::create_dir_all(dir).expect("create private dirs");
        }
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join(".config"))
            .env("XDG_RUNTIME_DIR", &run)
            .env("TMPDIR", &tmp);
        Self { cmd, home }
    }

    /// The private HOME; deleted when this value is dropped.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The policy file skopeo is pointed at (only meaningful for [`Tools::skopeo`]).
    pub fn policy_path(&self) -> PathBuf {
        self.home.path().join("policy.json")
    }

    /// Runs to completion and collects both streams; panics only if it cannot start.
    pub fn run(&mut self) -> Output {
        self.cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe_command(&self.cmd)))
    }

    /// Like [`ToolCommand::run`], and panics with both streams unless it exited 0.
    pub fn run_ok(&mut self) -> Output {
        let out = self.run();
        if !out.status.success() {
            panic!(
                "{} failed ({})\n{}",
                describe_command(&self.cmd),
                out.status,
                out.describe()
            );
        }
        out
    }

    /// Splits into the command and the HOME guard (keep the guard alive while it runs).
    pub fn into_parts(self) -> (Command, TempDir) {
        (self.cmd, self.home)
    }
}

impl Deref for ToolCommand {
    type Target = Command;
    fn deref(&self) -> &Command {
        &self.cmd
    }
}

impl DerefMut for ToolCommand {
    fn deref_mut(&mut self) -> &mut Command {
        &mut self.cmd
    }
}

/// Program and arguments only: the environment may hold test passwords.
pub(crate) fn describe_command(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Readable views of a finished process.
pub trait OutputExt {
    /// stdout as (lossy) UTF-8.
    fn stdout_str(&self) -> String;
    /// stderr as (lossy) UTF-8.
    fn stderr_str(&self) -> String;
    /// Status and both streams, for assertion messages.
    fn describe(&self) -> String;
}

impl OutputExt for Output {
    fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn describe(&self) -> String {
        format!(
            "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout_str(),
            self.stderr_str()
        )
    }
}

/// Runs a short helper command (htpasswd) and panics with its output on failure.
pub(crate) fn run_checked(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe_command(cmd)));
    if !out.status.success() {
        panic!("{} failed\n{}", describe_command(cmd), out.describe());
    }
    out
}

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns a long-running server so that it dies with the test process, even if the process
/// is killed and no `Drop` runs.
///
/// PR_SET_PDEATHSIG fires when the *thread* that forked exits, and test threads come and go,
/// so every such child is forked from one thread that lives as long as the process.
pub(crate) fn spawn_tied_to_process(cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnJob>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("testkit-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
                    unsafe {
                        cmd.pre_exec(|| {
                            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                                return Err(io::Error::last_os_error());
                            }
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("start spawner thread");
        tx
    });
    let (tx, rx) = mpsc::channel();
    sender.send((cmd, tx)).expect("spawner thread is running");
    rx.recv().expect("spawner thread replied")
}
