//! The web console at `/console`: plain HTML, CSS and JavaScript modules compiled into the
//! binary (no build step, no CDN, nothing fetched at run time), served only when the management
//! API is on, under a Content-Security-Policy that allows scripts, styles and requests from this
//! origin only (no inline script, no `eval`, no framing). The page keeps the admin token in
//! `sessionStorage` and sends it as a bearer header: no cookie, so no CSRF.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::http::state::AppState;

/// The policy of every console response. `img-src data:` is for nothing today but keeps
/// screenshots of SVG charts exportable; nothing else is allowed from anywhere but here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// One file of the console: its name under `/console/`, media type and content.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    content: &'static str,
}

macro_rules! asset {
    ($name:literal, $media_type:expr) => {
        Asset {
            name: $name,
            media_type: $media_type,
            content: include_str!(concat!("console/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the console has; anything else under `/console/` is a 404.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("metrics.js", JS),
    asset!("listeners.js", JS),
    asset!("listener.js", JS),
    asset!("listener_form.js", JS),
    asset!("sample.js", JS),
    asset!("debug.js", JS),
    asset!("errors.js", JS),
    asset!("overview.js", JS),
];

/// Registers `/console` and its files.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/console", web::get().to(redirect))
        .route("/console/", web::get().to(index))
        .route("/console/{file}", web::get().to(file));
}

fn enabled(state: &AppState) -> bool {
    state.settings.server.admin_token.is_some()
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(crate::api_model::ErrorBody {
        error: "not found".into(),
        field: None,
    })
}

async fn redirect(state: web::Data<AppState>) -> HttpResponse {
    if !enabled(&state) {
        return not_found();
    }
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/console/"))
        .finish()
}

async fn index(state: web::Data<AppState>) -> HttpResponse {
    serve(&state, "index.html")
}

async fn file(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    serve(&state, request.match_info().get("file").unwrap_or_default())
}

fn serve(state: &AppState, name: &str) -> HttpResponse {
    let Some(asset) = ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .filter(|_| enabled(state))
    else {
        return not_found();
    };
    HttpResponse::Ok()
        .content_type(asset.media_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        // The files are part of the binary: a new version must be fetched, not cached forever.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(asset.content)
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    #[test]
    fn the_console_has_no_inline_script_no_remote_origin_and_no_inner_html() {
        for asset in ASSETS {
            let text = asset.content;
            for forbidden in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ] {
                assert!(!text.contains(forbidden), "{} uses {forbidden}", asset.name);
            }
            for remote in [
                "src=\"http",
                "href=\"http",
                "url(http",
                "from \"http",
                "fetch(\"http",
                "//cdn",
            ] {
                assert!(
                    !text.contains(remote),
                    "{} loads from another origin ({remote})",
                    asset.name
                );
            }
            assert!(!text.contains("document.cookie"), "{} touches cookies", asset.name);
        }
        let index = ASSETS.iter().find(|a| a.name == "index.html").unwrap().content;
        assert!(!index.contains("<script>"), "no inline script");
        let handler = index.split(" on").skip(1).find(|rest| {
            let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
            !name.is_empty() && rest[name.len()..].starts_with('=')
        });
        assert!(handler.is_none(), "no inline event handler: on{handler:?}");
        assert!(!index.contains("style="), "no inline style");
    }

    #[test]
    fn every_module_the_console_imports_is_served() {
        for asset in ASSETS {
            for line in asset.content.lines().filter(|line| line.starts_with("import ")) {
                let name = line.rsplit("./").next().unwrap().trim_end_matches(['"', ';', '\'']);
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{} imports {name}, not served",
                    asset.name
                );
            }
        }
    }
}
