//! The OpenAPI document: routes register their own entries (utoipa-axum);
//! this adds what every operation shares — the error responses of SPEC §3.

use nephele_api_types::ErrorBody;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, OpenApi, Ref, ResponseBuilder};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Nephele",
        description = "Self-hosted, multi-tenant cloud management: organizations, users, roles, \
                       credentials and compute instances, with long-running operations as durable tasks.\n\n\
                       Every `/api/v2` and `/occm` response is JSON by default and XML with \
                       `Accept: application/xml` or a `.xml` path suffix. Errors use the `errors` envelope."
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security),
    tags(
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "setup", description = "First-run setup"),
        (name = "organizations", description = "The tree of organizations (tenants)"),
        (name = "me", description = "The caller"),
        (name = "users", description = "Users of an organization"),
        (name = "roles", description = "Built-in and custom roles"),
        (name = "api-keys", description = "The caller's API keys"),
        (name = "audit", description = "The audit log"),
        (name = "datacenters", description = "Data centers"),
        (name = "images", description = "Images instances are made of"),
        (name = "notary", description = "Stored files and offline-verifiable certificates"),
    )
)]
pub struct ApiDoc;

/// The error statuses any operation may answer with, beyond its own.
const COMMON_ERRORS: &[(&str, &str)] = &[
    ("400", "Malformed request (3000)"),
    ("404", "No such path or resource (2000)"),
    ("405", "Method not allowed (2001)"),
    ("406", "Not acceptable (3003)"),
    ("413", "Request body too large (3000)"),
    ("415", "Unsupported media type (3002)"),
    ("420", "Nephele has not been set up (1100)"),
    ("422", "Invalid or missing parameters (3001)"),
    ("500", "Internal error (5000)"),
    ("503", "Unavailable (5003)"),
];

const OPERATIONAL_ERRORS: &[(&str, &str)] = &[
    ("405", "Method not allowed (2001)"),
    ("500", "Internal error (5000)"),
    ("503", "Unavailable (5003)"),
];

/// Adds the shared error responses to every operation that lacks them.
pub fn finish(mut api: OpenApi) -> OpenApi {
    for (path, item) in api.paths.paths.iter_mut() {
        let errors = if path.starts_with("/api/") && path != "/api/openapi.json"
            || path.starts_with("/occm/")
        {
            COMMON_ERRORS
        } else {
            OPERATIONAL_ERRORS
        };
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        let authenticated = path.starts_with("/api/v2/");
        for op in ops.into_iter().flatten() {
            if authenticated {
                op.security.get_or_insert_with(|| {
                    ["basic", "bearer", "apiKey"]
                        .into_iter()
                        .map(|s| SecurityRequirement::new(s, Vec::<String>::new()))
                        .collect()
                });
                for (status, description) in AUTH_ERRORS {
                    add_error(op, status, description);
                }
            }
            for (status, description) in errors {
                add_error(op, status, description);
            }
        }
    }
    api
}

fn add_error(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                )
                .build()
                .into()
        });
}

const AUTH_ERRORS: &[(&str, &str)] = &[
    ("401", "Authentication required or invalid (1000, 1001)"),
    ("403", "Not permitted for this role (1003)"),
];

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, api: &mut OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("MC-Api-Key"))),
        );
    }
}
