//! sigbridge: sign container images in cosign's format with keys that live elsewhere (an HSM
//! behind PKCS#11, a remote signing service, a local key file), and verify such signatures.
//!
//! Data flows one way: reference and payload, then the signer, then the signature check, then
//! the registry. Providers (crates under `providers/`) know nothing of registries; the registry
//! client knows nothing of keys.

pub mod attach;
pub mod config;
pub mod error;
pub mod format;
pub mod keyless;
pub mod payload;
pub mod plugin;
pub mod providers;
pub mod reference;
pub mod registry;
pub mod resolve;
pub mod sign;
pub mod store;
pub mod test_knobs;
pub mod tlog;
pub mod trust;
pub mod verify;

pub use error::{Error, ExitCode, Result};
