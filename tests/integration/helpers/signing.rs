//! Signatures the tests compute to send verified requests.

/// HMAC-SHA256 of `data` under `key`, lower-case hex: the signature most tests send.
pub fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}
