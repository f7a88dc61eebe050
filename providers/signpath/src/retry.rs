//! The retry policy and `Retry-After` parser shared with the registry client (crate
//! `sigbridge-retry`); re-exported so this crate's callers keep their paths.

pub use sigbridge_retry::{jitter, parse_retry_after, RetryPolicy};
