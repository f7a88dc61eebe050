//! The docs check: the shell blocks of README.md and docs/*.md marked to run are run, command by
//! command, so the guides cannot drift from what the tool does.
//!
//! A block runs when the line right before its ```` ```sh ```` fence is an HTML comment (invisible
//! on GitHub):
//!
//! ```text
//! <!-- docs-test -->                           the block must exit 0
//! <!-- docs-test exit=4 output="--pin-source" -->   exit 4, and stdout+stderr contain the text
//! ```
//!
//! The blocks of one guide run in order, each with `bash -euo pipefail`, in one fresh folder
//! (also HOME), so files made by one block are there for the next, as for a reader in one
//! terminal; variables carry over too. The real `sigbridge` binary, cosign 2.5 and the
//! `signpath-compatible-server` binary are first on PATH. The example hosts are not rewritten:
//! the guides use variables for the things that differ per machine, and this harness exports them
//! (see [`Guide::documented_variables`] and docs/README.md):
//! `REGISTRY`, `IMAGE` (a tag), `DIGEST_REF` (the same image by digest), `IMAGES` (three more
//! images by digest, space-separated), `HSM_PIN_FILE`, `SP_HOST`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sigbridge_testkit::{push_images_http, Registry, Tools, SOFTHSM_MODULE};

const MARKER: &str = "<!-- docs-test";

/// The guides that have runnable blocks; docs/README.md lists the same set.
const CHECKED: &[&str] = &[
    "README.md",
    "docs/local-keys.md",
    "docs/air-gapped.md",
    "docs/pkcs11.md",
    "docs/signpath.md",
    "docs/approval-flow.md",
    "docs/cosign-plugin.md",
];

/// One marked block.
#[derive(Debug)]
struct Block {
    file: String,
    /// 1-based line of the opening fence.
    line: usize,
    script: String,
    exit: i32,
    output: Option<String>,
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Parses `<!-- docs-test [exit=N] [output="TEXT"] -->`; `Err` says what is malformed.
fn parse_marker(line: &str) -> Result<(i32, Option<String>), String> {
    let inner = line
        .trim()
        .strip_prefix(MARKER)
        .and_then(|rest| rest.strip_suffix("-->"))
        .ok_or_else(|| format!("marker must be `{MARKER} [exit=N] [output=\"TEXT\"] -->`"))?;
    let mut rest = inner.trim();
    let (mut exit, mut output) = (0, None);
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("exit=") {
            let end = after.find(' ').unwrap_or(after.len());
            exit = after[..end]
                .parse()
                .map_err(|_| format!("exit={} is not a number", &after[..end]))?;
            rest = after[end..].trim_start();
        } else if let Some(after) = rest.strip_prefix("output=\"") {
            let end = after.find('"').ok_or("output=\" has no closing quote")?;
            output = Some(after[..end].to_string());
            rest = after[end + 1..].trim_start();
        } else {
            return Err(format!("unknown marker attribute at {rest:?}"));
        }
    }
    Ok((exit, output))
}

/// The marked blocks of one file, in order. A marker not directly followed by a ```` ```sh ````
/// block is an error, so a typo cannot silently turn a check off.
fn marked_blocks(file: &str) -> Result<Vec<Block>, String> {
    let text = std::fs::read_to_string(workspace().join(file))
        .map_err(|e| format!("cannot read {file}: {e}"))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].trim_start().starts_with(MARKER) {
            i += 1;
            continue;
        }
        let (exit, output) =
            parse_marker(lines[i]).map_err(|e| format!("{file}:{}: {e}", i + 1))?;
        let fence = i + 1;
        if lines.get(fence).map(|l| l.trim()) != Some("```sh") {
            return Err(format!(
                "{file}:{}: a docs-test marker must be followed directly by a ```sh line",
                i + 1
            ));
        }
        let close = (fence + 1..lines.len())
            .find(|&j| lines[j].trim() == "```")
            .ok_or_else(|| format!("{file}:{}: the ```sh block is never closed", fence + 1))?;
        blocks.push(Block {
            file: file.to_string(),
            line: fence + 1,
            script: lines[fence + 1..close].join("\n"),
            exit,
            output,
        });
        i = close + 1;
    }
    Ok(blocks)
}

/// Every markdown file of the user-facing docs.
fn all_docs() -> Vec<String> {
    let mut files = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(workspace().join("docs"))
        .expect("read docs/")
        .map(|e| {
            e.expect("docs/ entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn markers_are_well_formed_and_the_checked_guides_are_listed() {
    let mut with_blocks = BTreeSet::new();
    for file in all_docs() {
        match marked_blocks(&file) {
            Ok(blocks) if !blocks.is_empty() => {
                with_blocks.insert(file);
            }
            Ok(_) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let expected: BTreeSet<String> = CHECKED.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        with_blocks, expected,
        "the guides with docs-test blocks differ from CHECKED in tests/suite/docs_blocks.rs"
    );
    let index =
        std::fs::read_to_string(workspace().join("docs/README.md")).expect("docs/README.md");
    let section = index
        .split("## Checked by the test command")
        .nth(1)
        .expect("docs/README.md has a `## Checked by the test command` section");
    for file in CHECKED {
        let link = file.strip_prefix("docs/").unwrap_or("../README.md");
        assert!(
            section.contains(&format!("({link})")),
            "docs/README.md does not list {file} under `Checked by the test command`"
        );
    }
}

#[test]
fn marker_parser_reads_exit_and_output() {
    assert_eq!(parse_marker("<!-- docs-test -->"), Ok((0, None)));
    assert_eq!(
        parse_marker("<!-- docs-test exit=4 output=\"--pin-source FILE\" -->"),
        Ok((4, Some("--pin-source FILE".into())))
    );
    assert!(parse_marker("<!-- docs-test exit=four -->").is_err());
    assert!(parse_marker("<!-- docs-test skip -->").is_err());
}

/// What one guide's blocks run against.
struct Guide {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    bin: PathBuf,
    /// Process groups of the blocks run so far; killed on drop (a block may start a server).
    groups: Vec<u32>,
    _registry: Registry,
}

impl Guide {
    /// A fresh folder and registry holding `team/app:1.4.2` and `team/{api,web,worker}:1.4.2`.
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sigbridge-docs-")
            .tempdir()
            .expect("create temp dir");
        let bin = dir.path().join(".bin");
        std::fs::create_dir(&bin).expect("create bin dir");
        std::os::unix::fs::symlink(Tools::cosign_path(), bin.join("cosign")).expect("link cosign");
        // cosign runs the KMS plugin for `--key sigbridge://...` from PATH.
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_sigstore-kms-sigbridge"),
            bin.join("sigstore-kms-sigbridge"),
        )
        .expect("link the cosign plugin");
        let registry = Registry::plain();
        let host = registry.host();
        let digests = push_images_http(
            &registry,
            &[
                ("team/app", "1.4.2"),
                ("team/api", "1.4.2"),
                ("team/web", "1.4.2"),
                ("team/worker", "1.4.2"),
            ],
        );
        let images: Vec<String> = ["api", "web", "worker"]
            .iter()
            .zip(&digests[1..])
            .map(|(name, digest)| format!("{host}/team/{name}@{digest}"))
            .collect();
        let env = Self::documented_variables(&host, &digests[0], &images);
        let mut guide = Self {
            dir,
            env,
            bin,
            groups: Vec::new(),
            _registry: registry,
        };
        guide.set("HOME", &guide.dir.path().display().to_string());
        guide
    }

    /// The variables the guides document for "your registry and your images".
    fn documented_variables(host: &str, digest: &str, images: &[String]) -> Vec<(String, String)> {
        vec![
            ("REGISTRY".into(), host.to_string()),
            ("IMAGE".into(), format!("{host}/team/app:1.4.2")),
            ("DIGEST_REF".into(), format!("{host}/team/app@{digest}")),
            ("IMAGES".into(), images.join(" ")),
        ]
    }

    fn set(&mut self, key: &str, value: &str) {
        self.env.push((key.into(), value.into()));
    }

    /// A SoftHSM store with token `release` (PIN in `$HSM_PIN_FILE`) holding the P-256 key
    /// `cosign-p256` (id 01), made with the tools the PKCS#11 guide names.
    fn with_softhsm(&mut self) {
        let root = self.dir.path().join(".softhsm");
        std::fs::create_dir_all(root.join("tokens")).expect("create token dir");
        let conf = root.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nlog.level = ERROR\n",
                root.join("tokens").display()
            ),
        )
        .expect("write softhsm2.conf");
        let pin_file = root.join("hsm-pin");
        std::fs::write(&pin_file, "5678\n").expect("write PIN file");
        let run = |cmd: &mut Command| {
            let out = cmd
                .env("SOFTHSM2_CONF", &conf)
                .output()
                .expect("start SoftHSM tool");
            assert!(
                out.status.success(),
                "{cmd:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(Command::new("softhsm2-util").args([
            "--init-token",
            "--free",
            "--label",
            "release",
            "--so-pin",
            "1234",
            "--pin",
            "5678",
        ]));
        run(Command::new("pkcs11-tool").args([
            "--module",
            SOFTHSM_MODULE,
            "--token-label",
            "release",
            "--login",
            "--pin",
            "5678",
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--label",
            "cosign-p256",
            "--id",
            "01",
        ]));
        self.set("SOFTHSM2_CONF", &conf.display().to_string());
        self.set("HSM_PIN_FILE", &pin_file.display().to_string());
    }

    /// `$SP_HOST`: a free loopback address for the guide's SignPath-compatible server, whose
    /// binary is put on PATH (it is built next to `sigbridge`).
    fn with_signpath_server(&mut self) {
        let server =
            Path::new(env!("CARGO_BIN_EXE_sigbridge")).with_file_name("signpath-compatible-server");
        assert!(
            server.is_file(),
            "{} is missing: run `cargo build -p signpath-compatible-server` (scripts/test.sh does)",
            server.display()
        );
        std::os::unix::fs::symlink(&server, self.bin.join("signpath-compatible-server"))
            .expect("link server");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        self.set("SP_HOST", &format!("127.0.0.1:{port}"));
    }

    /// Runs every marked block of `file` in order; panics with the file, line, block and output
    /// of the first block that does not do what its marker says.
    fn run(&mut self, file: &str) {
        let blocks = marked_blocks(file).unwrap_or_else(|e| panic!("{e}"));
        assert!(!blocks.is_empty(), "{file} has no docs-test blocks");
        let state = self.dir.path().join(".docs-test-env");
        let sigbridge_dir = Path::new(env!("CARGO_BIN_EXE_sigbridge"))
            .parent()
            .expect("binary has a folder");
        let path = format!(
            "{}:{}:/usr/local/bin:/usr/bin:/bin",
            sigbridge_dir.display(),
            self.bin.display()
        );
        for block in &blocks {
            // The variables of earlier blocks come back (as in one terminal); this block's are
            // saved on exit. Bash's own and read-only variables are left out.
            let script = format!(
                "if [ -f {state:?} ]; then . {state:?}; fi\n\
                 __docs_save() {{ local v; for v in $(compgen -v); do case $v in \
                 BASH*|COMP*|DIRSTACK|EUID|FUNCNAME|GROUPS|HIST*|HOSTNAME|HOSTTYPE|IFS|LINENO|\
                 MACHTYPE|OPTERR|OPTIND|OSTYPE|PIPESTATUS|PPID|PS4|PWD|OLDPWD|RANDOM|SECONDS|\
                 SHELLOPTS|SHLVL|SRANDOM|UID|EPOCH*|_|v) continue;; esac; \
                 declare -p \"$v\" 2>/dev/null | grep -v '^declare -[a-zA-Z]*r' || true; \
                 done > {state:?}; }}\n\
                 trap __docs_save EXIT\n{}\n",
                block.script
            );
            let mut cmd = Command::new("bash");
            cmd.args(["-euo", "pipefail", "-c", &script])
                .current_dir(self.dir.path())
                .env_clear()
                .env("PATH", &path)
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null());
            // A file, not a pipe: a server a block leaves running must not hold the wait open.
            let log = self.dir.path().join(".docs-test-output");
            let file = std::fs::File::create(&log).expect("create output file");
            cmd.stdout(file.try_clone().expect("clone output file"))
                .stderr(file);
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let mut child = cmd.spawn().expect("start bash");
            self.groups.push(child.id());
            let status = child.wait().expect("wait for bash");
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let code = status.code().unwrap_or(-1);
            let wrong_output = block
                .output
                .as_ref()
                .filter(|want| !text.contains(want.as_str()));
            if code != block.exit || wrong_output.is_some() {
                panic!(
                    "\n{}:{}: docs block exited {code} (expected {}){}\n--- block ---\n{}\n--- output ---\n{text}\n",
                    block.file,
                    block.line,
                    block.exit,
                    wrong_output
                        .map(|w| format!(", and its output lacks {w:?}"))
                        .unwrap_or_default(),
                    block.script
                );
            }
        }
    }
}

impl Drop for Guide {
    fn drop(&mut self) {
        // Stop whatever a block left running in the background (a server), by process group.
        for group in &self.groups {
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{group}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

#[test]
fn readme() {
    Guide::new().run("README.md");
}

#[test]
fn local_keys() {
    Guide::new().run("docs/local-keys.md");
}

#[test]
fn air_gapped() {
    Guide::new().run("docs/air-gapped.md");
}

#[test]
fn pkcs11() {
    let mut guide = Guide::new();
    guide.with_softhsm();
    guide.run("docs/pkcs11.md");
}

#[test]
fn signpath() {
    let mut guide = Guide::new();
    guide.with_signpath_server();
    guide.run("docs/signpath.md");
}

#[test]
fn cosign_plugin() {
    Guide::new().run("docs/cosign-plugin.md");
}

#[test]
fn approval_flow() {
    let mut guide = Guide::new();
    guide.with_signpath_server();
    guide.run("docs/approval-flow.md");
}

/// Every ```` ```sh ```` block of `file`, marked or not: `(line of the fence, text)`.
fn all_sh_blocks(file: &str) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(workspace().join(file)).expect("read guide");
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "```sh" {
            let close = (i + 1..lines.len())
                .find(|&j| lines[j].trim() == "```")
                .unwrap_or(lines.len());
            blocks.push((i + 1, lines[i + 1..close].join("\n")));
            i = close;
        }
        i += 1;
    }
    blocks
}

/// The `sigbridge` invocations of a shell text: `(subcommand words, --flags)`, continuation
/// lines joined, stopping at comments and shell operators.
fn invocations(script: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let joined = script.replace("\\\n", " ");
    let mut found = Vec::new();
    for line in joined.lines() {
        let line = line.split(" #").next().unwrap_or("");
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .filter(|w| !w.is_empty())
            .collect();
        let mut i = 0;
        while i < words.len() {
            if words[i] != "sigbridge" || words.get(i + 1).is_none_or(|w| w.starts_with('-')) {
                i += 1;
                continue;
            }
            let mut sub = vec![words[i + 1].to_string()];
            let mut j = i + 2;
            if matches!(sub[0].as_str(), "pkcs11" | "signpath") {
                if let Some(w) = words.get(j).filter(|w| !w.starts_with('-')) {
                    sub.push(w.to_string());
                    j += 1;
                }
            }
            let mut flags = Vec::new();
            while let Some(w) = words.get(j) {
                if matches!(*w, "|" | "||" | "&&" | ";" | "&" | ">" | ">>" | "<")
                    || w.starts_with('>')
                {
                    break;
                }
                if w.starts_with("--") && w.len() > 2 {
                    flags.push(w.split('=').next().unwrap_or(w).to_string());
                }
                j += 1;
            }
            found.push((sub, flags));
            i = j;
        }
    }
    found
}

#[test]
fn invocation_scanner_reads_subcommands_and_flags() {
    let found = invocations(
        "ID=$(sigbridge sign --signer \"$SP\" --no-wait $IMAGES)   # submit\n\
         sigbridge pkcs11 keys --token release \\\n  --pin-source f | head\n\
         echo sigbridge",
    );
    let want: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            vec!["sign".into()],
            vec!["--signer".into(), "--no-wait".into()],
        ),
        (
            vec!["pkcs11".into(), "keys".into()],
            vec!["--token".into(), "--pin-source".into()],
        ),
    ];
    assert_eq!(found, want);
}

/// Every `--flag` that a shell block of the guides passes to a `sigbridge` subcommand, marked
/// or not (blocks for cloud HSMs and app.signpath.io included), is one that subcommand's
/// `--help` lists: a renamed or removed flag cannot linger in the docs.
#[test]
fn documented_flags_exist() {
    let mut help: BTreeMap<Vec<String>, String> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in all_docs() {
        for (line, script) in all_sh_blocks(&file) {
            for (sub, flags) in invocations(&script) {
                checked += 1;
                let text = help.entry(sub.clone()).or_insert_with(|| {
                    let out = Command::new(env!("CARGO_BIN_EXE_sigbridge"))
                        .args(&sub)
                        .arg("--help")
                        .env_clear()
                        .stdin(Stdio::null())
                        .output()
                        .expect("run sigbridge --help");
                    if out.status.success() {
                        String::from_utf8_lossy(&out.stdout).into_owned()
                    } else {
                        String::new()
                    }
                });
                if text.is_empty() {
                    problems.push(format!(
                        "{file}:{line}: `sigbridge {}` is not a command",
                        sub.join(" ")
                    ));
                    continue;
                }
                for flag in flags {
                    let listed = text
                        .split(|c: char| {
                            c.is_whitespace() || c == ',' || c == '=' || c == '[' || c == '<'
                        })
                        .any(|w| w == flag);
                    if !listed {
                        problems.push(format!(
                            "{file}:{line}: `sigbridge {} {flag}`: not in its --help",
                            sub.join(" ")
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
    // The guides hold far more than this; fewer means the scanner stopped seeing them.
    assert!(
        checked >= 30,
        "only {checked} sigbridge invocations found in the guides"
    );
    eprintln!("checked the flags of {checked} sigbridge invocations");
}
