//! Listener templates (handlebars with hookpipe's helpers) rendered over hostile records. Two
//! halves, chosen by the first byte:
//! - hostile records: the templates a listener has (trace key, data URI; every helper of the
//!   README) over records parsed from the input as the JSON parser makes them. Rendering ends
//!   (libFuzzer's timeout), its output is bounded by the record's size (at most 8 bytes per
//!   byte, plus the template's text), and an error names no string of the record;
//! - hostile templates: a template from the input over a fixed record: `validate` and the set's
//!   `add` agree, and rendering a template that was added never panics.
#![no_main]

use hookpipe::fuzzing::serde_json::{self, Value};
use hookpipe::pipeline::parse::json::parse_json;
use hookpipe::templates::{validate, TemplateSet};
use hookpipe_fuzz::Input;
use libfuzzer_sys::fuzz_target;

/// Templates as listeners write them (README › Templates, config/hookpipe.toml).
const TEMPLATES: &[&str] = &[
    "{{id}}",
    "{{data.id}}-{{data.type}}",
    "https://shop.example.com/orders/{{id}}",
    r#"{{join "_" a b}}"#,
    r#"{{join "-" sku tags nothing}}"#,
    "{{lowercase email}}",
    "{{uppercase country}}",
    "{{trim name}}",
    r#"{{replace phone "-" ""}}"#,
    "{{substring sku 0 3}}",
    r#"{{substring sku 2}}"#,
    r#"{{default region "none"}}"#,
    r#"{{dateFormat "YYYY-MM-DD" created_at}}"#,
    r#"{{dateFormat "DD/MM/YYYY HH:mm" ts "" "+02:00"}}"#,
    r#"{{dateFormat "YYYY-MM-DD[T]HH:mm:ss.SSSZ" date "DD.MM.YYYY"}}"#,
    r#"{{dateFormat "X" created_at}}"#,
    "{{add qty 1}}",
    "{{subtract total discount}}",
    "{{multiply qty 3}}",
    "{{divide total 4}}",
    "{{jsonSerialize customer}}",
    "{{jsonSerialize this}}",
    "{{base64 user}}",
    r#"{{hash "sha256" email}}"#,
    r#"{{hash "sha512" email}}"#,
    r#"{{join "_" (lowercase country) (substring sku 0 3)}}"#,
    "{{#each items}}{{this.sku}},{{/each}}",
    "{{#if id}}{{id}}{{else}}none{{/if}}",
    "{{#with customer}}{{email}}{{/with}}",
    "{{lookup this \"id\"}}",
];

/// A record for hostile templates: a bit of everything, arrays short (nested `each` over them
/// stays small).
const RECORD: &str = r#"{"id":"r-1","n":12.5,"qty":"4","neg":-3,"big":1e300,"email":"Ada@Example.COM",
"created_at":"2024-03-05T23:30:00-02:00","ts":1709681400000,"date":"05.03.2024","empty":"",
"tags":["red","big"],"items":[{"sku":"A1","q":1},{"sku":"B2","q":null}],"t":true,"z":null,
"customer":{"id":7,"name":"  Ada  ","tags":["a"]},"text":"é\u0000\"<&>"}"#;

/// Strings of a value, to look for in an error.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
        Value::Object(map) => {
            for (key, item) in map {
                out.push(key.clone());
                strings(item, out);
            }
        }
        _ => {}
    }
}

/// The fields the templates above read.
const FIELDS: &[&str] = &[
    "id", "data", "a", "b", "sku", "tags", "nothing", "email", "country", "name", "phone", "region",
    "created_at", "ts", "date", "qty", "total", "discount", "customer", "user", "items",
];

/// The errors the template gives over records that hold nothing of a hostile record: an empty
/// one, and ones whose every field is a value of each JSON type. Their text is the helpers' own
/// (`dateFormat: no date`), so a hostile record's string found in one of them is not a leak (a
/// record key `teFormat: no date` was reported as one).
fn fixed_errors(set: &TemplateSet) -> Vec<String> {
    let fillers = [r#"1"#, r#""x""#, "true", "null", "[]", "{}", r#"[1,"x"]"#, r#"{"id":1}"#];
    let mut records = vec!["{}".to_string()];
    records.extend(fillers.iter().map(|filler| {
        let fields: Vec<String> = FIELDS.iter().map(|field| format!("{field:?}:{filler}")).collect();
        format!("{{{}}}", fields.join(","))
    }));
    records
        .iter()
        .filter_map(|record| serde_json::from_str::<Value>(record).ok())
        .filter_map(|record| set.render("t", &record).err())
        .collect()
}

fn hostile_records(mut input: Input<'_>) {
    let template = TEMPLATES[input.below(TEMPLATES.len())];
    let strict = input.flag();
    let Ok(text) = std::str::from_utf8(input.rest()) else {
        return;
    };
    let Ok(records) = parse_json(text, None, 128) else {
        return;
    };
    let mut set = TemplateSet::new(strict);
    set.add("t", template).expect("a listener's template compiles");
    for record in &records {
        match set.render("t", record) {
            Ok(output) => assert!(
                output.len() <= 8 * record.json().len() + template.len() + 128,
                "{} bytes rendered from a record of {}",
                output.len(),
                record.json().len()
            ),
            Err(reason) => {
                assert!(reason.len() <= 512, "a long error: {} bytes", reason.len());
                let mut found = Vec::new();
                strings(&record.to_value(), &mut found);
                let fixed = fixed_errors(&set);
                for text in found.iter().filter(|text| {
                    text.len() >= 12
                        && !template.contains(text.as_str())
                        && !fixed.iter().any(|error| error.contains(text.as_str()))
                }) {
                    assert!(
                        !reason.contains(text.as_str()),
                        "the error shows record content {text:?}: {reason}"
                    );
                }
            }
        }
    }
}

fn hostile_template(input: Input<'_>) {
    let Ok(template) = std::str::from_utf8(input.rest()) else {
        return;
    };
    if template.len() > 256 {
        return;
    }
    let record: Value = serde_json::from_str(RECORD).expect("a valid record");
    for strict in [false, true] {
        let mut set = TemplateSet::new(strict);
        let added = set.add("t", template);
        assert_eq!(
            added.is_ok(),
            validate(template).is_ok(),
            "validate and add disagree on {template:?}"
        );
        if added.is_ok() {
            if let Ok(output) = set.render("t", &record) {
                assert!(output.len() < 64 << 20);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    if input.flag() {
        hostile_records(input)
    } else {
        hostile_template(input)
    }
});
