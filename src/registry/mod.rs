//! STUB: OCI distribution client (helper B).
