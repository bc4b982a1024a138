//! Domain models as they go on the wire.

use nephele_api_types as api;
use nephele_store as model;

pub fn organization(o: &model::Organization) -> api::Organization {
    api::Organization {
        id: o.id.0,
        name: o.name.clone(),
        parent_id: o.parent_id.map(|p| p.0),
        created_at: o.created_at,
        updated_at: o.updated_at,
        version: o.version,
    }
}

pub fn user(u: &model::User, roles: Vec<String>) -> api::User {
    api::User {
        id: u.id.0,
        login: u.login.clone(),
        email: u.email.clone(),
        organization_id: u.organization_id.0,
        roles,
        created_at: u.created_at,
        updated_at: u.updated_at,
        version: u.version,
    }
}
