//! `/api/notary/v2`: stored files, their certificates, verification.

use crate::auth::{Auth, MaybeAuth};
use crate::error::HttpResult;
use crate::extract::{parse_path_id, Body, Paging, Query};
use crate::negotiate::Format;
use crate::reply::Reply;
use crate::routes::{OrgScope, PlainList};
use crate::state::AppState;
use axum::body::Body as HttpBody;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use nephele_api_types::{
    schema, Certificate, Data, ErrorBody, List, LoggedTreeHead, NotaryKey, StoredFile,
    StoredFileRegistration, StoredFileUpload, Verification, VerifyRequest, VerifyUpload,
};
use nephele_app::notary::check_upload_claims;
use nephele_app::wire;
use nephele_common::ids::OrganizationId;
use nephele_common::Error;
use serde::Deserialize;
use utoipa::IntoParams;

const TYPE: &str = "stored-files";
const BASE: &str = "/api/notary/v2/stored-files";
/// What a multipart upload may carry beside the file: boundaries, part
/// headers, the name and the hash.
const MULTIPART_FRAMING: u64 = 64 * 1024;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoredFileParams {
    /// Act in this organization (yours or one below it).
    #[serde(rename = "org_id")]
    #[param(rename = "org_id")]
    pub org_id: Option<uuid::Uuid>,
    /// Only files with this SHA-256 (hex).
    #[param(value_type = Option<schema::Sha256>)]
    pub sha256: Option<String>,
    /// Only files of this name.
    pub name: Option<String>,
    /// Items per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `nextPage` of the previous page.
    pub page_token: Option<String>,
}

/// How a raw upload names itself: `?name=`, and `?sha256=` to have the
/// server check the content against the hash the client computed.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadParams {
    /// Act in this organization (yours or one below it).
    #[serde(rename = "org_id")]
    #[param(rename = "org_id")]
    pub org_id: Option<uuid::Uuid>,
    /// The file's name (a multipart upload may give it as a `name` part
    /// or its file part's filename instead). Without one a file is named
    /// by its SHA-256.
    #[param(value_type = Option<schema::FileName>)]
    pub name: Option<String>,
    /// The SHA-256 (hex) the content must have. (A JSON registration's
    /// hash is its body's `sha256`; `?name=` names it when the body does
    /// not.)
    #[param(value_type = Option<schema::Sha256>)]
    pub sha256: Option<String>,
}

fn content_type(req: &Request) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A form that cannot be read (its rejection's or its field's text).
fn multipart_error(text: String) -> Error {
    Error::malformed(format!("Malformed multipart body: {text}"))
}

/// A multipart body whose declared length can hold a file, read part by
/// part with [`next_part`].
async fn open_form(
    app: &nephele_app::App,
    req: Request,
    state: &AppState,
) -> Result<Multipart, Error> {
    app.check_upload_length(declared_length(&req), MULTIPART_FRAMING)?;
    Multipart::from_request(req, state)
        .await
        .map_err(|e| multipart_error(e.body_text()))
}

async fn next_part(
    form: &mut Multipart,
) -> Result<Option<axum::extract::multipart::Field<'_>>, Error> {
    form.next_field()
        .await
        .map_err(|e| multipart_error(e.body_text()))
}

/// A text part of a multipart upload (`name`, `sha256`).
async fn part_text(field: axum::extract::multipart::Field<'_>) -> Result<String, Error> {
    field
        .text()
        .await
        .map_err(|e| multipart_error(e.body_text()))
}

/// Stores a file, or registers a hash. The body is the file itself
/// (`application/octet-stream`, named by `?name=`), a
/// `multipart/form-data` form with a `file` part, or JSON/XML
/// `{"sha256", "name"}` to register only a hash. Content is streamed to
/// disk, never held in memory; a broken-off upload leaves nothing.
#[utoipa::path(post, path = "/api/notary/v2/stored-files", tag = "notary",
    params(UploadParams),
    request_body(content(
        (Vec<u8> = "application/octet-stream"),
        (StoredFileUpload = "multipart/form-data"),
        (StoredFileRegistration = "application/json"),
    )),
    responses((status = 201, description = "Stored; pending notarization", body = Data<StoredFile>),
              (status = 413, description = "Larger than the limit (3000)", body = ErrorBody),
              (status = 422, description = "Invalid name or hash, or content that disagrees with ?sha256= (3001)", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(params): Query<UploadParams>,
    req: Request,
) -> HttpResult<Reply> {
    let acting = params.org_id.map(OrganizationId);
    let app = &state.app;
    let file = match content_type(&req).as_str() {
        "application/json" | "application/xml" | "text/xml" => {
            let Body(r) = Body::<StoredFileRegistration>::from_request(req, &state).await?;
            // The body is the registration; the query's claims are for
            // uploads, but are refused here too when malformed.
            check_upload_claims(params.name.as_deref(), params.sha256.as_deref())?;
            app.register_hash(&ctx, acting, r.name.or(params.name), r.sha256)
                .await?
        }
        "multipart/form-data" => {
            let mut form = open_form(app, req, &state).await?;
            // The parts may come in any order: the content is received
            // when its part comes, and stored only once every part has
            // been read and the claims checked against it.
            let mut name = params.name;
            let mut sha256 = params.sha256;
            let mut received = None;
            let mut file_name = None;
            while let Some(field) = next_part(&mut form).await? {
                match field.name().unwrap_or("") {
                    "name" => name = Some(part_text(field).await?),
                    "sha256" => sha256 = Some(part_text(field).await?),
                    "file" if received.is_some() => {
                        return Err(Error::invalid(
                            "file",
                            "must be sent once: one part named file",
                        )
                        .into());
                    }
                    "file" => {
                        file_name = field.file_name().map(str::to_owned);
                        received = Some(app.receive_stored_file(&ctx, acting, field).await?);
                    }
                    // As a JSON body's unknown field is refused.
                    other => {
                        return Err(Error::invalid(
                            other,
                            "is not a part of an upload (file, name, sha256)",
                        )
                        .into());
                    }
                }
            }
            let Some(received) = received else {
                return Err(Error::invalid("file", "is required: a part named file").into());
            };
            app.store_received_file(&ctx, received, name.or(file_name), sha256)
                .await?
        }
        "application/octet-stream" | "" => {
            app.check_upload_length(declared_length(&req), 0)?;
            let body = req.into_body().into_data_stream();
            app.upload_stored_file(&ctx, acting, params.name, params.sha256, body)
                .await?
        }
        _ => return Err(crate::extract::unsupported_media_type().into()),
    };
    let location = format!("{BASE}/{}", file.id);
    Ok(Reply::created(wire::stored_file(&file), location)?.with_version(file.version))
}

/// The stored files of the organization acted in, by id.
#[utoipa::path(get, path = "/api/notary/v2/stored-files", tag = "notary",
    params(StoredFileParams),
    responses((status = 200, description = "A page of stored files", body = List<StoredFile>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(params): Query<StoredFileParams>,
    Paging(page): Paging,
) -> HttpResult<Reply> {
    let page = state
        .app
        .list_stored_files(
            &ctx,
            params.org_id.map(OrganizationId),
            params.sha256,
            params.name,
            &page,
        )
        .await?;
    Ok(Reply::list(
        "storedFile",
        page.map(|f| wire::stored_file(&f)),
    )?)
}

/// One stored file: its record, hash and notarization.
#[utoipa::path(get, path = "/api/notary/v2/stored-files/{id}", tag = "notary",
    params(("id" = String, Path, description = "Stored file id")),
    responses((status = 200, description = "The stored file", body = Data<StoredFile>),
              (status = 404, description = "No such file here (2000)", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    let file = state
        .app
        .get_stored_file(&ctx, parse_path_id(TYPE, &id)?)
        .await?;
    Ok(Reply::ok(wire::stored_file(&file))?.with_version(file.version))
}

/// Removes a file's content; the record and its notarization stay.
#[utoipa::path(delete, path = "/api/notary/v2/stored-files/{id}", tag = "notary",
    params(("id" = String, Path, description = "Stored file id")),
    responses((status = 204, description = "Content removed"),
              (status = 404, description = "No such file here (2000)", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    state
        .app
        .delete_stored_file(&ctx, parse_path_id(TYPE, &id)?)
        .await?;
    Ok(Reply::no_content())
}

/// The stored bytes, after re-checking them against the notarized hash.
#[utoipa::path(get, path = "/api/notary/v2/stored-files/{id}/content", tag = "notary",
    params(("id" = String, Path, description = "Stored file id")),
    responses((status = 200, description = "The content", content_type = "application/octet-stream", body = Vec<u8>),
              (status = 409, description = "Only a hash, or the content was deleted (2012)", body = ErrorBody)))]
pub async fn content(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Response> {
    let (file, path) = state
        .app
        .stored_file_content(&ctx, parse_path_id(TYPE, &id)?)
        .await?;
    let reader = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Error::internal(format!("opening {}: {e}", path.display())))?;
    let mut response =
        HttpBody::from_stream(tokio_util::io::ReaderStream::new(reader)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(size) = file.size_bytes {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    let disposition = format!(
        "attachment; filename*=UTF-8''{}",
        form_urlencoded::byte_serialize(file.name.as_bytes()).collect::<String>()
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("sha-256={}", file.sha256)) {
        headers.insert("repr-digest", v);
    }
    Ok(response)
}

/// The file's certificate: its inclusion proof to the latest signed tree
/// head. JSON, XML, or a readable page with `Accept: text/html`.
#[utoipa::path(get, path = "/api/notary/v2/stored-files/{id}/certificate", tag = "notary",
    params(("id" = String, Path, description = "Stored file id")),
    responses((status = 200, description = "The certificate", body = Data<Certificate>),
              (status = 409, description = "Not notarized yet (2012)", body = ErrorBody)))]
pub async fn certificate(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    format: Option<axum::Extension<Format>>,
) -> HttpResult<Response> {
    let (file, cert) = state
        .app
        .certificate(&ctx, parse_path_id(TYPE, &id)?)
        .await?;
    let cert: Certificate = wire::same_shape(&cert)?;
    if format.is_some_and(|f| f.0 == Format::Html) {
        return Ok(
            crate::pages::notary::certificate(&wire::stored_file(&file), &cert).into_response(),
        );
    }
    Ok(Reply::ok(cert)?.into_response())
}

/// The public verification page: a form for a file or its SHA-256,
/// posted to `POST /api/notary/v2/verify`, which answers a page. Like the
/// other public routes it needs no credentials and refuses bad ones.
#[utoipa::path(get, path = "/api/notary/v2/verify", tag = "notary",
    responses((status = 200, description = "The page", content_type = "text/html", body = String)))]
pub async fn verify_page(_: MaybeAuth) -> Response {
    crate::pages::notary::verify_form().into_response()
}

/// The `file` or `sha256` part of a verification form (one of them).
async fn verify_form(
    app: &nephele_app::App,
    req: Request,
    state: &AppState,
) -> Result<String, Error> {
    let mut form = open_form(app, req, state).await?;
    let mut sha256 = None;
    while let Some(field) = next_part(&mut form).await? {
        let part = field.name().unwrap_or("").to_owned();
        if sha256.is_some() && matches!(part.as_str(), "file" | "sha256") {
            return Err(Error::invalid(
                &part,
                "must be sent alone: a file or its sha256",
            ));
        }
        sha256 = Some(match part.as_str() {
            "file" => app.hash_stream(field.map_err(|e| e.body_text())).await?,
            "sha256" => part_text(field).await?,
            other => {
                return Err(Error::invalid(
                    other,
                    "is not a part of a verification (file, sha256)",
                ))
            }
        });
    }
    sha256.ok_or_else(|| Error::invalid("file", "is required: a part named file or sha256"))
}

fn declared_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Is this content (raw body) or this hash (JSON `{"sha256"}`) notarized?
/// With credentials: among your organization's files, with their ids.
/// Without: anywhere in the log, telling only when (SPEC §7: proofs are
/// for anyone). With the certificate when it is. The public page's form
/// (`multipart/form-data`) gets a page back when a browser asks for one.
#[utoipa::path(post, path = "/api/notary/v2/verify", tag = "notary",
    params(OrgScope),
    request_body(content(
        (Vec<u8> = "application/octet-stream"),
        (VerifyRequest = "application/json"),
        (VerifyUpload = "multipart/form-data"),
    )),
    responses((status = 200, description = "The answer", body = Data<Verification>),
              (status = 413, description = "Larger than the notary's file limit (3000)", body = ErrorBody),
              (status = 429, description = "Without an account: too many from this address a minute (3005); see Retry-After", body = ErrorBody)))]
pub async fn verify(
    State(state): State<AppState>,
    MaybeAuth(ctx): MaybeAuth,
    Query(scope): Query<OrgScope>,
    format: Option<axum::Extension<Format>>,
    req: Request,
) -> HttpResult<Response> {
    let app = &state.app;
    if ctx.is_none() {
        app.admit_anonymous_verification(crate::middleware::client_address(&req))?;
    }
    let sha256 = match content_type(&req).as_str() {
        "application/json" | "application/xml" | "text/xml" => {
            let Body(r) = Body::<VerifyRequest>::from_request(req, &state).await?;
            r.sha256
                .ok_or_else(|| Error::invalid("sha256", "is required"))?
        }
        "multipart/form-data" => verify_form(app, req, &state).await?,
        "application/octet-stream" | "" => {
            app.check_upload_length(declared_length(&req), 0)?;
            app.hash_stream(
                req.into_body()
                    .into_data_stream()
                    .map_err(|e| e.to_string()),
            )
            .await?
        }
        _ => return Err(crate::extract::unsupported_media_type().into()),
    };
    let found = app
        .verify_notarized(ctx.as_ref(), scope.org_id.map(OrganizationId), sha256)
        .await?;
    let certificate = found
        .certificate
        .as_ref()
        .map(wire::same_shape)
        .transpose()?;
    let answer = Verification {
        notarized: certificate.is_some(),
        notarized_at: found.notarized_at,
        stored_file_ids: found.files.iter().map(|f| f.id.0).collect(),
        sha256: found.sha256,
        certificate,
    };
    if format.is_some_and(|f| f.0 == Format::Html) {
        return Ok(crate::pages::notary::verification(&answer).into_response());
    }
    Ok(Reply::ok(answer)?.into_response())
}

/// The keys tree heads are signed with: every one ever used. Public.
#[utoipa::path(get, path = "/api/notary/v2/keys", tag = "notary",
    responses((status = 200, description = "The notary's public keys", body = List<NotaryKey>)))]
pub async fn keys(State(state): State<AppState>, _: MaybeAuth) -> HttpResult<Reply> {
    let keys = state.app.notary_keys().await?;
    let keys: Vec<NotaryKey> = keys
        .iter()
        .map(wire::same_shape)
        .collect::<Result<_, _>>()?;
    Ok(Reply::list(
        "key",
        nephele_common::page::Page {
            items: keys,
            next: None,
        },
    )?)
}

/// The log's signed tree heads, oldest first, each with the proof that it
/// extends the one before. Public.
#[utoipa::path(get, path = "/api/notary/v2/tree-heads", tag = "notary",
    params(PlainList),
    responses((status = 200, description = "A page of tree heads", body = List<LoggedTreeHead>)))]
pub async fn tree_heads(
    State(state): State<AppState>,
    _: MaybeAuth,
    Query(_params): Query<PlainList>,
    Paging(page): Paging,
) -> HttpResult<Reply> {
    let page = state.app.tree_heads(&page).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for logged in &page.items {
        items.push(LoggedTreeHead {
            head: wire::same_shape(&logged.head)?,
            previous_size: logged.previous_size,
            consistency_proof: logged.consistency_proof.clone(),
        });
    }
    Ok(Reply::list(
        "treeHead",
        nephele_common::page::Page {
            items,
            next: page.next,
        },
    )?)
}
