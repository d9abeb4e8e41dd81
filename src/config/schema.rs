//! `[listeners.schema]`: the JSON Schema every record of a listener must satisfy, as written
//! (inline, or in a file next to the configuration), and what happens to a record that does not.
//! The schema is draft 2020-12; the policy `reject`s the request or `quarantine`s the record.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::json_schema::{RecordSchema, MAX_SCHEMA_BYTES};

/// A listener's schema.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaOptions {
    /// The schema: a JSON object in the API, a TOML table or a string of JSON text in the file
    /// (a string is parsed, so the API shows it as an object).
    #[serde(
        default,
        deserialize_with = "deserialize_document",
        skip_serializing_if = "Option::is_none"
    )]
    pub document: Option<Value>,
    /// A JSON file holding the schema, relative to the configuration file: read once, when the
    /// configuration is loaded, into `document` (configuration file only, never the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// What happens to a record that does not satisfy the schema.
    #[serde(default)]
    pub policy: SchemaPolicy,
    /// Whether `format` (`email`, `date-time`, `uuid`, …) is checked; draft 2020-12 makes it an
    /// annotation unless asked, and a listener that names a format means it.
    #[serde(default = "default_validate_formats")]
    pub validate_formats: bool,
}

/// What happens to a record that does not satisfy its listener's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaPolicy {
    /// The whole request is refused (422, naming the first error); nothing is published.
    #[default]
    Reject,
    /// The request is accepted: invalid records go to `kafka.quarantine_topic` with their
    /// errors, valid ones to the pages topic.
    Quarantine,
}

impl SchemaPolicy {
    /// The name, as written.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaPolicy::Reject => "reject",
            SchemaPolicy::Quarantine => "quarantine",
        }
    }
}

/// Formats are checked: a schema that says `"format": "email"` wants emails.
fn default_validate_formats() -> bool {
    true
}

/// `document` given as a value, or as JSON text (TOML has no `null`, and a multi-line string of
/// JSON is how a schema copied from elsewhere is most easily pasted).
fn deserialize_document<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|error| serde::de::Error::custom(format!("is not JSON text: {error}"))),
        value => Ok(Some(value)),
    }
}

impl SchemaOptions {
    /// Compiles the schema (`document`, read from `file` at load).
    pub fn compile(&self) -> Result<RecordSchema, (String, String)> {
        let key = self.key();
        let document = self
            .document
            .as_ref()
            .ok_or_else(|| (key.clone(), self.missing_document()))?;
        RecordSchema::compile(document, self.validate_formats).map_err(|message| (key, message))
    }

    /// Problems with this schema, as `(key relative to the listener, message)`: it must be
    /// there and compile.
    pub fn problems(&self) -> Vec<(String, String)> {
        match self.compile() {
            Ok(_) => Vec::new(),
            Err(problem) => vec![problem],
        }
    }

    /// The key a problem of the schema is reported at: the file when it came from one.
    fn key(&self) -> String {
        match &self.file {
            Some(_) => "schema.file".into(),
            None => "schema.document".into(),
        }
    }

    fn missing_document(&self) -> String {
        match &self.file {
            Some(_) => "is read when the configuration file is loaded; through the API, send the schema \
                        itself as schema.document"
                .into(),
            None => "is required: the schema itself (or schema.file in the configuration file)".into(),
        }
    }

    /// Reads `file` (relative to `base`, the configuration file's folder) into `document`.
    pub fn read_file(&mut self, base: Option<&Path>) -> Result<(), String> {
        let Some(file) = &self.file else { return Ok(()) };
        if self.document.is_some() {
            return Err("give schema.document or schema.file, not both".into());
        }
        let path = match base {
            Some(base) if Path::new(file).is_relative() => base.join(file),
            _ => Path::new(file).to_path_buf(),
        };
        let metadata = std::fs::metadata(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        // Whitespace and indentation are not counted against the cap: twice it, as read.
        if metadata.len() > 2 * MAX_SCHEMA_BYTES as u64 {
            return Err(format!(
                "{} is {} bytes; a schema may have at most {MAX_SCHEMA_BYTES}",
                path.display(),
                metadata.len()
            ));
        }
        // Read through the cap as well: a device or a growing file says 0 bytes (`/dev/zero`
        // would be read forever).
        let text = super::read_capped(&path, 2 * MAX_SCHEMA_BYTES as u64)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let document =
            serde_json::from_str(&text).map_err(|error| format!("{} is not JSON: {error}", path.display()))?;
        self.document = Some(document);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::listener::ListenerConfig;
    use crate::config::schema::SchemaPolicy;
    use crate::config::test_support::{env, BASE};
    use crate::config::Settings;
    use serde_json::json;

    #[test]
    fn a_schema_is_a_toml_table_or_json_text_and_round_trips_as_json() {
        let table = format!(
            "{BASE}[listeners.schema]\npolicy = \"quarantine\"\n[listeners.schema.document]\ntype = \"object\"\nrequired = [\"id\"]\n"
        );
        let text =
            format!("{BASE}[listeners.schema]\ndocument = '''{{\"type\": \"object\", \"required\": [\"id\"]}}'''\n");
        let expected = json!({"type": "object", "required": ["id"]});
        for (source, policy) in [(table, SchemaPolicy::Quarantine), (text, SchemaPolicy::Reject)] {
            let settings = Settings::from_toml_and_env(&source, env(&[])).unwrap();
            let schema = settings.listeners[0].schema.clone().unwrap();
            assert_eq!(schema.document.as_ref(), Some(&expected));
            assert_eq!(schema.policy, policy);
            assert!(schema.validate_formats);
            // As the API and the state topic carry it: JSON, and back.
            let value = serde_json::to_value(&settings.listeners[0]).unwrap();
            assert_eq!(value["schema"]["document"], expected);
            assert_eq!(value["schema"]["policy"], policy.as_str());
            let back: ListenerConfig = serde_json::from_value(value).unwrap();
            assert_eq!(back.schema, Some(schema));
        }
        // No schema: no key at all in the JSON.
        let settings = Settings::from_toml_and_env(BASE, env(&[])).unwrap();
        assert!(serde_json::to_value(&settings.listeners[0])
            .unwrap()
            .get("schema")
            .is_none());
    }

    #[test]
    fn an_invalid_schema_names_the_listener_and_the_key() {
        let cases = [
            (
                "[listeners.schema.document]\ntype = \"nope\"\n",
                "listeners[orders].schema.document: is not a valid draft 2020-12 schema at /type:",
            ),
            (
                "[listeners.schema]\ndocument = '{\"type\": '\n",
                "listeners[0].schema.document: is not JSON text:",
            ),
            (
                "[listeners.schema]\npolicy = \"drop\"\n",
                "listeners[0].schema.policy: unknown variant `drop`, expected `reject` or `quarantine`",
            ),
            (
                "[listeners.schema]\npolicy = \"reject\"\n",
                "listeners[orders].schema.document: is required",
            ),
        ];
        for (toml, expected) in cases {
            let errors = Settings::from_toml_and_env(&format!("{BASE}{toml}"), env(&[]))
                .unwrap_err()
                .0;
            assert_eq!(errors.len(), 1, "{toml}: {errors:?}");
            assert!(errors[0].to_string().starts_with(expected), "{toml}: {}", errors[0]);
        }
    }

    #[test]
    fn a_schema_file_is_read_at_load_relative_to_the_configuration() {
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("hookpipe-schema-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(dir.join("schemas")).unwrap();
        std::fs::write(
            dir.join("schemas/orders.json"),
            r#"{"type": "object", "required": ["id"]}"#,
        )
        .unwrap();
        std::fs::write(dir.join("schemas/bad.json"), r#"{"type": 1}"#).unwrap();
        let config = dir.join("hookpipe.toml");
        let write = |schema: &str| std::fs::write(&config, format!("{BASE}[listeners.schema]\n{schema}\n")).unwrap();

        write("file = \"schemas/orders.json\"\npolicy = \"quarantine\"");
        let settings = Settings::load(Some(&config)).unwrap();
        let schema = settings.listeners[0].schema.as_ref().unwrap();
        assert_eq!(schema.document, Some(json!({"type": "object", "required": ["id"]})));
        assert_eq!(schema.file.as_deref(), Some("schemas/orders.json"));

        for (line, expected) in [
            (
                "file = \"schemas/bad.json\"",
                "listeners[orders].schema.file: is not a valid draft 2020-12 schema at /type",
            ),
            (
                "file = \"schemas/missing.json\"",
                "listeners[orders].schema.file: cannot read",
            ),
            (
                // A device says it is empty, and never ends.
                "file = \"/dev/zero\"",
                "listeners[orders].schema.file: cannot read /dev/zero: longer than",
            ),
            (
                "file = \"schemas/orders.json\"\ndocument = {}",
                "listeners[orders].schema.file: give schema.document or schema.file, not both",
            ),
        ] {
            write(line);
            let errors = Settings::load(Some(&config)).unwrap_err().0;
            assert_eq!(errors.len(), 1, "{line}: {errors:?}");
            assert!(errors[0].to_string().starts_with(expected), "{line}: {}", errors[0]);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
