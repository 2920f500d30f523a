//! The dashboard: a page at `/` with its script, styles and icon, embedded in the binary
//! at build time (no CDN, no Node toolchain, nothing fetched at run time). The assets carry
//! no data and need no token; the page reads the API with the token the user gives it.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::problem::ApiError;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const PAGE: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_str!("../dashboard/index.html"),
};

const ASSETS: [Asset; 4] = [
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", body: include_str!("../dashboard/app.js") },
    Asset {
        name: "charts.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../dashboard/charts.js"),
    },
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", body: include_str!("../dashboard/app.css") },
    Asset { name: "favicon.svg", content_type: "image/svg+xml", body: include_str!("../dashboard/favicon.svg") },
];

/// Scripts and styles only from this server, no framing by other sites, and fetches only
/// to this server: the page handles a bearer token.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn serve(asset: &Asset) -> Response {
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    // The assets change only with the binary; revalidating each load keeps an upgrade visible.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// `GET /`: the dashboard page.
pub async fn page() -> Response {
    serve(&PAGE)
}

/// `GET /dashboard/{asset}`: the page's script, styles and icon.
pub async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map(serve)
        .ok_or_else(|| ApiError::unknown_route(&format!("/dashboard/{name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_only_assets_that_are_embedded() {
        for reference in PAGE.body.split("/dashboard/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(ASSETS.iter().any(|a| a.name == name), "index.html refers to {name}, which is not embedded");
        }
        // Every module a script imports is embedded too.
        for script in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for import in script.body.split(" from \"./").skip(1) {
                let name = import.split('"').next().unwrap();
                assert!(ASSETS.iter().any(|a| a.name == name), "{} imports {name}, which is not embedded", script.name);
            }
        }
    }
}
