//! JSON read as strictly as the Sigstore readers disagree: a key repeated in one object, or two
//! keys that one reader could take for the same field (protojson accepts both `predicateType`
//! and `predicate_type`; Go's `encoding/json` matches keys case-insensitively), are refused
//! instead of letting each reader pick a different one.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parse `bytes` as one JSON value, refusing duplicate or colliding keys at any depth.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice::<Strict>(bytes)
        .map(|s| s.0)
        .map_err(|e| e.to_string())
}

/// The spelling two readers could take for one field: `_` dropped (protojson's JSON name vs the
/// proto name) and folded as Go's `encoding/json` folds keys (the payload reader's rule,
/// including `K` KELVIN SIGN and `ſ`).
fn field_key(key: &str) -> String {
    let without_underscores: String = key.chars().filter(|c| *c != '_').collect();
    crate::fold::go_fold(&without_underscores)
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if let Some(first) = seen.insert(field_key(&key), key.clone()) {
                return Err(de::Error::custom(format!(
                    "keys {first:?} and {key:?} in one object name the same field for some reader; refusing an ambiguous document"
                )));
            }
            let Strict(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_json_reads_back() {
        let v = parse(br#"{"a":[1,"x",{"b":null}],"c":true}"#).unwrap();
        assert_eq!(v["a"][2]["b"], Value::Null);
        assert_eq!(v["c"], Value::Bool(true));
    }

    #[test]
    fn repeated_and_colliding_keys_are_refused_at_any_depth() {
        for doc in [
            r#"{"a":1,"a":2}"#,
            r#"{"x":{"predicateType":"p","predicate_type":"q"}}"#,
            r#"{"x":[{"Digest":1,"digest":2}]}"#,
            "{\"x\":{\"\u{212a}ey\":1,\"key\":2}}",
        ] {
            let err = parse(doc.as_bytes()).unwrap_err();
            assert!(err.contains("name the same field"), "{doc}: {err}");
        }
    }

    #[test]
    fn trailing_data_is_refused() {
        assert!(parse(br#"{"a":1} {}"#).is_err());
    }
}
