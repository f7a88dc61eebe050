//! RFC 6962 / RFC 9162 Merkle trees: the leaf and node hashes and the inclusion-proof check
//! (RFC 9162 §2.1.3.2). Hashes are SHA-256; every hash handled is 32 bytes.

use sha2::{Digest as _, Sha256};

/// A SHA-256 hash, the size of every node of the tree.
pub type Hash = [u8; 32];

/// Why an inclusion proof does not lead to the root.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InclusionError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not below the tree size {size}")]
    IndexOutOfRange {
        /// The leaf's index.
        index: u64,
        /// The tree's size.
        size: u64,
    },
    /// A hash is not 32 bytes.
    #[error("the {what} is {len} bytes, not 32 (SHA-256)")]
    WrongLength {
        /// Which hash.
        what: String,
        /// Its length.
        len: usize,
    },
    /// The path is longer or shorter than the tree needs for this leaf.
    #[error("the audit path has {got} hashes; leaf {index} of a tree of {size} needs {expected}")]
    WrongPathLength {
        /// The leaf's index.
        index: u64,
        /// The tree's size.
        size: u64,
        /// Hashes given.
        got: usize,
        /// Hashes needed.
        expected: usize,
    },
    /// The path leads to another root.
    #[error("the audit path leads to root {computed}, not to {expected}")]
    RootMismatch {
        /// The root the path computes, hex.
        computed: String,
        /// The root claimed, hex.
        expected: String,
    },
}

/// The hash of a leaf: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(data)
        .finalize()
        .into()
}

/// The hash of an inner node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &[u8], right: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// Check that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`, by the
/// audit path `proof` (leaf to root), as RFC 9162 §2.1.3.2 computes it.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &[u8],
    proof: &[impl AsRef<[u8]>],
    root: &[u8],
) -> Result<(), InclusionError> {
    if index >= size {
        return Err(InclusionError::IndexOutOfRange { index, size });
    }
    let leaf = to_hash(leaf, "leaf hash".into())?;
    let root = to_hash(root, "root hash".into())?;
    // The path length is fixed by index and size; checking it first makes a padded or cut
    // path fail by name rather than by a root mismatch.
    let expected = path_length(index, size);
    if proof.len() != expected {
        return Err(InclusionError::WrongPathLength {
            index,
            size,
            got: proof.len(),
            expected,
        });
    }
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = leaf;
    for (i, p) in proof.iter().enumerate() {
        let p = to_hash(p.as_ref(), format!("audit path hash [{i}]"))?;
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(&p, &r);
            // Climb past the levels where this node has no right sibling.
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, &p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    // The length check above makes the walk end at the root level.
    debug_assert_eq!(s_n, 0);
    if r != root {
        return Err(InclusionError::RootMismatch {
            computed: hex::encode(r),
            expected: hex::encode(root),
        });
    }
    Ok(())
}

/// How many hashes the audit path of leaf `index` in a tree of `size` has: the levels below
/// the point where the leaf's and the last leaf's paths split, plus one per level above it
/// where the leaf's subtree has a right neighbour (RFC 9162's loop, counted).
fn path_length(index: u64, size: u64) -> usize {
    let last = size - 1;
    // Levels where `index` and `last` lie in different subtrees.
    let inner = (u64::BITS - (index ^ last).leading_zeros()) as usize;
    // Above that, one hash per set bit of `index >> inner` (a left neighbour exists there).
    let border = (index >> inner).count_ones() as usize;
    inner + border
}

fn to_hash(bytes: &[u8], what: String) -> Result<Hash, InclusionError> {
    bytes.try_into().map_err(|_| InclusionError::WrongLength {
        what,
        len: bytes.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde_json::Value;
    use std::path::{Path, PathBuf};

    const VECTORS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tlog/merkle-inclusion"
    );

    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else {
                out.push(path);
            }
        }
    }

    fn b64(v: &Value) -> Vec<u8> {
        STANDARD.decode(v.as_str().unwrap()).unwrap()
    }

    /// transparency-dev/merkle's published inclusion vectors (origin in the fixtures' README):
    /// every happy path verifies, every tampered one is refused.
    #[test]
    fn transparency_dev_inclusion_vectors() {
        let mut all = Vec::new();
        files(Path::new(VECTORS), &mut all);
        assert_eq!(all.len(), 98, "the vector set as copied");
        let mut accepted = 0;
        for path in all {
            let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let proof: Vec<Vec<u8>> = v["proof"]
                .as_array()
                .map(|a| a.iter().map(b64).collect())
                .unwrap_or_default();
            let got = verify_inclusion(
                v["leafIdx"].as_u64().unwrap(),
                v["treeSize"].as_u64().unwrap(),
                &b64(&v["leafHash"]),
                &proof,
                &b64(&v["root"]),
            );
            let want_err = v["wantErr"].as_bool().unwrap();
            assert_eq!(got.is_err(), want_err, "{}: {got:?}", path.display());
            accepted += usize::from(!want_err);
        }
        assert_eq!(accepted, 6, "five happy paths and one single-entry tree");
    }

    #[test]
    fn leaf_and_node_hashes_are_domain_separated() {
        // RFC 6962's empty leaf: SHA-256(0x00).
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let l = leaf_hash(b"a");
        assert_ne!(node_hash(&l, &l), leaf_hash(&[l, l].concat()));
    }

    #[test]
    fn refusals_name_what_failed() {
        let leaf = leaf_hash(b"x");
        let root = node_hash(&leaf, &leaf);
        assert!(verify_inclusion(0, 2, &leaf, &[leaf], &root).is_ok());
        assert!(matches!(
            verify_inclusion(2, 2, &leaf, &[leaf], &root),
            Err(InclusionError::IndexOutOfRange { index: 2, size: 2 })
        ));
        assert!(matches!(
            verify_inclusion(0, 2, &leaf, &[leaf, leaf], &root),
            Err(InclusionError::WrongPathLength {
                got: 2,
                expected: 1,
                ..
            })
        ));
        assert!(matches!(
            verify_inclusion(0, 2, &leaf, &[&leaf[..31]], &root),
            Err(InclusionError::WrongLength { len: 31, .. })
        ));
        let err = verify_inclusion(0, 2, &leaf, &[root], &root).unwrap_err();
        assert!(err.to_string().contains("leads to root"), "{err}");
    }
}
