//! The OpenAPI document: routes register their own entries (utoipa-axum);
//! this adds what every operation shares — the error responses of SPEC §3.

use crate::negotiate;
use nephele_api_types::ErrorBody;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayItems, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, ResponseBuilder};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Nephele",
        description = "Self-hosted, multi-tenant cloud management: organizations, users, roles, \
                       credentials and compute instances, with long-running operations as durable tasks.\n\n\
                       Every `/api/v2` and `/occm` response is JSON by default and XML with \
                       `Accept: application/xml` or a `.xml` path suffix. Errors use the `errors` envelope."
    ),
    servers((url = "/", description = "The server this document was read from")),
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

/// Each operation's id, by method and path: unique and saying what it does
/// (a handler's own name — `list`, `get` — is neither across modules).
/// Generated clients name their methods after these.
const OPERATION_IDS: &[(&str, &str, &str)] = &[
    (
        "get",
        "/.well-known/openid-configuration",
        "getOpenIdConfiguration",
    ),
    ("get", "/api/1/accounts", "getAccount"),
    ("get", "/api/2/clients", "listClients"),
    ("post", "/api/2/clients", "createClient"),
    ("get", "/api/2/clients/{client_id}", "getClient"),
    ("put", "/api/2/clients/{client_id}", "updateClient"),
    ("delete", "/api/2/clients/{client_id}", "deleteClient"),
    (
        "post",
        "/api/2/clients/{client_id}/secret",
        "resetClientSecret",
    ),
    ("post", "/api/2/idp/introspect", "introspectToken"),
    ("get", "/api/2/idp/keys", "getJwks"),
    ("post", "/api/2/idp/keys/rotate", "rotateSigningKeys"),
    ("post", "/api/2/idp/revoke", "revokeToken"),
    ("post", "/api/2/idp/token", "requestToken"),
    ("get", "/api/2/idp/authorize", "authorize"),
    ("post", "/api/2/idp/authorize", "submitSignInForm"),
    ("get", "/api/2/idp/activate", "getActivationPage"),
    ("post", "/api/2/idp/activate", "activateAccount"),
    ("get", "/api/2/idp/reset", "getPasswordResetPage"),
    ("post", "/api/2/idp/reset", "resetPassword"),
    ("post", "/api/2/idp/password-reset", "requestPasswordReset"),
    ("get", "/api/2/idp/forgot-password", "getForgotPasswordPage"),
    ("post", "/api/2/idp/forgot-password", "forgotPassword"),
    ("get", "/api/2/idp/logout", "logout"),
    ("post", "/api/2/idp/logout", "logoutByForm"),
    ("get", "/api/2/idp/userinfo", "getUserInfo"),
    ("post", "/api/2/idp/userinfo", "postUserInfo"),
    ("get", "/api/notary/v2/keys", "listNotaryKeys"),
    ("get", "/api/notary/v2/stored-files", "listStoredFiles"),
    ("post", "/api/notary/v2/stored-files", "createStoredFile"),
    ("get", "/api/notary/v2/stored-files/{id}", "getStoredFile"),
    (
        "delete",
        "/api/notary/v2/stored-files/{id}",
        "deleteStoredFileContent",
    ),
    (
        "get",
        "/api/notary/v2/stored-files/{id}/certificate",
        "getStoredFileCertificate",
    ),
    (
        "get",
        "/api/notary/v2/stored-files/{id}/content",
        "getStoredFileContent",
    ),
    ("get", "/api/notary/v2/tree-heads", "listTreeHeads"),
    ("get", "/api/notary/v2/verify", "getVerificationPage"),
    ("post", "/api/notary/v2/verify", "verifyNotarization"),
    ("get", "/api/openapi.json", "getOpenApiDocument"),
    ("get", "/api/v2/api-keys", "listApiKeys"),
    ("post", "/api/v2/api-keys", "createApiKey"),
    ("delete", "/api/v2/api-keys/{id}", "deleteApiKey"),
    (
        "post",
        "/api/v2/api-keys/{id}/regenerate",
        "regenerateApiKey",
    ),
    ("get", "/api/v2/audit-events", "listAuditEvents"),
    ("get", "/api/v2/datacenters", "listDatacenters"),
    ("post", "/api/v2/datacenters", "createDatacenter"),
    ("delete", "/api/v2/datacenters/{id}", "deleteDatacenter"),
    ("get", "/api/v2/images", "listImages"),
    ("get", "/api/v2/instances", "listInstances"),
    ("post", "/api/v2/instances", "createInstance"),
    ("get", "/api/v2/instances/{id}", "getInstance"),
    ("delete", "/api/v2/instances/{id}", "deleteInstance"),
    ("patch", "/api/v2/instances/{id}", "updateInstance"),
    ("post", "/api/v2/instances/{id}/reboot", "rebootInstance"),
    ("post", "/api/v2/instances/{id}/start", "startInstance"),
    ("post", "/api/v2/instances/{id}/stop", "stopInstance"),
    ("get", "/api/v2/me", "getMe"),
    ("get", "/api/v2/me/sessions", "listMySignInSessions"),
    ("delete", "/api/v2/me/sessions", "endMySignInSessions"),
    ("delete", "/api/v2/me/sessions/{id}", "endMySignInSession"),
    ("get", "/api/v2/me/consents", "listMyConsents"),
    (
        "delete",
        "/api/v2/me/consents/{client_id}",
        "revokeMyConsent",
    ),
    ("post", "/api/v2/me/mfa/totp", "enrolTotp"),
    ("delete", "/api/v2/me/mfa/totp", "removeTotp"),
    ("post", "/api/v2/me/mfa/totp/confirm", "confirmTotp"),
    ("get", "/api/v2/organizations", "listOrganizations"),
    ("post", "/api/v2/organizations", "createOrganization"),
    ("get", "/api/v2/organizations/{id}", "getOrganization"),
    ("put", "/api/v2/organizations/{id}", "replaceOrganization"),
    ("delete", "/api/v2/organizations/{id}", "deleteOrganization"),
    ("patch", "/api/v2/organizations/{id}", "updateOrganization"),
    (
        "get",
        "/api/v2/organizations/{id}/quota",
        "getOrganizationQuota",
    ),
    (
        "put",
        "/api/v2/organizations/{id}/quota",
        "setOrganizationQuota",
    ),
    ("get", "/api/v2/roles", "listRoles"),
    ("post", "/api/v2/roles", "createRole"),
    ("get", "/api/v2/roles/{id}", "getRole"),
    ("put", "/api/v2/roles/{id}", "replaceRole"),
    ("delete", "/api/v2/roles/{id}", "deleteRole"),
    ("get", "/api/v2/tasks", "listTasks"),
    ("get", "/api/v2/tasks/{id}", "getTask"),
    ("delete", "/api/v2/tasks/{id}", "cancelTask"),
    ("get", "/api/v2/users", "listUsers"),
    ("post", "/api/v2/users", "createUser"),
    ("get", "/api/v2/users/{id}", "getUser"),
    ("put", "/api/v2/users/{id}", "replaceUser"),
    ("delete", "/api/v2/users/{id}", "deleteUser"),
    ("patch", "/api/v2/users/{id}", "updateUser"),
    ("post", "/api/v2/users/{id}/password", "setUserPassword"),
    (
        "post",
        "/api/v2/users/{id}/sessions/revoke",
        "revokeUserSessions",
    ),
    ("get", "/docs", "getReferencePage"),
    ("get", "/healthz", "getHealth"),
    ("get", "/metrics", "getMetrics"),
    ("post", "/occm/setup/init", "initializeSetup"),
    ("get", "/occm/setup/status", "getSetupStatus"),
    ("get", "/readyz", "getReadiness"),
];

fn operation_id(method: &str, path: &str) -> Option<&'static str> {
    OPERATION_IDS
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, id)| *id)
}

/// Adds the shared error responses to every operation that lacks them,
/// names every operation (see [`OPERATION_IDS`]) and says which take no
/// credentials at all.
pub fn finish(mut api: OpenApi) -> OpenApi {
    refer_to_components(&mut api);
    split_merge_patches(&mut api);
    bodies_say_what_is_optional(&mut api);
    for (path, item) in api.paths.paths.iter_mut() {
        let errors = if path.starts_with("/api/") && path != "/api/openapi.json"
            || path.starts_with("/occm/")
        {
            COMMON_ERRORS
        } else {
            OPERATIONAL_ERRORS
        };
        let security = security_of(path);
        for (method, op) in [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ] {
            let Some(op) = op.as_mut() else {
                continue;
            };
            if let Some(id) = operation_id(method, path) {
                op.operation_id = Some(id.to_owned());
            }
            match security {
                // Declared as none at all, so that it is not read as forgotten.
                None => {
                    op.security.get_or_insert_with(Vec::new);
                }
                Some(schemes) => {
                    op.security.get_or_insert_with(|| {
                        schemes
                            .iter()
                            .map(|s| match *s {
                                // Anyone: no credentials is one of the choices.
                                "" => SecurityRequirement::default(),
                                s => SecurityRequirement::new(s, Vec::<String>::new()),
                            })
                            .collect()
                    });
                    for (status, description) in AUTH_ERRORS {
                        add_error(op, status, description);
                    }
                }
            }
            for (status, description) in errors {
                add_error(op, status, description);
            }
            declare_media(path, op);
            path_ids_are_uuids(op);
        }
    }
    api
}

/// Says what each answer is served as, as negotiation serves it: bytes
/// are one binary string (utoipa writes `Vec<u8>` as an array of
/// numbers), every JSON answer outside the operational paths comes as
/// XML too, and a certificate as a page.
fn declare_media(path: &str, op: &mut Operation) {
    let binary = || -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    };
    if let Some(body) = op.request_body.as_mut() {
        if let Some(bytes) = body.content.get_mut(OCTETS) {
            bytes.schema = Some(binary());
            bytes.example = Some(serde_json::json!("minutes of the meeting"));
        }
    }
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if let Some(bytes) = response.content.get_mut(OCTETS) {
            bytes.schema = Some(binary());
        }
        if negotiate::serves_xml(path) {
            if let Some(json) = response.content.get("application/json").cloned() {
                response
                    .content
                    .entry("application/xml".to_owned())
                    .or_insert(json);
            }
        }
        if negotiate::offers_html(path) && status == "200" {
            response.content.insert(
                "text/html".to_owned(),
                Content::new(Some(RefOr::T(Schema::Object(
                    ObjectBuilder::new().schema_type(Type::String).build(),
                )))),
            );
        }
    }
}

const OCTETS: &str = "application/octet-stream";
const FORM: &str = "application/x-www-form-urlencoded";

/// The server reads an empty JSON body as `{}` (and an empty form as one
/// without parameters), so a body whose schema requires nothing may be
/// left out. The OAuth2 forms ignore parameters
/// they do not know (RFC 6749 §3.1), each a single string.
fn bodies_say_what_is_optional(api: &mut OpenApi) {
    let Some(components) = api.components.as_mut() else {
        return;
    };
    for form in ["TokenForm", "TokenHintForm", "SignInForm"] {
        if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut(form) {
            o.additional_properties = Some(Box::new(AdditionalProperties::RefOr(RefOr::T(
                Schema::Object(ObjectBuilder::new().schema_type(Type::String).build()),
            ))));
        }
    }
    // The verification form holds one of its two parts (utoipa keeps a
    // struct's maxProperties but drops its minProperties).
    if let Some(RefOr::T(Schema::Object(o))) = components.schemas.get_mut("VerifyUpload") {
        o.min_properties = Some(1);
    }
    let requires_nothing = |content: &Content| match &content.schema {
        Some(RefOr::Ref(r)) => matches!(
            components.schemas.get(r.ref_location.trim_start_matches("#/components/schemas/")),
            Some(RefOr::T(Schema::Object(o))) if o.required.is_empty()
        ),
        _ => false,
    };
    for item in api.paths.paths.values_mut() {
        for op in [&mut item.post, &mut item.put, &mut item.patch] {
            let Some(body) = op.as_mut().and_then(|op| op.request_body.as_mut()) else {
                continue;
            };
            let read_as_empty = body
                .content
                .keys()
                .all(|media| media.ends_with("json") || media == FORM);
            if read_as_empty && body.content.values().all(requires_nothing) {
                body.required = Some(utoipa::openapi::Required::False);
            }
        }
    }
}

/// Every resource id in a path is a UUID (one that is not is a 404).
fn path_ids_are_uuids(op: &mut Operation) {
    for p in op.parameters.iter_mut().flatten() {
        if p.parameter_in == ParameterIn::Path && matches!(p.name.as_str(), "id" | "client_id") {
            p.schema = Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .into(),
            );
        }
    }
}

/// utoipa copies a generic's argument into the envelope (`Data_Instance`'s
/// `data` is a whole `Instance`); point each copy at the component instead,
/// so that every body names its type and generated clients have one class
/// per resource.
fn refer_to_components(api: &mut OpenApi) {
    let Some(components) = api.components.as_mut() else {
        return;
    };
    let names: Vec<String> = components.schemas.keys().cloned().collect();
    for (name, envelope) in components.schemas.iter_mut() {
        let Some(arg) = name
            .strip_prefix("Data_")
            .or_else(|| name.strip_prefix("List_"))
            .filter(|arg| names.iter().any(|n| n == arg))
        else {
            continue;
        };
        let RefOr::T(Schema::Object(envelope)) = envelope else {
            continue;
        };
        let Some(data) = envelope.properties.get_mut("data") else {
            continue;
        };
        let slot = match data {
            RefOr::T(Schema::Array(list)) => match &mut list.items {
                ArrayItems::RefOrSchema(item) => item.as_mut(),
                ArrayItems::False => continue,
            },
            one => one,
        };
        *slot = RefOr::Ref(Ref::from_schema_name(arg));
    }
}

/// PUT and PATCH share a request type (`OrganizationUpdate`), whose schema
/// lists what PUT requires; a merge patch (RFC 7396) requires nothing, so
/// each PATCH gets a copy without `required` (`OrganizationPatch`).
fn split_merge_patches(api: &mut OpenApi) {
    let Some(components) = api.components.as_mut() else {
        return;
    };
    for item in api.paths.paths.values_mut() {
        let Some(body) = item.patch.as_mut().and_then(|op| op.request_body.as_mut()) else {
            continue;
        };
        for content in body.content.values_mut() {
            let Some(RefOr::Ref(reference)) = content.schema.as_mut() else {
                continue;
            };
            let name = reference
                .ref_location
                .trim_start_matches("#/components/schemas/")
                .to_owned();
            let Some(RefOr::T(Schema::Object(shared))) = components.schemas.get(&name) else {
                continue;
            };
            if shared.required.is_empty() {
                continue;
            }
            let mut patch = shared.clone();
            patch.required.clear();
            let patch_name = format!("{}Patch", name.trim_end_matches("Update"));
            components
                .schemas
                .insert(patch_name.clone(), RefOr::T(Schema::Object(patch)));
            *reference = Ref::from_schema_name(patch_name);
        }
    }
}

/// Where the oauth2 scheme's flows get their tokens (relative to the server).
const TOKEN_URL: &str = "/api/2/idp/token";

/// The schemes an operation on `path` takes, `""` standing for none at all;
/// `None` for the operations that authenticate in their own way (the
/// OAuth2 endpoints' client authentication) or not at all.
fn security_of(path: &str) -> Option<&'static [&'static str]> {
    const ANY: &[&str] = &["basic", "bearer", "apiKey", "oauth2"];
    const ANY_OR_NONE: &[&str] = &["basic", "bearer", "apiKey", "oauth2", ""];
    const BEARER: &[&str] = &["bearer", "oauth2"];
    match path {
        "/api/notary/v2/verify" | "/api/notary/v2/keys" | "/api/notary/v2/tree-heads" => {
            Some(ANY_OR_NONE)
        }
        "/api/2/idp/userinfo" => Some(BEARER),
        "/api/2/idp/keys/rotate" => Some(ANY),
        p if p.starts_with("/api/v2/")
            || p.starts_with("/api/notary/")
            || p.starts_with("/api/2/clients") =>
        {
            Some(ANY)
        }
        _ => None,
    }
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
    (
        "429",
        "Too many failed sign-ins for this account or from this address (1004)",
    ),
];

/// The error responses `finish` adds to operations, each once, by status:
/// the reference page shows them in one table instead of in every
/// operation's.
pub(crate) fn shared_errors() -> Vec<(&'static str, &'static str)> {
    let mut all: Vec<(&str, &str)> = Vec::new();
    for entry in COMMON_ERRORS
        .iter()
        .chain(AUTH_ERRORS)
        .chain(OPERATIONAL_ERRORS)
    {
        if !all.contains(entry) {
            all.push(*entry);
        }
    }
    all.sort_unstable();
    all
}

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, api: &mut OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2,
            Password, Scopes, SecurityScheme,
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
        let scopes = || {
            Scopes::from_iter([
                ("openid", "an id token (the password grant always has one)"),
                ("profile", "the login in the id token"),
                ("email", "the e-mail address in the id token"),
                ("offline_access", "a refresh token"),
            ])
        };
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::new([
                Flow::Password(Password::new(TOKEN_URL, scopes())),
                Flow::ClientCredentials(ClientCredentials::new(TOKEN_URL, scopes())),
            ])),
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_has_its_own_descriptive_id() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(
                    super::operation_id(method, path) == Some(id),
                    "{method} {path}: no entry in OPERATION_IDS (it has {id:?})"
                );
                assert!(seen.insert(id.to_owned()), "{id} twice");
            }
        }
        assert_eq!(
            seen.len(),
            super::OPERATION_IDS.len(),
            "stale entries in OPERATION_IDS"
        );
    }

    #[test]
    fn what_the_server_defaults_is_not_required() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        let schemas = &doc["components"]["schemas"];
        // An instance needs only its name and image; a merge patch nothing.
        assert_eq!(
            schemas["InstanceCreate"]["required"],
            serde_json::json!(["name", "image"])
        );
        assert!(schemas["InstanceUpdate"].get("required").is_none());
        assert_eq!(doc["servers"][0]["url"], "/");
    }

    #[test]
    fn every_operation_says_what_it_does_and_what_it_takes() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let summary = op["summary"].as_str().unwrap_or_default();
                assert!(!summary.is_empty(), "{method} {path}: no summary");
                assert!(op["security"].is_array(), "{method} {path}: no security");
            }
        }
    }

    #[test]
    fn every_component_is_used_and_bodies_name_their_types() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        let text = doc.to_string();
        for name in doc["components"]["schemas"].as_object().unwrap().keys() {
            let reference = format!("\"#/components/schemas/{name}\"");
            assert!(text.contains(&reference), "{name} is never used");
        }
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["Data_Instance"]["properties"]["data"]["$ref"],
            "#/components/schemas/Instance"
        );
        assert_eq!(
            schemas["List_Instance"]["properties"]["data"]["items"]["$ref"],
            "#/components/schemas/Instance"
        );
    }

    #[test]
    fn every_request_body_has_an_example() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        let mut missing = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let Some(content) = op["requestBody"]["content"].as_object() else {
                    continue;
                };
                for (media, body) in content {
                    let schema = match body["schema"]["$ref"].as_str() {
                        Some(r) => {
                            &doc["components"]["schemas"]
                                [r.trim_start_matches("#/components/schemas/")]
                        }
                        None => &body["schema"],
                    };
                    if body.get("example").is_none() && schema.get("examples").is_none() {
                        missing.push(format!("{method} {path} {media}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "no example: {missing:#?}");
    }

    #[test]
    fn the_documented_states_are_the_servers() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        let listed = |name: &str| doc["components"]["schemas"][name]["enum"].clone();
        let states: Vec<&str> = nephele_app::instances::InstanceState::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(listed("InstanceState"), serde_json::json!(states));
        // A running task shows as PENDING.
        assert_eq!(
            listed("TaskStatus"),
            serde_json::json!(["PENDING", "SUCCESS", "FAILED"])
        );
        for status in ["PENDING", "SUCCESS", "FAILED"] {
            assert!(
                nephele_app::tasks::TaskStatus::parse(status).is_some(),
                "{status}"
            );
        }
    }

    #[test]
    fn a_long_poll_is_bounded_as_the_server_bounds_it() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        let params = doc["paths"]["/api/v2/tasks/{id}"]["get"]["parameters"]
            .as_array()
            .unwrap();
        let wait = params.iter().find(|p| p["name"] == "wait").unwrap();
        assert_eq!(
            wait["schema"]["maximum"],
            nephele_app::tasks::MAX_WAIT.as_secs()
        );
    }

    #[test]
    fn a_merge_patch_requires_nothing_and_a_put_what_it_replaces() {
        let doc: serde_json::Value = serde_json::from_str(&crate::openapi_json()).unwrap();
        let body = |method: &str, path: &str, media: &str| {
            let reference = doc["paths"][path][method]["requestBody"]["content"][media]["schema"]
                ["$ref"]
                .as_str()
                .unwrap()
                .trim_start_matches("#/components/schemas/")
                .to_owned();
            doc["components"]["schemas"][reference].clone()
        };
        for path in ["/api/v2/organizations/{id}", "/api/v2/users/{id}"] {
            let patch = body("patch", path, "application/merge-patch+json");
            assert!(patch.get("required").is_none(), "PATCH {path}");
        }
        for (path, item) in doc["paths"].as_object().unwrap() {
            if let Some(patch) = item.get("patch") {
                assert_eq!(patch["requestBody"]["required"], false, "PATCH {path}");
            }
        }
        let put = body("put", "/api/v2/users/{id}", "application/json");
        assert_eq!(
            put["required"],
            serde_json::json!(["login", "email", "roles"])
        );
        let put = body("put", "/api/v2/organizations/{id}", "application/json");
        assert_eq!(put["required"], serde_json::json!(["name"]));
    }
}
