//! PEM reading and writing with Go's `encoding/pem` conventions, which is what cosign uses.
//!
//! Reading is as lenient as Go about what surrounds a block (text before and after, CRLF line
//! ends, trailing spaces) so that files other tools accept are accepted here too. Writing is
//! byte-identical to `pem.EncodeToMemory`: 64-character lines and a trailing newline.
//!
//! Decoded contents may be private keys, so they are kept in [`Zeroizing`] buffers that are
//! sized up front and never reallocated (a reallocation would leave a stray copy behind).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use zeroize::Zeroizing;

/// Why a PEM text could not be read. Messages never include the encoded contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// No `-----BEGIN ...-----` line at all.
    #[error("no PEM block found (expected a line like -----BEGIN PUBLIC KEY-----)")]
    NoBlock,
    /// A block was opened but never closed: usually a truncated or cut-and-pasted file.
    #[error("PEM block \"{label}\" has no -----END {label}----- line: the file looks truncated")]
    Unterminated {
        /// The label of the open block.
        label: String,
    },
    /// The END line names another label than the BEGIN line.
    #[error("PEM block \"{begin}\" ends with -----END {end}-----: the file is damaged")]
    MismatchedEnd {
        /// The BEGIN label.
        begin: String,
        /// The END label.
        end: String,
    },
    /// The body is not valid padded standard base64.
    #[error("PEM block \"{label}\" does not contain valid base64: the file is damaged")]
    BadBase64 {
        /// The block's label.
        label: String,
    },
    /// The body is empty.
    #[error("PEM block \"{label}\" is empty")]
    Empty {
        /// The block's label.
        label: String,
    },
}

/// One decoded PEM block.
pub struct PemBlock {
    label: String,
    headers: Vec<(String, String)>,
    contents: Zeroizing<Vec<u8>>,
}

impl PemBlock {
    /// The label between `BEGIN ` and `-----`, e.g. `PUBLIC KEY`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The value of an RFC 1421 header such as `Proc-Type` (OpenSSL's legacy encryption).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The decoded bytes (usually DER).
    pub fn contents(&self) -> &[u8] {
        &self.contents
    }
}

// Debug must not show the contents: they may be a private key.
impl std::fmt::Debug for PemBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemBlock")
            .field("label", &self.label)
            .field("headers", &self.headers)
            .field("len", &self.contents.len())
            .finish_non_exhaustive()
    }
}

/// Decode every PEM block in `text`, in order. Text outside blocks is ignored, as Go does.
pub fn decode_all(text: &[u8]) -> Result<Vec<PemBlock>, PemError> {
    let blocks = blocks(text).collect::<Result<Vec<_>, _>>()?;
    if blocks.is_empty() {
        return Err(PemError::NoBlock);
    }
    Ok(blocks)
}

/// Decode the first PEM block in `text` (cosign reads only the first block of a key file).
pub fn decode_first(text: &[u8]) -> Result<PemBlock, PemError> {
    blocks(text).next().unwrap_or(Err(PemError::NoBlock))
}

/// The PEM blocks of `text`, decoded one at a time, so a caller can stop at the block it
/// needs without caring about damage further on. Ends after the first error.
pub fn blocks(text: &[u8]) -> Blocks<'_> {
    Blocks {
        lines: Box::new(text.split(|&b| b == b'\n').map(trim_line_end)),
        capacity: text.len(),
        failed: false,
    }
}

/// Iterator returned by [`blocks`].
pub struct Blocks<'a> {
    lines: Box<dyn Iterator<Item = &'a [u8]> + 'a>,
    capacity: usize,
    failed: bool,
}

impl Iterator for Blocks<'_> {
    type Item = Result<PemBlock, PemError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        while let Some(line) = self.lines.next() {
            if let Some(label) = begin_label(line) {
                let block = decode_block(label, &mut self.lines, self.capacity);
                self.failed = block.is_err();
                return Some(block);
            }
        }
        None
    }
}

/// Encode `contents` as a PEM block exactly like Go's `pem.EncodeToMemory` without headers.
pub fn encode(label: &str, contents: &[u8]) -> String {
    let body = STANDARD.encode(contents);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // base64 output is ASCII, so splitting bytes never cuts a character.
    for chunk in body.as_bytes().chunks(64) {
        out.extend(chunk.iter().map(|&b| char::from(b)));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !matches!(b, b'\r' | b' ' | b'\t'))
        .map_or(0, |i| i + 1);
    &line[..end]
}

fn begin_label(line: &[u8]) -> Option<String> {
    let label = line.strip_prefix(b"-----BEGIN ")?.strip_suffix(b"-----")?;
    // Labels are printable ASCII (RFC 7468); anything else is not a boundary line.
    if label.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        Some(label.iter().map(|&b| char::from(b)).collect())
    } else {
        None
    }
}

fn decode_block<'a>(
    label: String,
    lines: &mut impl Iterator<Item = &'a [u8]>,
    capacity: usize,
) -> Result<PemBlock, PemError> {
    let mut headers = Vec::new();
    // Sized for the whole input so pushing never reallocates a secret.
    let mut body: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(capacity));
    for line in lines.by_ref() {
        if let Some(rest) = line.strip_prefix(b"-----END ") {
            let end = rest.strip_suffix(b"-----").unwrap_or(rest);
            if end != label.as_bytes() {
                return Err(PemError::MismatchedEnd {
                    begin: label,
                    end: String::from_utf8_lossy(end).into_owned(),
                });
            }
            return finish(label, headers, &body);
        }
        // RFC 1421 headers ("Proc-Type: 4,ENCRYPTED") come before any base64; base64 has no ':'.
        if body.is_empty() {
            if let Some(colon) = line.iter().position(|&b| b == b':') {
                let key = String::from_utf8_lossy(&line[..colon]).trim().to_string();
                let value = String::from_utf8_lossy(&line[colon + 1..])
                    .trim()
                    .to_string();
                headers.push((key, value));
                continue;
            }
        }
        body.extend(line.iter().filter(|b| !b.is_ascii_whitespace()));
    }
    Err(PemError::Unterminated { label })
}

fn finish(
    label: String,
    headers: Vec<(String, String)>,
    body: &[u8],
) -> Result<PemBlock, PemError> {
    if body.is_empty() {
        return Err(PemError::Empty { label });
    }
    let mut contents = Zeroizing::new(Vec::with_capacity(body.len() / 4 * 3 + 3));
    if STANDARD.decode_vec(body, &mut contents).is_err() {
        return Err(PemError::BadBase64 { label });
    }
    Ok(PemBlock {
        label,
        headers,
        contents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_matches_go_layout() {
        let data: Vec<u8> = (0u8..60).collect(); // 80 base64 characters
        let pem = encode("PUBLIC KEY", &data);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[2].len(), STANDARD.encode(&data).len() - 64);
        assert_eq!(lines[3], "-----END PUBLIC KEY-----");
        assert!(pem.ends_with("-----\n"));
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn encode_exact_multiple_of_64_has_no_empty_line() {
        let pem = encode("X", &[0u8; 48]); // 48 bytes -> exactly 64 base64 chars
        assert_eq!(
            pem,
            format!("-----BEGIN X-----\n{}\n-----END X-----\n", "A".repeat(64))
        );
    }

    #[test]
    fn roundtrip_and_leniency() {
        let data = b"some der bytes, not really".to_vec();
        let pem = encode("PUBLIC KEY", &data);
        let noisy = format!("leading text\r\n{}\r\ntrailing", pem.replace('\n', "\r\n"));
        let block = decode_first(noisy.as_bytes()).unwrap();
        assert_eq!(block.label(), "PUBLIC KEY");
        assert_eq!(block.contents(), &data[..]);
    }

    #[test]
    fn several_blocks() {
        let text = format!("{}{}", encode("A", b"one"), encode("B", b"two"));
        let blocks = decode_all(text.as_bytes()).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[1].label(), "B");
        assert_eq!(blocks[1].contents(), b"two");
        assert_eq!(decode_first(text.as_bytes()).unwrap().label(), "A");
    }

    #[test]
    fn headers_are_read() {
        let text = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let block = decode_first(text.as_bytes()).unwrap();
        assert_eq!(block.header("proc-type"), Some("4,ENCRYPTED"));
        assert_eq!(block.contents(), &[0, 0, 0]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            decode_first(b"nothing here").unwrap_err(),
            PemError::NoBlock
        );
        assert_eq!(decode_all(b"").unwrap_err(), PemError::NoBlock);
        let truncated = "-----BEGIN PUBLIC KEY-----\nAAAA\n";
        assert!(matches!(
            decode_first(truncated.as_bytes()).unwrap_err(),
            PemError::Unterminated { .. }
        ));
        let mismatched = "-----BEGIN A-----\nAAAA\n-----END B-----\n";
        assert!(matches!(
            decode_first(mismatched.as_bytes()).unwrap_err(),
            PemError::MismatchedEnd { .. }
        ));
        let bad = "-----BEGIN A-----\nAA!A\n-----END A-----\n";
        assert!(matches!(
            decode_first(bad.as_bytes()).unwrap_err(),
            PemError::BadBase64 { .. }
        ));
        let unpadded = "-----BEGIN A-----\nAAA\n-----END A-----\n";
        assert!(matches!(
            decode_first(unpadded.as_bytes()).unwrap_err(),
            PemError::BadBase64 { .. }
        ));
        let empty = "-----BEGIN A-----\n-----END A-----\n";
        assert!(matches!(
            decode_first(empty.as_bytes()).unwrap_err(),
            PemError::Empty { .. }
        ));
    }

    #[test]
    fn debug_hides_contents() {
        let block = decode_first(encode("PRIVATE KEY", b"SECRETSECRET").as_bytes()).unwrap();
        let debug = format!("{block:?}");
        assert!(!debug.contains("SECRET"));
        assert!(!debug.contains(&STANDARD.encode(b"SECRETSECRET")));
    }
}
