//! Debian's Chromium, headless, driven over the DevTools protocol (headless_chrome), for tests
//! of server-rendered web pages.
//!
//! One [`Browser`] is one Chromium process with its own profile: its tabs share cookies (a
//! signed-in session), and a second `Browser::launch()` is an independent user (a second
//! approver) with no cookies of the first. Every method panics (tests never skip) with what it
//! was doing, the CSS selector and the page's URL. Screenshots go to [`Browser::output_dir`].

use std::cell::Cell;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::protocol::cdp::Runtime;
use headless_chrome::LaunchOptions;
use serde_json::Value;
use tempfile::TempDir;

use crate::tools::Tools;

/// How long an element, a page load or a navigation may take before the test fails by default:
/// generous, because CI machines are shared; only a broken page ever waits this long.
const WAIT: Duration = Duration::from_secs(30);
/// Between two checks of a page that is not ready yet (each check is a DevTools round trip).
const POLL: Duration = Duration::from_millis(25);
/// Marks documents for [`Tab::click_and_wait`]; unique within the test process.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);
/// The browser window, so screenshots have the same size everywhere.
const WINDOW: (u32, u32) = (1280, 900);

/// A headless Chromium with a private profile; killed (and the profile removed) on drop.
pub struct Browser {
    /// `None` only while dropping (see the `Drop` impl).
    chrome: Option<headless_chrome::Browser>,
    output_dir: PathBuf,
    profile: TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Dropping headless_chrome's browser kills and reaps the main process; its helper
        // processes (zygote, renderers) exit moments later and may still write to the profile
        // meanwhile, which makes a single removal fail with "directory not empty".
        drop(self.chrome.take());
        let path = self.profile.path();
        let mut result = std::fs::remove_dir_all(path);
        for _ in 0..50 {
            if result.is_ok() || !path.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
            result = std::fs::remove_dir_all(path);
        }
        if let Err(e) = result {
            eprintln!(
                "warning: cannot remove Chromium's profile {}: {e}",
                path.display()
            );
        }
    }
}

/// A cookie as the browser stores it (including HttpOnly ones that page scripts cannot see).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserCookie {
    pub name: String,
    pub value: String,
    pub path: String,
    pub http_only: bool,
    pub secure: bool,
}

impl Browser {
    /// Starts Chromium headless with a fresh profile. Screenshots of this browser go to
    /// [`Browser::output_dir`], named after the calling test (libtest names its thread after it).
    pub fn launch() -> Browser {
        let name = std::thread::current()
            .name()
            .filter(|n| *n != "main")
            .map(str::to_string)
            .unwrap_or_else(|| "unnamed-test".to_string());
        Self::launch_for(&name)
    }

    /// [`Browser::launch`] with an explicit test name for the screenshot folder (for tests run
    /// on the main thread, where the thread name says nothing).
    pub fn launch_for(test_name: &str) -> Browser {
        let path = Tools::chromium();
        let profile = tempfile::Builder::new()
            .prefix("sigbridge-chromium-")
            .tempdir()
            .expect("create Chromium's profile folder");
        let home = profile.path().join("home");
        std::fs::create_dir_all(&home).expect("create Chromium's HOME");
        // Chromium also writes outside --user-data-dir (~/.pki/nssdb, ~/.cache): keep it all in
        // the temporary folder, away from the machine's user.
        let envs = [
            ("HOME", &home),
            ("XDG_CONFIG_HOME", &home.join(".config")),
            ("XDG_CACHE_HOME", &home.join(".cache")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string_lossy().into_owned()))
        .collect();
        let options = LaunchOptions::default_builder()
            .path(Some(path.clone()))
            .headless(true)
            // The tests run as root in CI containers, and Chromium refuses to start its
            // setuid/namespace sandbox as root. The pages it renders are our own test servers
            // on 127.0.0.1, never the internet, so running without the sandbox is acceptable.
            .sandbox(false)
            .user_data_dir(Some(profile.path().join("profile")))
            .window_size(Some(WINDOW))
            .args(vec![
                // Loopback only: no proxy from the environment, no calls home.
                OsStr::new("--no-proxy-server"),
                OsStr::new("--no-default-browser-check"),
                OsStr::new("--disable-component-update"),
            ])
            .process_envs(Some(envs))
            // headless_chrome closes the connection after this long without a DevTools event;
            // a test may sit between two clicks while a CLI runs, so it must not be 30 s.
            .idle_browser_timeout(Duration::from_secs(600))
            .build()
            .unwrap_or_else(|e| panic!("Chromium launch options: {e}"));
        let started = Instant::now();
        let chrome = headless_chrome::Browser::new(options).unwrap_or_else(|e| {
            panic!(
                "cannot start {} headless: {e:#}\n(is Debian's chromium installed? run \
                 `sudo scripts/install-test-deps.sh`)",
                path.display()
            )
        });
        // A figure for the report, never asserted on.
        println!(
            "chromium started in {} ms (pid {:?})",
            started.elapsed().as_millis(),
            chrome.get_process_id()
        );
        Browser {
            chrome: Some(chrome),
            output_dir: output_dir_for(test_name),
            profile,
        }
    }

    /// A new tab; all tabs of one browser share its cookies.
    pub fn new_tab(&self) -> Tab<'_> {
        let tab = self
            .chrome
            .as_ref()
            .expect("Chromium runs until the Browser is dropped")
            .new_tab()
            .unwrap_or_else(|e| panic!("Chromium: cannot open a tab: {e:#}"));
        tab.set_default_timeout(WAIT);
        Tab {
            tab,
            browser: self,
            wait: Cell::new(WAIT),
        }
    }

    /// The temporary folder holding Chromium's profile and HOME; removed on drop.
    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }

    /// Where [`Tab::screenshot`] writes: `$SIGBRIDGE_TEST_OUTPUT_DIR/<test-name>/` (relative
    /// paths are taken from the workspace root), else `<workspace>/target/test-output/<test-name>/`.
    pub fn output_dir(&self) -> &Path {
        &self.output_dir
    }
}

fn output_dir_for(test_name: &str) -> PathBuf {
    let base = match std::env::var_os("SIGBRIDGE_TEST_OUTPUT_DIR") {
        Some(dir) if !dir.is_empty() => Tools::workspace_root().join(dir),
        _ => Tools::workspace_root().join("target/test-output"),
    };
    base.join(file_name_part(test_name))
}

/// `browser_harness::login` -> `browser_harness__login`: one path component, no surprises.
fn file_name_part(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.trim_matches('.') {
        "" => "unnamed".to_string(),
        s => s.to_string(),
    }
}

/// One page of a [`Browser`].
///
/// Each DevTools call of headless_chrome 1.0 costs about 100 ms (its reader thread holds the
/// socket lock through a 100 ms read timeout, rust-headless-chrome issue #446), so every action
/// here is one script evaluation in the page (plus polls while waiting), not a chain of DOM
/// calls.
pub struct Tab<'b> {
    tab: std::sync::Arc<headless_chrome::Tab>,
    browser: &'b Browser,
    wait: Cell<Duration>,
}

/// Why an evaluation failed.
enum EvalError {
    /// The page threw (a bad selector, a script bug): retrying cannot help.
    Script(String),
    /// No answer from the page, e.g. while one document replaces another: worth retrying.
    Transport(String),
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvalError::Script(e) => write!(f, "script error: {e}"),
            EvalError::Transport(e) => write!(f, "DevTools: {e}"),
        }
    }
}

impl Tab<'_> {
    /// How long this tab waits for elements and page loads before failing (default 30 s);
    /// tests that expect a failure shorten it.
    pub fn set_wait(&self, wait: Duration) -> &Self {
        self.wait.set(wait);
        self.tab.set_default_timeout(wait);
        self
    }

    /// Loads `url` and waits until the new page (after any redirects) has finished loading.
    pub fn goto(&self, url: &str) -> &Self {
        let token = self.mark_document(url);
        self.tab
            .navigate_to(url)
            .unwrap_or_else(|e| panic!("browser: cannot load {url}: {e:#}"));
        self.wait_for_new_document(token, &format!("{url} to load"));
        self
    }

    /// Replaces the value of the input or textarea at `css` by `text`, entered as text input
    /// (the page sees `input` events as when a user types).
    pub fn fill(&self, css: &str, text: &str) -> &Self {
        let focus =
            "(() => { el.focus(); el.value = ''; return el === document.activeElement; })()";
        if self.on_element(css, "fill", focus) != Value::Bool(true) {
            self.fail("fill", css, "the element does not take the keyboard focus");
        }
        self.tab
            .call_method(headless_chrome::protocol::cdp::Input::InsertText {
                text: text.to_string(),
            })
            .unwrap_or_else(|e| self.fail("type into", css, format!("{e:#}")));
        let value = self.on_element(css, "read back", "el.value");
        if value != Value::String(text.to_string()) {
            self.fail("fill", css, format!("the field holds {value} after typing"));
        }
        self
    }

    /// Clicks the element at `css` (a submit button, a link) and waits for the navigation it
    /// starts to finish: a new document, fully loaded, after any redirects. Panics if the page
    /// stays the same, or if the element is hidden or disabled (a user could not click it).
    ///
    /// The click is the element's own `click()`: for buttons and links it runs the same
    /// activation (form submission, following the link) as a mouse click, without JavaScript
    /// on the page.
    pub fn click_and_wait(&self, css: &str) -> &Self {
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        // The token lives in the current document's global scope: it is gone once a new
        // document has replaced this one, whatever the timing of the navigation events.
        let script = format!(
            "(() => {{ const r = el.getBoundingClientRect();
                if (r.width === 0 || r.height === 0) return 'is not visible';
                if (el.disabled) return 'is disabled';
                window.__testkitPage = {token}; el.click(); return 'clicked'; }})()"
        );
        match self.on_element(css, "click", &script) {
            Value::String(s) if s == "clicked" => {}
            other => self.fail("click", css, format!("the element {}", plain(&other))),
        }
        self.wait_for_new_document(token, &format!("the click on {css} to load a new page"));
        self
    }

    /// The rendered text of the element at `css` (waits for it to appear).
    pub fn text(&self, css: &str) -> String {
        match self.on_element(css, "read the text of", "el.innerText") {
            Value::String(s) => s,
            other => self.fail("read the text of", css, format!("innerText is {other}")),
        }
    }

    /// Whether an element matches `css` now (no waiting).
    pub fn exists(&self, css: &str) -> bool {
        let selector = Value::String(css.to_string());
        match self.eval(&format!("document.querySelector({selector}) !== null")) {
            Ok(Value::Bool(b)) => b,
            Ok(other) => self.fail("look for", css, format!("unexpected result {other}")),
            Err(e) => self.fail("look for", css, e),
        }
    }

    /// The attribute `name` of the element at `css` (waits for the element), `None` if unset.
    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        let name_js = Value::String(name.to_string());
        let action = format!("read attribute {name} of");
        match self.on_element(css, &action, &format!("el.getAttribute({name_js})")) {
            Value::String(s) => Some(s),
            Value::Null => None,
            other => self.fail(&action, css, format!("unexpected result {other}")),
        }
    }

    /// The address of the document shown now (after redirects).
    pub fn current_url(&self) -> String {
        match self.eval("location.href") {
            Ok(Value::String(url)) => url,
            Ok(other) => panic!("browser: location.href is {other}, not a string"),
            Err(e) => panic!("browser: cannot read location.href: {e}"),
        }
    }

    /// The browser's cookies for the current page, HttpOnly ones included.
    pub fn cookies(&self) -> Vec<BrowserCookie> {
        self.tab
            .get_cookies()
            .unwrap_or_else(|e| {
                panic!(
                    "browser: cannot read the cookies of {}: {e:#}",
                    self.current_url()
                )
            })
            .into_iter()
            .map(|c| BrowserCookie {
                name: c.name,
                value: c.value,
                path: c.path,
                http_only: c.http_only,
                secure: c.secure,
            })
            .collect()
    }

    /// The cookie `name` of the current page, if the browser has one.
    pub fn cookie(&self, name: &str) -> Option<BrowserCookie> {
        self.cookies().into_iter().find(|c| c.name == name)
    }

    /// Saves a PNG of the visible page as `<output_dir>/<name>.png`, prints and returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .unwrap_or_else(|e| {
                panic!(
                    "browser: cannot take screenshot {name} of {}: {e:#}",
                    self.current_url()
                )
            });
        let dir = self.browser.output_dir();
        std::fs::create_dir_all(dir)
            .unwrap_or_else(|e| panic!("create screenshot folder {}: {e}", dir.display()));
        let path = dir.join(format!("{}.png", file_name_part(name)));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        println!("screenshot: {}", path.display());
        path
    }

    /// Waits for the element at `css`, then evaluates `expr` with the element bound to `el`
    /// and returns its value.
    fn on_element(&self, css: &str, action: &str, expr: &str) -> Value {
        let selector = Value::String(css.to_string());
        let script = format!(
            "(() => {{ const el = document.querySelector({selector});
                return el === null ? {{ missing: true }} : {{ value: ({expr}) }}; }})()"
        );
        let deadline = Instant::now() + self.wait.get();
        loop {
            let problem = match self.eval(&script) {
                Ok(Value::Object(mut o)) if o.contains_key("value") => {
                    return o.remove("value").unwrap_or(Value::Null)
                }
                Ok(_) => "no element matches".to_string(),
                Err(e @ EvalError::Script(_)) => self.fail(action, css, e),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                let waited = self.wait.get().as_secs_f32();
                self.fail(action, css, format!("{problem} (waited {waited}s)"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Puts a fresh token into the current document (see [`Tab::wait_for_new_document`]).
    fn mark_document(&self, target: &str) -> u64 {
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        self.eval(&format!("window.__testkitPage = {token}; true"))
            .unwrap_or_else(|e| self.fail("mark the page before loading", target, e));
        token
    }

    /// Waits until a document without `token` has finished loading.
    fn wait_for_new_document(&self, token: u64, what: &str) {
        let check =
            format!("window.__testkitPage !== {token} && document.readyState === 'complete'");
        let deadline = Instant::now() + self.wait.get();
        while !matches!(self.eval(&check), Ok(Value::Bool(true))) {
            if Instant::now() > deadline {
                panic!(
                    "browser: gave up after {}s waiting for {what}; the page is {}",
                    self.wait.get().as_secs_f32(),
                    self.tab.get_url()
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Evaluates `expr` in the page and returns its value.
    fn eval(&self, expr: &str) -> Result<Value, EvalError> {
        let out = self
            .tab
            .call_method(Runtime::Evaluate {
                expression: expr.to_string(),
                object_group: None,
                include_command_line_api: Some(false),
                silent: Some(true),
                context_id: None,
                return_by_value: Some(true),
                generate_preview: Some(false),
                user_gesture: Some(false),
                await_promise: Some(false),
                throw_on_side_effect: None,
                timeout: None,
                disable_breaks: None,
                repl_mode: None,
                allow_unsafe_eval_blocked_by_csp: None,
                unique_context_id: None,
                serialization_options: None,
            })
            .map_err(|e| EvalError::Transport(format!("{e:#}")))?;
        if let Some(ex) = out.exception_details {
            let detail = ex.exception.and_then(|o| o.description).unwrap_or(ex.text);
            return Err(EvalError::Script(detail));
        }
        Ok(out.result.value.unwrap_or(Value::Null))
    }

    fn fail(&self, action: &str, css: &str, error: impl std::fmt::Display) -> ! {
        // The tab's last known URL, not current_url(): the page may be what failed.
        panic!(
            "browser: cannot {action} `{css}` on {}: {error}",
            self.tab.get_url()
        )
    }
}

/// A JSON string without its quotes, for messages.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::file_name_part;

    #[test]
    fn test_names_become_one_path_component() {
        assert_eq!(
            file_name_part("suite::browser::login"),
            "suite__browser__login"
        );
        assert_eq!(file_name_part("../etc/passwd"), "_etc_passwd");
        assert_eq!(file_name_part(".."), "unnamed");
        assert_eq!(file_name_part("request-42.v2"), "request-42.v2");
    }
}
