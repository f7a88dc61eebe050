//! The registry operations sigbridge needs: manifests (HEAD, GET, PUT by tag or digest) and
//! blobs (exists, upload, bounded download), with the checks that keep a registry honest
//! (digests, sizes, media types, references that cannot escape the URL path).

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};

use super::auth::Access;
use super::client::Target;
use super::error::RegistryError;
use super::manifest::{media_types, sniff_media_type};
use super::transport::{drain, read_declared, read_limited, status_error};
use super::{Descriptor, FetchedManifest, RegistryClient, MAX_MANIFEST_SIZE};
use crate::reference::{is_valid_tag, Digest, Repository};

/// Headers for a blob body.
fn octet_stream() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers
}

/// How long a blob or manifest may be.
#[derive(Clone, Copy)]
enum BlobSize {
    AtMost(u64),
    Exactly(u64),
}

impl RegistryClient {
    /// HEAD a manifest by tag or digest (falling back to GET when the registry gives no
    /// digest or media type, or refuses HEAD with 405); `Ok(None)` on 404. The digest is the
    /// registry's claim, not confirmed by bytes: to pin an image, use
    /// [`get_manifest`](Self::get_manifest), which hashes what it reads.
    pub async fn head_manifest(
        &self,
        repo: &Repository,
        reference: &str,
    ) -> Result<Option<Descriptor>, RegistryError> {
        let wanted = check_reference(reference)?;
        let resp = self
            .request(
                repo,
                Access::Pull,
                Method::HEAD,
                Target::Path(manifest_path(repo, reference)?),
                accept_manifests(),
                None,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            StatusCode::METHOD_NOT_ALLOWED => {
                tracing::debug!(%repo, reference, "HEAD not allowed; fetching the manifest");
                return Ok(self
                    .get_manifest(repo, reference)
                    .await?
                    .map(|m| Descriptor {
                        size: m.bytes.len() as u64,
                        media_type: m.media_type,
                        digest: m.digest,
                    }));
            }
            s if s.is_success() => {}
            _ => return Err(status_error(resp, &Method::HEAD, self.timeout()).await),
        }
        let headers = resp.headers();
        let digest = content_digest(headers);
        let media_type = content_type(headers);
        // Not `Response::content_length`: for HEAD that is the (empty) body's length.
        let size = headers
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match (digest, media_type, size) {
            (Some(digest), Some(media_type), Some(size))
                if media_types::ACCEPTED_MANIFESTS.contains(&media_type.as_str())
                    && wanted.as_ref().is_none_or(|w| *w == digest) =>
            {
                Ok(Some(Descriptor {
                    media_type,
                    digest,
                    size,
                }))
            }
            _ => {
                tracing::debug!(%repo, reference, "HEAD gave no usable digest; fetching the manifest");
                Ok(self
                    .get_manifest(repo, reference)
                    .await?
                    .map(|m| Descriptor {
                        size: m.bytes.len() as u64,
                        media_type: m.media_type,
                        digest: m.digest,
                    }))
            }
        }
    }

    /// GET a manifest (OCI manifest or index, Docker v2 manifest or manifest list), at most
    /// 4 MiB; `Ok(None)` on 404. The bytes are checked against `reference` when it is a
    /// digest, and against `Docker-Content-Digest` when the registry sends one.
    pub async fn get_manifest(
        &self,
        repo: &Repository,
        reference: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        self.fetch_manifest(repo, reference, BlobSize::AtMost(MAX_MANIFEST_SIZE))
            .await
    }

    /// GET the manifest `digest` whose descriptor (an index entry, a referrer) declares `size`
    /// bytes: a declared size over 4 MiB is refused before asking, a body of any other length
    /// is refused, and at most `size + 1` bytes are read whatever the registry streams. The
    /// bytes must hash to `digest`. `Ok(None)` on 404.
    pub async fn get_manifest_sized(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        if size > MAX_MANIFEST_SIZE {
            return Err(RegistryError::TooLarge {
                what: format!("manifest {repo}@{digest} (declared {size} bytes)"),
                limit: MAX_MANIFEST_SIZE,
            });
        }
        self.fetch_manifest(repo, &digest.to_string(), BlobSize::Exactly(size))
            .await
    }

    async fn fetch_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        size: BlobSize,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let wanted = check_reference(reference)?;
        let method = Method::GET;
        let resp = self
            .request(
                repo,
                Access::Pull,
                method.clone(),
                Target::Path(manifest_path(repo, reference)?),
                accept_manifests(),
                None,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => {
                drain(resp).await;
                return Ok(None);
            }
            s if s.is_success() => {}
            _ => return Err(status_error(resp, &method, self.timeout()).await),
        }
        let announced = content_digest(resp.headers());
        let header_type = content_type(resp.headers());
        let what = format!("manifest {repo}:{reference}");
        let timeout = self.timeout();
        let bytes = match size {
            BlobSize::AtMost(max) => read_limited(resp, max, &what, &method, timeout).await?,
            BlobSize::Exactly(n) => read_declared(resp, n, &what, &method, timeout).await?,
        };
        let digest = Digest::of(&bytes);
        if let Some(expected) = wanted.as_ref().or(announced.as_ref()) {
            if *expected != digest {
                return Err(RegistryError::DigestMismatch {
                    what,
                    expected: expected.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let media_type = manifest_media_type(header_type, &bytes, &what)?;
        Ok(Some(FetchedManifest {
            media_type,
            digest,
            bytes,
        }))
    }

    /// PUT a manifest under a tag or digest; returns its digest, computed here and checked
    /// against the registry's `Docker-Content-Digest` when present.
    pub async fn put_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        media_type: &str,
        body: Bytes,
    ) -> Result<Digest, RegistryError> {
        let wanted = check_reference(reference)?;
        let what = format!("manifest {repo}:{reference}");
        if body.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(RegistryError::TooLarge {
                what,
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let digest = Digest::of(&body);
        if let Some(w) = wanted {
            if w != digest {
                return Err(RegistryError::DigestMismatch {
                    what,
                    expected: w.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(media_type).map_err(|_| RegistryError::UnsupportedMediaType {
                what: what.clone(),
                media_type: media_type.to_string(),
            })?,
        );
        let method = Method::PUT;
        let resp = self
            .request(
                repo,
                Access::Push,
                method.clone(),
                Target::Path(manifest_path(repo, reference)?),
                headers,
                Some(body),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &method, self.timeout()).await);
        }
        check_announced(resp.headers(), &digest, &what)?;
        drain(resp).await;
        Ok(digest)
    }

    /// Whether the repository has blob `digest`.
    pub async fn blob_exists(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        self.blob_exists_for(repo, digest, Access::Pull).await
    }

    async fn blob_exists_for(
        &self,
        repo: &Repository,
        digest: &Digest,
        access: Access,
    ) -> Result<bool, RegistryError> {
        let resp = self
            .request(
                repo,
                access,
                Method::HEAD,
                Target::Path(blob_path(repo, digest)?),
                HeaderMap::new(),
                None,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(status_error(resp, &Method::HEAD, self.timeout()).await),
        }
    }

    /// Upload a blob unless the repository already has it: POST for an upload session, then
    /// one monolithic PUT to the returned location with `digest=` added to its query.
    pub async fn put_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        body: Bytes,
    ) -> Result<(), RegistryError> {
        // upload_blob checks the body against `digest`; checking existence first is only an
        // optimisation, so a wrong digest is caught either way.
        if self.blob_exists_for(repo, digest, Access::Push).await? {
            tracing::debug!(%repo, %digest, "blob already present");
            return Ok(());
        }
        self.upload_blob(repo, digest, body).await
    }

    /// Upload a blob without first asking whether it exists (for content that is new by
    /// construction, like a fresh signature payload). Tries the single-request monolithic
    /// upload (`POST …/uploads/?digest=` with the body, answered 201) and falls back to
    /// POST-then-PUT when the registry answers 202, as the distribution spec allows.
    pub async fn upload_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        body: Bytes,
    ) -> Result<(), RegistryError> {
        let what = format!("blob {digest} for {repo}");
        let actual = Digest::of(&body);
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        let resp = self
            .request(
                repo,
                Access::Push,
                Method::POST,
                Target::Path(format!("v2/{}/blobs/uploads/?digest={digest}", repo.path())),
                octet_stream(),
                Some(body.clone()),
            )
            .await?;
        if resp.status() == StatusCode::CREATED {
            check_announced(resp.headers(), digest, &what)?;
            drain(resp).await;
            return Ok(());
        }
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(resp, &Method::POST, self.timeout()).await);
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| RegistryError::Protocol {
                registry: repo.registry().to_string(),
                detail: "upload started without a Location header".into(),
            })?;
        // Relative locations are relative to the URL that answered.
        let mut upload = resp
            .url()
            .join(&location)
            .map_err(|e| RegistryError::Protocol {
                registry: repo.registry().to_string(),
                detail: format!("upload Location is not a URL: {e}"),
            })?;
        drain(resp).await;
        upload
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let resp = self
            .request(
                repo,
                Access::Push,
                Method::PUT,
                Target::Url(upload),
                octet_stream(),
                Some(body),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &Method::PUT, self.timeout()).await);
        }
        check_announced(resp.headers(), digest, &what)?;
        drain(resp).await;
        Ok(())
    }

    /// The OCI 1.1 referrers API: the index of manifests whose `subject` is `subject`, or
    /// `Ok(None)` when the registry has no such API (404, 400 or 405, as go-containerregistry
    /// reads it; docker-registry 2.8 and 3.x answer 404). At most 4 MiB, like a manifest.
    pub async fn get_referrers(
        &self,
        repo: &Repository,
        subject: &Digest,
    ) -> Result<Option<super::manifest::ImageIndex>, RegistryError> {
        let method = Method::GET;
        let mut accept = HeaderMap::new();
        accept.insert(ACCEPT, HeaderValue::from_static(media_types::OCI_INDEX));
        let what = format!("referrers of {repo}@{subject}");
        let mut target = Target::Path(format!("v2/{}/referrers/{subject}", check_path(repo)?));
        let mut all: Option<super::manifest::ImageIndex> = None;
        // A registry may page the list (a `Link: <…>; rel="next"` header). Pages are followed
        // on the same registry only, until the list is longer than any caller reads (then
        // the caller refuses it rather than act on part of it) or for at most a bounded
        // number of pages, so a registry that links forever cannot keep us reading.
        for page in 0..MAX_REFERRERS_PAGES {
            let resp = self
                .request(
                    repo,
                    Access::Pull,
                    method.clone(),
                    target,
                    accept.clone(),
                    None,
                )
                .await?;
            match resp.status() {
                StatusCode::NOT_FOUND
                | StatusCode::BAD_REQUEST
                | StatusCode::METHOD_NOT_ALLOWED
                    if page == 0 =>
                {
                    drain(resp).await;
                    return Ok(None);
                }
                s if s.is_success() => {}
                _ => return Err(status_error(resp, &method, self.timeout()).await),
            }
            let next = next_page(&resp).map_err(|detail| RegistryError::Protocol {
                registry: repo.registry().to_string(),
                detail: format!("{what}: {detail}"),
            })?;
            let bytes =
                read_limited(resp, MAX_MANIFEST_SIZE, &what, &method, self.timeout()).await?;
            let index = super::manifest::ImageIndex::from_slice(&bytes).map_err(|e| {
                RegistryError::Protocol {
                    registry: repo.registry().to_string(),
                    detail: format!("{what} is not an OCI image index: {e}"),
                }
            })?;
            let listed = match &mut all {
                None => all.insert(index),
                Some(first) => {
                    first.manifests.extend(index.manifests);
                    first
                }
            };
            match next {
                Some(url) if listed.manifests.len() <= MAX_REFERRERS_LISTED => {
                    target = Target::Url(url);
                }
                _ => return Ok(all),
            }
        }
        Err(RegistryError::Protocol {
            registry: repo.registry().to_string(),
            detail: format!(
                "{what}: the registry links more than {MAX_REFERRERS_PAGES} pages of referrers; refusing to read on"
            ),
        })
    }

    /// GET a blob, refusing more than `max_size` bytes (counted while streaming) and bytes
    /// that do not hash to `digest`.
    pub async fn get_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        max_size: u64,
    ) -> Result<Bytes, RegistryError> {
        self.fetch_blob(repo, digest, BlobSize::AtMost(max_size))
            .await
    }

    /// GET a blob whose descriptor declares `size` bytes: a body of any other length is
    /// refused, and at most `size + 1` bytes are read, whatever the registry streams. The
    /// caller bounds `size`; the bytes must hash to `digest`.
    pub async fn get_blob_sized(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
    ) -> Result<Bytes, RegistryError> {
        self.fetch_blob(repo, digest, BlobSize::Exactly(size)).await
    }

    async fn fetch_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: BlobSize,
    ) -> Result<Bytes, RegistryError> {
        let what = format!("blob {digest} in {repo}");
        let method = Method::GET;
        let resp = self
            .request(
                repo,
                Access::Pull,
                method.clone(),
                Target::Path(blob_path(repo, digest)?),
                HeaderMap::new(),
                None,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => {
                drain(resp).await;
                return Err(RegistryError::NotFound { what });
            }
            s if s.is_success() => {}
            _ => return Err(status_error(resp, &method, self.timeout()).await),
        }
        let timeout = self.timeout();
        let bytes = match size {
            BlobSize::AtMost(max) => read_limited(resp, max, &what, &method, timeout).await?,
            BlobSize::Exactly(n) => read_declared(resp, n, &what, &method, timeout).await?,
        };
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }
}

fn accept_manifests() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        ACCEPT,
        HeaderValue::from_static(
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json",
        ),
    );
    h
}

/// A tag or digest, checked so it cannot change the URL's path; the digest if it is one.
fn check_reference(reference: &str) -> Result<Option<Digest>, RegistryError> {
    let bad = || RegistryError::InvalidReference {
        reference: reference.to_string(),
    };
    if reference.contains(':') {
        return reference.parse::<Digest>().map(Some).map_err(|_| bad());
    }
    if is_valid_tag(reference) {
        Ok(None)
    } else {
        Err(bad())
    }
}

/// A repository path with no empty, `.` or `..` components (URL joining would resolve them).
fn check_path(repo: &Repository) -> Result<&str, RegistryError> {
    let path = repo.path();
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(RegistryError::Protocol {
            registry: repo.registry().to_string(),
            detail: format!("repository path {path:?} has empty or dot components"),
        });
    }
    Ok(path)
}

fn manifest_path(repo: &Repository, reference: &str) -> Result<String, RegistryError> {
    Ok(format!("v2/{}/manifests/{reference}", check_path(repo)?))
}

fn blob_path(repo: &Repository, digest: &Digest) -> Result<String, RegistryError> {
    Ok(format!("v2/{}/blobs/{digest}", check_path(repo)?))
}

/// `Docker-Content-Digest`, if present and SHA-256 (other algorithms are ignored: we hash
/// with SHA-256 ourselves anyway).
fn content_digest(headers: &HeaderMap) -> Option<Digest> {
    headers
        .get("docker-content-digest")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The media type of `Content-Type`, without parameters.
fn content_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let mt = v.split(';').next().unwrap_or(v).trim();
    (!mt.is_empty()).then(|| mt.to_ascii_lowercase())
}

/// A registry that announces a digest for what we uploaded must announce ours.
fn check_announced(headers: &HeaderMap, digest: &Digest, what: &str) -> Result<(), RegistryError> {
    match content_digest(headers) {
        Some(d) if d != *digest => Err(RegistryError::DigestMismatch {
            what: format!("{what} (Docker-Content-Digest after upload)"),
            expected: digest.to_string(),
            actual: d.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The media type of fetched manifest bytes: the `Content-Type` when it is one we accept,
/// else the body's `mediaType` (or its shape), which must be one we accept.
fn manifest_media_type(
    header: Option<String>,
    bytes: &[u8],
    what: &str,
) -> Result<String, RegistryError> {
    if let Some(h) = &header {
        if media_types::ACCEPTED_MANIFESTS.contains(&h.as_str()) {
            return Ok(h.clone());
        }
    }
    match sniff_media_type(bytes) {
        Some(mt) if media_types::ACCEPTED_MANIFESTS.contains(&mt.as_str()) => Ok(mt),
        sniffed => Err(RegistryError::UnsupportedMediaType {
            what: what.to_string(),
            media_type: header.or(sniffed).unwrap_or_else(|| "(none)".to_string()),
        }),
    }
}

/// At most this many pages of one referrers list are read.
const MAX_REFERRERS_PAGES: usize = 64;

/// Once a referrers list holds more entries than this, no further page is read: no caller
/// reads more referrers than this (the store refuses such a list), so the rest cannot matter.
pub const MAX_REFERRERS_LISTED: usize = 1000;

/// The next page of a paged answer (`Link: <url>; rel="next"`, distribution-spec 1.1), on the
/// registry that answered; `Err` for a link that is not a URL or leads elsewhere.
fn next_page(resp: &reqwest::Response) -> Result<Option<reqwest::Url>, String> {
    let base = resp.url();
    for value in resp.headers().get_all(reqwest::header::LINK) {
        let value = value
            .to_str()
            .map_err(|_| "a Link header is not text".to_string())?;
        let Some(target) = next_link_target(value) else {
            continue;
        };
        let url = base
            .join(target)
            .map_err(|e| format!("the next-page link {target:?} is not a URL: {e}"))?;
        if url.origin() != base.origin() {
            return Err(format!(
                "the next-page link {url} leads to another host; not following it"
            ));
        }
        return Ok(Some(url));
    }
    Ok(None)
}

/// The target of the `rel="next"` link in one `Link` header value (RFC 8288), if it has one.
fn next_link_target(value: &str) -> Option<&str> {
    value.split(',').find_map(|link| {
        let (target, params) = link.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            p.trim().split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        is_next.then_some(target)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(check_reference("latest").unwrap(), None);
        assert_eq!(
            check_reference("sha256-abc.sig").unwrap(),
            None,
            "cosign signature tags are tags"
        );
        let d = Digest::of(b"x");
        assert_eq!(check_reference(&d.to_string()).unwrap(), Some(d));
        for bad in [
            "",
            "../x",
            "a/b",
            "-x",
            ".x",
            "sha256:nothex",
            "a?b",
            &"t".repeat(129),
        ] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_and_references_agree_on_tags() {
        use crate::reference::ImageReference;
        let long = "t".repeat(128);
        let too_long = "t".repeat(129);
        for tag in [
            "latest", "v1.2.3", "_x", "A-b_c.d", &long, &too_long, "-x", ".x", "a+b", "a/b", "ü",
            "a b",
        ] {
            let by_reference = ImageReference::parse(&format!("example.com/repo:{tag}")).is_ok();
            let by_client = check_reference(tag).is_ok();
            assert_eq!(by_reference, by_client, "{tag:?}");
            assert_eq!(by_client, is_valid_tag(tag), "{tag:?}");
        }
    }

    #[test]
    fn media_type_choice() {
        let oci = br#"{"schemaVersion":2,"config":{}}"#;
        assert_eq!(
            manifest_media_type(Some("application/json".into()), oci, "m").unwrap(),
            media_types::OCI_MANIFEST
        );
        assert_eq!(
            manifest_media_type(Some(media_types::DOCKER_MANIFEST_LIST.into()), b"{}", "m")
                .unwrap(),
            media_types::DOCKER_MANIFEST_LIST
        );
        let e = manifest_media_type(
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws".into()),
            br#"{"schemaVersion":1}"#,
            "m",
        )
        .unwrap_err();
        assert!(
            matches!(e, RegistryError::UnsupportedMediaType { .. }),
            "{e}"
        );
    }

    #[test]
    fn bad_repository_paths_are_refused() {
        // A `..` component never reaches the client: references refuse it at parse.
        assert!(Repository::parse("example.com/a/../b").is_err());
        let repo = Repository::parse("example.com/a/b").unwrap();
        assert_eq!(manifest_path(&repo, "t").unwrap(), "v2/a/b/manifests/t");
        // The client's own check still refuses a reference that would leave the repository.
        assert!(check_reference("../t").is_err());
    }

    #[test]
    fn next_page_links() {
        let next = |v| next_link_target(v);
        assert_eq!(
            next(r#"</v2/r/referrers/sha256:a?n=2&last=x>; rel="next""#),
            Some("/v2/r/referrers/sha256:a?n=2&last=x")
        );
        assert_eq!(
            next(r#"<https://x/prev>; rel="prev", <https://x/2>; rel=next"#),
            Some("https://x/2")
        );
        assert_eq!(
            next(r#"<https://x/2>; title="a"; rel="prev next""#),
            Some("https://x/2")
        );
        assert_eq!(next(r#"<https://x/2>; rel="prev""#), None);
        assert_eq!(next("https://x/2; rel=next"), None, "no angle brackets");
        assert_eq!(next(""), None);
    }
}
