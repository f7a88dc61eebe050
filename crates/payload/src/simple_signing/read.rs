//! Reading a payload into [`ParsedPayload`]: Go's field matching at each struct level, with
//! every ambiguity refused.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::scan::Scanner;
use super::{shown, ParsedPayload, PayloadError};
use crate::fold::go_fold;

/// How deep a value inside `optional` may nest. Go accepts up to its document limit, but these
/// values are built (and later printed and dropped) recursively, so they stay well inside
/// what any thread's stack holds. Annotations written by cosign or sigbridge are strings.
pub const OPTIONAL_MAX_DEPTH: usize = 64;

/// The fields of cosign's `SimpleContainerImage` as they are filled in.
#[derive(Default)]
struct Fields {
    docker_reference: String,
    manifest_digest: String,
    signature_type: String,
    optional: Option<Map<String, Value>>,
}

pub(super) fn parse(bytes: &[u8]) -> Result<ParsedPayload, PayloadError> {
    let mut scan = Scanner::new(bytes);
    if scan.peek() != Some(b'{') {
        // Go would also take `null` (leaving everything empty, which never matches an image);
        // anything else fails there too.
        scan.skip_value()?;
        scan.finish()?;
        return Err(PayloadError::Field {
            field: "payload",
            problem: "not a JSON object",
        });
    }
    let mut f = Fields::default();
    read_struct(
        &mut scan,
        "payload",
        &["critical", "optional"],
        |scan, i, f| match i {
            0 => read_critical(scan, f),
            _ => read_optional(scan, f),
        },
        &mut f,
    )?;
    scan.finish()?;
    let json = json!({
        "critical": {
            "identity": {"docker-reference": f.docker_reference},
            "image": {"docker-manifest-digest": f.manifest_digest},
            "type": f.signature_type,
        },
        "optional": f.optional.clone().map(Value::Object).unwrap_or(Value::Null),
    });
    Ok(ParsedPayload {
        docker_reference: f.docker_reference,
        manifest_digest: f.manifest_digest,
        signature_type: f.signature_type,
        optional: f.optional,
        json,
    })
}

fn read_critical(scan: &mut Scanner<'_>, f: &mut Fields) -> Result<(), PayloadError> {
    if !struct_start(scan, "critical")? {
        return Ok(());
    }
    read_struct(
        scan,
        "critical",
        &["identity", "image", "type"],
        |scan, i, f| match i {
            0 => {
                if struct_start(scan, "critical.identity")? {
                    read_struct(
                        scan,
                        "critical.identity",
                        &["docker-reference"],
                        |scan, _, f| {
                            string_field(
                                scan,
                                "critical.identity.docker-reference",
                                &mut f.docker_reference,
                            )
                        },
                        f,
                    )?;
                }
                Ok(())
            }
            1 => {
                if struct_start(scan, "critical.image")? {
                    read_struct(
                        scan,
                        "critical.image",
                        &["docker-manifest-digest"],
                        |scan, _, f| {
                            string_field(
                                scan,
                                "critical.image.docker-manifest-digest",
                                &mut f.manifest_digest,
                            )
                        },
                        f,
                    )?;
                }
                Ok(())
            }
            _ => string_field(scan, "critical.type", &mut f.signature_type),
        },
        f,
    )
}

/// The members of the object that comes next (already opened by the caller for the root):
/// each key is matched to `names` as Go matches struct fields; collisions are refused;
/// `on_field(scan, index, fields)` reads a known field's value; unknown values are skipped.
fn read_struct<F>(
    scan: &mut Scanner<'_>,
    path: &'static str,
    names: &[&'static str],
    mut on_field: F,
    fields: &mut Fields,
) -> Result<(), PayloadError>
where
    F: FnMut(&mut Scanner<'_>, usize, &mut Fields) -> Result<(), PayloadError>,
{
    scan.begin_object()?;
    // Folded spelling -> first spelling seen. Unknown keys are tracked too: refusing every
    // collision at a level that is read is simpler to state and to check than deciding which
    // ones are harmless.
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut first = true;
    while let Some(key) = scan.next_key(first)? {
        first = false;
        let folded = go_fold(&key);
        if let Some(earlier) = seen.get(&folded) {
            return Err(PayloadError::DuplicateKey {
                path,
                first: shown(earlier),
                second: shown(&key),
            });
        }
        let field = names.iter().position(|n| go_fold(n) == folded);
        seen.insert(folded, key.clone());
        match field {
            // Field names are ASCII, so an ASCII key that folds onto one is Go's exact or
            // ASCII case-insensitive match, which every Go version makes.
            Some(i) if key.is_ascii() => on_field(scan, i, fields)?,
            Some(i) => {
                return Err(PayloadError::FoldedKey {
                    path,
                    key: shown(&key),
                    field: names[i],
                })
            }
            None => scan.skip_value()?,
        }
    }
    Ok(())
}

/// For a struct-valued field: `null` leaves it as it is (Go), an object follows, anything else
/// is a type error (Go's Unmarshal fails, so cosign refuses).
fn struct_start(scan: &mut Scanner<'_>, field: &'static str) -> Result<bool, PayloadError> {
    if scan.null()? {
        return Ok(false);
    }
    if scan.peek() != Some(b'{') {
        return Err(PayloadError::Field {
            field,
            problem: "not an object",
        });
    }
    Ok(true)
}

fn string_field(
    scan: &mut Scanner<'_>,
    field: &'static str,
    out: &mut String,
) -> Result<(), PayloadError> {
    if scan.null()? {
        return Ok(());
    }
    if scan.peek() != Some(b'"') {
        return Err(PayloadError::Field {
            field,
            problem: "not a string",
        });
    }
    *out = scan.string()?;
    Ok(())
}

/// `optional` is a Go `map[string]any`: keys are exact, so only exact repeats (after escapes
/// and U+FFFD replacement) are ambiguous.
fn read_optional(scan: &mut Scanner<'_>, f: &mut Fields) -> Result<(), PayloadError> {
    if scan.null()? {
        f.optional = None;
        return Ok(());
    }
    if scan.peek() != Some(b'{') {
        return Err(PayloadError::Field {
            field: "optional",
            problem: "not an object or null",
        });
    }
    scan.begin_object()?;
    let mut map = Map::new();
    let mut first = true;
    while let Some(key) = scan.next_key(first)? {
        first = false;
        if map.contains_key(&key) {
            return Err(PayloadError::DuplicateKey {
                path: "optional",
                first: shown(&key),
                second: shown(&key),
            });
        }
        let path = format!("optional.{}", shown(&key));
        let value = scan.value(OPTIONAL_MAX_DEPTH, &path)?;
        map.insert(key, value);
    }
    f.optional = Some(map);
    Ok(())
}
