//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and
//! the request/response types, served at `/v1/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::routes;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "E-patrol API", description = "Identification and evidence API for patrol tablets, docks and investigators."),
    paths(
        routes::health::health, routes::auth::login, routes::identify::identify, routes::subjects::enrol, routes::subjects::set_flags,
        routes::subjects::add_templates, routes::subjects::delete_subject, routes::password::change, routes::password::reset,
        routes::audit::audit, routes::evidence::upload, routes::evidence::search, routes::evidence::metadata,
        routes::evidence::content, routes::evidence::thumbnail, routes::evidence::custody,
        routes::uploads::begin, routes::uploads::status, routes::uploads::put_part, routes::uploads::complete,
        routes::retention::file_incident, routes::retention::reclassify, routes::retention::place_hold,
        routes::retention::release_holds, routes::cases::open_case, routes::cases::link_evidence,
        routes::cases::close_case, routes::events::events, super::metrics::metrics,
        routes::admin::create_user, routes::admin::disable_user, routes::admin::enable_user,
        routes::admin::disable_device, routes::admin::enable_device, routes::admin::logout,
        routes::admin::enroll_device,
    ),
    components(schemas(super::problem::Problem, super::auth::RoleName)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the protected paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "Token from POST /v1/auth/login; send X-Device-Id with the device it was issued to",
                    ))
                    .build(),
            ),
        );
    }
}

/// `GET /v1/openapi.json` (no login: the API's shape is not secret).
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
