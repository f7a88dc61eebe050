//! Signing request ids: UUIDs, validated before they go into a URL.

use std::fmt;
use std::str::FromStr;

/// A signing request id (a UUID in its canonical 8-4-4-4-12 hex form, lowercased).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(String);

/// The id is not a UUID.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a signing request id: expected a UUID such as a4559e13-9e95-480a-9567-5b8a3252bb27")]
pub struct InvalidRequestId(pub String);

impl FromStr for RequestId {
    type Err = InvalidRequestId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let groups: Vec<&str> = t.split('-').collect();
        let lens = [8usize, 4, 4, 4, 12];
        let ok = groups.len() == 5
            && groups
                .iter()
                .zip(lens)
                .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
        if ok {
            Ok(Self(t.to_ascii_lowercase()))
        } else {
            // Do not echo unbounded input back.
            Err(InvalidRequestId(s.chars().take(80).collect()))
        }
    }
}

impl RequestId {
    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Find the id at the end of a `Location` URL (`…/SigningRequests/{id}`).
    pub fn from_location(location: &str) -> Option<Self> {
        let path = location.split(['?', '#']).next()?;
        let mut segments = path.trim_end_matches('/').rsplit('/');
        let id = segments.next()?;
        let parent = segments.next()?;
        if !parent.eq_ignore_ascii_case("SigningRequests") {
            return None;
        }
        id.parse().ok()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_canonicalises() {
        let id: RequestId = "A4559E13-9E95-480A-9567-5B8A3252BB27".parse().unwrap();
        assert_eq!(id.as_str(), "a4559e13-9e95-480a-9567-5b8a3252bb27");
    }

    #[test]
    fn rejects_non_uuids() {
        for bad in [
            "",
            "a4559e13",
            "a4559e13-9e95-480a-9567-5b8a3252bb2",
            "a4559e13-9e95-480a-9567-5b8a3252bb27-1",
            "../../etc/passwd",
            "a4559e13-9e95-480a-9567-5b8a3252bbzz",
            "a4559e13/9e95-480a-9567-5b8a3252bb27",
        ] {
            assert!(bad.parse::<RequestId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn from_location() {
        let loc = "https://app.signpath.io/API/v1/c2099ac1-0000-0000-0000-000000000000/SigningRequests/a4559e13-9e95-480a-9567-5b8a3252bb27";
        assert_eq!(
            RequestId::from_location(loc).unwrap().as_str(),
            "a4559e13-9e95-480a-9567-5b8a3252bb27"
        );
        assert!(RequestId::from_location(
            "https://x/v1/o/Projects/a4559e13-9e95-480a-9567-5b8a3252bb27"
        )
        .is_none());
        assert!(RequestId::from_location("https://x/v1/o/SigningRequests/nope").is_none());
    }
}
