//! `hmac_sha256`: the HMAC-SHA256 of a value under a key the template never sees, hex or base64 —
//! a helper only handshake answers may call (Zoom's `encryptedToken`, Twitter's CRC
//! `response_token`), registered with its key in the handshake's own template set.

use base64::Engine as _;
use handlebars::{Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, ScopedJson};
use hmac::{Hmac, Mac};
use serde_json::Value as Json;
use sha2::Sha256;

use super::args::Args;

/// The helper's name in templates.
pub(super) const NAME: &str = "hmac_sha256";

/// The encodings `hmac_sha256` writes, by name.
pub(super) const ENCODINGS: &[&str] = &["hex", "base64"];

/// `{{hmac_sha256 value "hex"|"base64"}}` with its key. No `Debug`: the key stays in here.
pub(super) struct HmacHelper {
    /// HMAC key bytes.
    pub(super) key: Vec<u8>,
}

/// HMAC-SHA256 of `data` under `key`, in `encoding` (`hex` or `base64`).
pub fn hmac_sha256(key: &[u8], data: &[u8], encoding: &str) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    let digest = mac.finalize().into_bytes();
    match encoding {
        "hex" => Some(digest.iter().map(|byte| format!("{byte:02x}")).collect()),
        "base64" => Some(base64::engine::general_purpose::STANDARD.encode(digest)),
        _ => None,
    }
}

impl HelperDef for HmacHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        registry: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let args = Args {
            helper: NAME,
            params: helper.params(),
            strict: registry.strict_mode(),
        };
        let value = args.text(0)?;
        let encoding = args.text(1)?;
        hmac_sha256(&self.key, value.as_bytes(), &encoding)
            .map(|text| ScopedJson::Derived(Json::String(text)))
            .ok_or_else(|| args.error("the encoding must be \"hex\" or \"base64\""))
    }
}

#[cfg(test)]
mod tests {
    use super::hmac_sha256;

    /// RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
    #[test]
    fn rfc_4231_vector_in_both_encodings() {
        let hex = hmac_sha256(b"Jefe", b"what do ya want for nothing?", "hex").unwrap();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        let base64 = hmac_sha256(b"Jefe", b"what do ya want for nothing?", "base64").unwrap();
        assert_eq!(base64, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=");
        assert_eq!(hmac_sha256(b"k", b"v", "binary"), None);
    }
}
