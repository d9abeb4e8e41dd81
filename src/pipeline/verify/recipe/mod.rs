//! Declarative HMAC signature recipes: the single engine every signing preset compiles to. The
//! recipe as written is `config::recipe::RecipeConfig`; here, by job: its `signed_content`
//! [`template`], its dotted [`json_path`]s, its [`validate`]-ion, its [`timestamp`]s and the
//! [`engine`] that compiles it and checks requests against it.

pub mod engine;
pub mod json_path;
pub mod template;
pub mod timestamp;
pub mod validate;
