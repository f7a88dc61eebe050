//! What an approver needs to know about each file to be signed: the image it is for
//! (`repo@sha256:…`), its annotations and its SHA-256, taken only from what the strict readers
//! ([`crate::artifact::read_claim`], cosign's semantics) return, so the page shows what
//! `cosign verify` will read. A file they refuse (only possible for an upload stored before
//! submissions were checked) is shown as refused, with the reason.

use sha2::{Digest as _, Sha256};

use crate::artifact::{read_claim, PayloadKind};

/// One file that will be signed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Described {
    /// Its name in the upload.
    pub(crate) file: String,
    /// SHA-256, hex.
    pub(crate) sha256: String,
    /// The kind of payload, for the page.
    pub(crate) kind: &'static str,
    /// `repo@sha256:…` of the image it claims (`sha256:…` alone for a statement, which names
    /// no repository); empty when refused.
    pub(crate) images: Vec<String>,
    /// `key`/`value` annotations (simple signing `optional`, statement subject `annotations`),
    /// then the type it claims; or why it was refused.
    pub(crate) annotations: Vec<(String, String)>,
}

/// The kind shown for a file the strict readers refuse.
pub(crate) const REFUSED: &str = "refused: not signed as uploaded";

impl Described {
    /// Whether the strict readers refused the file (then it must not be approved).
    pub(crate) fn refused(&self) -> bool {
        self.kind == REFUSED
    }
}

/// Describe `bytes`, uploaded as `file`.
pub(crate) fn describe(file: &str, bytes: &[u8]) -> Described {
    let mut d = Described {
        file: file.to_string(),
        sha256: hex::encode(Sha256::digest(bytes)),
        kind: REFUSED,
        images: Vec::new(),
        annotations: Vec::new(),
    };
    let claim = match read_claim(file, bytes) {
        Ok(c) => c,
        Err(e) => {
            d.annotations.push(("refused".into(), e.to_string()));
            return d;
        }
    };
    let p = claim.payload;
    d.images.push(if p.docker_reference.is_empty() {
        p.manifest_digest.clone()
    } else {
        format!("{}@{}", p.docker_reference, p.manifest_digest)
    });
    for (k, value) in p.optional.iter().flatten() {
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        d.annotations.push((k.clone(), text));
    }
    match claim.kind {
        PayloadKind::SimpleSigning => {
            d.kind = "cosign simple signing";
            d.annotations.push(("type".into(), p.signature_type));
        }
        PayloadKind::DssePae => {
            d.kind = "DSSE in-toto statement (cosign 3 bundle)";
            d.annotations
                .push(("predicateType".into(), p.signature_type));
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(c: char) -> String {
        c.to_string().repeat(64)
    }

    #[test]
    fn a_simple_signing_payload_names_its_image_and_annotations() {
        let p = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"reg/app"}},"image":{{"docker-manifest-digest":"sha256:{}"}},"type":"cosign container image signature"}},"optional":{{"commit":"<script>","n":3}}}}"#,
            hex('a')
        );
        let d = describe("payloads/001.json", p.as_bytes());
        assert_eq!(d.images, vec![format!("reg/app@sha256:{}", hex('a'))]);
        assert_eq!(
            d.annotations,
            vec![
                ("commit".into(), "<script>".into()),
                ("n".into(), "3".into()),
                ("type".into(), "cosign container image signature".into()),
            ]
        );
        assert_eq!(d.sha256, hex::encode(Sha256::digest(p.as_bytes())));
        assert!(!d.refused());
    }

    #[test]
    fn a_dsse_statement_names_its_digest_and_predicate_type() {
        let body = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"digest":{{"sha256":"{}"}},"annotations":{{"build":"7"}}}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{{}}}}"#,
            hex('c')
        );
        let pae = sigbridge_payload::pae::encode("application/vnd.in-toto+json", body.as_bytes());
        let d = describe("payload.pae", &pae);
        assert_eq!(d.images, vec![format!("sha256:{}", hex('c'))]);
        assert_eq!(
            d.annotations,
            vec![
                ("build".into(), "7".into()),
                (
                    "predicateType".into(),
                    "https://sigstore.dev/cosign/sign/v1".into()
                ),
            ]
        );
    }

    #[test]
    fn what_the_strict_readers_refuse_is_shown_as_refused_naming_no_image() {
        let evil = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"good"}},"image":{{"docker-manifest-digest":"sha256:{}"}},"type":"cosign container image signature"}},"Critical":{{"identity":{{"docker-reference":"evil"}},"image":{{"docker-manifest-digest":"sha256:{}"}},"type":"cosign container image signature"}}}}"#,
            hex('a'),
            hex('b')
        );
        for (name, bytes) in [
            ("payload.json", evil.as_bytes()),
            ("payload.json", b"garbage".as_slice()),
        ] {
            let d = describe(name, bytes);
            assert!(d.refused(), "{d:?}");
            assert!(d.images.is_empty(), "{d:?}");
            assert_eq!(d.annotations.len(), 1, "{d:?}");
            assert!(d.annotations[0].1.contains("payload.json"), "{d:?}");
        }
    }
}
