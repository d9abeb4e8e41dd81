//! Listener templates (trace key, data URI, response body): the handlebars registry with
//! hookpipe's helpers, and the compile-time check that makes a template naming an unknown
//! helper — or calling one with the wrong number of arguments — a configuration error
//! instead of a failure on every request.
//!
//! Pure: no actix types. `config/listener.rs` validates with [`validate`]; `pipeline/listener.rs` compiles and
//! renders with [`TemplateSet`]. By job: the registry and rendering here, the helper table in
//! `helpers` (their arguments in `args`; text, arithmetic and dates in `text`,
//! `arithmetic` and `date`), and the compile-time check of helper calls in `check`. Handshake
//! answers get one more helper, `hmac_sha256` (`hmac`), registered with its key in their own set.

mod args;
mod arithmetic;
mod check;
mod date;
mod helpers;
mod hmac;
mod text;

use handlebars::template::Template;
use handlebars::Handlebars;

use check::{check_template, Scope};
use helpers::{ValueHelper, HELPERS};
pub use hmac::hmac_sha256;

/// A listener's compiled templates, each under a name, rendered with every helper.
pub struct TemplateSet {
    registry: Handlebars<'static>,
    scope: Scope,
}

impl TemplateSet {
    /// An empty set. `strict`: a missing field is a render error instead of an empty value.
    pub fn new(strict: bool) -> TemplateSet {
        let mut registry = Handlebars::new();
        // Records are data, not HTML: `{{x}}` must not turn `&` into `&amp;`.
        registry.register_escape_fn(handlebars::no_escape);
        registry.set_strict_mode(strict);
        for spec in HELPERS {
            if let Some(function) = spec.function {
                registry.register_helper(
                    spec.name,
                    Box::new(ValueHelper {
                        name: spec.name,
                        function,
                    }),
                );
            }
        }
        TemplateSet {
            registry,
            scope: Scope::Listener,
        }
    }

    /// A set for a handshake's answer (strict: a missing value is an error, never an empty
    /// echo), with `hmac_sha256` keyed by `hmac_key` when there is one.
    pub fn for_handshake(hmac_key: Option<Vec<u8>>) -> TemplateSet {
        let mut set = TemplateSet::new(true);
        set.scope = Scope::Handshake {
            keyed: hmac_key.is_some(),
        };
        if let Some(key) = hmac_key {
            set.registry
                .register_helper(hmac::NAME, Box::new(hmac::HmacHelper { key }));
        }
        set
    }

    /// Compiles and checks `source` (see [`compile`]) and adds it as `name`.
    pub fn add(&mut self, name: &str, source: &str) -> Result<(), String> {
        let template = compile_in(source, self.scope)?;
        self.registry.register_template(name, template);
        Ok(())
    }

    /// Whether a template was added as `name`.
    pub fn has(&self, name: &str) -> bool {
        self.registry.has_template(name)
    }

    /// Renders template `name` over `data`; the error is a short reason without record content.
    pub fn render<T: serde::Serialize>(&self, name: &str, data: &T) -> Result<String, String> {
        self.registry
            .render(name, data)
            .map_err(|error| error.reason().to_string())
    }
}

/// Checks that `source` parses and calls only known helpers with a valid number of arguments.
pub fn validate(source: &str) -> Result<(), String> {
    compile(source).map(drop)
}

/// [`validate`] for a handshake's answer: `hmac_sha256` may be called when `keyed`.
pub fn validate_handshake(source: &str, keyed: bool) -> Result<(), String> {
    compile_in(source, Scope::Handshake { keyed }).map(drop)
}

/// Parses `source` and checks every helper call in it: an expression with arguments, a block
/// `{{#x}}` or a subexpression `(x …)` must name a known helper, used as that helper can be
/// (block or value), with a number of arguments it takes. A bare `{{name}}` is a field, even
/// when a helper has that name (a record may well have a `default` or `hash` field).
pub fn compile(source: &str) -> Result<Template, String> {
    compile_in(source, Scope::Listener)
}

fn compile_in(source: &str, scope: Scope) -> Result<Template, String> {
    let mut template = Template::compile(source).map_err(|error| invalid(error.pos(), &error.reason().to_string()))?;
    check_template(&mut template, scope).map_err(|problem| invalid(problem.at, &problem.message))?;
    Ok(template)
}

fn invalid(at: Option<(usize, usize)>, message: &str) -> String {
    match at {
        Some((line, column)) => format!("invalid template at line {line}, column {column}: {message}"),
        None => format!("invalid template: {message}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{json, Value as Json};

    /// Every example of README › Templates › Helpers: (template, record, result). The README
    /// table is checked against this list, and each row is rendered.
    const README_EXAMPLES: &[(&str, &str, &str)] = &[
        (r#"{{join "_" a b}}"#, r#"{"a":"x","b":"y"}"#, "x_y"),
        (
            r#"{{join "-" sku tags nothing}}"#,
            r#"{"sku":"A1","tags":["red","big"]}"#,
            "A1-red-big",
        ),
        (
            "{{lowercase email}}",
            r#"{"email":"Ada@Example.COM"}"#,
            "ada@example.com",
        ),
        ("{{uppercase country}}", r#"{"country":"de"}"#, "DE"),
        ("{{trim name}}", r#"{"name":"  Ada  "}"#, "Ada"),
        (
            r#"{{replace phone "-" ""}}"#,
            r#"{"phone":"555-123-4567"}"#,
            "5551234567",
        ),
        ("{{substring sku 0 3}}", r#"{"sku":"ABC-123"}"#, "ABC"),
        (r#"{{default region "none"}}"#, r#"{"region":""}"#, "none"),
        (
            r#"{{dateFormat "YYYY-MM-DD" created_at}}"#,
            r#"{"created_at":"2024-03-05T23:30:00-02:00"}"#,
            "2024-03-06",
        ),
        (
            r#"{{dateFormat "DD/MM/YYYY HH:mm" ts "" "+02:00"}}"#,
            r#"{"ts":1709681400000}"#,
            "06/03/2024 01:30",
        ),
        (
            r#"{{dateFormat "YYYY-MM-DD[T]HH:mm:ss.SSSZ" date "DD.MM.YYYY"}}"#,
            r#"{"date":"05.03.2024"}"#,
            "2024-03-05T00:00:00.000+00:00",
        ),
        (
            r#"{{dateFormat "X" created_at}}"#,
            r#"{"created_at":"2024-03-05"}"#,
            "1709596800",
        ),
        ("{{add qty 1}}", r#"{"qty":2}"#, "3"),
        ("{{subtract total discount}}", r#"{"total":10,"discount":2.5}"#, "7.5"),
        ("{{multiply qty 3}}", r#"{"qty":"4"}"#, "12"),
        ("{{divide total 4}}", r#"{"total":10}"#, "2.5"),
        (
            "{{jsonSerialize customer}}",
            r#"{"customer":{"id":7,"tags":["a"]}}"#,
            r#"{"id":7,"tags":["a"]}"#,
        ),
        ("{{base64 user}}", r#"{"user":"hello"}"#, "aGVsbG8="),
        (
            r#"{{hash "sha256" email}}"#,
            r#"{"email":"ada@example.com"}"#,
            "b5fc85e55755f9e0d030a10ab4429b6b2944855f9a0d60077fe832becbc41d72",
        ),
        (
            r#"{{join "_" (lowercase country) (substring sku 0 3)}}"#,
            r#"{"country":"DE","sku":"ABC-123"}"#,
            "de_ABC",
        ),
    ];

    pub(super) fn render_with(strict: bool, template: &str, data: &Json) -> Result<String, String> {
        let mut set = TemplateSet::new(strict);
        set.add("t", template)?;
        set.render("t", data)
    }

    pub(super) fn render(template: &str, data: Json) -> Result<String, String> {
        render_with(false, template, &data)
    }

    pub(super) fn ok(template: &str, data: Json) -> String {
        render(template, data).unwrap_or_else(|error| panic!("{template}: {error}"))
    }

    #[test]
    fn every_readme_example_renders_as_documented() {
        for (template, record, expected) in README_EXAMPLES {
            let data: Json = serde_json::from_str(record).unwrap();
            assert_eq!(ok(template, data), *expected, "{template} over {record}");
        }
    }

    #[test]
    fn the_readme_shows_exactly_these_examples() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let start = readme.find("<!-- template helper examples -->").expect("README marker");
        let end = readme[start..]
            .find("<!-- /template helper examples -->")
            .expect("README end marker")
            + start;
        let rows: Vec<(String, String, String)> = readme[start..end]
            .lines()
            .filter(|line| line.starts_with("| ") && !line.starts_with("| helper |"))
            .map(|line| {
                // | `helper` | `template` | `record` | `result` |
                let cells: Vec<&str> = line
                    .split(" | ")
                    .map(|cell| cell.trim_matches(['|', ' ', '`']))
                    .collect();
                (cells[1].to_string(), cells[2].to_string(), cells[3].to_string())
            })
            .collect();
        let expected: Vec<(String, String, String)> = README_EXAMPLES
            .iter()
            .map(|(t, r, e)| (t.to_string(), r.to_string(), e.to_string()))
            .collect();
        assert_eq!(rows, expected);
        for spec in HELPERS.iter().filter(|spec| spec.function.is_some()) {
            assert!(
                README_EXAMPLES
                    .iter()
                    .any(|(template, _, _)| template.contains(&format!("{{{{{} ", spec.name))),
                "no README example of {}",
                spec.name
            );
        }
    }

    #[test]
    fn strict_mode_makes_missing_fields_errors() {
        assert_eq!(render_with(false, "[{{a}}]", &json!({})).unwrap(), "[]");
        assert!(render_with(true, "[{{a}}]", &json!({})).is_err());
        assert_eq!(
            render_with(false, r#"{{join "_" a b}}"#, &json!({"a": "x"})).unwrap(),
            "x"
        );
        let error = render_with(true, r#"{{join "_" a b}}"#, &json!({"a": "x"})).unwrap_err();
        assert!(error.contains("`b`") && error.contains("missing"), "{error}");
        assert_eq!(
            render_with(true, r#"{{join "_" a b}}"#, &json!({"a": "x", "b": "y"})).unwrap(),
            "x_y"
        );
    }

    #[test]
    fn hmac_sha256_is_for_keyed_handshake_answers_only() {
        let mut set = TemplateSet::for_handshake(Some(b"Jefe".to_vec()));
        set.add("t", r#"{{hmac_sha256 v "hex"}}|{{hmac_sha256 v "base64"}}"#)
            .unwrap();
        assert_eq!(
            set.render("t", &json!({"v": "what do ya want for nothing?"})).unwrap(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843|W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
        let error = validate(r#"{{hmac_sha256 v "hex"}}"#).unwrap_err();
        assert!(error.contains("only for handshake answers"), "{error}");
        let error = validate_handshake(r#"{{hmac_sha256 v "hex"}}"#, false).unwrap_err();
        assert!(error.contains("needs a key"), "{error}");
        let error = validate_handshake(r#"{{hmac_sha256 v "binary"}}"#, true).unwrap_err();
        assert!(error.contains("\"hex\" or \"base64\""), "{error}");
        assert!(validate_handshake(r#"{{hmac_sha256 v}}"#, true).is_err());
        // Strict: a missing value is an error, not an empty echo.
        assert!(set.render("t", &json!({})).is_err());
    }

    #[test]
    fn no_html_escaping() {
        assert_eq!(ok("{{a}}&{{lowercase a}}", json!({"a": "<A&B>"})), "<A&B>&<a&b>");
    }
}
