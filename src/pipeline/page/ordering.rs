//! Ordering keys (a listener's `ordering_key`, README "Ordering"): a record's key, read at a
//! dotted path or rendered from a template, and the partition of the listener's topic it maps
//! to — every record of one key lands on one partition, where the worker imports them in order.
//! Pure logic, no actix.

use serde_json::Value;

/// How a listener names its records' ordering key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderingKey {
    /// A dotted path into the record (`customer.id`).
    Path(Vec<String>),
    /// A template over the record (`{{customer_id}}`), compiled into the listener's templates.
    Template,
}

impl OrderingKey {
    /// The key as configured: a template when it holds `{{`, else a dotted path (the config
    /// has checked it: `ListenerConfig::problems`).
    pub fn parse(text: &str) -> Result<OrderingKey, String> {
        if text.contains("{{") {
            return Ok(OrderingKey::Template);
        }
        let segments = crate::dotted_path::segments(text).map_err(|_| "is not a dotted path".to_string())?;
        Ok(OrderingKey::Path(segments.into_iter().map(str::to_string).collect()))
    }
}

/// The key at `path` in `record`: a string as it is, a number or boolean as JSON writes it;
/// `None` when the path names nothing, `null`, an object or an array. An array element is
/// named by its index (`items.0.sku`).
pub fn key_at_path(record: &Value, path: &[String]) -> Option<String> {
    let mut value = record;
    for segment in path {
        value = match value {
            Value::Object(members) => members.get(segment.as_str())?,
            Value::Array(items) => items.get(crate::dotted_path::array_index(segment)?)?,
            _ => return None,
        };
    }
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Object(_) | Value::Array(_) => None,
    }
}

/// The partition of `key` among `partitions` (at least 1): Kafka's default partitioner (the
/// Java client's: murmur2 of the key's bytes, made positive, modulo the partitions), so that
/// another producer keying its messages by the same key agrees with hookpipe.
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    debug_assert!(partitions > 0);
    ((murmur2(key.as_bytes()) & 0x7fff_ffff) % partitions.max(1) as u32) as i32
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`, seed 0x9747b28c).
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn murmur2_is_kafkas() {
        // Values of the Java client's `Utils.murmur2` (its own unit test, UtilsTest.testMurmur2).
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            (b"abc", 479470107),
        ];
        for (data, expected) in cases {
            assert_eq!(murmur2(data) as i32, expected, "{:?}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn a_key_always_maps_to_one_partition_and_keys_spread() {
        assert_eq!(partition_for("customer-1", 3), partition_for("customer-1", 3));
        assert_eq!(partition_for("anything", 1), 0);
        let mut used = [0usize; 3];
        for n in 0..300 {
            let partition = partition_for(&format!("k-{n}"), 3);
            assert!((0..3).contains(&partition));
            used[partition as usize] += 1;
        }
        assert!(used.iter().all(|count| *count > 50), "{used:?}");
    }

    #[test]
    fn keys_are_read_at_their_path() {
        let record = json!({"customer": {"id": "c-1", "n": 7, "vip": true, "none": null, "tags": ["a"]},
            "items": [{"sku": "s-1"}]});
        let at = |path: &str| match OrderingKey::parse(path).unwrap() {
            OrderingKey::Path(path) => key_at_path(&record, &path),
            OrderingKey::Template => panic!("{path} is a path"),
        };
        assert_eq!(at("customer.id").as_deref(), Some("c-1"));
        assert_eq!(at("customer.n").as_deref(), Some("7"));
        assert_eq!(at("customer.vip").as_deref(), Some("true"));
        assert_eq!(at("items.0.sku").as_deref(), Some("s-1"));
        for nothing in [
            "customer.none",
            "customer.tags",
            "customer",
            "items.1.sku",
            "customer.id.x",
            "absent",
        ] {
            assert_eq!(at(nothing), None, "{nothing}");
        }
        assert_eq!(OrderingKey::parse("{{customer.id}}").unwrap(), OrderingKey::Template);
        assert!(OrderingKey::parse("a..b").is_err());
    }
}
