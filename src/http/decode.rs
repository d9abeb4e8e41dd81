//! `Content-Encoding` decoding done by hand, bounded: actix-web's automatic decompression is
//! off (the versions available predate fixes for decompression-bomb advisories). The decoded
//! size counts against the listener's body limit.

use std::io::Read;

use actix_web::web::Bytes;
use flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};

/// Why a body could not be decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// An encoding hookpipe does not decode (or a list of several).
    Unsupported(String),
    /// The decoded body is over the limit.
    TooLarge,
    /// The compressed stream is corrupt.
    Corrupt,
}

/// The encodings hookpipe decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No transformation.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
    /// HTTP "deflate": zlib (RFC 1950); raw deflate (RFC 1951) is accepted too, as many senders use it.
    Deflate,
}

/// Reads a `Content-Encoding` header value.
pub fn encoding_of(header: Option<&str>) -> Result<Encoding, DecodeError> {
    let Some(value) = header.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Encoding::Identity);
    };
    match value.to_ascii_lowercase().as_str() {
        "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        _ => Err(DecodeError::Unsupported(value.chars().take(32).collect())),
    }
}

/// Decodes `body`, never producing more than `limit` bytes.
pub fn decode(body: Bytes, encoding: Encoding, limit: usize) -> Result<Bytes, DecodeError> {
    match encoding {
        Encoding::Identity => Ok(body),
        Encoding::Gzip => read_bounded(GzDecoder::new(&body[..]), limit),
        Encoding::Deflate => {
            // The zlib header's check bits tell zlib from raw deflate.
            let zlib =
                body.len() >= 2 && body[0] & 0x0f == 8 && (u16::from(body[0]) << 8 | u16::from(body[1])) % 31 == 0;
            if zlib {
                read_bounded(ZlibDecoder::new(&body[..]), limit)
            } else {
                read_bounded(DeflateDecoder::new(&body[..]), limit)
            }
        }
    }
}

fn read_bounded(reader: impl Read, limit: usize) -> Result<Bytes, DecodeError> {
    let mut out = Vec::new();
    // Read one byte past the limit to tell "exactly at the limit" from "over it".
    let read = reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| DecodeError::Corrupt)?;
    if read > limit {
        return Err(DecodeError::TooLarge);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use flate2::Compression;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Bytes {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap().into()
    }

    #[test]
    fn round_trips_gzip_zlib_and_raw_deflate() {
        let data = b"{\"hello\":\"world\"}".repeat(10);
        assert_eq!(decode(gzip(&data), Encoding::Gzip, 1000).unwrap(), data);
        let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
        zlib.write_all(&data).unwrap();
        assert_eq!(
            decode(zlib.finish().unwrap().into(), Encoding::Deflate, 1000).unwrap(),
            data
        );
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(&data).unwrap();
        assert_eq!(
            decode(raw.finish().unwrap().into(), Encoding::Deflate, 1000).unwrap(),
            data
        );
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        // 100 MB of zeros compress to ~100 KB; decoding stops after limit + 1 bytes.
        let bomb = gzip(&vec![0u8; 100 * 1024 * 1024]);
        assert!(bomb.len() < 200 * 1024);
        assert_eq!(decode(bomb, Encoding::Gzip, 1024 * 1024), Err(DecodeError::TooLarge));
        let exact = gzip(&[7u8; 100]);
        assert_eq!(decode(exact, Encoding::Gzip, 100).unwrap().len(), 100);
    }

    #[test]
    fn corrupt_and_unsupported() {
        assert_eq!(
            decode(Bytes::from_static(b"not gzip"), Encoding::Gzip, 100),
            Err(DecodeError::Corrupt)
        );
        assert_eq!(encoding_of(Some("br")), Err(DecodeError::Unsupported("br".into())));
        assert_eq!(
            encoding_of(Some("gzip, deflate")),
            Err(DecodeError::Unsupported("gzip, deflate".into()))
        );
        assert_eq!(encoding_of(Some("GZIP")), Ok(Encoding::Gzip));
        assert_eq!(encoding_of(None), Ok(Encoding::Identity));
    }
}
