//! Commands on the synchronous resources: organizations, users, roles, API
//! keys, API clients, the audit log and data centers.

use clap::{Subcommand, ValueEnum};
use nephele_api_types as api;
use nephele_client::{Method, Request};
use nephele_common::Secret;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::output::{
    Kind, Output, API_KEY, AUDIT_EVENT, CLIENT, DATACENTER, IMAGE, OBJECT, ORGANIZATION, ROLE, USER,
};
use super::session::Session;
use super::{read_password, Exit, Failure, Global, Paging};

/// Prints one resource from a GET.
pub(super) async fn show(
    session: &mut Session,
    path: String,
    kind: &Kind,
    out: Output,
) -> Result<(), Failure> {
    let value = session.data(Request::get(path)).await?;
    out.item(&value, kind)
}

async fn show_list(
    session: &mut Session,
    request: Request,
    paging: &Paging,
    kind: &Kind,
    out: Output,
) -> Result<(), Failure> {
    let items = session.list(request, paging).await?;
    out.list(&items, kind)
}

/// Sends a write and prints the resource it answers with.
pub(super) async fn write(
    session: &mut Session,
    method: Method,
    path: String,
    body: &impl serde::Serialize,
    kind: &Kind,
    out: Output,
) -> Result<(), Failure> {
    let value = session.data(Request::new(method, path).body(body)).await?;
    out.item(&value, kind)
}

async fn delete(
    session: &mut Session,
    path: String,
    what: &str,
    out: Output,
) -> Result<(), Failure> {
    session.send(Request::new(Method::DELETE, &path)).await?;
    if !out.quiet {
        eprintln!(
            "Deleted {what} {}",
            path.rsplit('/').next().unwrap_or_default()
        );
    }
    Ok(())
}

/// A JSON object of the fields that were given.
pub(super) fn fields<const N: usize>(pairs: [(&str, Option<Value>); N]) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect::<Map<_, _>>(),
    )
}

fn nothing_to_change(body: &Value) -> Result<(), Failure> {
    if body.as_object().is_some_and(Map::is_empty) {
        return Err(Failure::new(
            Exit::Usage,
            "nothing to change: give at least one field",
        ));
    }
    Ok(())
}

// ---- organizations ----

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Your organization and every one below it
    #[command(after_help = "Examples:\n  nephele org list\n  nephele org list --parent 0192…")]
    List {
        /// Only the children of this organization
        #[arg(long)]
        parent: Option<Uuid>,
        #[command(flatten)]
        paging: Paging,
    },
    /// One organization
    #[command(after_help = "Examples:\n  nephele org get 0192…")]
    Get {
        /// The organization's id
        id: Uuid,
    },
    /// A sub-organization (of your own, or of --parent)
    #[command(
        after_help = "Examples:\n  nephele org create customer-a\n  nephele org create team-b --parent 0192…"
    )]
    Create {
        /// The new organization's name
        name: String,
        /// The parent organization [default: yours]
        #[arg(long)]
        parent: Option<Uuid>,
    },
    /// Rename an organization
    #[command(after_help = "Examples:\n  nephele org update 0192… --name customer-b")]
    Update {
        /// The organization's id
        id: Uuid,
        /// A new name
        #[arg(long)]
        name: Option<String>,
    },
    /// Suspend an organization (by an admin above it): its principals and
    /// those below it are refused, its instances cannot be started
    #[command(after_help = "Examples:\n  nephele org suspend 0192…")]
    Suspend {
        /// The organization's id
        id: Uuid,
    },
    /// Reactivate a suspended organization (by an admin above it)
    #[command(after_help = "Examples:\n  nephele org reactivate 0192…")]
    Reactivate {
        /// The organization's id
        id: Uuid,
    },
    /// Delete an organization that holds no instances or sub-organizations
    #[command(after_help = "Examples:\n  nephele org delete 0192…")]
    Delete {
        /// The organization's id
        id: Uuid,
    },
    /// An organization's quota and usage
    #[command(after_help = "Examples:\n  nephele org quota 0192…")]
    Quota {
        /// The organization's id
        id: Uuid,
    },
    /// Set an organization's quota (by an admin of its parent)
    #[command(
        after_help = "Examples:\n  nephele org set-quota 0192… --instances 10 --vcpus 20 --memory-mib 40960"
    )]
    SetQuota {
        /// The organization's id
        id: Uuid,
        /// Instances at most in its subtree [default: no limit of its own]
        #[arg(long)]
        instances: Option<i64>,
        /// vCPUs at most in its subtree [default: no limit of its own]
        #[arg(long)]
        vcpus: Option<i64>,
        /// Memory at most in its subtree, in MiB [default: no limit of its own]
        #[arg(long)]
        memory_mib: Option<i64>,
    },
}

pub async fn org(global: &Global, command: OrgCommand, out: Output) -> Result<(), Failure> {
    let mut s = Session::open(global).await?;
    let base = "/api/v2/organizations";
    match command {
        OrgCommand::List { parent, paging } => {
            let request = Request::get(base).query("parentId", parent);
            show_list(&mut s, request, &paging, &ORGANIZATION, out).await
        }
        OrgCommand::Get { id } => show(&mut s, format!("{base}/{id}"), &ORGANIZATION, out).await,
        OrgCommand::Create { name, parent } => {
            let body = api::OrganizationCreate {
                name: Some(name),
                parent_id: parent,
            };
            write(&mut s, Method::POST, base.into(), &body, &ORGANIZATION, out).await
        }
        OrgCommand::Update { id, name } => {
            let body = fields([("name", name.map(Value::String))]);
            nothing_to_change(&body)?;
            write(
                &mut s,
                Method::PATCH,
                format!("{base}/{id}"),
                &body,
                &ORGANIZATION,
                out,
            )
            .await
        }
        OrgCommand::Suspend { id } | OrgCommand::Reactivate { id } => {
            let status = match command {
                OrgCommand::Suspend { .. } => "suspended",
                _ => "active",
            };
            let body = json!({ "status": status });
            let path = format!("{base}/{id}");
            write(&mut s, Method::PATCH, path, &body, &ORGANIZATION, out).await
        }
        OrgCommand::Delete { id } => {
            delete(&mut s, format!("{base}/{id}"), "organization", out).await
        }
        OrgCommand::Quota { id } => show(&mut s, format!("{base}/{id}/quota"), &OBJECT, out).await,
        OrgCommand::SetQuota {
            id,
            instances,
            vcpus,
            memory_mib,
        } => {
            let body = json!({"instances": instances, "vcpus": vcpus, "memoryMiB": memory_mib});
            write(
                &mut s,
                Method::PUT,
                format!("{base}/{id}/quota"),
                &body,
                &OBJECT,
                out,
            )
            .await
        }
    }
}

// ---- users ----

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Users of the organization acted in
    #[command(
        after_help = "Examples:\n  nephele user list\n  nephele user list --org 0192… -o yaml"
    )]
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// One user
    #[command(after_help = "Examples:\n  nephele user get 0192…")]
    Get {
        /// The user's id
        id: Uuid,
    },
    /// A new user; the password is asked for (or read with --password-stdin),
    /// or with --invite the user sets it through a one-time link
    #[command(
        after_help = "Examples:\n  nephele user create bob --email bob@acme.test --role operator\n  echo \"$PW\" | nephele user create ci --email ci@acme.test --role viewer --password-stdin\n  nephele user create carol --email carol@acme.test --role viewer --invite"
    )]
    Create {
        /// The login: letters, digits and . _ - @
        login: String,
        /// The e-mail address
        #[arg(long)]
        email: String,
        /// A role name (built-in or the organization's own) or id; repeatable
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Read the password from stdin instead of asking for it
        #[arg(long, conflicts_with = "invite")]
        password_stdin: bool,
        /// No password: the user is invited and sets one through a link
        /// (72 h) sent by mail, or printed here when the server sends none
        #[arg(long)]
        invite: bool,
    },
    /// Change a user's login, email or roles
    #[command(
        after_help = "Examples:\n  nephele user update 0192… --email new@acme.test\n  nephele user update 0192… --role admin --role operator"
    )]
    Update {
        /// The user's id
        id: Uuid,
        /// A new login
        #[arg(long)]
        login: Option<String>,
        /// A new e-mail address
        #[arg(long)]
        email: Option<String>,
        /// Replaces the user's roles; repeatable
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Disable a user: refused on every scheme, its sessions end
    #[command(after_help = "Examples:\n  nephele user disable 0192…")]
    Disable {
        /// The user's id
        id: Uuid,
    },
    /// Enable a disabled user again
    #[command(after_help = "Examples:\n  nephele user enable 0192…")]
    Enable {
        /// The user's id
        id: Uuid,
    },
    /// Delete a user
    #[command(after_help = "Examples:\n  nephele user delete 0192…")]
    Delete {
        /// The user's id
        id: Uuid,
    },
    /// Set a user's password (your own needs NEPHELE_CURRENT_PASSWORD too)
    #[command(
        after_help = "Examples:\n  nephele user set-password 0192…\n  echo \"$PW\" | nephele user set-password 0192… --password-stdin"
    )]
    SetPassword {
        /// The user's id
        id: Uuid,
        /// Read the password from stdin instead of asking for it
        #[arg(long)]
        password_stdin: bool,
    },
    /// End every session of a user: its refresh tokens die and its access
    /// tokens are refused
    #[command(after_help = "Examples:\n  nephele user revoke-sessions 0192…")]
    RevokeSessions {
        /// The user's id
        id: Uuid,
    },
}

pub async fn user(global: &Global, command: UserCommand, out: Output) -> Result<(), Failure> {
    let mut s = Session::open(global).await?;
    let base = "/api/v2/users";
    match command {
        UserCommand::List { paging } => {
            show_list(&mut s, Request::get(base), &paging, &USER, out).await
        }
        UserCommand::Get { id } => show(&mut s, format!("{base}/{id}"), &USER, out).await,
        UserCommand::Create {
            login,
            email,
            roles,
            password_stdin,
            invite,
        } => {
            let password = if invite {
                None
            } else {
                let password = read_password(password_stdin, &format!("Password for {login}: "))?;
                Some(Secret::new(password))
            };
            let body = api::UserCreate {
                login: Some(login),
                email: Some(email),
                password,
                roles: Some(roles),
                datacenter_id: None,
            };
            let value = s.data(Request::new(Method::POST, base).body(&body)).await?;
            out.item(&value, &USER)?;
            if invite && !out.quiet {
                match value.get("activationUrl").and_then(Value::as_str) {
                    Some(_) => eprintln!(
                        "The server sends no mail: give the user its activationUrl (it works once, for 72 hours)"
                    ),
                    None => eprintln!("Invited: a link to set the password is on its way by mail"),
                }
            }
            Ok(())
        }
        UserCommand::Update {
            id,
            login,
            email,
            roles,
        } => {
            let body = fields([
                ("login", login.map(Value::String)),
                ("email", email.map(Value::String)),
                ("roles", (!roles.is_empty()).then(|| json!(roles))),
            ]);
            nothing_to_change(&body)?;
            write(
                &mut s,
                Method::PATCH,
                format!("{base}/{id}"),
                &body,
                &USER,
                out,
            )
            .await
        }
        UserCommand::Disable { id } | UserCommand::Enable { id } => {
            let status = match command {
                UserCommand::Disable { .. } => "disabled",
                _ => "enabled",
            };
            let body = json!({ "status": status });
            let path = format!("{base}/{id}");
            write(&mut s, Method::PATCH, path, &body, &USER, out).await
        }
        UserCommand::Delete { id } => delete(&mut s, format!("{base}/{id}"), "user", out).await,
        UserCommand::SetPassword { id, password_stdin } => {
            let password = read_password(password_stdin, "New password: ")?;
            let current = std::env::var("NEPHELE_CURRENT_PASSWORD").ok();
            let body = fields([
                ("password", Some(json!(password))),
                ("currentPassword", current.map(Value::String)),
            ]);
            s.send(Request::post(format!("{base}/{id}/password"), body))
                .await?;
            if !out.quiet {
                eprintln!("Password of user {id} changed; its sessions ended");
            }
            Ok(())
        }
        UserCommand::RevokeSessions { id } => {
            s.send(Request::new(
                Method::POST,
                format!("{base}/{id}/sessions/revoke"),
            ))
            .await?;
            if !out.quiet {
                eprintln!("Sessions of user {id} ended");
            }
            Ok(())
        }
    }
}

// ---- roles ----

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Built-in roles and the organization's own
    #[command(after_help = "Examples:\n  nephele role list\n  nephele role list -o xml")]
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// One role
    #[command(after_help = "Examples:\n  nephele role get 0192…")]
    Get {
        /// The role's id
        id: Uuid,
    },
    /// A role of the organization acted in
    #[command(
        after_help = "Examples:\n  nephele role create auditor --permission audit:read --permission tasks:read"
    )]
    Create {
        /// The role's name
        name: String,
        /// A `resource:action` permission; repeatable
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
    },
    /// Rename a role or replace its permissions
    #[command(after_help = "Examples:\n  nephele role update 0192… --permission instances:read")]
    Update {
        /// The role's id
        id: Uuid,
        /// A new name
        #[arg(long)]
        name: Option<String>,
        /// Replaces the role's permissions; repeatable
        #[arg(long = "permission")]
        permissions: Vec<String>,
    },
    /// Delete a role
    #[command(after_help = "Examples:\n  nephele role delete 0192…")]
    Delete {
        /// The role's id
        id: Uuid,
    },
}

pub async fn role(global: &Global, command: RoleCommand, out: Output) -> Result<(), Failure> {
    let mut s = Session::open(global).await?;
    let base = "/api/v2/roles";
    match command {
        RoleCommand::List { paging } => {
            show_list(&mut s, Request::get(base), &paging, &ROLE, out).await
        }
        RoleCommand::Get { id } => show(&mut s, format!("{base}/{id}"), &ROLE, out).await,
        RoleCommand::Create { name, permissions } => {
            let body = json!({"name": name, "permissions": permissions});
            write(&mut s, Method::POST, base.into(), &body, &ROLE, out).await
        }
        RoleCommand::Update {
            id,
            name,
            permissions,
        } => {
            if name.is_none() && permissions.is_empty() {
                return Err(Failure::new(
                    Exit::Usage,
                    "nothing to change: give --name or --permission",
                ));
            }
            // PUT replaces both fields: keep the one not given.
            let path = format!("{base}/{id}");
            let current = s.data(Request::get(&path)).await?;
            let body = json!({
                "name": name.map_or_else(|| current["name"].clone(), Value::String),
                "permissions": if permissions.is_empty() { current["permissions"].clone() } else { json!(permissions) },
            });
            write(&mut s, Method::PUT, path, &body, &ROLE, out).await
        }
        RoleCommand::Delete { id } => delete(&mut s, format!("{base}/{id}"), "role", out).await,
    }
}

// ---- API keys ----

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Your API keys (never their secrets)
    #[command(after_help = "Examples:\n  nephele api-key list")]
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// A new key; its secret is printed this once
    #[command(
        after_help = "Examples:\n  nephele api-key create ci\n  KEY=$(nephele api-key create ci -o json | jq -r .secret)"
    )]
    Create {
        /// A name that says what the key is for
        name: String,
    },
    /// Delete a key
    #[command(after_help = "Examples:\n  nephele api-key delete 0192…")]
    Delete {
        /// The API key's id
        id: Uuid,
    },
    /// A new secret for a key; the old one stops working
    #[command(after_help = "Examples:\n  nephele api-key regenerate 0192…")]
    Regenerate {
        /// The API key's id
        id: Uuid,
    },
}

pub async fn api_key(global: &Global, command: ApiKeyCommand, out: Output) -> Result<(), Failure> {
    let mut s = Session::open(global).await?;
    let base = "/api/v2/api-keys";
    match command {
        ApiKeyCommand::List { paging } => {
            show_list(&mut s, Request::get(base), &paging, &API_KEY, out).await
        }
        ApiKeyCommand::Create { name } => {
            write(
                &mut s,
                Method::POST,
                base.into(),
                &api::ApiKeyCreate { name: Some(name) },
                &API_KEY,
                out,
            )
            .await
        }
        ApiKeyCommand::Delete { id } => {
            delete(&mut s, format!("{base}/{id}"), "API key", out).await
        }
        ApiKeyCommand::Regenerate { id } => {
            write(
                &mut s,
                Method::POST,
                format!("{base}/{id}/regenerate"),
                &json!({}),
                &API_KEY,
                out,
            )
            .await
        }
    }
}

// ---- API clients (`/api/2/clients`: snake_case, no envelope) ----

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuthMethod {
    /// client_secret_basic
    Basic,
    /// client_secret_post
    Post,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClientStatus {
    Enabled,
    Disabled,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// The API clients of a tenant (--tenant, else --org, else your own)
    #[command(
        after_help = "Examples:\n  nephele client list\n  nephele client list --tenant 0192…"
    )]
    List {
        /// Only the clients of this organization
        #[arg(long)]
        tenant: Option<Uuid>,
    },
    /// One API client (never its secret)
    #[command(after_help = "Examples:\n  nephele client get 0192…")]
    Get {
        /// The client's id
        id: Uuid,
    },
    /// A new API client; its secret is printed this once
    #[command(
        after_help = "Examples:\n  nephele client create billing-sync --role viewer\n  nephele client create deployer --role operator --tenant 0192… --auth-method post"
    )]
    Create {
        /// The client's name (its client_name)
        name: String,
        /// The organization the client acts in [default: the one acted in]
        #[arg(long)]
        tenant: Option<Uuid>,
        /// How the client authenticates at the token endpoint
        #[arg(long, value_enum, default_value = "basic")]
        auth_method: AuthMethod,
        /// A role the client acts with; repeatable
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Rename, enable or disable a client, or replace its roles
    #[command(
        after_help = "Examples:\n  nephele client update 0192… --status disabled\n  nephele client update 0192… --name deployer-2 --role viewer"
    )]
    Update {
        /// The client's id
        id: Uuid,
        /// A new name
        #[arg(long)]
        name: Option<String>,
        /// Whether the client may get tokens
        #[arg(long, value_enum)]
        status: Option<ClientStatus>,
        /// Replaces the client's roles; repeatable
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Delete a client
    #[command(after_help = "Examples:\n  nephele client delete 0192…")]
    Delete {
        /// The client's id
        id: Uuid,
    },
    /// A new secret; the old one stops working
    #[command(after_help = "Examples:\n  nephele client rotate-secret 0192…")]
    RotateSecret {
        /// The client's id
        id: Uuid,
    },
}

pub async fn client(global: &Global, command: ClientCommand, out: Output) -> Result<(), Failure> {
    let mut s = Session::open(global).await?;
    let base = "/api/2/clients";
    let tenant = |t: Option<Uuid>| t.or(global.org);
    match command {
        ClientCommand::List { tenant: t } => {
            let body = s
                .send(Request::get(base).query("tenant_id", tenant(t)))
                .await?
                .body;
            let items = body
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            out.list(&items, &CLIENT)
        }
        ClientCommand::Get { id } => {
            let body = s.send(Request::get(format!("{base}/{id}"))).await?.body;
            out.item(&body, &CLIENT)
        }
        ClientCommand::Create {
            name,
            tenant: t,
            auth_method,
            roles,
        } => {
            let mut body = json!({
                "type": "api_client",
                "token_endpoint_auth_method": match auth_method {
                    AuthMethod::Basic => "client_secret_basic",
                    AuthMethod::Post => "client_secret_post",
                },
                "data": {"client_name": name},
                "roles": roles,
            });
            if let Some(t) = tenant(t) {
                body["tenant_id"] = json!(t);
            }
            let body = s.send(Request::post(base, body)).await?.body;
            out.item(&body, &CLIENT)
        }
        ClientCommand::Update {
            id,
            name,
            status,
            roles,
        } => {
            let body = fields([
                ("data", name.map(|n| json!({"client_name": n}))),
                (
                    "status",
                    status.map(|st| {
                        json!(match st {
                            ClientStatus::Enabled => "enabled",
                            ClientStatus::Disabled => "disabled",
                        })
                    }),
                ),
                ("roles", (!roles.is_empty()).then(|| json!(roles))),
            ]);
            nothing_to_change(&body)?;
            let request = Request::new(Method::PUT, format!("{base}/{id}")).json(body);
            let body = s.send(request).await?.body;
            out.item(&body, &CLIENT)
        }
        ClientCommand::Delete { id } => delete(&mut s, format!("{base}/{id}"), "client", out).await,
        ClientCommand::RotateSecret { id } => {
            let body = s
                .send(Request::post(format!("{base}/{id}/secret"), json!({})))
                .await?
                .body;
            out.item(&body, &CLIENT)
        }
    }
}

// ---- audit log ----

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Who did what, when, from which agent, with what outcome
    #[command(
        after_help = "Examples:\n  nephele audit list --since 2026-11-01T00:00:00Z\n  nephele audit list --action instances.create --all -o json"
    )]
    List {
        /// Events at or after this RFC 3339 time
        #[arg(long)]
        since: Option<String>,
        /// Events by this actor (a user or client id)
        #[arg(long)]
        actor: Option<String>,
        /// Events of this action, e.g. instances.create
        #[arg(long)]
        action: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
}

pub async fn audit(global: &Global, command: AuditCommand, out: Output) -> Result<(), Failure> {
    let mut s = Session::open(global).await?;
    let AuditCommand::List {
        since,
        actor,
        action,
        paging,
    } = command;
    let request = Request::get("/api/v2/audit-events")
        .query("since", since)
        .query("actor", actor)
        .query("action", action);
    show_list(&mut s, request, &paging, &AUDIT_EVENT, out).await
}

// ---- images ----

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// The images instances can be made of
    #[command(after_help = "Examples:\n  nephele image list")]
    List {
        #[command(flatten)]
        paging: Paging,
    },
}

pub async fn image(global: &Global, command: ImageCommand, out: Output) -> Result<(), Failure> {
    let mut s = Session::open(global).await?;
    match command {
        ImageCommand::List { paging } => {
            show_list(&mut s, Request::get("/api/v2/images"), &paging, &IMAGE, out).await
        }
    }
}

// ---- data centers ----

#[derive(Debug, Subcommand)]
pub enum DatacenterCommand {
    /// Every data center of the platform
    #[command(after_help = "Examples:\n  nephele datacenter list")]
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// Register a data center (root organization's admins)
    #[command(
        after_help = "Examples:\n  nephele datacenter create eu-west --url https://eu-west.example.com"
    )]
    Create {
        /// The data center's name
        name: String,
        /// The data center's server URL
        #[arg(long)]
        url: String,
    },
    /// Remove a data center
    #[command(after_help = "Examples:\n  nephele datacenter delete 0192…")]
    Delete {
        /// The data center's id
        id: Uuid,
    },
}

pub async fn datacenter(
    global: &Global,
    command: DatacenterCommand,
    out: Output,
) -> Result<(), Failure> {
    let mut s = Session::open(global).await?;
    let base = "/api/v2/datacenters";
    match command {
        DatacenterCommand::List { paging } => {
            show_list(&mut s, Request::get(base), &paging, &DATACENTER, out).await
        }
        DatacenterCommand::Create { name, url } => {
            let body = json!({"name": name, "serverUrl": url});
            write(&mut s, Method::POST, base.into(), &body, &DATACENTER, out).await
        }
        DatacenterCommand::Delete { id } => {
            delete(&mut s, format!("{base}/{id}"), "data center", out).await
        }
    }
}
