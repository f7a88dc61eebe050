//! DSSE's pre-authentication encoding (PAE): the exact bytes a DSSE signature is over.
//! `"DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths in ASCII decimal.

/// The PAE of `body` with `payload_type`.
pub fn encode(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Split a PAE back into its type and body; `None` when `pae` is not one (a length that does
/// not match what follows, a non-canonical number).
pub fn decode(pae: &[u8]) -> Option<(&str, &[u8])> {
    let rest = pae.strip_prefix(b"DSSEv1 ")?;
    let (type_len, rest) = length(rest)?;
    let payload_type = std::str::from_utf8(rest.get(..type_len)?).ok()?;
    let rest = rest.get(type_len..)?.strip_prefix(b" ")?;
    let (body_len, body) = length(rest)?;
    (body.len() == body_len).then_some((payload_type, body))
}

/// A canonical decimal length followed by one space, and what follows it.
fn length(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let end = bytes.iter().position(|b| *b == b' ')?;
    let digits = std::str::from_utf8(&bytes[..end]).ok()?;
    if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, &bytes[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_dsse_spec_example_and_decodes_it_back() {
        // The DSSE specification's protocol.md example.
        let pae = encode("http://example.com/HelloWorld", b"hello world");
        assert_eq!(
            pae,
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        assert_eq!(
            decode(&pae),
            Some(("http://example.com/HelloWorld", &b"hello world"[..]))
        );
    }

    #[test]
    fn a_body_whose_length_does_not_match_is_not_a_pae() {
        assert_eq!(decode(b"DSSEv1 1 t 3 ab"), None);
        assert_eq!(decode(b"DSSEv1 1 t 02 ab"), None);
        assert_eq!(decode(b"DSSEv1 1 t 2 ab"), Some(("t", &b"ab"[..])));
    }
}
