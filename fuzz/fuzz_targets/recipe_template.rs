//! A recipe's `signed_content` template parser. Invariants: it agrees with a reference parser
//! written here from the README's rules (`{name}` a placeholder of six, `{{` and `}}` literal
//! braces, any other brace an error); literal parts are never empty nor adjacent; writing the
//! parts back as a template and parsing that gives the same parts; and a recipe with the
//! template compiles exactly when the template parses and signs the payload (`{body}` or
//! `{form_params}`), with the timestamp and id headers it uses.
#![no_main]

use hookpipe::config::recipe::{
    HmacAlgorithm, RecipeConfig, SecretEncoding, SigEncoding, SignatureList, TimestampFormat,
};
use hookpipe::config::verification::VerificationConfig;
use hookpipe::fuzzing::{parse_template, Part};
use hookpipe::secret::Secret;
use libfuzzer_sys::fuzz_target;

fn reference(template: &str) -> Option<Vec<Part>> {
    let chars: Vec<char> = template.chars().collect();
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut at = 0;
    let flush = |literal: &mut String, parts: &mut Vec<Part>| {
        if !literal.is_empty() {
            parts.push(Part::Lit(std::mem::take(literal).into_bytes()));
        }
    };
    while at < chars.len() {
        let next = chars.get(at + 1).copied();
        match (chars[at], next) {
            ('{', Some('{')) => {
                literal.push('{');
                at += 2;
            }
            ('}', Some('}')) => {
                literal.push('}');
                at += 2;
            }
            ('{', _) => {
                let close = chars[at..].iter().position(|c| *c == '}')? + at;
                let name: String = chars[at + 1..close].iter().collect();
                let part = match name.as_str() {
                    "timestamp" => Part::Timestamp,
                    "id" => Part::Id,
                    "url" => Part::Url,
                    "method" => Part::Method,
                    "body" => Part::Body,
                    "form_params" => Part::FormParams,
                    _ => return None,
                };
                flush(&mut literal, &mut parts);
                parts.push(part);
                at = close + 1;
            }
            ('}', _) => return None,
            (c, _) => {
                literal.push(c);
                at += 1;
            }
        }
    }
    flush(&mut literal, &mut parts);
    Some(parts)
}

fn write(parts: &[Part]) -> String {
    let mut template = String::new();
    for part in parts {
        match part {
            Part::Lit(bytes) => {
                let text = std::str::from_utf8(bytes).expect("literals are text");
                template.push_str(&text.replace('{', "{{").replace('}', "}}"));
            }
            Part::Timestamp => template.push_str("{timestamp}"),
            Part::Id => template.push_str("{id}"),
            Part::Url => template.push_str("{url}"),
            Part::Method => template.push_str("{method}"),
            Part::Body => template.push_str("{body}"),
            Part::FormParams => template.push_str("{form_params}"),
        }
    }
    template
}

fuzz_target!(|data: &[u8]| {
    let Ok(template) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_template(template);
    match (&parsed, reference(template)) {
        (Ok(parts), Some(expected)) => {
            assert_eq!(parts, &expected, "{template:?}");
            for pair in parts.windows(2) {
                assert!(!matches!(pair, [Part::Lit(_), Part::Lit(_)]), "adjacent literals");
            }
            assert!(parts
                .iter()
                .all(|part| !matches!(part, Part::Lit(bytes) if bytes.is_empty())));
            assert_eq!(
                parse_template(&write(parts)).as_ref(),
                Ok(parts),
                "written back: {:?}",
                write(parts)
            );
        }
        (Err(reason), None) => assert!(!reason.is_empty() && reason.len() < 300),
        (parsed, expected) => panic!("{template:?}: parsed {parsed:?}, reference {expected:?}"),
    }
    let uses = |part: &Part| parsed.as_ref().is_ok_and(|parts| parts.contains(part));
    let recipe = RecipeConfig {
        algorithm: HmacAlgorithm::Sha256,
        encoding: SigEncoding::Hex,
        signature_header: "X-Signature".into(),
        prefix: None,
        signature_list: SignatureList::Single,
        signed_content: template.to_string(),
        timestamp_header: uses(&Part::Timestamp).then(|| "X-Ts".to_string()),
        timestamp_key: None,
        timestamp_format: TimestampFormat::Unix,
        id_header: uses(&Part::Id).then(|| "X-Id".to_string()),
        tolerance_secs: None,
        secret_encoding: SecretEncoding::Raw,
        secrets: vec![Secret::new("secret")],
        delivery_id_header: None,
        delivery_id_json: None,
        body_hash_query: None,
        try_default_port: false,
        fallback: None,
        url_verification_challenge: false,
    };
    let compiles = VerificationConfig::Recipe(recipe).compile().is_ok();
    let signs_payload = uses(&Part::Body) || uses(&Part::FormParams);
    assert_eq!(compiles, parsed.is_ok() && signs_payload, "{template:?}");
});
