//! Secrets at rest: every secret of a listener stored in the state topic is sealed with
//! AES-256-GCM under the operator's key (`server.secrets_key`), so read access to Kafka does not
//! reveal HMAC keys, passwords or tokens.
//!
//! Stored form of one value: `enc:v1:<key id>:<base64url(nonce || ciphertext || tag)>`, where the
//! key id is the first 8 hex digits of the SHA-256 of the key and the nonce is 96 random bits.
//! The additional authenticated data is the listener id, so a sealed value copied into another
//! listener does not open. The key id beside each value lets values sealed under a previous key
//! (`server.previous_secrets_keys`) still open after a rotation, while new writes use the current
//! key. A value without the prefix is a clear value written by an older version (migration).

use std::fmt;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// Prefix of a sealed value (format version 1).
pub const SEALED_PREFIX: &str = "enc:v1:";
/// Length of a secrets key in bytes (AES-256).
pub const KEY_LEN: usize = 32;
/// Hex digits of a key id.
const KEY_ID_LEN: usize = 8;

/// Why a secret could not be sealed or opened. Messages never contain a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// Sealing needs a current key and none is configured.
    #[error("no secrets key configured: set server.secrets_key (HOOKPIPE_SERVER__SECRETS_KEY)")]
    NoKey,
    /// The value was sealed under a key this instance does not have.
    #[error("secret sealed under unknown key id {key_id}")]
    UnknownKey {
        /// Key id written beside the value.
        key_id: String,
    },
    /// The key is known but the value does not open: altered, or moved from another listener.
    #[error("secret sealed under key id {key_id} does not open (altered, or from another listener)")]
    Unopenable {
        /// Key id written beside the value.
        key_id: String,
    },
    /// The value starts with the prefix but is not `enc:v1:<key id>:<base64url>`.
    #[error("malformed sealed secret")]
    Malformed,
    /// The system's random generator (or the cipher) failed.
    #[error("cannot seal: the system random generator or cipher failed")]
    Crypto,
}

/// How a stored value was found, from freshest to stalest (ordered, so the stalest of several
/// values is their maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sealing {
    /// Sealed under the current key.
    Current,
    /// Sealed under a previous key: open, but due for resealing.
    Previous,
    /// Stored in clear by an older version: due for sealing.
    Clear,
}

/// One AES-256-GCM key and its id.
struct SecretsKey {
    id: String,
    key: LessSafeKey,
}

impl SecretsKey {
    fn new(bytes: &[u8; KEY_LEN]) -> SecretsKey {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).expect("AES-256-GCM takes a 32-byte key");
        SecretsKey {
            id: key_id(bytes),
            key: LessSafeKey::new(unbound),
        }
    }
}

/// The current key (seals and opens) and the previous ones (open only).
pub struct Keyring {
    current: Option<SecretsKey>,
    previous: Vec<SecretsKey>,
    random: SystemRandom,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Keyring")
            .field("current", &self.current_key_id())
            .field("previous", &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// A keyring from `server.secrets_key` and `server.previous_secrets_keys`; errors name the key.
    pub fn new(current: Option<&Secret>, previous: &[Secret]) -> Result<Keyring, String> {
        let current = current
            .map(|secret| {
                parse_key(secret.expose())
                    .map(|bytes| SecretsKey::new(&bytes))
                    .map_err(|message| format!("server.secrets_key: {message}"))
            })
            .transpose()?;
        let previous = previous
            .iter()
            .enumerate()
            .map(|(index, secret)| {
                parse_key(secret.expose())
                    .map(|bytes| SecretsKey::new(&bytes))
                    .map_err(|message| format!("server.previous_secrets_keys[{index}]: {message}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Keyring {
            current,
            previous,
            random: SystemRandom::new(),
        })
    }

    /// Id of the key new values are sealed under, if there is one.
    pub fn current_key_id(&self) -> Option<&str> {
        self.current.as_ref().map(|key| key.id.as_str())
    }

    /// Seals one value for `listener_id` under the current key.
    pub fn seal(&self, plaintext: &str, listener_id: &str) -> Result<String, SecretsError> {
        let key = self.current.as_ref().ok_or(SecretsError::NoKey)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| SecretsError::Crypto)?;
        let mut in_out = plaintext.as_bytes().to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(listener_id.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| SecretsError::Crypto)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(format!("{SEALED_PREFIX}{}:{}", key.id, URL_SAFE_NO_PAD.encode(&sealed)))
    }

    /// Opens one stored value of `listener_id`; a value without the prefix is clear (migration).
    pub fn open(&self, stored: &str, listener_id: &str) -> Result<(String, Sealing), SecretsError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok((stored.to_string(), Sealing::Clear));
        };
        let (key_id, encoded) = rest.split_once(':').ok_or(SecretsError::Malformed)?;
        if key_id.len() != KEY_ID_LEN || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SecretsError::Malformed);
        }
        let sealed = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| SecretsError::Malformed)?;
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SecretsError::Malformed);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
        let candidates = self
            .current
            .iter()
            .map(|key| (key, Sealing::Current))
            .chain(self.previous.iter().map(|key| (key, Sealing::Previous)))
            .filter(|(key, _)| key.id == key_id);
        let mut known = false;
        for (key, sealing) in candidates {
            known = true;
            let mut in_out = ciphertext.to_vec();
            let opened = key.key.open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(listener_id.as_bytes()),
                &mut in_out,
            );
            if let Ok(plaintext) = opened {
                let text = String::from_utf8(plaintext.to_vec()).map_err(|_| SecretsError::Malformed)?;
                return Ok((text, sealing));
            }
        }
        let key_id = key_id.to_string();
        Err(if known {
            SecretsError::Unopenable { key_id }
        } else {
            SecretsError::UnknownKey { key_id }
        })
    }

    /// Seals every secret in place; the values must be plaintext (as opened or as received).
    pub fn seal_all(&self, secrets: Vec<&mut Secret>, listener_id: &str) -> Result<(), SecretsError> {
        for secret in secrets {
            *secret = Secret::new(self.seal(secret.expose(), listener_id)?);
        }
        Ok(())
    }

    /// Opens every secret in place; returns the stalest sealing found (`Current` when none).
    pub fn open_all(&self, secrets: Vec<&mut Secret>, listener_id: &str) -> Result<Sealing, SecretsError> {
        let mut stalest = Sealing::Current;
        for secret in secrets {
            let (plaintext, sealing) = self.open(secret.expose(), listener_id)?;
            *secret = Secret::new(plaintext);
            stalest = stalest.max(sealing);
        }
        Ok(stalest)
    }
}

/// Decodes a configured key: base64 (standard or URL-safe, padding optional) of 32 bytes.
pub fn parse_key(encoded: &str) -> Result<[u8; KEY_LEN], String> {
    let trimmed = encoded.trim().trim_end_matches('=');
    let bytes = STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .map_err(|_| "must be base64 of 32 random bytes (e.g. `openssl rand -base64 32`)".to_string())?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "must be base64 of 32 random bytes (e.g. `openssl rand -base64 32`), got {} bytes",
            bytes.len()
        )
    })
}

/// The id written beside values sealed under `key`: the first 8 hex digits of its SHA-256.
pub fn key_id(key: &[u8]) -> String {
    Sha256::digest(key)[..KEY_ID_LEN / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh random key, base64 as configured (for the embedded cluster's ephemeral key).
pub fn generate_key() -> Result<Secret, SecretsError> {
    let mut bytes = [0u8; KEY_LEN];
    SystemRandom::new().fill(&mut bytes).map_err(|_| SecretsError::Crypto)?;
    Ok(Secret::new(base64::engine::general_purpose::STANDARD.encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // "0123456789abcdef" x2
    const KEY_B: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="; // "fedcba9876543210" x2

    fn keyring(current: Option<&str>, previous: &[&str]) -> Keyring {
        let current = current.map(Secret::new);
        let previous: Vec<Secret> = previous.iter().map(|k| Secret::new(*k)).collect();
        Keyring::new(current.as_ref(), &previous).unwrap()
    }

    #[test]
    fn round_trip_hides_the_value() {
        let ring = keyring(Some(KEY_A), &[]);
        let sealed = ring.seal("canary-0f9e8d7c6b5a", "orders").unwrap();
        let key_id = key_id(&parse_key(KEY_A).unwrap());
        assert!(sealed.starts_with(&format!("enc:v1:{key_id}:")), "{sealed}");
        assert!(!sealed.contains("canary"), "{sealed}");
        assert_eq!(
            ring.open(&sealed, "orders").unwrap(),
            ("canary-0f9e8d7c6b5a".to_string(), Sealing::Current)
        );
        // A fresh nonce each time: the same value never seals to the same text.
        assert_ne!(ring.seal("canary-0f9e8d7c6b5a", "orders").unwrap(), sealed);
        assert_eq!(ring.open(&ring.seal("", "orders").unwrap(), "orders").unwrap().0, "");
    }

    #[test]
    fn wrong_key_does_not_open() {
        let sealed = keyring(Some(KEY_A), &[]).seal("s3cret", "orders").unwrap();
        let other = keyring(Some(KEY_B), &[]);
        let key_id = key_id(&parse_key(KEY_A).unwrap());
        assert_eq!(
            other.open(&sealed, "orders"),
            Err(SecretsError::UnknownKey { key_id: key_id.clone() })
        );
        assert_eq!(
            keyring(None, &[]).open(&sealed, "orders"),
            Err(SecretsError::UnknownKey { key_id })
        );
        // Whatever the error, it never carries the value.
        let error = other.open(&sealed, "orders").unwrap_err().to_string();
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn value_moved_to_another_listener_does_not_open() {
        let ring = keyring(Some(KEY_A), &[]);
        let sealed = ring.seal("s3cret", "orders").unwrap();
        assert!(matches!(
            ring.open(&sealed, "refunds"),
            Err(SecretsError::Unopenable { .. })
        ));
    }

    #[test]
    fn tampered_values_do_not_open() {
        let ring = keyring(Some(KEY_A), &[]);
        let sealed = ring.seal("s3cret", "orders").unwrap();
        let (head, encoded) = sealed.rsplit_once(':').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(encoded).unwrap();
        for position in [0, NONCE_LEN, bytes.len() - 1] {
            bytes[position] ^= 1;
            let tampered = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert!(
                matches!(ring.open(&tampered, "orders"), Err(SecretsError::Unopenable { .. })),
                "flipped byte {position}"
            );
            bytes[position] ^= 1;
        }
        let truncated = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&bytes[..NONCE_LEN + 4]));
        assert_eq!(ring.open(&truncated, "orders"), Err(SecretsError::Malformed));
        for malformed in [
            "enc:v1:",
            "enc:v1:zz:abc",
            "enc:v1:0123456:abc",
            "enc:v1:01234567:not base64!",
        ] {
            assert_eq!(
                ring.open(malformed, "orders"),
                Err(SecretsError::Malformed),
                "{malformed}"
            );
        }
    }

    #[test]
    fn a_plaintext_that_looks_sealed_round_trips() {
        let ring = keyring(Some(KEY_A), &[]);
        let looks_sealed = "enc:v1:01234567:AAAA";
        let sealed = ring.seal(looks_sealed, "orders").unwrap();
        assert_eq!(ring.open(&sealed, "orders").unwrap().0, looks_sealed);
    }

    #[test]
    fn clear_values_of_older_versions_still_open() {
        let ring = keyring(Some(KEY_A), &[]);
        assert_eq!(
            ring.open("legacy-clear", "orders").unwrap(),
            ("legacy-clear".to_string(), Sealing::Clear)
        );
        assert_eq!(
            keyring(None, &[]).open("legacy-clear", "orders").unwrap().1,
            Sealing::Clear
        );
    }

    #[test]
    fn rotation_opens_old_values_and_seals_under_the_new_key() {
        let old = keyring(Some(KEY_A), &[]);
        let sealed_old = old.seal("s3cret", "orders").unwrap();
        let rotated = keyring(Some(KEY_B), &[KEY_A]);
        assert_eq!(
            rotated.open(&sealed_old, "orders").unwrap(),
            ("s3cret".to_string(), Sealing::Previous)
        );
        let mut secrets = [Secret::new(sealed_old), Secret::new("clear-one")];
        assert_eq!(
            rotated.open_all(secrets.iter_mut().collect(), "orders").unwrap(),
            Sealing::Clear
        );
        assert_eq!(secrets[0].expose(), "s3cret");
        rotated.seal_all(secrets.iter_mut().collect(), "orders").unwrap();
        let new_id = rotated.current_key_id().unwrap().to_string();
        assert!(secrets
            .iter()
            .all(|s| s.expose().starts_with(&format!("enc:v1:{new_id}:"))));
        assert_eq!(
            rotated.open_all(secrets.iter_mut().collect(), "orders").unwrap(),
            Sealing::Current
        );
        assert_eq!(secrets[0].expose(), "s3cret");
        assert_eq!(secrets[1].expose(), "clear-one");
        // The new key's values no longer open with the old keyring.
        let sealed_new = rotated.seal("s3cret", "orders").unwrap();
        assert!(matches!(
            old.open(&sealed_new, "orders"),
            Err(SecretsError::UnknownKey { .. })
        ));
    }

    #[test]
    fn sealing_without_a_key_is_refused() {
        let ring = keyring(None, &[KEY_A]);
        assert_eq!(ring.seal("s3cret", "orders"), Err(SecretsError::NoKey));
        assert!(SecretsError::NoKey.to_string().contains("server.secrets_key"));
        assert!(SecretsError::NoKey.to_string().contains("HOOKPIPE_SERVER__SECRETS_KEY"));
    }

    #[test]
    fn bad_configured_keys_are_named() {
        for bad in ["", "not base64 at all!", "c2hvcnQ=", &format!("{KEY_A}{KEY_A}")] {
            let error = Keyring::new(Some(&Secret::new(bad)), &[]).unwrap_err();
            assert!(error.starts_with("server.secrets_key: "), "{bad}: {error}");
            assert!(parse_key(bad).is_err());
        }
        let error = Keyring::new(None, &[Secret::new(KEY_A), Secret::new("short")]).unwrap_err();
        assert!(error.starts_with("server.previous_secrets_keys[1]: "), "{error}");
        // Standard and URL-safe base64, padded or not.
        let bytes = parse_key(KEY_A).unwrap();
        assert_eq!(&bytes, b"0123456789abcdef0123456789abcdef");
        assert_eq!(parse_key(KEY_A.trim_end_matches('=')).unwrap(), bytes);
        let url_safe = URL_SAFE_NO_PAD.encode([0xfbu8; KEY_LEN]);
        assert_eq!(parse_key(&url_safe).unwrap(), [0xfb; KEY_LEN]);
        let generated = generate_key().unwrap();
        assert!(parse_key(generated.expose()).is_ok());
        assert_ne!(generated.expose(), generate_key().unwrap().expose());
    }
}
