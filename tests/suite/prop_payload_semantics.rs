//! Whatever payload sigbridge accepts means to sigbridge what it means to cosign.
//!
//! Payloads are generated as trees with random key spellings (ASCII case, the four non-ASCII
//! runes Go folds onto ASCII letters, `\u` escapes), repeats, ordering and value types. An
//! independent model of Go's `json.Unmarshal` into cosign's struct (exact-then-folded field
//! match, last wins, a repeated struct key merges into the earlier struct, `optional` is a map
//! that a repeat merges into, numbers there must fit a float64) reads the same tree. The
//! properties: sigbridge accepts exactly the payloads Go accepts and no two keys make
//! ambiguous; when it accepts, the digest, identity and annotations are Go's.

use std::collections::BTreeMap;

use proptest::collection::vec;
use proptest::prelude::*;
use sigbridge::payload::ParsedPayload;

const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    ProptestConfig::with_cases(cases)
}

/// A JSON value as generated: strings carry their encoded form and what Go decodes it to.
#[derive(Clone, Debug)]
enum J {
    Null,
    Bool,
    Num(&'static str),
    Str { raw: Vec<u8>, go: String },
    Arr(Vec<J>),
    Obj(Vec<(Key, J)>),
}

/// An object key: what Go decodes it to, and whether it is written with `\u` escapes.
#[derive(Clone, Debug)]
struct Key {
    text: String,
    escaped: bool,
}

fn render(v: &J, out: &mut Vec<u8>) {
    match v {
        J::Null => out.extend_from_slice(b"null"),
        J::Bool => out.extend_from_slice(b"true"),
        J::Num(n) => out.extend_from_slice(n.as_bytes()),
        J::Str { raw, .. } => out.extend_from_slice(raw),
        J::Arr(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                render(item, out);
            }
            out.push(b']');
        }
        J::Obj(entries) => {
            out.extend_from_slice(b"{ ");
            for (i, (k, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b" ,");
                }
                out.push(b'"');
                for c in k.text.chars() {
                    if k.escaped {
                        out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
                    } else {
                        let mut buf = [0; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
                out.extend_from_slice(b"\":");
                render(item, out);
            }
            out.extend_from_slice(b"}");
        }
    }
}

fn plain(s: &str) -> J {
    J::Str {
        raw: format!("\"{s}\"").into_bytes(),
        go: s.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The model: Go's reading, written independently of the product's scanner.
// ---------------------------------------------------------------------------------------------

/// Go 1.21+ `foldName`, restricted to what the generator produces.
fn model_fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{212a}' => 'K',
            '\u{17f}' => 'S',
            '\u{130}' | '\u{131}' => 'I',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Go's field lookup: exact name, else folded name.
fn model_field<'n>(key: &str, names: &[&'n str]) -> Option<&'n str> {
    names
        .iter()
        .find(|n| **n == key)
        .or_else(|| names.iter().find(|n| model_fold(n) == model_fold(key)))
        .copied()
}

#[derive(Debug, Default)]
struct GoReading {
    reference: String,
    digest: String,
    optional: Option<BTreeMap<String, J>>,
    failed: bool,
}

impl GoReading {
    fn of(root: &J) -> Self {
        let mut r = Self::default();
        r.root(root);
        r
    }

    fn root(&mut self, v: &J) {
        let J::Obj(entries) = v else {
            self.failed = true;
            return;
        };
        for (k, v) in entries {
            match model_field(&k.text, &["critical", "optional"]) {
                Some("critical") => self.critical(v),
                Some(_) => self.optional(v),
                None => {}
            }
        }
    }

    /// A struct-valued field: null is a no-op, an object merges into what is there.
    fn each_field(&mut self, v: &J, names: &[&str], mut f: impl FnMut(&mut Self, &str, &J)) {
        match v {
            J::Null => {}
            J::Obj(entries) => {
                for (k, v) in entries {
                    if let Some(name) = model_field(&k.text, names) {
                        f(self, name, v);
                    }
                }
            }
            _ => self.failed = true,
        }
    }

    fn critical(&mut self, v: &J) {
        self.each_field(v, &["identity", "image", "type"], |r, name, v| match name {
            "identity" => r.each_field(v, &["docker-reference"], |r, _, v| {
                if let Some(s) = r.string(v) {
                    r.reference = s;
                }
            }),
            "image" => r.each_field(v, &["docker-manifest-digest"], |r, _, v| {
                if let Some(s) = r.string(v) {
                    r.digest = s;
                }
            }),
            _ => {
                r.string(v);
            }
        });
    }

    /// A string field: null is a no-op (None), a string sets it, anything else fails.
    fn string(&mut self, v: &J) -> Option<String> {
        match v {
            J::Null => None,
            J::Str { go, .. } => Some(go.clone()),
            _ => {
                self.failed = true;
                None
            }
        }
    }

    /// A `map[string]any`: null sets it to nil, an object adds to (or creates) the map.
    fn optional(&mut self, v: &J) {
        match v {
            J::Null => self.optional = None,
            J::Obj(entries) => {
                let map = self.optional.get_or_insert_with(BTreeMap::new);
                for (k, v) in entries {
                    map.insert(k.text.clone(), v.clone());
                }
                if entries.iter().any(|(_, v)| !fits_float64(v)) {
                    self.failed = true;
                }
            }
            _ => self.failed = true,
        }
    }

    /// String-valued annotations: all that `-a` can match.
    fn annotations(&self) -> Option<BTreeMap<String, String>> {
        self.optional.as_ref().map(|m| {
            m.iter()
                .filter_map(|(k, v)| match v {
                    J::Str { go, .. } => Some((k.clone(), go.clone())),
                    _ => None,
                })
                .collect()
        })
    }
}

fn fits_float64(v: &J) -> bool {
    match v {
        J::Num(n) => n.parse::<f64>().is_ok_and(f64::is_finite),
        J::Arr(items) => items.iter().all(fits_float64),
        J::Obj(entries) => entries.iter().all(|(_, v)| fits_float64(v)),
        _ => true,
    }
}

/// Whether two readers could disagree: at a level that is read, two keys fold alike (for
/// `optional`, are equal), or a key reaches a field only through a non-ASCII rune.
fn ambiguous(root: &J) -> bool {
    fn level(v: &J, names: &[&str], inner: &dyn Fn(&str, &J) -> bool) -> bool {
        let J::Obj(entries) = v else { return false };
        for (i, (k, _)) in entries.iter().enumerate() {
            if entries[..i]
                .iter()
                .any(|(e, _)| model_fold(&e.text) == model_fold(&k.text))
            {
                return true;
            }
        }
        entries
            .iter()
            .any(|(k, v)| match model_field(&k.text, names) {
                Some(_) if !k.text.is_ascii() => true,
                Some(name) => inner(name, v),
                None => false,
            })
    }
    let none = |_: &str, _: &J| false;
    level(root, &["critical", "optional"], &|name, v| {
        if name == "optional" {
            let J::Obj(entries) = v else { return false };
            return entries
                .iter()
                .enumerate()
                .any(|(i, (k, _))| entries[..i].iter().any(|(e, _)| e.text == k.text));
        }
        level(v, &["identity", "image", "type"], &|name, v| match name {
            "identity" => level(v, &["docker-reference"], &none),
            "image" => level(v, &["docker-manifest-digest"], &none),
            _ => false,
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// A spelling of `name`: exact, ASCII case changes, or a Go-folding non-ASCII rune.
fn spelling(name: &'static str) -> impl Strategy<Value = Key> {
    let variants = (vec(any::<bool>(), name.len()), 0..10u8, any::<bool>()).prop_map(
        move |(upper, kind, escaped)| {
            let text: String = match kind {
                0..=3 => name.to_string(),
                4..=6 => name
                    .chars()
                    .zip(upper)
                    .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
                    .collect(),
                7 => name.replacen('k', "\u{212a}", 1),
                8 => name.replacen('s', "\u{17f}", 1),
                _ => name.replacen('i', if escaped { "\u{130}" } else { "\u{131}" }, 1),
            };
            Key { text, escaped }
        },
    );
    variants
}

fn unknown_key() -> impl Strategy<Value = Key> {
    (
        prop_oneof![Just("extra"), Just("EXTRA"), Just("x"), Just("\u{e9}")],
        any::<bool>(),
    )
        .prop_map(|(t, escaped)| Key {
            text: t.to_string(),
            escaped,
        })
}

fn string_value() -> impl Strategy<Value = J> {
    prop_oneof![
        4 => Just(plain(A)),
        4 => Just(plain(B)),
        1 => Just(J::Str { raw: br#""\u0073ha256:x""#.to_vec(), go: "sha256:x".into() }),
        1 => Just(J::Str { raw: b"\"a\xffb\"".to_vec(), go: "a\u{fffd}b".into() }),
        1 => Just(J::Str { raw: br#""\ud800""#.to_vec(), go: "\u{fffd}".into() }),
        1 => Just(J::Null),
        1 => Just(J::Num("5")),
    ]
}

fn any_value() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        Just(J::Null),
        Just(J::Bool),
        Just(J::Num("1")),
        Just(J::Num("-2.5e3")),
        Just(J::Num("1e999999")),
        Just(plain("v")),
        Just(plain("w")),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(J::Arr),
            vec((unknown_key(), inner), 0..3).prop_map(J::Obj),
        ]
    })
}

fn struct_of(fields: Vec<(&'static str, BoxedStrategy<J>)>) -> impl Strategy<Value = J> {
    let known: Vec<BoxedStrategy<(Key, J)>> = fields
        .into_iter()
        .map(|(name, value)| (spelling(name), value).boxed())
        .collect();
    let entry = prop_oneof![
        4 => proptest::strategy::Union::new(known),
        1 => (unknown_key(), any_value()),
    ];
    prop_oneof![
        8 => vec(entry, 0..4).prop_map(J::Obj),
        1 => Just(J::Null),
        1 => Just(J::Num("1")),
    ]
}

fn optional_value() -> impl Strategy<Value = J> {
    let key = (
        prop_oneof![Just("a"), Just("A"), Just("b"), Just("\u{17f}")],
        any::<bool>(),
    )
        .prop_map(|(t, escaped)| Key {
            text: t.to_string(),
            escaped,
        });
    let value = prop_oneof![3 => string_value(), 1 => any_value()];
    prop_oneof![
        4 => vec((key, value), 0..4).prop_map(J::Obj),
        1 => Just(J::Null),
        1 => Just(plain("x")),
    ]
}

fn payload() -> impl Strategy<Value = J> {
    let identity = struct_of(vec![("docker-reference", string_value().boxed())]);
    let image = struct_of(vec![("docker-manifest-digest", string_value().boxed())]);
    let critical = struct_of(vec![
        ("identity", identity.boxed()),
        ("image", image.boxed()),
        ("type", string_value().boxed()),
    ]);
    let entry = prop_oneof![
        4 => (spelling("critical"), critical),
        2 => (spelling("optional"), optional_value()),
        1 => (unknown_key(), any_value()),
    ];
    vec(entry, 0..4).prop_map(J::Obj)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn accepted_payloads_mean_what_they_mean_to_go(root in payload()) {
        let mut bytes = Vec::new();
        render(&root, &mut bytes);
        let go = GoReading::of(&root);
        let ambiguous = ambiguous(&root);
        match ParsedPayload::parse(&bytes) {
            Ok(parsed) => {
                prop_assert!(!go.failed, "Go refuses it: {}", String::from_utf8_lossy(&bytes));
                prop_assert!(!ambiguous, "ambiguous: {}", String::from_utf8_lossy(&bytes));
                prop_assert_eq!(&parsed.manifest_digest, &go.digest);
                prop_assert_eq!(&parsed.docker_reference, &go.reference);
                let ours = parsed.optional.as_ref().map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                        .collect::<BTreeMap<_, _>>()
                });
                prop_assert_eq!(ours, go.annotations());
                let keys = |m: Option<Vec<String>>| m.unwrap_or_default();
                prop_assert_eq!(
                    keys(parsed.optional.as_ref().map(|m| m.keys().cloned().collect())),
                    keys(go.optional.as_ref().map(|m| m.keys().cloned().collect()))
                );
            }
            Err(e) => {
                // Refused only when Go refuses too or two readers could disagree.
                prop_assert!(
                    go.failed || ambiguous,
                    "refused a payload Go reads unambiguously ({}): {}",
                    e,
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
    }
}
