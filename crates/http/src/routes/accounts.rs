//! `GET /api/1/accounts?login=`: data-center discovery (SPEC §5).

use crate::error::HttpResult;
use crate::extract::Query;
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use nephele_api_types::{Account, ErrorBody};
use nephele_common::error::Validator;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LoginQuery {
    /// The login (or e-mail) to look up.
    #[param(value_type = String, min_length = 1)]
    pub login: Option<String>,
}

/// Where an account lives: its home data center's URL. Always 200 with
/// the same shape; an unknown login gets the default data center.
#[utoipa::path(get, path = "/api/1/accounts", tag = "identity",
    params(LoginQuery),
    responses(
        (status = 200, description = "The account's data center", body = Account),
        (status = 422, description = "login is missing (3001)", body = ErrorBody)),
    security(()))]
pub async fn get(State(state): State<AppState>, Query(q): Query<LoginQuery>) -> HttpResult<Reply> {
    let mut v = Validator::new();
    let login = v.require("login", q.login.filter(|l| !l.is_empty()), Ok::<_, String>);
    v.finish()?;
    let account = state.app.account(&login.unwrap_or_default()).await?;
    Ok(Reply::bare(StatusCode::OK, &account)?)
}
