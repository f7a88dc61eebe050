//! JSON written as Go's `encoding/json` writes it, so that `verify` prints cosign's bytes:
//! `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c`..., and numbers (Go's float64) in
//! `strconv.FormatFloat` form: `12345678901234567000` and `-0` where serde_json prints
//! `1.2345678901234567e+19` and `-0.0`. Keys come sorted, as Go sorts a map's, because
//! serde_json's `Map` is ordered by key.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};

/// `value` as Go's `json.Marshal` would write it.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::new();
    value.serialize(&mut Serializer::with_formatter(&mut out, GoFormatter))?;
    // Only UTF-8 is written: serde_json's string input and ASCII escapes.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(go_float(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }

    /// serde_json escapes quotes, backslashes and control characters itself; Go also escapes
    /// these, which serde_json passes through as plain text.
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escape = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escape.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// A float64 as `encoding/json` writes it: positional (shortest round-trip digits) unless
/// |f| < 1e-6 or >= 1e21, then exponent form with a sign and at least one digit (`1e+21`,
/// `1e-7`). Rust's `{}` and `{:e}` print the same shortest digits as Go's `-1` precision.
fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{f:e}");
        match text.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => text,
        }
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_what_cosign_2_5_printed() {
        // The `optional` cosign 2.5 printed for a payload with these values (recorded from
        // `cosign verify --output json` on a payload attached with `cosign attach signature`).
        let value = json!({
            "z": "a&b<c>",
            "u": "\u{2028}x é",
            "n": 1,
            "big": 12345678901234567890.0_f64,
            "tiny": 1e-7,
            "huge": 1e21,
            "neg": -0.0,
            "arr": [1, 2.5, {"b": 1, "a": 2}],
            "nul": null,
            "t": true,
            "ctl": "\u{1}\t\"\\/",
        });
        assert_eq!(
            to_string(&value).unwrap(),
            r#"{"arr":[1,2.5,{"a":2,"b":1}],"big":12345678901234567000,"ctl":"\u0001\t\"\\/","huge":1e+21,"n":1,"neg":-0,"nul":null,"t":true,"tiny":1e-7,"u":"\u2028x é","z":"a\u0026b\u003cc\u003e"}"#
        );
    }

    #[test]
    fn floats_switch_to_exponent_form_where_go_does() {
        for (f, want) in [
            (0.0, "0"),
            (1e-6, "0.000001"),
            (9.99e-7, "9.99e-7"),
            (1.5e-10, "1.5e-10"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (-2.5e300, "-2.5e+300"),
            (0.1, "0.1"),
        ] {
            assert_eq!(go_float(f), want, "{f}");
        }
    }
}
