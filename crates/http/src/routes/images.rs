//! `/api/v2/images`.

use crate::auth::Auth;
use crate::error::HttpResult;
use crate::extract::{Paging, Query};
use crate::reply::Reply;
use crate::routes::PlainList;
use crate::state::AppState;
use axum::extract::State;
use nephele_api_types::{Image, List};
use nephele_app::wire;

/// The images the server's driver offers, by name: under QEMU the files
/// in `DATA_DIR/images` and `blank`; under `sim` the simulated ones.
#[utoipa::path(get, path = "/api/v2/images", tag = "images",
    params(PlainList),
    responses((status = 200, description = "A page of images", body = List<Image>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(_params): Query<PlainList>,
    Paging(page): Paging,
) -> HttpResult<Reply> {
    let page = state.app.list_images(&ctx, &page).await?;
    Ok(Reply::list("image", page.map(wire::image))?)
}
