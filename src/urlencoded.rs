//! `application/x-www-form-urlencoded` text — form bodies and query strings — written once: its
//! `key=value` pieces and its `+` / `%XX` decoding. Three readers need three strictnesses, each
//! kept on purpose:
//!
//! - [`decode_strict`]: the parse stage's form records. A `%` not followed by two hex digits
//!   makes the body malformed (a 400): records hold what the sender meant or nothing.
//! - [`decode_lenient`]: signature and token checks (Twilio's form parameters, a token in the
//!   query). Such a `%` stays literal, as browsers and Python's `parse_qsl` do, and the result
//!   stays bytes: a signature covers bytes, not text.
//! - [`decode_lossy`]: the response template's view of the query string. Lenient, then invalid
//!   UTF-8 replaced by U+FFFD: a template wants text and is never a record.

use std::borrow::Cow;

/// The non-empty `&`-separated pieces of `input`, undecoded.
pub fn pieces(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    input.split(|&byte| byte == b'&').filter(|piece| !piece.is_empty())
}

/// A piece split at its first `=`; a piece without one is a key with an empty value.
pub fn split_pair(piece: &[u8]) -> (&[u8], &[u8]) {
    match piece.iter().position(|&byte| byte == b'=') {
        Some(equals) => (&piece[..equals], &piece[equals + 1..]),
        None => (piece, &[]),
    }
}

/// The undecoded `(key, value)` pairs of `input`, in order.
pub fn pairs(input: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    pieces(input).map(split_pair)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Undoes `+` and `%XX`; `None` when a `%` is not followed by two hex digits. Borrows when
/// there is nothing to undo.
pub fn decode_strict(input: &[u8]) -> Option<Cow<'_, [u8]>> {
    if !input.iter().any(|&byte| byte == b'%' || byte == b'+') {
        return Some(Cow::Borrowed(input));
    }
    let mut decoded = Vec::with_capacity(input.len());
    let mut bytes = input.iter();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'+' => decoded.push(b' '),
            b'%' => {
                let high = bytes.next().copied().and_then(hex_value)?;
                let low = bytes.next().copied().and_then(hex_value)?;
                decoded.push(high << 4 | low);
            }
            other => decoded.push(other),
        }
    }
    Some(Cow::Owned(decoded))
}

/// Undoes `+` and `%XX`; a `%` not followed by two hex digits stays literal.
pub fn decode_lenient(input: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::with_capacity(input.len());
    let mut index = 0;
    while index < input.len() {
        match input[index] {
            b'+' => decoded.push(b' '),
            b'%' if index + 2 < input.len() => match (hex_value(input[index + 1]), hex_value(input[index + 2])) {
                (Some(high), Some(low)) => {
                    decoded.push(high << 4 | low);
                    index += 2;
                }
                _ => decoded.push(b'%'),
            },
            byte => decoded.push(byte),
        }
        index += 1;
    }
    decoded
}

/// [`decode_lenient`] as text, invalid UTF-8 replaced by U+FFFD.
pub fn decode_lossy(input: &str) -> String {
    String::from_utf8_lossy(&decode_lenient(input.as_bytes())).into_owned()
}

/// The leniently decoded `(key, value)` pairs of a query string or form body, in order.
pub fn decoded_pairs(input: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    pairs(input)
        .map(|(key, value)| (decode_lenient(key), decode_lenient(value)))
        .collect()
}

/// The first leniently decoded value of query parameter `name`.
pub fn query_param(query: &str, name: &str) -> Option<Vec<u8>> {
    decoded_pairs(query.as_bytes())
        .into_iter()
        .find(|(key, _)| key == name.as_bytes())
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `verify/recipe.rs::form_decode` before the merge: the reference of `decode_lenient`.
    fn former_recipe_form_decode(s: &[u8]) -> Vec<u8> {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push((hi << 4) | lo);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        out
    }

    /// `http/receiver.rs::percent_decode_lossy` before the merge: the reference of `decode_lossy`.
    fn former_receiver_percent_decode_lossy(input: &str) -> String {
        let bytes = input.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut index = 0;
        while index < bytes.len() {
            match bytes[index] {
                b'+' => out.push(b' '),
                b'%' if index + 2 < bytes.len() => {
                    match std::str::from_utf8(&bytes[index + 1..index + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(byte) => {
                            out.push(byte);
                            index += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                byte => out.push(byte),
            }
            index += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// `parse/form.rs::percent_decode` before the merge: the reference of `decode_strict`.
    fn former_form_percent_decode(input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(input.len());
        let mut bytes = input.iter();
        while let Some(&b) = bytes.next() {
            match b {
                b'+' => out.push(b' '),
                b'%' => {
                    let high = bytes.next().copied().and_then(hex_value)?;
                    let low = bytes.next().copied().and_then(hex_value)?;
                    out.push(high << 4 | low);
                }
                other => out.push(other),
            }
        }
        Some(out)
    }

    #[test]
    fn the_three_strictnesses() {
        assert_eq!(decode_lenient(b"a+b%2Bc%zz%4"), b"a b+c%zz%4".to_vec());
        assert_eq!(decode_strict(b"a+b%2Bc").as_deref(), Some(&b"a b+c"[..]));
        assert!(matches!(decode_strict(b"plain"), Some(Cow::Borrowed(_))));
        for bad in [&b"%zz"[..], b"%4", b"%", b"a%g0"] {
            assert_eq!(decode_strict(bad), None, "{bad:?}");
        }
        assert_eq!(decode_lossy("caf%C3%A9+%ff"), "café \u{fffd}");
        // `u8::from_str_radix` took a sign, so the receiver's former copy read `%+5` as byte 5;
        // two hex digits are what percent-encoding is, and what the other two copies required.
        assert_eq!(former_receiver_percent_decode_lossy("%+5"), "\u{5}");
        assert_eq!(decode_lossy("%+5"), "% 5");
    }

    #[test]
    fn pairs_and_query_params() {
        assert_eq!(
            decoded_pairs(b"b=2&&a&c=%3D="),
            vec![
                (b"b".to_vec(), b"2".to_vec()),
                (b"a".to_vec(), vec![]),
                (b"c".to_vec(), b"==".to_vec())
            ]
        );
        assert_eq!(query_param("x=1&token=a%20b", "token"), Some(b"a b".to_vec()));
        assert_eq!(query_param("x=1", "token"), None);
        assert_eq!(
            pairs(b"a=b=c&&d").collect::<Vec<_>>(),
            vec![(&b"a"[..], &b"b=c"[..]), (b"d", b"")]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn merged_decoders_equal_the_former_copies(
            tokens in proptest::collection::vec(prop::sample::select(vec![
                "a", "Z", "0", "=", "&", "+", "%", "%2", "%41", "%4a", "%zz", "%ff", "%C3%A9", "%+", "%-1",
                "é", "\u{ff}", " ",
            ]), 0..24),
        ) {
            let text = tokens.concat();
            let bytes = text.as_bytes();
            prop_assert_eq!(decode_lenient(bytes), former_recipe_form_decode(bytes));
            prop_assert_eq!(decode_strict(bytes).map(Cow::into_owned), former_form_percent_decode(bytes));
            // The one difference: `%+h`, see `the_three_strictnesses`.
            if !text.contains("%+") {
                prop_assert_eq!(decode_lossy(&text), former_receiver_percent_decode_lossy(&text));
            }
            // Strict decoding, when it succeeds, is lenient decoding.
            if let Some(strict) = decode_strict(bytes) {
                prop_assert_eq!(strict.into_owned(), decode_lenient(bytes));
            }
        }

        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(decode_lenient(&bytes), former_recipe_form_decode(&bytes));
            prop_assert_eq!(decode_strict(&bytes).map(Cow::into_owned), former_form_percent_decode(&bytes));
        }
    }
}
