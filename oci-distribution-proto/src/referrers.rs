//! OCI 1.1 referrers: the referrers API (`GET /v2/<name>/referrers/<digest>`) and its
//! tag-schema fallback for registries without it (docker-registry 2.8 answers `404`).
//!
//! The fallback keeps an image index under the tag `<alg>-<ref>` of the subject's digest
//! ([`referrers_tag`]); pushing a referrer means reading that index, adding the referrer's
//! descriptor ([`add_referrer`]) and pushing the index back, and deleting one means removing it
//! ([`remove_referrer`]). These functions compute the new index; the caller does the I/O.

use oci_spec_types::{Descriptor, Digest, ImageIndex, Manifest, ManifestBytes, MediaType};

use crate::registry_error::RegistryError;

/// The header in which a registry lists the filters it applied (`artifactType`).
pub const OCI_FILTERS_APPLIED: &str = "oci-filters-applied";

/// The filter name for `?artifactType=` in [`OCI_FILTERS_APPLIED`].
pub const ARTIFACT_TYPE_FILTER: &str = "artifactType";

/// The tag under which the tag-schema fallback keeps the referrers of `subject`.
///
/// `<alg>-<ref>`: the algorithm truncated to 32 characters and the encoded digest to 64, with
/// characters a tag cannot hold (such as `+` and `=`) replaced by `-`. For sha256 this is
/// `sha256-<64 hex>`.
///
/// ```
/// use oci_distribution_proto::referrers_tag;
/// let d = oci_spec_types::Digest::sha256_of(b"");
/// assert_eq!(referrers_tag(&d), format!("sha256-{}", d.encoded()));
/// ```
pub fn referrers_tag(subject: &Digest) -> String {
    let clean = |s: &str, max: usize| -> String {
        s.chars()
            .take(max)
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!(
        "{}-{}",
        clean(subject.algorithm_str(), 32),
        clean(subject.encoded(), 64)
    )
}

/// The referrers API or the fallback tag answered something that is not a referrers list.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReferrersError {
    /// The registry answered the referrers API with an error other than `404`.
    #[error("listing referrers failed: {0}")]
    Registry(#[from] RegistryError),
    /// The body is not a valid image index.
    #[error("the referrers list is not a valid image index: {0}")]
    InvalidIndex(#[source] oci_spec_types::Error),
    /// The referrers API or fallback tag holds a manifest of another kind, so it is not a
    /// referrers list (the fallback tag may have been pushed by something else).
    #[error(
        "the referrers list is a {media_type} manifest, not an OCI image index; if this is the fallback tag, it was overwritten by another tool: delete or re-tag it"
    )]
    NotAnIndex {
        /// What it is instead.
        media_type: MediaType,
    },
}

/// A list of referrers: from the referrers API, or read from the fallback tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrersResponse {
    /// The index whose `manifests` are the referrers' descriptors.
    pub index: ImageIndex,
    /// The filters the registry says it applied (`OCI-Filters-Applied`), such as
    /// `artifactType`. Empty for the fallback tag, which is never filtered.
    pub filters_applied: Vec<String>,
}

impl ReferrersResponse {
    /// Interprets a referrers API response.
    ///
    /// `Ok(None)` for `404`: the registry has no referrers API (a registry with it answers
    /// `200` with an empty index even for an unknown subject), so use the fallback tag
    /// ([`referrers_tag`]). Other error statuses are [`ReferrersError::Registry`].
    pub fn from_response_parts(
        status: http::StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<Option<Self>, ReferrersError> {
        if status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(RegistryError::from_response_parts(status, headers, body).into());
        }
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(MediaType::from_content_type);
        let index = match Manifest::from_slice(body, content_type.as_ref())
            .map_err(ReferrersError::InvalidIndex)?
        {
            Manifest::Index(index) => index,
            other => {
                return Err(ReferrersError::NotAnIndex {
                    media_type: other.media_type(),
                });
            }
        };
        let filters_applied = headers
            .get_all(OCI_FILTERS_APPLIED)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Some(Self {
            index,
            filters_applied,
        }))
    }

    /// Reads the index held by the fallback tag (fetched as an ordinary manifest).
    pub fn from_fallback(manifest: &ManifestBytes) -> Result<Self, ReferrersError> {
        match manifest.manifest() {
            Manifest::Index(index) => Ok(Self {
                index: index.clone(),
                filters_applied: Vec::new(),
            }),
            other => Err(ReferrersError::NotAnIndex {
                media_type: other.media_type(),
            }),
        }
    }

    /// The referrers' descriptors.
    pub fn referrers(&self) -> &[Descriptor] {
        &self.index.manifests
    }

    /// Whether the registry says it filtered by artifact type.
    pub fn artifact_type_filter_applied(&self) -> bool {
        self.filters_applied
            .iter()
            .any(|f| f == ARTIFACT_TYPE_FILTER)
    }

    /// The referrers of `artifact_type` (all of them for `None`). The filter is applied here
    /// when the registry did not apply it (the fallback tag never does; the API may not).
    pub fn matching(&self, artifact_type: Option<&MediaType>) -> Vec<Descriptor> {
        match artifact_type {
            Some(t) if !self.artifact_type_filter_applied() => {
                filter_by_artifact_type(self.referrers(), t)
            }
            _ => self.referrers().to_vec(),
        }
    }
}

/// The referrers whose `artifactType` is `artifact_type`.
pub fn filter_by_artifact_type(
    referrers: &[Descriptor],
    artifact_type: &MediaType,
) -> Vec<Descriptor> {
    referrers
        .iter()
        .filter(|d| d.artifact_type.as_ref() == Some(artifact_type))
        .cloned()
        .collect()
}

/// The descriptor that lists a referrer in a referrers index: media type, digest, size, its
/// artifact type (`artifactType`, else for an image manifest the config media type; an index
/// without `artifactType` has none) and its annotations.
pub fn referrer_descriptor(referrer: &ManifestBytes) -> Descriptor {
    let mut descriptor = referrer.descriptor();
    descriptor.artifact_type = referrer.manifest().artifact_type().cloned();
    descriptor.annotations = referrer.manifest().annotations().clone();
    descriptor
}

/// The fallback index after adding `referrer`, or `None` when `existing` already lists it
/// unchanged (no push needed).
///
/// With no existing index (the fallback tag does not exist yet) a new one is made. A
/// descriptor with the same digest is replaced in place; duplicate digests already in the
/// index are dropped. The result has `schemaVersion` 2 and the OCI index media type; other
/// fields of the existing index are kept.
pub fn add_referrer(existing: Option<&ImageIndex>, referrer: Descriptor) -> Option<ImageIndex> {
    let Some(existing) = existing else {
        return Some(ImageIndex::new(vec![referrer]));
    };
    let mut manifests = Vec::with_capacity(existing.manifests.len() + 1);
    let mut placed = false;
    for d in &existing.manifests {
        if d.digest == referrer.digest {
            if !placed {
                manifests.push(referrer.clone());
                placed = true;
            }
        } else if !manifests.iter().any(|m: &Descriptor| m.digest == d.digest) {
            manifests.push(d.clone());
        }
    }
    if !placed {
        manifests.push(referrer);
    }
    updated(existing, manifests)
}

/// The fallback index after removing the referrer `digest`, or `None` when it is not listed.
///
/// The result may be empty; the caller decides whether to push the empty index or delete the
/// tag.
pub fn remove_referrer(existing: &ImageIndex, digest: &Digest) -> Option<ImageIndex> {
    if !existing.manifests.iter().any(|d| d.digest == *digest) {
        return None;
    }
    let mut manifests: Vec<Descriptor> = Vec::with_capacity(existing.manifests.len());
    for d in &existing.manifests {
        if d.digest != *digest && !manifests.iter().any(|m| m.digest == d.digest) {
            manifests.push(d.clone());
        }
    }
    updated(existing, manifests)
}

fn updated(existing: &ImageIndex, manifests: Vec<Descriptor>) -> Option<ImageIndex> {
    if manifests == existing.manifests {
        return None;
    }
    let mut index = existing.clone();
    index.manifests = manifests;
    index.schema_version = 2;
    index.media_type = Some(MediaType::ImageIndex);
    Some(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec_types::annotations;
    use proptest::prelude::*;

    const SBOM: &[u8] = include_bytes!("../tests/fixtures/referrers/referrer-sbom.json");
    const SIGNATURE: &[u8] = include_bytes!("../tests/fixtures/referrers/referrer-signature.json");
    const SUBJECT: &[u8] = include_bytes!("../tests/fixtures/referrers/subject-manifest.json");
    const RESPONSE: &[u8] = include_bytes!("../tests/fixtures/referrers/referrers-response.json");

    fn manifest(bytes: &[u8]) -> ManifestBytes {
        ManifestBytes::parse(bytes.to_vec(), Some(&MediaType::ImageManifest)).unwrap()
    }

    fn index_headers() -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/vnd.oci.image.index.v1+json"),
        );
        h
    }

    fn desc(bytes: &[u8]) -> Descriptor {
        Descriptor::for_bytes(MediaType::ImageManifest, bytes)
    }

    #[test]
    fn tag_of_sha256_digest() {
        let d = Digest::parse(
            "sha256:d15ca509f572669edc2cacf7a9b6252371eaecd42dd4933105ff32f26e3020fb",
        )
        .unwrap();
        assert_eq!(
            referrers_tag(&d),
            "sha256-d15ca509f572669edc2cacf7a9b6252371eaecd42dd4933105ff32f26e3020fb"
        );
    }

    #[test]
    fn tag_is_truncated_and_cleaned_for_other_algorithms() {
        let sha512 = Digest::sha512_of(b"x");
        let tag = referrers_tag(&sha512);
        assert_eq!(tag, format!("sha512-{}", &sha512.encoded()[..64]));
        let alg = "a".repeat(40);
        let odd = Digest::parse(&format!("multihash+{alg}:{}==", "B".repeat(70))).unwrap();
        let tag = referrers_tag(&odd);
        assert_eq!(
            tag,
            format!("multihash-{}-{}", "a".repeat(22), "B".repeat(64))
        );
        assert!(tag.len() <= 128);
    }

    #[test]
    fn fixture_descriptors_match_the_referrer_manifests() {
        // Guards the fixtures: the response lists exactly the bytes of the two referrers.
        let response = ReferrersResponse::from_response_parts(
            http::StatusCode::OK,
            &index_headers(),
            RESPONSE,
        )
        .unwrap()
        .unwrap();
        let sbom = manifest(SBOM);
        let signature = manifest(SIGNATURE);
        assert_eq!(
            response.referrers(),
            [referrer_descriptor(&sbom), referrer_descriptor(&signature)]
        );
        let subject = manifest(SUBJECT);
        assert_eq!(
            sbom.manifest().subject().map(|s| &s.digest),
            Some(subject.digest())
        );
    }

    #[test]
    fn referrer_descriptor_copies_artifact_type_and_annotations() {
        let sbom = referrer_descriptor(&manifest(SBOM));
        assert_eq!(
            sbom.artifact_type,
            Some(MediaType::from("application/spdx+json"))
        );
        assert_eq!(
            sbom.annotations
                .get(annotations::CREATED)
                .map(String::as_str),
            Some("2024-01-24T06:16:24Z")
        );
        assert_eq!(sbom.size, SBOM.len() as u64);
        assert_eq!(sbom.media_type, MediaType::ImageManifest);
        // No artifactType: the config media type stands in (image-spec 1.1).
        let sig = referrer_descriptor(&manifest(SIGNATURE));
        assert_eq!(
            sig.artifact_type,
            Some(MediaType::from(
                "application/vnd.dev.cosign.artifact.sig.v1+json"
            ))
        );
        assert!(sig.annotations.is_empty());
        // An index without artifactType has none.
        let index = ManifestBytes::from_manifest(ImageIndex::new(vec![]).into());
        assert_eq!(referrer_descriptor(&index).artifact_type, None);
    }

    #[test]
    fn api_response_with_filters_applied() {
        let mut headers = index_headers();
        headers.insert(
            OCI_FILTERS_APPLIED,
            http::HeaderValue::from_static("artifactType"),
        );
        let response =
            ReferrersResponse::from_response_parts(http::StatusCode::OK, &headers, RESPONSE)
                .unwrap()
                .unwrap();
        assert_eq!(response.filters_applied, ["artifactType"]);
        assert!(response.artifact_type_filter_applied());
        // The registry claims it filtered, so the list is taken as it is.
        assert_eq!(
            response
                .matching(Some(&MediaType::from("application/spdx+json")))
                .len(),
            2
        );
    }

    #[test]
    fn filter_is_applied_client_side_when_the_registry_did_not() {
        let response = ReferrersResponse::from_response_parts(
            http::StatusCode::OK,
            &index_headers(),
            RESPONSE,
        )
        .unwrap()
        .unwrap();
        assert!(response.filters_applied.is_empty());
        let sboms = response.matching(Some(&MediaType::from("application/spdx+json")));
        assert_eq!(sboms.len(), 1);
        assert_eq!(sboms[0].digest, *manifest(SBOM).digest());
        assert!(
            response
                .matching(Some(&MediaType::from("application/none")))
                .is_empty()
        );
        assert_eq!(response.matching(None).len(), 2);
        assert_eq!(
            filter_by_artifact_type(
                response.referrers(),
                &MediaType::from("application/vnd.dev.cosign.artifact.sig.v1+json")
            )
            .len(),
            1
        );
    }

    #[test]
    fn not_found_means_use_the_fallback_tag() {
        // docker-registry 2.8 answers the referrers path with plain text.
        let got = ReferrersResponse::from_response_parts(
            http::StatusCode::NOT_FOUND,
            &http::HeaderMap::new(),
            b"404 page not found\n",
        );
        assert_eq!(got.unwrap(), None);
    }

    #[test]
    fn other_errors_and_bad_bodies() {
        let err = ReferrersResponse::from_response_parts(
            http::StatusCode::UNAUTHORIZED,
            &http::HeaderMap::new(),
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        )
        .unwrap_err();
        assert!(
            matches!(err, ReferrersError::Registry(ref e) if e.status() == http::StatusCode::UNAUTHORIZED),
            "{err}"
        );
        let err = ReferrersResponse::from_response_parts(
            http::StatusCode::OK,
            &index_headers(),
            b"{not json",
        )
        .unwrap_err();
        assert!(matches!(err, ReferrersError::InvalidIndex(_)), "{err}");
        let err = ReferrersResponse::from_response_parts(
            http::StatusCode::OK,
            &http::HeaderMap::new(),
            SBOM,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not an OCI image index"), "{err}");
    }

    #[test]
    fn fallback_tag_must_hold_an_index() {
        let index = ManifestBytes::from_manifest(ImageIndex::new(vec![desc(b"a")]).into());
        let response = ReferrersResponse::from_fallback(&index).unwrap();
        assert_eq!(response.referrers().len(), 1);
        assert!(response.filters_applied.is_empty());
        let err = ReferrersResponse::from_fallback(&manifest(SBOM)).unwrap_err();
        assert!(
            matches!(
                err,
                ReferrersError::NotAnIndex {
                    media_type: MediaType::ImageManifest
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn add_to_missing_index_creates_one() {
        let index = add_referrer(None, desc(b"a")).unwrap();
        assert_eq!(index.schema_version, 2);
        assert_eq!(index.media_type, Some(MediaType::ImageIndex));
        assert_eq!(index.manifests, [desc(b"a")]);
    }

    #[test]
    fn add_is_idempotent_and_replaces_changed_descriptors() {
        let one = add_referrer(None, desc(b"a")).unwrap();
        assert_eq!(add_referrer(Some(&one), desc(b"a")), None);
        let two = add_referrer(Some(&one), desc(b"b")).unwrap();
        assert_eq!(two.manifests, [desc(b"a"), desc(b"b")]);
        let annotated = desc(b"a").with_annotation("k", "v");
        let replaced = add_referrer(Some(&two), annotated.clone()).unwrap();
        assert_eq!(replaced.manifests, [annotated, desc(b"b")]);
    }

    #[test]
    fn add_fixes_up_a_sloppy_existing_index() {
        let mut sloppy = ImageIndex::new(vec![desc(b"a"), desc(b"a"), desc(b"b")]);
        sloppy.media_type = None;
        sloppy.annotations.insert("keep".into(), "me".into());
        let index = add_referrer(Some(&sloppy), desc(b"c")).unwrap();
        assert_eq!(index.manifests, [desc(b"a"), desc(b"b"), desc(b"c")]);
        assert_eq!(index.media_type, Some(MediaType::ImageIndex));
        assert_eq!(
            index.annotations.get("keep").map(String::as_str),
            Some("me")
        );
    }

    #[test]
    fn remove_referrer_cases() {
        let index = ImageIndex::new(vec![desc(b"a"), desc(b"b")]);
        assert_eq!(remove_referrer(&index, &desc(b"zzz").digest), None);
        let removed = remove_referrer(&index, &desc(b"a").digest).unwrap();
        assert_eq!(removed.manifests, [desc(b"b")]);
        let empty = remove_referrer(&removed, &desc(b"b").digest).unwrap();
        assert!(empty.manifests.is_empty());
        assert_eq!(empty.media_type, Some(MediaType::ImageIndex));
    }

    #[test]
    fn the_updated_index_serializes_as_an_oci_index() {
        let index = add_referrer(None, referrer_descriptor(&manifest(SBOM))).unwrap();
        let bytes = ManifestBytes::from_manifest(index.into());
        let again =
            ManifestBytes::parse(bytes.bytes().to_vec(), Some(&MediaType::ImageIndex)).unwrap();
        let parsed = ReferrersResponse::from_fallback(&again).unwrap();
        assert_eq!(
            parsed
                .matching(Some(&MediaType::from("application/spdx+json")))
                .len(),
            1
        );
    }

    fn arb_descs() -> impl Strategy<Value = Vec<Descriptor>> {
        proptest::collection::vec((0u8..6, proptest::option::of("[a-z]{1,3}")), 0..8).prop_map(
            |v| {
                v.into_iter()
                    .map(|(n, ann)| {
                        let d = desc(&[n]);
                        match ann {
                            Some(a) => d.with_annotation("a", a),
                            None => d,
                        }
                    })
                    .collect()
            },
        )
    }

    proptest! {
        #[test]
        fn add_then_remove_keeps_digests_unique(existing in arb_descs(), n in 0u8..8) {
            let index = ImageIndex::new(existing);
            let new = desc(&[n]);
            // `None` only when the index already is the deduplicated list holding `new`.
            let after = add_referrer(Some(&index), new.clone()).unwrap_or_else(|| index.clone());
            let unique: std::collections::BTreeSet<&Digest> = after.manifests.iter().map(|d| &d.digest).collect();
            prop_assert_eq!(unique.len(), after.manifests.len());
            prop_assert!(after.manifests.contains(&new));
            // Adding again never changes anything.
            prop_assert_eq!(add_referrer(Some(&after), new.clone()), None);
            let removed = remove_referrer(&after, &new.digest).unwrap();
            prop_assert!(removed.manifests.iter().all(|d| d.digest != new.digest));
            prop_assert_eq!(remove_referrer(&removed, &new.digest), None);
        }

        #[test]
        fn referrers_tag_is_a_valid_tag(alg in "[a-z0-9]{1,20}([+._-][a-z0-9]{1,20}){0,3}", enc in "[a-zA-Z0-9=_-]{1,150}") {
            prop_assume!(alg != "sha256" && alg != "sha512");
            let d = Digest::parse(&format!("{alg}:{enc}")).unwrap();
            let tag = referrers_tag(&d);
            let reference = format!("localhost:5000/repo:{tag}");
            prop_assert!(reference.parse::<oci_spec_types::Reference>().is_ok(), "{}", tag);
        }
    }
}
