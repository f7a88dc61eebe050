//! Go's key folding for `encoding/json` struct fields (Go 1.21+ `foldName`): ASCII letters are
//! upper-cased; any other rune becomes `unicode.ToUpper(unicode.ToLower(r))`.

/// The four non-ASCII runes whose Go folding lands on an ASCII letter (Kelvin sign, long s,
/// dotted capital I, dotless small i). Older Go (`bytes.EqualFold` orbits) disagrees about
/// İ and ı, so a key that needs one of these to name a field is ambiguous.
const ASCII_FOLDING: [(char, char); 4] = [
    ('\u{212a}', 'K'),
    ('\u{17f}', 'S'),
    ('\u{130}', 'I'),
    ('\u{131}', 'I'),
];

/// `key` folded as Go folds JSON object keys before matching them to struct fields.
///
/// Exact for ASCII and for the runes in `ASCII_FOLDING` (everything that can reach an ASCII
/// field name); other runes use Rust's case mappings where they are single characters, which
/// agree with Go's simple mappings for those.
pub(crate) fn go_fold(key: &str) -> String {
    key.chars().map(fold_char).collect()
}

fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    if let Some(&(_, folded)) = ASCII_FOLDING.iter().find(|(from, _)| *from == c) {
        return folded;
    }
    let lower = single(c.to_lowercase()).unwrap_or(c);
    single(lower.to_uppercase()).unwrap_or(lower)
}

/// The mapping's result when it is one character (Go's simple mappings never expand).
fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
    let first = it.next()?;
    it.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::go_fold;

    #[test]
    fn folds_like_go() {
        assert_eq!(go_fold("docker-manifest-digest"), "DOCKER-MANIFEST-DIGEST");
        assert_eq!(go_fold("doc\u{212a}er"), "DOCKER");
        assert_eq!(go_fold("\u{17f}\u{130}\u{131}"), "SII");
        assert_eq!(go_fold("\u{e9}\u{c9}"), "\u{c9}\u{c9}");
        // ß has no single-character upper case in Go's simple mapping: it stays.
        assert_eq!(go_fold("\u{df}"), "\u{df}");
    }
}
