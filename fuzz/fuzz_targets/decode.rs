//! `Content-Encoding` decoding with the size cap. Two halves, chosen by the first byte:
//! - round trip: data compressed here (gzip, zlib, raw deflate, at a level from the input)
//!   decodes to exactly the data when it fits the cap, and is `TooLarge` when it does not;
//! - raw: any bytes as any encoding, under any cap: a decoded body never exceeds the cap, and
//!   it is exactly what an unbounded decoder makes of the bytes; `TooLarge` only when that is
//!   over the cap (or fails), `Corrupt` only when that fails.
//! And the header: `encoding_of` accepts exactly the names it documents, in any case, trimmed.
#![no_main]

use std::io::{Read, Write};

use hookpipe::fuzzing::flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};
use hookpipe::fuzzing::flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use hookpipe::fuzzing::flate2::Compression;
use hookpipe::fuzzing::Bytes;
use hookpipe::http::decode::{decode, encoding_of, DecodeError, Encoding};
use hookpipe_fuzz::Input;
use libfuzzer_sys::fuzz_target;

/// What an unbounded decoder makes of `body`: the bytes it produced, and whether it failed.
fn unbounded(body: &[u8], encoding: Encoding) -> (Vec<u8>, bool) {
    fn read_all(mut reader: impl Read) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) => return (out, false),
                Ok(read) => out.extend_from_slice(&chunk[..read]),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return (out, true),
            }
        }
    }
    match encoding {
        Encoding::Identity => (body.to_vec(), false),
        Encoding::Gzip => read_all(GzDecoder::new(body)),
        Encoding::Deflate => {
            let zlib =
                body.len() >= 2 && body[0] & 0x0f == 8 && (u16::from(body[0]) << 8 | u16::from(body[1])) % 31 == 0;
            if zlib {
                read_all(ZlibDecoder::new(body))
            } else {
                read_all(DeflateDecoder::new(body))
            }
        }
    }
}

fn check_header(name: &[u8]) {
    let Ok(name) = std::str::from_utf8(name) else { return };
    let expected = match name.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => Some(Encoding::Identity),
        "gzip" | "x-gzip" => Some(Encoding::Gzip),
        "deflate" => Some(Encoding::Deflate),
        _ => None,
    };
    match (encoding_of(Some(name)), expected) {
        (Ok(found), Some(expected)) => assert_eq!(found, expected, "{name:?}"),
        (Err(DecodeError::Unsupported(echo)), None) => assert!(echo.chars().count() <= 32, "echo {echo:?}"),
        (found, expected) => panic!("{name:?}: {found:?}, expected {expected:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mode = input.byte();
    let encoding = [Encoding::Identity, Encoding::Gzip, Encoding::Deflate][usize::from(mode / 2) % 3];
    let limit = match input.byte() {
        0 => 0,
        small @ 1..=200 => usize::from(small),
        large => usize::from(large) * 64,
    };
    check_header(input.piece());
    let body = input.rest();
    if mode % 2 == 0 {
        let level = Compression::new(u32::from(body.first().copied().unwrap_or(6)) % 10);
        let compressed = match encoding {
            Encoding::Identity => body.to_vec(),
            Encoding::Gzip => {
                let mut encoder = GzEncoder::new(Vec::new(), level);
                encoder.write_all(body).expect("to a Vec");
                encoder.finish().expect("to a Vec")
            }
            Encoding::Deflate if body.len() % 2 == 0 => {
                let mut encoder = ZlibEncoder::new(Vec::new(), level);
                encoder.write_all(body).expect("to a Vec");
                encoder.finish().expect("to a Vec")
            }
            Encoding::Deflate => {
                let mut encoder = DeflateEncoder::new(Vec::new(), level);
                encoder.write_all(body).expect("to a Vec");
                encoder.finish().expect("to a Vec")
            }
        };
        match decode(Bytes::from(compressed), encoding, limit) {
            Ok(decoded) => {
                assert!(decoded.len() <= limit || encoding == Encoding::Identity);
                assert_eq!(&decoded[..], body, "the round trip changed the data");
            }
            Err(DecodeError::TooLarge) => assert!(body.len() > limit, "{} bytes fit the cap {limit}", body.len()),
            Err(error) => panic!("data compressed here did not decode: {error:?}"),
        }
        return;
    }
    let (reference, failed) = unbounded(body, encoding);
    match decode(Bytes::copy_from_slice(body), encoding, limit) {
        Ok(decoded) => {
            assert!(
                decoded.len() <= limit || encoding == Encoding::Identity,
                "{} bytes over the cap {limit}",
                decoded.len()
            );
            assert!(!failed, "decoded a stream an unbounded decoder refuses");
            assert_eq!(&decoded[..], &reference[..]);
        }
        // Where a corrupt stream fails depends on how much is read at once: a failing stream
        // may be either, one that decodes never is Corrupt, nor TooLarge when it fits.
        Err(DecodeError::TooLarge) => assert!(
            failed || reference.len() > limit,
            "TooLarge with {} bytes under {limit}",
            reference.len()
        ),
        Err(DecodeError::Corrupt) => assert!(failed, "Corrupt, yet the stream decodes"),
        Err(error) => panic!("{error:?}"),
    }
});
