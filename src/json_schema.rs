//! JSON Schemas (draft 2020-12) of listeners' records: compiled once, with bounds no hostile
//! schema gets past, and checked one record at a time with bounded, echo-safe errors.
//!
//! Compiling refuses what would make the tier depend on the outside or on luck: a schema over
//! [`MAX_SCHEMA_BYTES`] or nested deeper than [`MAX_SCHEMA_DEPTH`], a `$schema` other than
//! draft 2020-12, any `$ref` leaving the document (nothing is fetched, from the network or
//! from disk: the crate is built without its resolvers and a retriever that refuses stands in),
//! and recursive or fanned-out references, which make validation take exponential time
//! (`check_references`).
//! `pattern`s run on the linear-time `regex` engine (no look-around, no back-references) with a
//! size cap, so no record can make a pattern backtrack for seconds.
//!
//! Errors are bounded: at most [`MAX_ERRORS_PER_RECORD`] per record, each message and pointer
//! cut to [`MAX_ERROR_CHARS`]. Messages never quote the record's values (`value is not of type
//! "integer"`): they go back to senders in 422 answers and into logs.
//!
//! A leaf: it imports nothing from the crate, so the configuration checks schemas (`hookpipe
//! check-config`) and the pipeline validates records with the same code.

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, PatternOptions, ReferencingError, Retrieve, Uri, Validator};
use serde_json::Value;

/// Largest schema accepted, in bytes of compact JSON: a generous hand-written schema is a few KB.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Deepest schema accepted, in nested objects and arrays: compiling recurses over the document.
pub const MAX_SCHEMA_DEPTH: usize = 32;
/// Errors kept per invalid record.
pub const MAX_ERRORS_PER_RECORD: usize = 10;
/// Longest error message or pointer kept, in characters.
pub const MAX_ERROR_CHARS: usize = 200;
/// Size cap of one compiled `pattern` (the `regex` crate's own default is 10 MiB).
const MAX_PATTERN_BYTES: usize = 256 * 1024;
/// The one `$schema` accepted (with or without the empty fragment).
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// A compiled schema: checks records, shared by every HTTP thread.
pub struct RecordSchema {
    validator: Validator,
}

impl std::fmt::Debug for RecordSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordSchema")
    }
}

/// One way a record fails its schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// JSON pointer (RFC 6901) to the failing place in the record: `""` is the record itself,
    /// `/items/0/qty` a member.
    pub instance_path: String,
    /// JSON pointer to the keyword of the schema that failed (`/properties/qty/minimum`).
    pub schema_path: String,
    /// What is wrong, without the record's values.
    pub message: String,
}

/// Why a record failed: its first errors, and whether there were more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations {
    /// At most [`MAX_ERRORS_PER_RECORD`], in the validator's order (the first is the answer of
    /// a `reject` listener).
    pub errors: Vec<Violation>,
    /// More errors were found than kept.
    pub truncated: bool,
}

impl RecordSchema {
    /// Compiles `document`; `validate_formats` makes `format` an assertion (draft 2020-12
    /// makes it an annotation by default). The error says what is wrong, naming the place in
    /// the schema when there is one.
    pub fn compile(document: &Value, validate_formats: bool) -> Result<RecordSchema, String> {
        if !document.is_object() && !document.is_boolean() {
            return Err("must be a JSON object (or true / false)".into());
        }
        let bytes = serde_json::to_vec(document)
            .map(|text| text.len())
            .unwrap_or(usize::MAX);
        if bytes > MAX_SCHEMA_BYTES {
            return Err(format!(
                "is {bytes} bytes; a schema may have at most {MAX_SCHEMA_BYTES}"
            ));
        }
        if depth(document) > MAX_SCHEMA_DEPTH {
            return Err(format!("nests deeper than {MAX_SCHEMA_DEPTH} levels"));
        }
        check_references(document)?;
        if let Some(declared) = document.get("$schema") {
            let declared = declared.as_str().unwrap_or_default();
            if declared.trim_end_matches('#') != DRAFT_2020_12 {
                return Err(format!(
                    "$schema must be {DRAFT_2020_12} (or absent): hookpipe validates draft 2020-12"
                ));
            }
        }
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_retriever(NoRetrieval)
            .with_pattern_options(PatternOptions::regex().size_limit(MAX_PATTERN_BYTES))
            .should_validate_formats(validate_formats)
            .build(document)
            .map_err(|error| {
                if let ValidationErrorKind::Referencing(ReferencingError::Unretrievable { uri, .. }) = error.kind() {
                    return format!(
                        "$ref `{}` is outside the schema: hookpipe resolves no remote or file references; put it under $defs",
                        cut(uri)
                    );
                }
                let message = cut(&error.to_string());
                match error.instance_path().as_str() {
                    "" => format!("is not a valid draft 2020-12 schema: {message}"),
                    at => format!("is not a valid draft 2020-12 schema at {}: {message}", cut(at)),
                }
            })?;
        Ok(RecordSchema { validator })
    }

    /// Checks one record: `Ok` when it satisfies the schema, else its first errors. Valid
    /// records take the validator's fast path (no error paths are built).
    pub fn check(&self, record: &Value) -> Result<(), Violations> {
        if self.validator.is_valid(record) {
            return Ok(());
        }
        let mut errors = Vec::new();
        let mut truncated = false;
        for error in self.validator.iter_errors(record) {
            if errors.len() == MAX_ERRORS_PER_RECORD {
                truncated = true;
                break;
            }
            errors.push(Violation {
                instance_path: cut(error.instance_path().as_str()),
                schema_path: cut(error.schema_path().as_str()),
                message: cut(&error.masked().to_string()),
            });
        }
        if errors.is_empty() {
            // `is_valid` and `iter_errors` disagreeing would be the crate's bug: still invalid.
            errors.push(Violation {
                instance_path: String::new(),
                schema_path: String::new(),
                message: "does not match the schema".into(),
            });
        }
        Err(Violations { errors, truncated })
    }
}

/// The retriever of a schema compiled here: every `$ref` outside the document is refused, so a
/// schema can neither reach the network nor read a file.
struct NoRetrieval;

impl Retrieve for NoRetrieval {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("`{}` is outside the schema", cut(uri.as_str())).into())
    }
}

/// Most schema nodes a schema may have once its `$ref`s are expanded (each reference counted as
/// the schema it names): what validating one value may walk.
pub const MAX_EXPANDED_NODES: usize = 100_000;
/// Longest chain of `$ref`s through one another.
const MAX_REFERENCE_CHAIN: usize = 64;

/// Refuses the references that would make validation unbounded. The crate reports a record's
/// errors against a recursive schema in time exponential in the record's depth when the
/// recursion branches (`anyOf` of two `$ref`s back to where they are), and references that fan
/// out (`a` naming `b` twice, `b` naming `c` twice, …) multiply its work without recursion. So a
/// `$ref` must point into the document (`#` or `#/…`), never lead back to a schema it is inside
/// of, and the schema expanded must stay under [`MAX_EXPANDED_NODES`]. `$dynamicRef` and a
/// nested `$id` (which changes what `#/…` means below it) are refused for the same reason.
fn check_references(document: &Value) -> Result<(), String> {
    let mut walk = ReferenceWalk {
        document,
        expanded: std::collections::HashMap::new(),
        inside: Vec::new(),
    };
    walk.size(document, 0).map(|_| ())
}

/// The walk of [`check_references`]: each node's expanded size, computed once.
struct ReferenceWalk<'a> {
    document: &'a Value,
    expanded: std::collections::HashMap<*const Value, usize>,
    inside: Vec<*const Value>,
}

impl<'a> ReferenceWalk<'a> {
    fn size(&mut self, node: &'a Value, chain: usize) -> Result<usize, String> {
        let key = node as *const Value;
        if let Some(size) = self.expanded.get(&key) {
            return Ok(*size);
        }
        if self.inside.contains(&key) {
            return Err(
                "is recursive (a $ref leads back to a schema it is inside of): hookpipe refuses \
                        recursive schemas, whose errors can take time exponential in a record's depth"
                    .into(),
            );
        }
        self.inside.push(key);
        let mut total = 1usize;
        match node {
            Value::Object(map) => {
                for (keyword, value) in map {
                    let size = match (keyword.as_str(), value) {
                        ("$ref", Value::String(reference)) => self.reference(reference, chain)?,
                        ("$dynamicRef" | "$recursiveRef", _) => {
                            return Err(format!("{keyword} is not supported: use $ref to a place under $defs"))
                        }
                        ("$id", Value::String(_)) if !std::ptr::eq(node, self.document) => {
                            return Err("$id is only allowed at the schema's root".into())
                        }
                        _ => self.size(value, chain)?,
                    };
                    total = total.saturating_add(size);
                }
            }
            Value::Array(items) => {
                for item in items {
                    total = total.saturating_add(self.size(item, chain)?);
                }
            }
            _ => {}
        }
        if total > MAX_EXPANDED_NODES {
            return Err(format!(
                "has more than {MAX_EXPANDED_NODES} schema nodes once its references are expanded"
            ));
        }
        self.inside.pop();
        self.expanded.insert(key, total);
        Ok(total)
    }

    fn reference(&mut self, reference: &str, chain: usize) -> Result<usize, String> {
        let Some(fragment) = reference.strip_prefix('#') else {
            return Err(format!(
                "$ref `{}` is outside the schema: hookpipe resolves no remote or file references; put it under $defs",
                cut(reference)
            ));
        };
        if !fragment.is_empty() && !fragment.starts_with('/') {
            return Err(format!(
                "$ref `{}`: only references to a place in the schema (`#`, `#/$defs/…`) are supported",
                cut(reference)
            ));
        }
        if chain >= MAX_REFERENCE_CHAIN {
            return Err(format!(
                "$refs lead through one another more than {MAX_REFERENCE_CHAIN} times"
            ));
        }
        let target = self
            .document
            .pointer(&percent_decoded(fragment))
            .ok_or_else(|| format!("$ref `{}` points to nothing in the schema", cut(reference)))?;
        self.size(target, chain + 1)
    }
}

/// A URI fragment's `%XX` escapes decoded (a JSON pointer in a `$ref` is written as a fragment).
fn percent_decoded(fragment: &str) -> String {
    let bytes = fragment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                index += 3;
            }
            (byte, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Nesting depth of a value (a scalar is 0, `{}` is 1), without recursion.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, level)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        deepest = deepest.max(level + 1);
        stack.extend(children.map(|child| (child, level + 1)));
    }
    deepest
}

/// `text` cut to [`MAX_ERROR_CHARS`] characters with control characters replaced: safe to echo.
fn cut(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_ERROR_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(MAX_ERROR_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order_schema() -> RecordSchema {
        RecordSchema::compile(
            &json!({
                "type": "object",
                "required": ["id", "qty"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "qty": {"type": "integer", "minimum": 1},
                    "email": {"type": "string", "format": "email"},
                    "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}}
                },
                "$defs": {"line": {"type": "object", "required": ["sku"]}}
            }),
            true,
        )
        .unwrap()
    }

    #[test]
    fn valid_records_pass_and_invalid_ones_name_the_place_and_the_keyword() {
        let schema = order_schema();
        assert_eq!(
            schema.check(&json!({"id": "A1", "qty": 2, "lines": [{"sku": "x"}]})),
            Ok(())
        );
        let failed = schema.check(&json!({"id": "A1", "qty": 0})).unwrap_err();
        assert_eq!(
            failed.errors,
            [Violation {
                instance_path: "/qty".into(),
                schema_path: "/properties/qty/minimum".into(),
                message: "value is less than the minimum of 1".into(),
            }]
        );
        assert!(!failed.truncated);
        // Through a `$ref` to `$defs`: the instance path is the record's, not the schema's.
        let failed = schema
            .check(&json!({"id": "A1", "qty": 1, "lines": [{"sku": "x"}, {}]}))
            .unwrap_err();
        assert_eq!(failed.errors[0].instance_path, "/lines/1");
        assert!(
            failed.errors[0].message.contains("\"sku\" is a required property"),
            "{failed:?}"
        );
        // The record itself: the root pointer is "".
        let failed = schema.check(&json!([1, 2])).unwrap_err();
        assert_eq!(failed.errors[0].instance_path, "");
    }

    #[test]
    fn messages_never_quote_the_record() {
        let schema = order_schema();
        let failed = schema
            .check(&json!({"id": "A1", "qty": "s3cr3t-value", "email": "not-an-email-s3cr3t"}))
            .unwrap_err();
        assert_eq!(failed.errors.len(), 2, "{failed:?}");
        for error in &failed.errors {
            assert!(!error.message.contains("s3cr3t"), "{error:?}");
        }
        let messages: Vec<&str> = failed.errors.iter().map(|e| e.message.as_str()).collect();
        assert!(messages.contains(&r#"value is not of type "integer""#), "{messages:?}");
        assert!(messages.contains(&r#"value is not a "email""#), "{messages:?}");
    }

    #[test]
    fn formats_are_assertions_only_when_asked() {
        let document = json!({"type": "string", "format": "date-time"});
        let asserted = RecordSchema::compile(&document, true).unwrap();
        let annotated = RecordSchema::compile(&document, false).unwrap();
        assert!(asserted.check(&json!("yesterday")).is_err());
        assert!(asserted.check(&json!("2026-12-02T13:00:00Z")).is_ok());
        assert!(annotated.check(&json!("yesterday")).is_ok());
        for format in ["uuid", "ipv4", "uri", "date"] {
            let schema = RecordSchema::compile(&json!({"format": format}), true).unwrap();
            assert!(schema.check(&json!("?")).is_err(), "{format} is checked");
        }
    }

    #[test]
    fn errors_are_bounded_in_count_and_length() {
        let schema = RecordSchema::compile(&json!({"items": {"type": "string"}}), true).unwrap();
        let failed = schema.check(&json!((0..10_000).collect::<Vec<_>>())).unwrap_err();
        assert_eq!(failed.errors.len(), MAX_ERRORS_PER_RECORD);
        assert!(failed.truncated);
        let long_key = "k".repeat(5000);
        let schema = RecordSchema::compile(&json!({"additionalProperties": {"type": "integer"}}), true).unwrap();
        let failed = schema.check(&json!({ long_key: "x" })).unwrap_err();
        assert!(failed.errors[0].instance_path.chars().count() <= MAX_ERROR_CHARS + 1);
        assert!(failed.errors[0].instance_path.ends_with('…'));
    }

    #[test]
    fn invalid_schemas_are_refused_with_the_place() {
        let error = RecordSchema::compile(&json!({"type": "nope"}), true).unwrap_err();
        assert!(
            error.starts_with("is not a valid draft 2020-12 schema at /type:"),
            "{error}"
        );
        let error = RecordSchema::compile(&json!({"properties": {"a": {"minimum": "one"}}}), true).unwrap_err();
        assert!(error.contains("at /properties/a/minimum"), "{error}");
        let error = RecordSchema::compile(&json!("object"), true).unwrap_err();
        assert_eq!(error, "must be a JSON object (or true / false)");
        let error = RecordSchema::compile(
            &json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}),
            true,
        )
        .unwrap_err();
        assert!(
            error.starts_with("$schema must be https://json-schema.org/draft/2020-12/schema"),
            "{error}"
        );
        assert!(RecordSchema::compile(&json!({"$schema": format!("{DRAFT_2020_12}#")}), true).is_ok());
        assert!(RecordSchema::compile(&json!(true), true).is_ok());
    }

    #[test]
    fn references_never_leave_the_document() {
        for reference in [
            "https://example.com/schemas/order.json",
            "http://127.0.0.1:1/schema",
            "file:///etc/passwd",
            "other.json#/x",
        ] {
            let error = RecordSchema::compile(&json!({"$ref": reference}), true).unwrap_err();
            assert!(
                error.contains("resolves no remote or file references"),
                "{reference}: {error}"
            );
        }
        // Inside the document: fine, shared definitions too.
        let shared = json!({
            "$defs": {"money": {"type": "object", "required": ["amount"]}},
            "properties": {"total": {"$ref": "#/$defs/money"}, "tax": {"$ref": "#/$defs/money"}}
        });
        let schema = RecordSchema::compile(&shared, true).unwrap();
        assert!(schema
            .check(&json!({"total": {"amount": 1}, "tax": {"amount": 0}}))
            .is_ok());
        let failed = schema.check(&json!({"total": {"amount": 1}, "tax": {}})).unwrap_err();
        assert_eq!(failed.errors[0].instance_path, "/tax");
        for (reference, expected) in [
            ("#/$defs/nowhere", "points to nothing in the schema"),
            ("#anchor", "only references to a place in the schema"),
        ] {
            let error = RecordSchema::compile(&json!({"$defs": {}, "$ref": reference}), true).unwrap_err();
            assert!(error.contains(expected), "{reference}: {error}");
        }
    }

    #[test]
    fn hostile_schema_sizes_are_bounded() {
        // Too deep: refused before the compiler recurses over it.
        let mut deep = json!({"type": "object"});
        for _ in 0..MAX_SCHEMA_DEPTH {
            deep = json!({ "properties": { "a": deep } });
        }
        let error = RecordSchema::compile(&deep, true).unwrap_err();
        assert_eq!(error, format!("nests deeper than {MAX_SCHEMA_DEPTH} levels"));
        // Too large.
        let huge = json!({"enum": vec!["x".repeat(1000); 100]});
        let error = RecordSchema::compile(&huge, true).unwrap_err();
        assert!(error.contains("a schema may have at most 65536"), "{error}");
    }

    #[test]
    fn hostile_schema_patterns_are_bounded() {
        // A pattern the linear engine refuses (back-reference), and one too large to compile.
        assert!(RecordSchema::compile(&json!({"pattern": "(a)\\1"}), true).is_err());
        assert!(RecordSchema::compile(&json!({"pattern": "(\\w{100}){100}"}), true).is_err());
        // A pattern that makes backtracking engines explode runs in linear time here.
        let schema = RecordSchema::compile(&json!({"pattern": "^(a+)+$"}), true).unwrap();
        let evil = format!("{}!", "a".repeat(10_000));
        assert!(schema.check(&json!(evil)).is_err());
    }

    #[test]
    fn hostile_schema_recursion_is_refused() {
        // Branching recursion: the crate's errors for it take time exponential in a record's
        // depth (measured: 11 s at depth 18), so recursive schemas are refused outright.
        let branching = json!({
            "$defs": {"n": {"anyOf": [
                {"type": "object", "properties": {"a": {"$ref": "#/$defs/n"}}, "required": ["b"]},
                {"type": "object", "properties": {"a": {"$ref": "#/$defs/n"}}, "required": ["c"]}
            ]}},
            "$ref": "#/$defs/n"
        });
        let error = RecordSchema::compile(&branching, true).unwrap_err();
        assert!(error.starts_with("is recursive"), "{error}");
        for recursive in [
            json!({"properties": {"a": {"$ref": "#"}}}),
            json!({"items": {"$ref": "#/items"}}),
        ] {
            let error = RecordSchema::compile(&recursive, true).unwrap_err();
            assert!(error.starts_with("is recursive"), "{recursive}: {error}");
        }
        // Fan-out without recursion: 2^30 schemas once expanded, in a few hundred bytes.
        let mut defs = serde_json::Map::new();
        for level in 0..30 {
            let next = format!("#/$defs/d{}", level + 1);
            defs.insert(format!("d{level}"), json!({"anyOf": [{"$ref": next}, {"$ref": next}]}));
        }
        defs.insert("d30".into(), json!({"type": "string"}));
        let error = RecordSchema::compile(&json!({"$defs": defs, "$ref": "#/$defs/d0"}), true).unwrap_err();
        assert!(
            error.contains("schema nodes once its references are expanded"),
            "{error}"
        );
        // A long chain of references, each once: refused past the chain limit.
        let mut defs = serde_json::Map::new();
        for level in 0..100 {
            defs.insert(format!("c{level}"), json!({"$ref": format!("#/$defs/c{}", level + 1)}));
        }
        defs.insert("c100".into(), json!(true));
        let error = RecordSchema::compile(&json!({"$defs": defs, "$ref": "#/$defs/c0"}), true).unwrap_err();
        assert!(error.contains("more than 64 times"), "{error}");
        for keyword in [
            json!({"$dynamicRef": "#meta"}),
            json!({"$defs": {"x": {"$id": "x.json"}}}),
        ] {
            assert!(RecordSchema::compile(&keyword, true).is_err(), "{keyword}");
        }
    }
}
