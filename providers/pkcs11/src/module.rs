//! Loading a PKCS#11 module (once per process) and finding the token a URI names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::slot::{Slot, TokenInfo};

use crate::error::Pkcs11Error;
use crate::uri::Pkcs11Uri;

/// The environment variable cosign reads the module path from.
pub const MODULE_PATH_ENV: &str = "COSIGN_PKCS11_MODULE_PATH";

/// Directories searched for `module-name=NAME` (as `libNAME.so`, `NAME.so` or `NAME`).
const MODULE_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/aarch64-linux-gnu/pkcs11",
    "/usr/lib64/pkcs11",
    "/usr/lib/pkcs11",
    "/usr/lib/softhsm",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
    "/opt/cloudhsm/lib",
    "/usr/safenet/lunaclient/lib",
    "/opt/nfast/toolkits/pkcs11",
];

/// Loaded and initialised modules, by canonical path. Modules are never finalised: they live
/// as long as the process, and PKCS#11 allows one C_Initialize per process.
fn loaded() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    LOADED.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The module a URI names: `module-path`, else `module-name` looked up in the usual
/// directories, else `COSIGN_PKCS11_MODULE_PATH` (as cosign).
pub fn module_path_for(uri: &Pkcs11Uri) -> Result<PathBuf, Pkcs11Error> {
    if let Some(path) = &uri.module_path {
        return Ok(path.clone());
    }
    if let Some(name) = &uri.module_name {
        if name.contains('/') {
            return Err(Pkcs11Error::Uri(crate::uri::UriError(
                "module-name is a name, not a path: use module-path for paths".into(),
            )));
        }
        for dir in MODULE_DIRS {
            for file in [format!("lib{name}.so"), format!("{name}.so"), name.clone()] {
                let candidate = Path::new(dir).join(file);
                if candidate.is_file() {
                    return Ok(candidate);
                }
            }
        }
        return Err(Pkcs11Error::ModuleNotFound {
            path: PathBuf::from(format!("lib{name}.so")),
            hint: format!(
                " (module-name={name} was looked for in {}); use module-path= to give the path",
                MODULE_DIRS.join(", ")
            ),
        });
    }
    match std::env::var_os(MODULE_PATH_ENV) {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err(Pkcs11Error::NoModule),
    }
}

/// Load and initialise the module at `path`, or return the one this process already has.
pub fn load(path: &Path) -> Result<Pkcs11, Pkcs11Error> {
    if !path.is_absolute() {
        return Err(Pkcs11Error::ModuleNotFound {
            path: path.to_path_buf(),
            hint: ": the module path must be absolute (as cosign requires)".into(),
        });
    }
    let meta = std::fs::metadata(path).map_err(|e| Pkcs11Error::ModuleNotFound {
        path: path.to_path_buf(),
        hint: format!(" ({e}); check module-path or COSIGN_PKCS11_MODULE_PATH, and that the vendor's client is installed"),
    })?;
    if !meta.is_file() {
        return Err(Pkcs11Error::ModuleNotFound {
            path: path.to_path_buf(),
            hint: ": it is not a regular file".into(),
        });
    }
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut modules = loaded()
        .lock()
        .map_err(|_| Pkcs11Error::Internal("module table poisoned".into()))?;
    if let Some(ctx) = modules.get(&key) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(path).map_err(|e| Pkcs11Error::ModuleLoad {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(Pkcs11Error::ModuleLoad {
                path: path.to_path_buf(),
                reason: format!("C_Initialize failed: {e}"),
            })
        }
    }
    tracing::debug!(module = %path.display(), "pkcs11: module loaded and initialised");
    modules.insert(key, ctx.clone());
    Ok(ctx)
}

/// A token found in a slot.
#[derive(Clone, Debug)]
pub struct TokenSlot {
    /// The slot.
    pub slot: Slot,
    /// The token's label (trailing blanks removed).
    pub label: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// CKF_LOGIN_REQUIRED.
    pub login_required: bool,
    /// CKF_PROTECTED_AUTHENTICATION_PATH (PIN pad).
    pub protected_auth_path: bool,
    /// CKF_USER_PIN_LOCKED.
    pub pin_locked: bool,
    /// CKF_USER_PIN_FINAL_TRY.
    pub pin_final_try: bool,
    /// CKF_USER_PIN_COUNT_LOW.
    pub pin_count_low: bool,
}

impl TokenSlot {
    fn from_info(slot: Slot, info: &TokenInfo) -> Self {
        Self {
            slot,
            label: info.label().trim_end().to_string(),
            manufacturer: info.manufacturer_id().trim_end().to_string(),
            model: info.model().trim_end().to_string(),
            serial: info.serial_number().trim_end().to_string(),
            login_required: info.login_required(),
            protected_auth_path: info.protected_authentication_path(),
            pin_locked: info.user_pin_locked(),
            pin_final_try: info.user_pin_final_try(),
            pin_count_low: info.user_pin_count_low(),
        }
    }

    /// One line for messages: `"label" (slot N, serial S)`.
    pub fn summary(&self) -> String {
        format!(
            "{:?} (slot-id={}, serial {:?}, {} {})",
            self.label,
            self.slot.id(),
            self.serial,
            self.manufacturer,
            self.model
        )
    }
}

/// Every initialised token the module shows.
pub fn tokens(ctx: &Pkcs11) -> Result<Vec<TokenSlot>, Pkcs11Error> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| Pkcs11Error::call("listing slots (C_GetSlotList)", e))?;
    let mut out = Vec::with_capacity(slots.len());
    for slot in slots {
        // One slot in a bad state (a token being initialised by another process, a removed
        // card) must not hide the others: skip it, and say so in the debug log.
        match ctx.get_token_info(slot) {
            Ok(info) if info.token_initialized() => out.push(TokenSlot::from_info(slot, &info)),
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(slot = slot.id(), error = %e, "pkcs11: skipping a slot whose token cannot be read")
            }
        }
    }
    Ok(out)
}

/// What a URI asks of a token, for selection and messages.
#[derive(Clone, Debug, Default)]
pub struct TokenSelector {
    /// `slot-id` (wins over everything else, as in cosign).
    pub slot_id: Option<u64>,
    /// `token`.
    pub label: Option<String>,
    /// `serial`.
    pub serial: Option<String>,
    /// `manufacturer`.
    pub manufacturer: Option<String>,
    /// `model`.
    pub model: Option<String>,
}

impl TokenSelector {
    /// The token attributes of a URI.
    pub fn from_uri(uri: &Pkcs11Uri) -> Self {
        Self {
            slot_id: uri.slot_id,
            label: uri.token.clone(),
            serial: uri.serial.clone(),
            manufacturer: uri.manufacturer.clone(),
            model: uri.model.clone(),
        }
    }

    fn describe(&self) -> String {
        if let Some(slot) = self.slot_id {
            return format!("slot-id={slot}");
        }
        let mut parts = Vec::new();
        if let Some(l) = &self.label {
            parts.push(format!("token={l:?}"));
        }
        if let Some(s) = &self.serial {
            parts.push(format!("serial={s:?}"));
        }
        if let Some(m) = &self.manufacturer {
            parts.push(format!("manufacturer={m:?}"));
        }
        if let Some(m) = &self.model {
            parts.push(format!("model={m:?}"));
        }
        if parts.is_empty() {
            "any token".into()
        } else {
            parts.join(", ")
        }
    }

    fn matches(&self, t: &TokenSlot) -> bool {
        if let Some(slot) = self.slot_id {
            return t.slot.id() == slot;
        }
        self.label.as_ref().is_none_or(|l| l.trim_end() == t.label)
            && self
                .serial
                .as_ref()
                .is_none_or(|s| s.trim_end() == t.serial)
            && self
                .manufacturer
                .as_ref()
                .is_none_or(|m| m.trim_end() == t.manufacturer)
            && self.model.as_ref().is_none_or(|m| m.trim_end() == t.model)
    }
}

/// The one token `selector` names.
pub fn find_token(
    ctx: &Pkcs11,
    module: &Path,
    selector: &TokenSelector,
) -> Result<TokenSlot, Pkcs11Error> {
    let all = tokens(ctx)?;
    let mut matching: Vec<TokenSlot> = all
        .iter()
        .filter(|t| selector.matches(t))
        .cloned()
        .collect();
    match matching.len() {
        1 => Ok(matching.remove(0)),
        0 => Err(Pkcs11Error::TokenNotFound {
            wanted: selector.describe(),
            module: module.to_path_buf(),
            present: all.iter().map(TokenSlot::summary).collect(),
        }),
        _ => Err(Pkcs11Error::AmbiguousToken {
            wanted: selector.describe(),
            present: matching.iter().map(TokenSlot::summary).collect(),
        }),
    }
}
