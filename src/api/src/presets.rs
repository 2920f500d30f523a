//! `GET /v1/presets`: the named presets a stream definition or `koopstream fit` may start
//! from, with what each sets and why (the values live in `domain::presets`).

use axum::Json;

use domain::presets::PRESETS;
use wire::streams::PresetDoc;

/// The presets.
#[utoipa::path(get, path = "/v1/presets", tag = "streams",
    responses((status = 200, description = "Every preset with the fields it sets and why", body = Vec<PresetDoc>)))]
pub async fn list() -> Json<Vec<PresetDoc>> {
    Json(PRESETS.iter().map(PresetDoc::from).collect())
}
