//! Schema validation of a request's records in the parse stage: `reject` refuses the request at
//! its first invalid record, `quarantine` splits the records between pages and quarantine.
//! It runs once the body is records, so XML, form, CSV and multipart records are checked as the
//! JSON they are published as. Listeners without a schema never get here. Pure logic: no actix
//! types.
//!
//! Each record is parsed once, from the text that will be published, into the value checked.

use crate::config::schema::{SchemaOptions, SchemaPolicy};
use crate::json_schema::{RecordSchema, Violations};
use crate::pipeline::parse::records::Record;
use crate::telemetry::events::SchemaChecked;

/// A listener's compiled schema and its policy.
#[derive(Debug)]
pub struct ListenerSchema {
    schema: RecordSchema,
    /// What happens to records that fail it.
    pub policy: SchemaPolicy,
}

impl ListenerSchema {
    /// Compiles a listener's `schema`; the error is `(key relative to the listener, message)`.
    pub fn compile(options: &SchemaOptions) -> Result<ListenerSchema, (String, String)> {
        Ok(ListenerSchema {
            schema: options.compile()?,
            policy: options.policy,
        })
    }
}

/// A record that failed its listener's schema under `quarantine`.
#[derive(Debug)]
pub struct Quarantined {
    /// Its place in its request (its id is `{request_id}-{index}`, as if it had been paged).
    pub index: usize,
    /// The record, as it would have been published.
    pub record: Record,
    /// Why.
    pub violations: Violations,
}

/// A request's records after the check.
#[derive(Debug, Default)]
pub struct Checked {
    /// The records to page, in order.
    pub valid: Vec<Record>,
    /// Each valid record's place in its request when some were quarantined; `None`: 0, 1, 2, …
    pub indexes: Option<Vec<usize>>,
    /// The records to quarantine, in order.
    pub quarantined: Vec<Quarantined>,
}

/// How many of a request's records were checked valid and how many were quarantined: what a
/// response template sees as `records_valid` and `records_quarantined`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SchemaCounts {
    /// Records that satisfy the schema (paged).
    pub valid: usize,
    /// Records that do not (quarantined).
    pub quarantined: usize,
}

/// A `reject` listener's answer to a record that fails its schema: 422, naming the record, the
/// place in it and what is wrong (never the record's values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {record} does not match the listener's schema{}: {message}", at(.instance_path))]
pub struct Rejection {
    /// The record's place in the request (0 for the first).
    pub record: usize,
    /// JSON pointer to the failing place in the record (`""`: the record itself).
    pub instance_path: String,
    /// JSON pointer to the schema keyword that failed.
    pub schema_path: String,
    /// What is wrong.
    pub message: String,
}

fn at(instance_path: &str) -> String {
    if instance_path.is_empty() {
        String::new()
    } else {
        format!(" at {instance_path}")
    }
}

/// Checks a request's records against its listener's schema, counting them by outcome.
pub fn check(schema: &ListenerSchema, listener_id: &str, records: Vec<Record>) -> Result<Checked, Rejection> {
    let mut checked = Checked::default();
    let mut valid_indexes = Vec::with_capacity(records.len());
    for (index, record) in records.into_iter().enumerate() {
        let violations = match schema.schema.check(&record.to_value()) {
            Ok(()) => {
                checked.valid.push(record);
                valid_indexes.push(index);
                continue;
            }
            Err(violations) => violations,
        };
        if schema.policy == SchemaPolicy::Reject {
            SchemaChecked {
                listener: listener_id,
                valid: checked.valid.len(),
                rejected: 1,
                quarantined: 0,
            }
            .emit();
            let first = violations.errors.into_iter().next().unwrap_or_default();
            return Err(Rejection {
                record: index,
                instance_path: first.instance_path,
                schema_path: first.schema_path,
                message: first.message,
            });
        }
        checked.quarantined.push(Quarantined {
            index,
            record,
            violations,
        });
    }
    if !checked.quarantined.is_empty() {
        checked.indexes = Some(valid_indexes);
    }
    SchemaChecked {
        listener: listener_id,
        valid: checked.valid.len(),
        rejected: 0,
        quarantined: checked.quarantined.len(),
    }
    .emit();
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(policy: &str) -> ListenerSchema {
        let options: SchemaOptions = serde_json::from_value(json!({
            "policy": policy,
            "document": {"type": "object", "required": ["id"], "properties": {"qty": {"type": "integer", "minimum": 1}}}
        }))
        .unwrap();
        ListenerSchema::compile(&options).unwrap()
    }

    fn records(values: &[serde_json::Value]) -> Vec<Record> {
        values.iter().map(|value| Record::from_value(value).unwrap()).collect()
    }

    fn counted(listener: &str, outcome: &str) -> u64 {
        crate::telemetry::METRICS
            .schema_records
            .with_label_values(&[listener, outcome])
            .get()
    }

    #[test]
    fn reject_refuses_at_the_first_invalid_record_naming_it() {
        let schema = schema("reject");
        let before = counted("schema-reject", "rejected");
        let rejection = check(
            &schema,
            "schema-reject",
            records(&[json!({"id": 1}), json!({"id": 2, "qty": 0}), json!({})]),
        )
        .unwrap_err();
        assert_eq!(
            rejection,
            Rejection {
                record: 1,
                instance_path: "/qty".into(),
                schema_path: "/properties/qty/minimum".into(),
                message: "value is less than the minimum of 1".into(),
            }
        );
        assert_eq!(
            rejection.to_string(),
            "record 1 does not match the listener's schema at /qty: value is less than the minimum of 1"
        );
        let root = check(&schema, "schema-reject", records(&[json!({})])).unwrap_err();
        assert_eq!(
            root.to_string(),
            "record 0 does not match the listener's schema: \"id\" is a required property"
        );
        assert!(counted("schema-reject", "rejected") >= before + 2);

        let all_valid = check(&schema, "schema-reject", records(&[json!({"id": 1}), json!({"id": 2})])).unwrap();
        assert_eq!(
            (all_valid.valid.len(), all_valid.indexes, all_valid.quarantined.len()),
            (2, None, 0)
        );
    }

    #[test]
    fn quarantine_splits_the_records_keeping_their_places() {
        let schema = schema("quarantine");
        let before = (counted("schema-q", "valid"), counted("schema-q", "quarantined"));
        let checked = check(
            &schema,
            "schema-q",
            records(&[
                json!({"id": 0}),
                json!({"qty": 5}),
                json!({"id": 2}),
                json!({"id": 3, "qty": -1}),
                json!({"id": 4}),
            ]),
        )
        .unwrap();
        let valid: Vec<&str> = checked.valid.iter().map(Record::json).collect();
        assert_eq!(valid, [r#"{"id":0}"#, r#"{"id":2}"#, r#"{"id":4}"#]);
        assert_eq!(checked.indexes, Some(vec![0, 2, 4]));
        let quarantined: Vec<(usize, &str, &str)> = checked
            .quarantined
            .iter()
            .map(|q| (q.index, q.record.json(), q.violations.errors[0].instance_path.as_str()))
            .collect();
        assert_eq!(
            quarantined,
            [(1, r#"{"qty":5}"#, ""), (3, r#"{"id":3,"qty":-1}"#, "/qty")]
        );
        // Tests share the process-wide metrics: they grew, by at least these records.
        assert!(counted("schema-q", "valid") >= before.0 + 3);
        assert!(counted("schema-q", "quarantined") >= before.1 + 2);

        let none_valid = check(&schema, "schema-q", records(&[json!({}), json!([])])).unwrap();
        assert_eq!(
            (none_valid.valid.len(), none_valid.indexes, none_valid.quarantined.len()),
            (0, Some(vec![]), 2)
        );
    }
}
