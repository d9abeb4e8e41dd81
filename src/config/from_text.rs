//! Values written as text in the configuration (addresses, names from a closed set) and parsed
//! once, when the configuration is deserialized, into the type the code uses.

use serde::{Deserialize, Deserializer};

/// Deserializes a string and parses it with `parse`, whose message becomes the error (serde and
/// `serde_path_to_error` add the key). A value that is not a string is refused by serde, naming
/// the key too.
pub fn deserialize_from_text<'de, D, T>(
    deserializer: D,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}
