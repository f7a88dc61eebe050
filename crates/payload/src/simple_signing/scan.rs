//! A small JSON scanner that reads the way Go's `encoding/json` does, for the payload reader.
//!
//! Purpose-built because no crate gives Go semantics: serde_json's `Value` keeps only the last
//! duplicate key, refuses invalid UTF-8 and lone surrogates, and stops at 128 levels. Here keys
//! are handed to the caller one by one (so duplicates can be seen), strings decode as Go
//! decodes them (each invalid UTF-8 byte and each unpaired surrogate escape becomes U+FFFD),
//! numbers are syntax-checked only, and skipping a value is iterative, so nesting up to Go's
//! 10000-level limit cannot overflow a small (tokio worker) stack.

use serde_json::{Map, Number, Value};

use super::PayloadError;

/// Go's `maxNestingDepth`: a document may open at most this many arrays and objects at once.
pub(super) const MAX_DEPTH: usize = 10_000;

/// The scanner's cursor over one document.
pub(super) struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            depth: 0,
        }
    }

    fn syntax(&self, problem: &'static str) -> PayloadError {
        PayloadError::Syntax {
            offset: self.pos,
            problem,
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next byte that is not whitespace, not consumed.
    pub(super) fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8, problem: &'static str) -> Result<(), PayloadError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax(problem))
        }
    }

    fn enter(&mut self) -> Result<(), PayloadError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(PayloadError::TooDeep { limit: MAX_DEPTH });
        }
        self.pos += 1;
        Ok(())
    }

    /// After the whole value: only whitespace may follow (Go refuses trailing data).
    pub(super) fn finish(&mut self) -> Result<(), PayloadError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.syntax("unexpected data after the top-level value")),
        }
    }

    /// Consume `null` if it comes next (Go: null leaves a struct field or string unchanged).
    pub(super) fn null(&mut self) -> Result<bool, PayloadError> {
        if self.peek() == Some(b'n') {
            self.literal()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Open the object that comes next.
    pub(super) fn begin_object(&mut self) -> Result<(), PayloadError> {
        if self.peek() != Some(b'{') {
            return Err(self.syntax("expected an object"));
        }
        self.enter()
    }

    /// The next key of the open object (its value comes next), or `None` after its `}`.
    /// `first` says whether any key was read from this object yet.
    pub(super) fn next_key(&mut self, first: bool) -> Result<Option<String>, PayloadError> {
        match self.peek() {
            Some(b'}') if first => {
                self.pos += 1;
                self.depth -= 1;
                return Ok(None);
            }
            _ if first => {}
            Some(b',') => self.pos += 1,
            Some(b'}') => {
                self.pos += 1;
                self.depth -= 1;
                return Ok(None);
            }
            _ => return Err(self.syntax("expected ',' or '}' after an object value")),
        }
        let key = self.string()?;
        self.expect(b':', "expected ':' after an object key")?;
        Ok(Some(key))
    }

    /// The string that comes next, decoded as Go decodes it.
    pub(super) fn string(&mut self) -> Result<String, PayloadError> {
        if self.peek() != Some(b'"') {
            return Err(self.syntax("expected a string"));
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(&b) = self.bytes.get(self.pos) else {
                return Err(self.syntax("unterminated string"));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                0..=0x1f => return Err(self.syntax("control character in a string")),
                0x20..=0x7f => {
                    out.push(char::from(b));
                    self.pos += 1;
                }
                _ => match utf8_char(&self.bytes[self.pos..]) {
                    Some((c, len)) => {
                        out.push(c);
                        self.pos += len;
                    }
                    // Go's `utf8.DecodeRune` gives (RuneError, 1): one U+FFFD per bad byte.
                    None => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        self.pos += 1;
                    }
                },
            }
        }
    }

    /// One escape sequence, the backslash already consumed.
    fn escape(&mut self, out: &mut String) -> Result<(), PayloadError> {
        let Some(&b) = self.bytes.get(self.pos) else {
            return Err(self.syntax("unterminated string"));
        };
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                if (0xd800..0xe000).contains(&unit) {
                    self.surrogate(unit)
                } else {
                    // Not a surrogate, so always a scalar value.
                    char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER)
                }
            }
            _ => {
                self.pos -= 1;
                return Err(self.syntax("invalid escape in a string"));
            }
        };
        out.push(c);
        Ok(())
    }

    /// Go pairs a high surrogate with an immediately following `\uDC00`-`\uDFFF` escape;
    /// anything else is U+FFFD and the following escape is read on its own.
    fn surrogate(&mut self, high: u32) -> char {
        let rest = &self.bytes[self.pos..];
        if (0xd800..0xdc00).contains(&high) && rest.len() >= 6 && rest.starts_with(b"\\u") {
            if let Some(low) = hex_value(&rest[2..6]) {
                if (0xdc00..0xe000).contains(&low) {
                    self.pos += 6;
                    let c = 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00);
                    return char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER);
                }
            }
        }
        char::REPLACEMENT_CHARACTER
    }

    fn hex4(&mut self) -> Result<u32, PayloadError> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .and_then(hex_value)
            .ok_or_else(|| self.syntax("\\u must be followed by four hex digits"))?;
        self.pos += 4;
        Ok(digits)
    }

    /// The number that comes next, syntax-checked as JSON (Go) requires; its text.
    fn number(&mut self) -> Result<&'a str, PayloadError> {
        self.skip_ws();
        let start = self.pos;
        let digits = |s: &mut Self| {
            let from = s.pos;
            while s.bytes.get(s.pos).is_some_and(u8::is_ascii_digit) {
                s.pos += 1;
            }
            s.pos - from
        };
        if self.bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match self.bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(self.syntax("invalid number")),
        }
        if self.bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return Err(self.syntax("invalid number: no digits after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(self.syntax("invalid number: no digits in the exponent"));
            }
        }
        // Only ASCII bytes were accepted above.
        std::str::from_utf8(&self.bytes[start..self.pos]).map_err(|_| self.syntax("invalid number"))
    }

    /// `true`, `false` or `null`.
    fn literal(&mut self) -> Result<Value, PayloadError> {
        self.skip_ws();
        for (text, value) in [
            (&b"true"[..], Value::Bool(true)),
            (b"false", Value::Bool(false)),
            (b"null", Value::Null),
        ] {
            if self.bytes[self.pos..].starts_with(text) {
                self.pos += text.len();
                return Ok(value);
            }
        }
        Err(self.syntax("invalid literal"))
    }

    /// Check and skip the value that comes next, without building it and without recursion.
    pub(super) fn skip_value(&mut self) -> Result<(), PayloadError> {
        // One entry per container opened here: true for an object, false for an array.
        let mut open: Vec<bool> = Vec::new();
        loop {
            // A value starts here.
            match self.peek() {
                Some(b'{') => {
                    self.enter()?;
                    open.push(true);
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        self.depth -= 1;
                        open.pop();
                    } else {
                        self.string()?;
                        self.expect(b':', "expected ':' after an object key")?;
                        continue;
                    }
                }
                Some(b'[') => {
                    self.enter()?;
                    open.push(false);
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        self.depth -= 1;
                        open.pop();
                    } else {
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b't' | b'f' | b'n') => {
                    self.literal()?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                }
                _ => return Err(self.syntax("expected a value")),
            }
            // A value ended: close containers until one continues with another element.
            loop {
                let Some(&is_object) = open.last() else {
                    return Ok(());
                };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if is_object {
                            self.string()?;
                            self.expect(b':', "expected ':' after an object key")?;
                        }
                        break;
                    }
                    Some(b'}') if is_object => {}
                    Some(b']') if !is_object => {}
                    _ => return Err(self.syntax("expected ',' or the end of the container")),
                }
                self.pos += 1;
                self.depth -= 1;
                open.pop();
            }
        }
    }

    /// The value that comes next, as Go decodes it into `any` (numbers as finite float64,
    /// objects as maps where a repeated key overwrites). Recursion is bounded by `levels`:
    /// deeper values are refused rather than risk the stack.
    pub(super) fn value(&mut self, levels: usize, path: &str) -> Result<Value, PayloadError> {
        match self.peek() {
            Some(b'{') | Some(b'[') if levels == 0 => Err(PayloadError::OptionalTooDeep {
                path: path.to_string(),
            }),
            Some(b'{') => {
                self.enter()?;
                let mut map = Map::new();
                let mut first = true;
                while let Some(key) = self.next_key(first)? {
                    first = false;
                    let v = self.value(levels - 1, path)?;
                    map.insert(key, v);
                }
                Ok(Value::Object(map))
            }
            Some(b'[') => {
                self.enter()?;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                } else {
                    loop {
                        items.push(self.value(levels - 1, path)?);
                        match self.peek() {
                            Some(b',') => self.pos += 1,
                            Some(b']') => {
                                self.pos += 1;
                                break;
                            }
                            _ => return Err(self.syntax("expected ',' or ']' in an array")),
                        }
                    }
                }
                self.depth -= 1;
                Ok(Value::Array(items))
            }
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => {
                let text = self.number()?;
                go_float(text).ok_or_else(|| PayloadError::NumberOutOfRange {
                    path: path.to_string(),
                    number: super::shown(text),
                })
            }
            Some(b't' | b'f' | b'n') => self.literal(),
            _ => Err(self.syntax("expected a value")),
        }
    }
}

/// A JSON number as Go's `float64` (an error there when out of range), kept as an integer
/// when it is one so that it prints as Go prints it (`1.0` prints `1`).
fn go_float(text: &str) -> Option<Value> {
    let f: f64 = text.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    // i64 covers every integral float below 2^63 exactly; the cast cannot truncate here.
    if f.fract() == 0.0 && f.abs() < 9.2e18 && !(f == 0.0 && f.is_sign_negative()) {
        return Some(Value::Number(Number::from(f as i64)));
    }
    Number::from_f64(f).map(Value::Number)
}

fn hex_value(digits: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(digits).ok()?;
    if text.len() != 4 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// The UTF-8 character at the start of `bytes`, if it is a valid encoding (no overlong forms,
/// no surrogates, at most U+10FFFF: exactly what Go's `utf8.DecodeRune` accepts).
fn utf8_char(bytes: &[u8]) -> Option<(char, usize)> {
    let len = match bytes.first()? {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let s = std::str::from_utf8(bytes.get(..len)?).ok()?;
    s.chars().next().map(|c| (c, len))
}
