//! How records are published: as hookpipe's pages (the default) or as CloudEvents 1.0 in the
//! Kafka protocol binding (`output_format`, per listener or as `kafka.output_format`), and the
//! event attributes a listener chooses (`[listeners.cloudevents]`: `type_template`, `source`).
//! The encoding itself is `wire::cloudevents`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::from_text::deserialize_from_text;

/// What one Kafka message of a listener's topic is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// A page of records (`wire`): the format of every earlier version.
    #[default]
    Page,
    /// One CloudEvent per record, binary content mode: `ce_*` headers, the record as the value.
    CloudEventsBinary,
    /// One CloudEvent per record, structured content mode: an `application/cloudevents+json` value.
    CloudEventsStructured,
}

impl OutputFormat {
    const ALL: [OutputFormat; 3] = [
        OutputFormat::Page,
        OutputFormat::CloudEventsBinary,
        OutputFormat::CloudEventsStructured,
    ];

    /// Its name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Page => "page",
            OutputFormat::CloudEventsBinary => "cloudevents_binary",
            OutputFormat::CloudEventsStructured => "cloudevents_structured",
        }
    }

    /// Parses `output_format`.
    pub fn parse(name: &str) -> Result<OutputFormat, String> {
        OutputFormat::ALL
            .into_iter()
            .find(|format| format.as_str() == name)
            .ok_or_else(|| "must be one of page, cloudevents_binary, cloudevents_structured".to_string())
    }
}

impl<'de> Deserialize<'de> for OutputFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_text(deserializer, OutputFormat::parse)
    }
}

impl Serialize for OutputFormat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The event attributes of a listener publishing CloudEvents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudEventsOptions {
    /// Handlebars template of each event's `type`, over `headers` (the request's, lower-case
    /// names, credentials left out), `query`, `record` and `listener_id`; empty or absent:
    /// [`DEFAULT_EVENT_TYPE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_template: Option<String>,
    /// Each event's `source` (a URI-reference); by default `/listeners/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// `type` of an event whose listener has no type template, or whose template rendered nothing.
pub const DEFAULT_EVENT_TYPE: &str = "hookpipe.record";
/// The longest `source` or rendered `type` (a Kafka header value each, in binary mode).
pub const MAX_ATTRIBUTE_BYTES: usize = 1024;

/// The default `source` of a listener's events: its id, not its public URL (whose public id is
/// what makes the URL unguessable, and must not be spread to every reader of the topic).
pub fn default_source(listener_id: &str) -> String {
    format!("/listeners/{listener_id}")
}

impl CloudEventsOptions {
    /// Problems, as `(key relative to the listener, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Some(template) = &self.type_template {
            if let Err(message) = crate::templates::validate(template) {
                problems.push(("cloudevents.type_template".into(), message));
            }
        }
        if let Some(source) = &self.source {
            if let Err(message) = check_source(source) {
                problems.push(("cloudevents.source".into(), message));
            }
        }
        problems
    }
}

/// A `source` as the CloudEvents spec wants it: a non-empty URI-reference — here, 1 to
/// [`MAX_ATTRIBUTE_BYTES`] bytes of visible ASCII (a URI has no spaces; non-ASCII is
/// percent-encoded).
fn check_source(source: &str) -> Result<(), String> {
    if source.is_empty() || source.len() > MAX_ATTRIBUTE_BYTES || !source.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(format!(
            "must be a URI-reference: 1-{MAX_ATTRIBUTE_BYTES} visible ASCII characters, no spaces"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{env, BASE};
    use crate::config::Settings;

    #[test]
    fn the_default_is_pages_and_names_parse_both_ways() {
        let settings = Settings::from_toml_and_env(BASE, env(&[])).unwrap();
        assert_eq!(settings.kafka.output_format, OutputFormat::Page);
        assert_eq!(settings.listeners[0].output_format, None);
        for format in OutputFormat::ALL {
            assert_eq!(OutputFormat::parse(format.as_str()), Ok(format));
            assert_eq!(serde_json::to_value(format).unwrap(), format.as_str());
        }
        let settings = Settings::from_toml_and_env(
            BASE,
            env(&[
                ("HOOKPIPE_KAFKA__OUTPUT_FORMAT", "cloudevents_structured"),
                ("HOOKPIPE_LISTENERS__ORDERS__OUTPUT_FORMAT", "cloudevents_binary"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.kafka.output_format, OutputFormat::CloudEventsStructured);
        assert_eq!(
            settings.listeners[0].output_format,
            Some(OutputFormat::CloudEventsBinary)
        );
    }

    #[test]
    fn the_api_takes_the_same_names() {
        let config: crate::config::listener::ListenerConfig = serde_json::from_value(serde_json::json!({
            "id": "a", "output_format": "cloudevents_binary", "cloudevents": {"type_template": "x.{{record.kind}}"}
        }))
        .unwrap();
        assert_eq!(config.output_format, Some(OutputFormat::CloudEventsBinary));
        assert_eq!(
            serde_json::to_value(&config).unwrap()["cloudevents"],
            serde_json::json!({"type_template": "x.{{record.kind}}"})
        );
        let error = serde_path_to_error::deserialize::<_, crate::config::listener::ListenerConfig>(
            serde_json::json!({"id": "a", "output_format": "avro"}),
        )
        .unwrap_err();
        assert_eq!(error.path().to_string(), "output_format");
        assert_eq!(
            error.into_inner().to_string(),
            "must be one of page, cloudevents_binary, cloudevents_structured"
        );
    }

    #[test]
    fn problems_name_the_key() {
        let text = format!(
            "[kafka]\noutput_format = \"avro\"\n{BASE}output_format = \"cloudevents\"\n\
             [listeners.cloudevents]\ntype_template = \"{{{{nosuch a}}}}\"\nsource = \"/a b\"\n"
        );
        let errors = Settings::from_toml_and_env(&text, env(&[])).unwrap_err().0;
        let found: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(found.len(), 4, "{found:?}");
        assert_eq!(
            found[..2],
            [
                "kafka.output_format: must be one of page, cloudevents_binary, cloudevents_structured",
                "listeners[orders].output_format: must be one of page, cloudevents_binary, cloudevents_structured",
            ]
        );
        assert!(
            found[2].starts_with(
                "listeners[orders].cloudevents.type_template: invalid template at line 1, column 1: unknown helper `nosuch`"
            ),
            "{}",
            found[2]
        );
        assert_eq!(
            found[3],
            "listeners[orders].cloudevents.source: must be a URI-reference: 1-1024 visible ASCII characters, no spaces"
        );
        assert!(check_source("https://hooks.example.com/github").is_ok());
        assert!(check_source("").is_err());
        assert!(check_source(&"a".repeat(1025)).is_err());
        assert!(check_source("/é").is_err());
    }
}
