//! A recipe's validation: every problem named by its field path, so one config error lists
//! them all — and a recipe that validates is one the engine can compile.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::json_path::parse_json_path;
use super::template::{parse_template, Part};
use crate::config::recipe::{RecipeConfig, SecretEncoding, SignatureList};

/// True for a syntactically valid HTTP header name (RFC 9110 token).
pub(crate) fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// HMAC key bytes of a configured secret; the error never quotes the secret.
pub(crate) fn decode_secret(secret: &str, encoding: SecretEncoding) -> Result<Vec<u8>, String> {
    let key = match encoding {
        SecretEncoding::Raw => secret.as_bytes().to_vec(),
        SecretEncoding::Base64 => STANDARD
            .decode(secret.trim())
            .map_err(|_| "is not valid base64".to_owned())?,
        SecretEncoding::Whsec => {
            let b64 = secret.trim();
            let b64 = b64.strip_prefix("whsec_").unwrap_or(b64);
            STANDARD
                .decode(b64)
                .map_err(|_| "is not valid `whsec_<base64>` or base64".to_owned())?
        }
    };
    if key.is_empty() {
        // An empty HMAC key lets anyone sign.
        return Err("decodes to an empty key".to_owned());
    }
    Ok(key)
}

/// `field: reason; field: reason` — the one-line form of a problem list.
pub(crate) fn join_errors(errs: &[(String, String)]) -> String {
    errs.iter()
        .map(|(f, r)| format!("{f}: {r}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl RecipeConfig {
    /// Problems as (field path, reason); empty when the recipe is usable.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs: Vec<(String, String)> = Vec::new();
        let mut err = |field: &str, reason: &str| errs.push((field.to_owned(), reason.to_owned()));

        if self.secrets.is_empty() {
            err("secrets", "at least one secret is required");
        }
        for (i, s) in self.secrets.iter().enumerate() {
            if s.expose().is_empty() {
                err(&format!("secrets[{i}]"), "must not be empty");
            } else if let Err(reason) = decode_secret(s.expose(), self.secret_encoding) {
                err(&format!("secrets[{i}]"), &reason);
            }
        }
        if !valid_header_name(&self.signature_header) {
            err("signature_header", "must be a valid HTTP header name");
        }
        match &self.signature_list {
            SignatureList::Single => {}
            SignatureList::Delimited { delimiter, key } => {
                if delimiter.is_empty() {
                    err("signature_list.delimiter", "must not be empty");
                }
                if key.as_deref().is_some_and(|k| k.is_empty() || k.contains('=')) {
                    err("signature_list.key", "must be non-empty and contain no `=`");
                }
            }
            SignatureList::Versioned { version } => {
                if version.is_empty() || version.contains(',') || version.contains(char::is_whitespace) {
                    err("signature_list.version", "must be non-empty, without `,` or spaces");
                }
            }
        }
        let template = match parse_template(&self.signed_content) {
            Ok(t) => Some(t),
            Err(reason) => {
                err("signed_content", &reason);
                None
            }
        };
        let has_ts_source = self.timestamp_header.is_some() || self.timestamp_key.is_some();
        if self.timestamp_header.is_some() && self.timestamp_key.is_some() {
            err(
                "timestamp_key",
                "set either timestamp_header or timestamp_key, not both",
            );
        }
        if let Some(h) = &self.timestamp_header {
            if !valid_header_name(h) {
                err("timestamp_header", "must be a valid HTTP header name");
            }
        }
        if let Some(k) = &self.timestamp_key {
            let keyed = matches!(&self.signature_list, SignatureList::Delimited { key: Some(_), .. });
            if k.is_empty() || k.contains('=') {
                err("timestamp_key", "must be non-empty and contain no `=`");
            } else if !keyed {
                err(
                    "timestamp_key",
                    "needs signature_list = { style = \"delimited\", delimiter = ..., key = ... }",
                );
            }
        }
        if let Some(h) = &self.id_header {
            if !valid_header_name(h) {
                err("id_header", "must be a valid HTTP header name");
            }
        }
        if let Some(t) = &template {
            let uses = |p: &Part| t.contains(p);
            if uses(&Part::Timestamp) && !has_ts_source {
                err(
                    "signed_content",
                    "uses {timestamp} but neither timestamp_header nor timestamp_key is set",
                );
            }
            if has_ts_source && !uses(&Part::Timestamp) {
                // An unsigned timestamp can be refreshed by whoever replays the request.
                err("signed_content", "must include {timestamp} when a timestamp is checked");
            }
            if uses(&Part::Id) && self.id_header.is_none() {
                err("signed_content", "uses {id} but id_header is not set");
            }
            if self.id_header.is_some() && !uses(&Part::Id) {
                err("id_header", "is set but signed_content has no {id}");
            }
            if !uses(&Part::Body) && !uses(&Part::FormParams) {
                err(
                    "signed_content",
                    "must include {body} or {form_params}, or the payload is not authenticated",
                );
            }
        }
        if self.tolerance_secs.is_some() && !has_ts_source {
            err(
                "tolerance_secs",
                "has no effect without timestamp_header or timestamp_key",
            );
        }
        if let Some(h) = &self.delivery_id_header {
            if !valid_header_name(h) {
                err("delivery_id_header", "must be a valid HTTP header name");
            }
        }
        if let Some(p) = &self.delivery_id_json {
            if let Err(reason) = parse_json_path(p) {
                err("delivery_id_json", &reason);
            }
        }
        if self.body_hash_query.as_deref().is_some_and(str::is_empty) {
            err("body_hash_query", "must not be empty");
        }
        if let Some(fb) = &self.fallback {
            if !valid_header_name(&fb.header) {
                err("fallback.header", "must be a valid HTTP header name");
            }
            if !matches!(self.signature_list, SignatureList::Single) {
                err("fallback", "is only supported with signature_list style \"single\"");
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::verification::VerificationConfig;

    fn recipe(toml_src: &str) -> RecipeConfig {
        toml::from_str(toml_src).expect("recipe parses")
    }

    fn errors_for(r: &RecipeConfig) -> Vec<String> {
        r.validate().into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn validation_names_the_offending_field() {
        let base = r#"
            algorithm = "sha256"
            encoding = "hex"
            signature_header = "X-Sig"
            secrets = ["s"]
        "#;
        assert!(recipe(base).validate().is_empty());
        let bad_template = recipe(&format!("{base}\nsigned_content = \"{{nope}}.{{body}}\""));
        assert_eq!(errors_for(&bad_template), vec!["signed_content"]);
        let unsigned_ts = recipe(&format!(
            "{base}\nsigned_content = \"{{body}}\"\ntimestamp_header = \"X-Ts\""
        ));
        assert_eq!(errors_for(&unsigned_ts), vec!["signed_content"]);
        let no_body = recipe(&format!("{base}\nsigned_content = \"{{url}}\""));
        assert_eq!(errors_for(&no_body), vec!["signed_content"]);
        let orphan_ts = recipe(&format!("{base}\nsigned_content = \"{{timestamp}}{{body}}\""));
        assert_eq!(errors_for(&orphan_ts), vec!["signed_content"]);
        let key_without_list = recipe(&format!(
            "{base}\nsigned_content = \"{{timestamp}}{{body}}\"\ntimestamp_key = \"t\""
        ));
        assert_eq!(errors_for(&key_without_list), vec!["timestamp_key"]);
        let tolerance_alone = recipe(&format!("{base}\ntolerance_secs = 5"));
        assert_eq!(errors_for(&tolerance_alone), vec!["tolerance_secs"]);
        let bad_header = recipe(&base.replace("X-Sig", "X Sig"));
        assert_eq!(errors_for(&bad_header), vec!["signature_header"]);
        let no_secrets = recipe(&base.replace("[\"s\"]", "[]"));
        assert_eq!(errors_for(&no_secrets), vec!["secrets"]);
        let empty_secret = recipe(&base.replace("[\"s\"]", "[\"ok\", \"\"]"));
        assert_eq!(errors_for(&empty_secret), vec!["secrets[1]"]);
        let bad_b64 = recipe(&format!("{base}\nsecret_encoding = \"base64\"").replace("[\"s\"]", "[\"%%%\"]"));
        assert_eq!(errors_for(&bad_b64), vec!["secrets[0]"]);
        let empty_whsec = recipe(&format!("{base}\nsecret_encoding = \"whsec\"").replace("[\"s\"]", "[\"whsec_\"]"));
        assert_eq!(errors_for(&empty_whsec), vec!["secrets[0]"]);
        let bad_list = recipe(&format!(
            "{base}\nsignature_list = {{ style = \"delimited\", delimiter = \"\" }}"
        ));
        assert_eq!(errors_for(&bad_list), vec!["signature_list.delimiter"]);
        let bad_path = recipe(&format!("{base}\ndelivery_id_json = \"a..b\""));
        assert_eq!(errors_for(&bad_path), vec!["delivery_id_json"]);
        // Errors never quote a secret.
        let msg = VerificationConfig::Recipe(bad_b64).compile().unwrap_err();
        assert!(!msg.contains("%%%"), "{msg}");
    }

    #[test]
    fn unknown_fields_and_list_styles_are_rejected() {
        let r: Result<RecipeConfig, _> = toml::from_str(
            "algorithm = \"sha256\"\nencoding = \"hex\"\nsignature_header = \"X\"\nsecrets = [\"s\"]\nsigned_contnet = \"{body}\"",
        );
        assert!(r.unwrap_err().to_string().contains("signed_contnet"));
        let r: Result<RecipeConfig, _> = toml::from_str(
            "algorithm = \"sha256\"\nencoding = \"hex\"\nsignature_header = \"X\"\nsecrets = [\"s\"]\nsignature_list = { style = \"csv\" }",
        );
        assert!(r.is_err());
        let r: RecipeConfig = toml::from_str(
            "algorithm = \"sha256\"\nencoding = \"hex\"\nsignature_header = \"X\"\nsecrets = [\"s\"]\nsignature_list = { style = \"none\" }",
        )
        .unwrap();
        assert_eq!(r.signature_list, SignatureList::Single);
    }
}
