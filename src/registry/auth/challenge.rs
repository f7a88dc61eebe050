//! `WWW-Authenticate` parsing (RFC 7235 challenges, as registries send them).
//!
//! A header may hold several challenges (`Basic realm="a", Bearer realm="b",service="c"`);
//! parameter values may be quoted and contain commas (scopes like `repository:x:pull,push`).

/// One parsed challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// The scheme, lowercased (`basic`, `bearer`).
    pub scheme: String,
    /// Parameters in order, names lowercased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The first value of parameter `name` (lowercase).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How a registry wants to be authenticated, chosen from its challenges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AuthScheme {
    /// No authentication asked for.
    Anonymous,
    /// HTTP Basic on every request.
    Basic,
    /// Bearer tokens from a token server.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The `service` parameter to send back.
        service: Option<String>,
        /// The scopes the challenge named (space separated in the header).
        scopes: Vec<String>,
    },
}

impl AuthScheme {
    /// Pick from the challenges of a 401: Bearer if offered (it is what registries mean when
    /// they offer both), else Basic. A 401 with nothing we understand is treated as Basic.
    pub fn from_challenges(challenges: &[Challenge]) -> Self {
        if let Some(b) = challenges.iter().find(|c| c.scheme == "bearer") {
            if let Some(realm) = b.param("realm").filter(|r| !r.is_empty()) {
                return AuthScheme::Bearer {
                    realm: realm.to_string(),
                    service: b.param("service").map(str::to_string),
                    scopes: b
                        .param("scope")
                        .map(|s| s.split_whitespace().map(str::to_string).collect())
                        .unwrap_or_default(),
                };
            }
        }
        AuthScheme::Basic
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> String {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    /// A quoted string (cursor on the opening quote); backslash escapes one byte. An
    /// unterminated string runs to the end.
    fn quoted(&mut self) -> String {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// An unquoted value: lenient, up to a comma or whitespace (realms like
    /// `https://host/token` arrive unquoted from some servers).
    fn bare_value(&mut self) -> String {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b != b',' && b != b' ' && b != b'\t')
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
}

/// Parse every challenge in one `WWW-Authenticate` header value.
pub(crate) fn parse(header: &str) -> Vec<Challenge> {
    let mut c = Cursor {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        c.skip_ws_and_commas();
        if c.peek().is_none() {
            break;
        }
        let scheme = c.token();
        if scheme.is_empty() {
            // Not a token: skip the byte and resynchronise.
            c.i += 1;
            continue;
        }
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        loop {
            c.skip_ws_and_commas();
            let name_start = c.i;
            let name = c.token();
            if name.is_empty() {
                break;
            }
            c.skip_ws();
            if c.peek() != Some(b'=') {
                // A token without `=` starts the next challenge.
                c.i = name_start;
                break;
            }
            c.i += 1;
            c.skip_ws();
            let value = match c.peek() {
                Some(b'"') => c.quoted(),
                // token68 padding (`abc==`) or an empty value.
                Some(b'=') | Some(b',') | None => {
                    while c.peek() == Some(b'=') {
                        c.i += 1;
                    }
                    String::new()
                }
                _ => c.bare_value(),
            };
            challenge.params.push((name.to_ascii_lowercase(), value));
        }
        out.push(challenge);
    }
    out
}

/// Parse all `WWW-Authenticate` headers of a response.
pub(crate) fn from_headers(headers: &reqwest::header::HeaderMap) -> Vec<Challenge> {
    headers
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(params: &[(&str, &str)]) -> Vec<(String, String)> {
        params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn docker_hub_bearer() {
        let got = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push""#,
        );
        assert_eq!(
            got,
            vec![Challenge {
                scheme: "bearer".into(),
                params: p(&[
                    ("realm", "https://auth.docker.io/token"),
                    ("service", "registry.docker.io"),
                    ("scope", "repository:library/ubuntu:pull,push"),
                ]),
            }]
        );
        assert_eq!(
            AuthScheme::from_challenges(&got),
            AuthScheme::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scopes: vec!["repository:library/ubuntu:pull,push".into()],
            }
        );
    }

    #[test]
    fn basic_case_insensitive_and_spaces() {
        let got = parse(r#"BASIC  Realm = "Registry Realm" , charset="UTF-8""#);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].scheme, "basic");
        assert_eq!(got[0].param("realm"), Some("Registry Realm"));
        assert_eq!(got[0].param("charset"), Some("UTF-8"));
        assert_eq!(AuthScheme::from_challenges(&got), AuthScheme::Basic);
    }

    #[test]
    fn several_challenges_in_one_header() {
        let got = parse(
            r#"Basic realm="a, b", bearer realm=https://h/token, service=svc ,error="insufficient_scope",scope="repository:a:pull repository:b:pull""#,
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].param("realm"), Some("a, b"));
        assert_eq!(got[1].scheme, "bearer");
        assert_eq!(got[1].param("realm"), Some("https://h/token"));
        assert_eq!(got[1].param("service"), Some("svc"));
        assert_eq!(got[1].param("error"), Some("insufficient_scope"));
        match AuthScheme::from_challenges(&got) {
            AuthScheme::Bearer { scopes, .. } => {
                assert_eq!(scopes, vec!["repository:a:pull", "repository:b:pull"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn escapes_and_junk() {
        let got = parse(r#"Bearer realm="a\"b\\c""#);
        assert_eq!(got[0].param("realm"), Some(r#"a"b\c"#));
        let got = parse(r#"Bearer realm="unterminated"#);
        assert_eq!(got[0].param("realm"), Some("unterminated"));
        assert!(parse("").is_empty());
        assert!(parse(" , ,").is_empty());
        let got = parse("Negotiate abc==, Bearer realm=x");
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].param("realm"), Some("x"));
        // Bearer without a realm cannot be used; fall back to Basic.
        assert_eq!(
            AuthScheme::from_challenges(&parse("Bearer service=x")),
            AuthScheme::Basic
        );
    }
}
