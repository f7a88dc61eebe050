//! Image references, parsed and normalised exactly as go-containerregistry's `pkg/name` does,
//! because cosign puts `Repository.Name()` into the payload's `docker-reference` and a
//! byte-identical payload needs the same normalisation.
//!
//! Rules (ggcr `name.ParseReference` with default options):
//! - the first path component is a registry only if it contains `.` or `:` or is `localhost`;
//! - no registry means `index.docker.io`, and `docker.io` is rewritten to it;
//! - a single-component Docker Hub repository gets `library/`;
//! - repository characters are `[a-z0-9_./-]`, 2 to 255 of them;
//! - stricter than ggcr's weak validation, as registries (distribution's grammar) are: every
//!   path component is `[a-z0-9]+` runs joined by `.`, `_`, `__` or dashes (so no empty
//!   component and no `.`/`..`), a port is 1 to 65535, and a tag does not start with `.` or `-`.
//!   Such references would otherwise be sent and fail at the registry; refusing them here names
//!   the bad part before anything goes over the network;
//! - `repo:tag@sha256:…` is accepted and the tag dropped; only `sha256:` digests are accepted.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// Docker Hub's canonical registry name, as go-containerregistry spells it.
pub const DEFAULT_REGISTRY: &str = "index.docker.io";
const DOCKER_HUB_ALIAS: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";
const REPOSITORY_CHARS: &str = "abcdefghijklmnopqrstuvwxyz0123456789_-./";
const TAG_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.";

/// Whether `tag` is a valid tag: 1 to 128 characters of `[A-Za-z0-9_.-]`, not starting with
/// `.` or `-` (the OCI distribution spec's `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`). The one tag
/// check: references and the registry client (which puts tags into URL paths) both use it.
pub fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag.chars().all(|c| TAG_CHARS.contains(c))
}

/// Why a reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The reference is empty.
    #[error("image reference is empty")]
    Empty,
    /// The repository part is malformed.
    #[error("invalid repository {repository:?} in {input:?}: {reason}")]
    Repository {
        /// The whole input.
        input: String,
        /// The repository part.
        repository: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry part is malformed.
    #[error("invalid registry {registry:?} in {input:?}: {reason}")]
    Registry {
        /// The whole input.
        input: String,
        /// The registry part.
        registry: String,
        /// What is wrong.
        reason: String,
    },
    /// The tag is malformed.
    #[error("invalid tag {tag:?} in {input:?}: tags are 1 to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'")]
    Tag {
        /// The whole input.
        input: String,
        /// The tag part.
        tag: String,
    },
    /// The digest is malformed.
    #[error("invalid digest {digest:?}: expected sha256: followed by 64 lowercase hex characters")]
    Digest {
        /// The digest text.
        digest: String,
    },
}

/// A content digest. Only SHA-256 is accepted, as go-containerregistry's `name` package does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The SHA-256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The 64 lowercase hex characters.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The algorithm name (`sha256`).
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The tag cosign stores signatures under: `sha256-<hex>.sig`.
    pub fn signature_tag(&self) -> String {
        format!("sha256-{}.sig", self.hex)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ReferenceError::Digest {
            digest: s.to_string(),
        };
        let hex = s.strip_prefix("sha256:").ok_or_else(bad)?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad());
        }
        Ok(Self {
            hex: hex.to_string(),
        })
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A repository in a registry: `registry/path`, e.g. `index.docker.io/library/ubuntu`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Repository {
    registry: String,
    path: String,
}

impl Repository {
    /// Parse a repository name (no tag or digest), with Docker Hub defaulting.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        Self::parse_within(input, input)
    }

    fn parse_within(name: &str, input: &str) -> Result<Self, ReferenceError> {
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first, rest)
            }
            _ => ("", name),
        };
        let registry = normalise_registry(registry, input)?;
        check_repository_path(path, input)?;
        let path = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        Ok(Self { registry, path })
    }

    /// The registry host (and port), e.g. `index.docker.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry, e.g. `library/ubuntu`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `registry/path`: what cosign writes into `docker-reference`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.path)
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

/// A parsed image reference: a repository plus a tag, a digest, or both.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageReference {
    repository: Repository,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageReference {
    /// Parse as go-containerregistry's `name.ParseReference` does (weak validation).
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (base, digest) = match input.split_once('@') {
            Some((base, digest)) => {
                if digest.contains('@') {
                    return Err(ReferenceError::Digest {
                        digest: digest.to_string(),
                    });
                }
                (base, Some(digest.parse::<Digest>()?))
            }
            None => (input, None),
        };
        // A tag is whatever follows the last ':' in the last path component, so a registry
        // port ("host:5000/repo") is not mistaken for one.
        let last_component = base.rsplit('/').next().unwrap_or(base);
        let (name, tag) = match last_component.rfind(':') {
            Some(idx) => {
                let cut = base.len() - last_component.len() + idx;
                (&base[..cut], Some(&base[cut + 1..]))
            }
            None => (base, None),
        };
        if let Some(tag) = tag {
            if !is_valid_tag(tag) {
                return Err(ReferenceError::Tag {
                    input: input.to_string(),
                    tag: tag.to_string(),
                });
            }
        }
        let repository = Repository::parse_within(name, input)?;
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (None, Some(_)) => None,
        };
        Ok(Self {
            repository,
            tag,
            digest,
        })
    }

    /// The same repository pinned to `digest` (the tag is kept only for display).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            repository: self.repository.clone(),
            tag: self.tag.clone(),
            digest: Some(digest),
        }
    }

    /// The repository.
    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    /// The tag, if one was given (or `latest` when neither tag nor digest was).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference is pinned.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry for: the digest if pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageReference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn normalise_registry(registry: &str, input: &str) -> Result<String, ReferenceError> {
    if registry.is_empty() || registry == DOCKER_HUB_ALIAS {
        return Ok(DEFAULT_REGISTRY.to_string());
    }
    let bad = |reason: &str| ReferenceError::Registry {
        input: input.to_string(),
        registry: registry.to_string(),
        reason: reason.to_string(),
    };
    // An RFC 3986 authority without userinfo: host (name, IPv4 or [IPv6]) and optional port.
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 address must be closed with ']'"))?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad(&format!("{v6:?} is not an IPv6 address")));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| bad("only ':PORT' may follow the IPv6 address"))?,
            ),
        };
        (v6, port)
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry, None),
        }
    };
    let host_ok = !host.is_empty()
        && (registry.starts_with('[')
            || host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'));
    if !host_ok {
        return Err(bad(&format!(
            "host {host:?} must be a name of letters, digits, '.', '-' and '_', an IPv4 address or [IPv6]"
        )));
    }
    if let Some(p) = port {
        let valid = p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n));
        if !valid {
            return Err(bad(&format!("port {p:?} must be a number from 1 to 65535")));
        }
    }
    Ok(registry.to_string())
}

fn check_repository_path(path: &str, input: &str) -> Result<(), ReferenceError> {
    let bad = |reason: &str| ReferenceError::Repository {
        input: input.to_string(),
        repository: path.to_string(),
        reason: reason.to_string(),
    };
    if path.len() < 2 || path.len() > 255 {
        return Err(bad(
            "repository must be between 2 and 255 characters in length",
        ));
    }
    if let Some(c) = path.chars().find(|c| !REPOSITORY_CHARS.contains(*c)) {
        let reason = if c.is_ascii_uppercase() {
            "repository names must be lowercase".to_string()
        } else {
            format!("character {c:?} is not allowed (allowed: a-z 0-9 _ - . /)")
        };
        return Err(bad(&reason));
    }
    for component in path.split('/') {
        if let Some(reason) = component_problem(component) {
            return Err(bad(&reason));
        }
    }
    Ok(())
}

/// Why a path component breaks the grammar registries enforce (distribution's
/// `path-component`: `[a-z0-9]+` runs joined by one `.`, one or two `_`, or any number of `-`),
/// or `None` if it is fine. Only called once the characters are known to be allowed.
fn component_problem(component: &str) -> Option<String> {
    if component.is_empty() {
        return Some(
            "it has an empty path component ('//', or a leading or trailing '/')".to_string(),
        );
    }
    if component == "." || component == ".." {
        return Some(format!("path component {component:?} is not allowed"));
    }
    let bytes = component.as_bytes();
    if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Some(format!(
            "path component {component:?} must start and end with a letter or digit"
        ));
    }
    // Separators between alphanumeric runs: ".", "_", "__" or one or more "-".
    for run in component
        .split(|c: char| c.is_ascii_alphanumeric())
        .filter(|r| !r.is_empty())
    {
        let ok = run == "." || run == "_" || run == "__" || run.bytes().all(|b| b == b'-');
        if !ok {
            return Some(format!(
                "path component {component:?} has the separator {run:?} (allowed between letters and digits: '.', '_', '__' or dashes)"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:4aa3054270f7a70b4528f2064ee90961788e1e1518703592ae4463de3b889dec";

    #[test]
    fn docker_hub_defaulting() {
        let r = ImageReference::parse("ubuntu").unwrap();
        assert_eq!(r.repository().name(), "index.docker.io/library/ubuntu");
        assert_eq!(r.tag(), Some("latest"));
        let r = ImageReference::parse(&format!("docker.io/namespace/image@{D}")).unwrap();
        assert_eq!(r.repository().name(), "index.docker.io/namespace/image");
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.tag(), None);
    }

    #[test]
    fn registry_detection() {
        for (input, name) in [
            ("localhost/foo", "localhost/foo"),
            ("localhost:5000/foo/bar:1", "localhost:5000/foo/bar"),
            ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b"),
            ("gcr.io/p/img", "gcr.io/p/img"),
            ("myorg/img", "index.docker.io/myorg/img"),
            ("index.docker.io/busybox", "index.docker.io/library/busybox"),
            ("[::1]:5000/img", "[::1]:5000/img"),
        ] {
            assert_eq!(
                ImageReference::parse(input).unwrap().repository().name(),
                name,
                "{input}"
            );
        }
    }

    #[test]
    fn tag_and_digest_keeps_digest() {
        let r =
            ImageReference::parse(&format!("127.0.0.1:5000/demo/hello:latest-tmp@{D}")).unwrap();
        assert_eq!(r.repository().name(), "127.0.0.1:5000/demo/hello");
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.manifest_reference(), D);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            ImageReference::parse(""),
            Err(ReferenceError::Empty)
        ));
        assert!(matches!(
            ImageReference::parse("Ubuntu"),
            Err(ReferenceError::Repository { .. })
        ));
        assert!(matches!(
            ImageReference::parse("a"),
            Err(ReferenceError::Repository { .. })
        ));
        assert!(matches!(
            ImageReference::parse("ubuntu@sha256:abc"),
            Err(ReferenceError::Digest { .. })
        ));
        assert!(matches!(
            ImageReference::parse("ubuntu@sha512:abc"),
            Err(ReferenceError::Digest { .. })
        ));
        assert!(matches!(
            ImageReference::parse("ubuntu:"),
            Err(ReferenceError::Tag { .. })
        ));
        assert!(matches!(
            ImageReference::parse("ubuntu:a+b"),
            Err(ReferenceError::Tag { .. })
        ));
        assert!(matches!(
            ImageReference::parse("ho st:5000/x/y"),
            Err(ReferenceError::Repository { .. }) | Err(ReferenceError::Registry { .. })
        ));
        assert!(matches!(
            ImageReference::parse("host:port/x"),
            Err(ReferenceError::Registry { .. })
        ));
    }

    #[test]
    fn ports_must_be_1_to_65535() {
        for bad in [
            "127.0.0.1:99999/r",
            "127.0.0.1:0/r",
            "127.0.0.1:/r",
            "[::1]:70000/r",
        ] {
            let err = ImageReference::parse(bad).unwrap_err();
            assert!(
                matches!(err, ReferenceError::Registry { .. }),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains("port"), "{bad}: {err}");
        }
        for good in [
            "127.0.0.1:1/rr",
            "127.0.0.1:65535/rr",
            "[::1]/rr",
            "[::1]:5000/rr",
        ] {
            ImageReference::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        assert!(ImageReference::parse("[::1]x/rr").is_err());
    }

    #[test]
    fn path_components_follow_the_registry_grammar() {
        for (bad, part) in [
            ("repo/../base", "\"..\""),
            ("repo//base", "empty path component"),
            ("localhost:5000/repo/./base", "\".\""),
            ("localhost:5000/repo/", "empty path component"),
            ("localhost:5000//repo", "empty path component"),
            ("repo/-base", "\"-base\""),
            ("repo/base.", "\"base.\""),
            ("repo/a..b", "\"..\""),
            ("repo/a___b", "\"___\""),
        ] {
            let err = ImageReference::parse(bad).unwrap_err();
            assert!(
                matches!(err, ReferenceError::Repository { .. }),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains(part), "{bad}: {err}");
        }
        for good in [
            "repo/a.b",
            "repo/a_b",
            "repo/a__b",
            "repo/a---b",
            "a1/b2/c3",
        ] {
            ImageReference::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn tags_do_not_start_with_dot_or_dash() {
        for bad in ["repo:.x", "repo:-x"] {
            assert!(
                matches!(ImageReference::parse(bad), Err(ReferenceError::Tag { .. })),
                "{bad}"
            );
        }
        assert!(ImageReference::parse("repo:_x.-y").is_ok());
    }

    #[test]
    fn digest_helpers() {
        let d: Digest = D.parse().unwrap();
        assert_eq!(d.signature_tag(), format!("sha256-{}.sig", &D[7..]));
        assert_eq!(
            Digest::of(b"").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!("sha256:ABCDEF".parse::<Digest>().is_err());
    }
}
