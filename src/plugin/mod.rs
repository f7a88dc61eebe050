//! The cosign KMS plugin protocol v1 (`sigstore-kms-sigbridge`): cosign runs the plugin with
//! `v1 <json>` for a `--key sigbridge://REF`, the message on stdin, and reads one JSON answer
//! from stdout. The binary only reads argv and stdin and prints what [`answer`] returns.
//!
//! One job per file: [`wire`] (the JSON shapes), [`key_ref`] (what follows `sigbridge://`),
//! [`message`] (which hash, digest against stdin), [`deadline`] (cosign's ctxDeadline),
//! [`dispatch`] (the methods).

pub mod deadline;
pub mod dispatch;
pub mod key_ref;
pub mod message;
pub mod wire;

pub use dispatch::answer;

/// The protocol version cosign passes as argv[1] and in `initOptions.protocolVersion`.
pub const PROTOCOL_VERSION: &str = "v1";
