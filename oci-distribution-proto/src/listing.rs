//! Interpreting listings: tags, the catalog, referrers; each with the `Link` to its next page.

use http::{Response, StatusCode, Uri};
use serde::Deserialize;
use url::Url;

use crate::manifest::unexpected;
use crate::{Error, Operation, ReferrersResponse, Registry, next_link};

/// One page of a repository's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagList {
    /// The repository, as the registry names it.
    pub name: String,
    /// The tags, in the registry's order (docker-registry 2.8 does not sort them). Empty when
    /// the registry says `null` (a repository whose manifests were all deleted).
    pub tags: Vec<String>,
    /// The next page, for [`Registry::tags_next_request`]; `None` on the last page.
    pub next: Option<Url>,
}

/// One page of the registry's repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// The repository names.
    pub repositories: Vec<String>,
    /// The next page, for [`Registry::catalog_next_request`]; `None` on the last page.
    pub next: Option<Url>,
}

/// One page of the referrers API's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrersPage {
    /// The referrers: an image index, and the filters the registry applied.
    pub referrers: ReferrersResponse,
    /// The next page; `None` on the last page.
    pub next: Option<Url>,
}

#[derive(Deserialize)]
struct TagsBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct CatalogBody {
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

impl Registry {
    /// Interprets the answer to [`Registry::tags_request`] or [`Registry::tags_next_request`].
    /// `request_uri` is the URL the request went to: a relative next-page link resolves
    /// against it.
    pub fn handle_tags_response<B: AsRef<[u8]>>(
        &self,
        request_uri: &Uri,
        response: &Response<B>,
    ) -> Result<TagList, Error> {
        let operation = Operation::ListTags;
        ok_status(operation, response)?;
        let body: TagsBody = json(operation, response.body().as_ref())?;
        Ok(TagList {
            name: body.name,
            tags: body.tags.unwrap_or_default(),
            next: self.next_page(operation, request_uri, response)?,
        })
    }

    /// Interprets the answer to [`Registry::catalog_request`] or
    /// [`Registry::catalog_next_request`].
    pub fn handle_catalog_response<B: AsRef<[u8]>>(
        &self,
        request_uri: &Uri,
        response: &Response<B>,
    ) -> Result<Catalog, Error> {
        let operation = Operation::Catalog;
        ok_status(operation, response)?;
        let body: CatalogBody = json(operation, response.body().as_ref())?;
        Ok(Catalog {
            repositories: body.repositories.unwrap_or_default(),
            next: self.next_page(operation, request_uri, response)?,
        })
    }

    /// Interprets the answer to [`Registry::referrers_request`]. `None` when the registry has
    /// no referrers API (`404`, as docker-registry 2.8 answers): use the tag-schema fallback.
    pub fn handle_referrers_response<B: AsRef<[u8]>>(
        &self,
        request_uri: &Uri,
        response: &Response<B>,
    ) -> Result<Option<ReferrersPage>, Error> {
        let operation = Operation::Referrers;
        let Some(referrers) = ReferrersResponse::from_response_parts(
            response.status(),
            response.headers(),
            response.body().as_ref(),
        )?
        else {
            return Ok(None);
        };
        Ok(Some(ReferrersPage {
            referrers,
            next: self.next_page(operation, request_uri, response)?,
        }))
    }

    fn next_page<B>(
        &self,
        operation: Operation,
        request_uri: &Uri,
        response: &Response<B>,
    ) -> Result<Option<Url>, Error> {
        // `join` takes both an absolute URI and an origin-form one (`/v2/...`).
        let base = self
            .base_url()
            .join(&request_uri.to_string())
            .unwrap_or_else(|_| self.base_url().clone());
        next_link(response.headers(), &base).map_err(|source| Error::Link { operation, source })
    }
}

fn ok_status<B: AsRef<[u8]>>(operation: Operation, response: &Response<B>) -> Result<(), Error> {
    match response.status() {
        StatusCode::OK => Ok(()),
        status if status.is_success() => Err(unexpected(operation, status, "200 OK")),
        _ => Err(Error::from_response(operation, response)),
    }
}

fn json<T: serde::de::DeserializeOwned>(operation: Operation, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::InvalidJson {
        operation,
        message: e.to_string(),
    })
}
