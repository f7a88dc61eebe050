//! Which hash cosign used for the message on stdin, and whether its digest agrees with it.
//!
//! sigbridge's signers sign message bytes and hash them with SHA-256 themselves (the PKCS#11
//! and SignPath providers cannot sign a bare digest from cosign). So the plugin always signs
//! stdin, and only after checking that the digest cosign sent, if any, is the hash of stdin:
//! a disagreement would mean signing something other than what cosign asked for.

use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// Go's `crypto.Hash` numbers, as cosign puts them in `hashFunc`.
pub const GO_SHA256: u32 = 5;
pub const GO_SHA384: u32 = 6;
pub const GO_SHA512: u32 = 7;

/// A hash cosign may have used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// By digest length (cosign 3 hashes with the key's default algorithm and does not say
    /// which: a P-384 key gets 48 bytes while `hashFunc` still says SHA-256).
    pub fn by_len(len: usize) -> Option<Self> {
        match len {
            32 => Some(Self::Sha256),
            48 => Some(Self::Sha384),
            64 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// From Go's `crypto.Hash` number.
    pub fn from_go(n: u32) -> Option<Self> {
        match n {
            GO_SHA256 => Some(Self::Sha256),
            GO_SHA384 => Some(Self::Sha384),
            GO_SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha384 => Sha384::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }
}

/// Why a message cannot be signed (or checked) as cosign asked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("cosign sent a {0}-byte digest; only SHA-256 (32), SHA-384 (48) and SHA-512 (64) digests are known")]
    DigestLength(usize),
    #[error("cosign sent only a digest and no message on stdin; sigbridge signers sign the message itself (its providers cannot sign a bare digest)")]
    DigestOnly,
    #[error("the digest cosign sent is not the {0} of the message on stdin; refusing to sign something other than what cosign asked for")]
    Mismatch(&'static str),
    #[error("cosign asked for {0} but sigbridge signers hash with SHA-256: use a P-256 or RSA key (a P-384/P-521 key makes cosign 3 hash with SHA-384/SHA-512)")]
    NotSha256(&'static str),
    #[error("cosign asked for hash function {0} (Go crypto.Hash); sigbridge signers hash with SHA-256 (5)")]
    UnknownHashFunc(u32),
}

/// Check that `message` can be signed as cosign asked: with a digest, the digest (SHA-256/384/512
/// by length) must be the hash of `message`; without one, `hash_func` (the message's, else
/// `initOptions.hashFunc`) says how cosign expects it hashed. Either way it must be SHA-256,
/// which is what the signers use.
pub fn check(
    message: &[u8],
    digest: Option<&[u8]>,
    hash_func: Option<u32>,
) -> Result<(), MessageError> {
    let hash = match digest {
        Some(digest) => {
            let hash =
                Hash::by_len(digest.len()).ok_or(MessageError::DigestLength(digest.len()))?;
            if message.is_empty() {
                return Err(MessageError::DigestOnly);
            }
            if hash.digest(message) != digest {
                return Err(MessageError::Mismatch(hash.name()));
            }
            hash
        }
        None => match hash_func {
            None | Some(0) => Hash::Sha256,
            Some(n) => Hash::from_go(n).ok_or(MessageError::UnknownHashFunc(n))?,
        },
    };
    if hash != Hash::Sha256 {
        return Err(MessageError::NotSha256(hash.name()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_digest_with_sha256_is_signed_from_stdin() {
        assert_eq!(check(b"payload", None, Some(GO_SHA256)), Ok(()));
        assert_eq!(check(b"payload", None, None), Ok(()));
    }

    #[test]
    fn a_matching_sha256_digest_is_accepted() {
        let digest = Sha256::digest(b"payload");
        assert_eq!(check(b"payload", Some(&digest), None), Ok(()));
    }

    #[test]
    fn a_digest_of_something_else_is_refused() {
        let digest = Sha256::digest(b"other");
        assert_eq!(
            check(b"payload", Some(&digest), None),
            Err(MessageError::Mismatch("SHA-256"))
        );
    }

    #[test]
    fn hash_is_chosen_by_length_not_hash_func() {
        // cosign 3 with a P-384 key: a 48-byte SHA-384 digest while hashFunc says SHA-256.
        let digest = Sha384::digest(b"payload");
        assert_eq!(
            check(b"payload", Some(&digest), Some(GO_SHA256)),
            Err(MessageError::NotSha256("SHA-384"))
        );
        let wrong = Sha512::digest(b"other");
        assert_eq!(
            check(b"payload", Some(&wrong), None),
            Err(MessageError::Mismatch("SHA-512"))
        );
        assert_eq!(
            check(b"payload", Some(&[0; 20]), None),
            Err(MessageError::DigestLength(20))
        );
    }

    #[test]
    fn a_digest_without_a_message_is_refused() {
        let digest = Sha256::digest(b"");
        assert_eq!(
            check(b"", Some(&digest), None),
            Err(MessageError::DigestOnly)
        );
    }

    #[test]
    fn other_hash_funcs_are_refused() {
        assert_eq!(
            check(b"p", None, Some(GO_SHA384)),
            Err(MessageError::NotSha256("SHA-384"))
        );
        assert_eq!(
            check(b"p", None, Some(4)),
            Err(MessageError::UnknownHashFunc(4))
        );
    }
}
