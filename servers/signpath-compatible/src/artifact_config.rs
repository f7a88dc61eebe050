//! The artifact configuration this server applies: the one docs/signpath.md gives a SignPath
//! project for sigbridge. Each matching file gets a `create-raw-signature` (SHA-256, the
//! policy's key) written next to it as `${file.name}.sig`; other files are passed through
//! unsigned, as SignPath does with files no rule selects.
//!
//! - `payload.json`, `payloads/*.json`: cosign simple-signing payloads (`--format legacy`);
//! - `payload.pae`, `payloads/*.pae`: DSSE pre-authentication encodings of cosign 3 statements
//!   (`--format bundle`); `--format both` sends both kinds in one zip.

/// The `path` patterns of the configuration's `<file>` elements (`*` matches within one
/// directory level), for messages.
pub const PATTERNS: [&str; 4] = [
    "payload.json",
    "payloads/*.json",
    "payload.pae",
    "payloads/*.pae",
];

/// Whether the configuration signs the zip entry `name`.
pub fn signs(name: &str) -> bool {
    PATTERNS.iter().any(|p| matches(p, name))
}

/// `pattern` with at most one `*`, which matches any characters except `/`.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => name
            .strip_prefix(head)
            .and_then(|rest| rest.strip_suffix(tail))
            .is_some_and(|middle| !middle.is_empty() && !middle.contains('/')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_payloads_and_pae_files_are_signed() {
        for name in [
            "payload.json",
            "payload.pae",
            "payloads/001-sha256-ab.json",
            "payloads/002-sha256-ab.pae",
            "payloads/003.pae",
        ] {
            assert!(signs(name), "{name}");
        }
    }

    #[test]
    fn other_files_are_not() {
        for name in [
            "payload.txt",
            "payloads/x/1.pae",
            "payloads/.pae.sig",
            "payloads/1.pae.sig",
            "other/1.pae",
            "payloads/.pae",
            "payload.json.sig",
        ] {
            assert!(!signs(name), "{name}");
        }
    }
}
