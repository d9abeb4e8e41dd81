//! A raw Kafka probe (no librdkafka, one fresh connection per request), to tell which side of
//! a fault wedged: asked straight at the broker's own port, it bypasses the test's proxy and
//! every client's state. Three requests, each on its own connection: `ApiVersions` (the
//! broker's network loop), `Metadata` of every topic (a storage read) and `InitProducerId` (a
//! storage write: what a fresh idempotent producer needs first).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What the three requests got, one line (`ApiVersions ok in 2ms; Metadata ok in 5ms; ...`).
pub fn kafka_answers(addr: SocketAddr, timeout: Duration) -> String {
    let requests: [(&str, i16, i16, &[u8]); 3] = [
        ("ApiVersions", 18, 0, &[]),
        // v1: a null array of topics is every topic.
        ("Metadata", 3, 1, &(-1i32).to_be_bytes()),
        // v3 (what librdkafka sends; Tansu 0.6 panics on v0-v2, which carry no producer id).
        ("InitProducerId", 22, 3, INIT_PRODUCER_ID_V3),
    ];
    requests
        .iter()
        .map(
            |(name, key, version, body)| match exchange(addr, *key, *version, body, timeout) {
                Ok((took, body)) if *name == "InitProducerId" => {
                    // A flexible answer: the header's tagged fields (1), throttle_time_ms (4),
                    // error_code (2), producer_id (8), producer_epoch (2).
                    let error = body.get(5..7).map(|b| i16::from_be_bytes([b[0], b[1]]));
                    let id = body.get(7..15).map(|b| i64::from_be_bytes(b.try_into().unwrap()));
                    format!("{name} answered in {took:?} (error code {error:?}, producer id {id:?})")
                }
                Ok((took, body)) => format!("{name} answered in {took:?} ({} bytes)", body.len()),
                Err(error) => format!("{name} FAILED: {error}"),
            },
        )
        .collect::<Vec<_>>()
        .join("; ")
}

/// `InitProducerId` v3 after its header: no transactional id (a null compact string), a
/// transaction timeout of 60 s, producer id -1, epoch -1, no tagged fields.
const INIT_PRODUCER_ID_V3: &[u8] = &[
    0x00, 0x00, 0x00, 0xea, 0x60, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00,
];

/// Sends one request (header v1, or v2 for a flexible version, client id `probe`) on a fresh
/// connection; the time to the answer and its body (after the correlation id).
fn exchange(
    addr: SocketAddr,
    api_key: i16,
    version: i16,
    body: &[u8],
    timeout: Duration,
) -> Result<(Duration, Vec<u8>), String> {
    let started = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let correlation = 0x0d1a_9000_i32;
    let mut request = Vec::new();
    request.extend_from_slice(&api_key.to_be_bytes());
    request.extend_from_slice(&version.to_be_bytes());
    request.extend_from_slice(&correlation.to_be_bytes());
    request.extend_from_slice(&5i16.to_be_bytes());
    request.extend_from_slice(b"probe");
    if api_key == 22 && version >= 2 {
        // Header v2: no tagged fields.
        request.push(0);
    }
    request.extend_from_slice(body);
    let mut framed = (request.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&request);
    stream.write_all(&framed).map_err(|e| format!("write: {e}"))?;
    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .map_err(|e| format!("no answer after {:?}: {e}", started.elapsed()))?;
    let size = i32::from_be_bytes(size);
    if !(4..=64 * 1024 * 1024).contains(&size) {
        return Err(format!("answer of {size} bytes"));
    }
    let mut answer = vec![0u8; size as usize];
    stream
        .read_exact(&mut answer)
        .map_err(|e| format!("answer cut short: {e}"))?;
    let got = i32::from_be_bytes(answer[..4].try_into().unwrap());
    if got != correlation {
        return Err(format!("correlation id {got}, not {correlation}"));
    }
    Ok((started.elapsed(), answer.split_off(4)))
}
