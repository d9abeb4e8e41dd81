//! Deterministic webhook bodies shared by the micro-benchmarks. The load benchmark
//! (`benches/load.py`) generates bodies of the same shapes.

// Each bench binary uses a different subset of these helpers.
#![allow(dead_code)]

/// Body sizes the parsers are measured at.
pub const SIZES: [(&str, usize); 4] = [("256B", 256), ("1KB", 1024), ("16KB", 16 * 1024), ("256KB", 256 * 1024)];

/// One line item of an order, about 150 bytes of JSON.
fn json_item(index: usize) -> String {
    format!(
        r#"{{"sku":"SKU-{index:06}","title":"Widget number {index} in blue","qty":{},"price":{}.{:02},"tags":["a","b"]}}"#,
        index % 7 + 1,
        index % 90 + 10,
        index % 100
    )
}

/// A single JSON object (one record without a resource path) of about `size` bytes:
/// an order with as many line items as fit.
pub fn json_object(size: usize) -> Vec<u8> {
    let head = r#"{"id":"evt_000123","type":"order.created","order_id":"1001","customer":{"email":"jane@example.com","name":"Jane Doe"},"items":["#;
    let mut out = String::from(head);
    let mut index = 0;
    while out.len() + 2 < size {
        let item = json_item(index);
        if index > 0 && out.len() + item.len() + 3 > size {
            break;
        }
        if index > 0 {
            out.push(',');
        }
        out.push_str(&item);
        index += 1;
    }
    out.push_str("]}");
    pad_json(out, size)
}

/// `{"data":{"items":[…]}}` of about `size` bytes: one record per item at `data.items`.
pub fn json_items(size: usize) -> Vec<u8> {
    let mut out = String::from(r#"{"data":{"items":["#);
    let mut index = 0;
    loop {
        let item = json_item(index);
        if index > 0 && out.len() + item.len() + 4 > size {
            break;
        }
        if index > 0 {
            out.push(',');
        }
        out.push_str(&item);
        index += 1;
    }
    out.push_str("]}}");
    out.into_bytes()
}

/// Pads a JSON object with a `"note"` string so it is exactly `size` bytes when possible.
fn pad_json(mut json: String, size: usize) -> Vec<u8> {
    let overhead = r#","note":"""#.len();
    if json.len() + overhead < size {
        json.pop(); // the closing brace
        let fill = size - json.len() - overhead - 1;
        json.push_str(r#","note":""#);
        json.extend(std::iter::repeat_n('x', fill));
        json.push_str("\"}");
    }
    json.into_bytes()
}

/// `<shipments><shipment id=".."><to>..</to>…</shipment>…</shipments>` of about `size` bytes.
pub fn xml_shipments(size: usize) -> Vec<u8> {
    let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><shipments>"#);
    let mut index = 0;
    loop {
        let shipment = format!(
            r#"<shipment id="S{index:06}"><to>Berlin</to><carrier>DHL</carrier><weight unit="kg">{}.5</weight><ref>order-{index}</ref></shipment>"#,
            index % 30 + 1
        );
        if index > 0 && out.len() + shipment.len() + "</shipments>".len() > size {
            break;
        }
        out.push_str(&shipment);
        index += 1;
    }
    out.push_str("</shipments>");
    out.into_bytes()
}

/// A urlencoded form of about `size` bytes with at most 500 fields (the default limit is 1000).
pub fn form(size: usize) -> Vec<u8> {
    let fields = (size / 48).clamp(4, 500);
    let value_len = (size / fields).saturating_sub(12).max(4);
    let mut out = String::new();
    for index in 0..fields {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&format!("field_{index:04}="));
        // A mix of plain, `+` (space) and percent-encoded bytes, as browsers send; escapes stay whole.
        let mut written = 0;
        let mut i = 0;
        while written < value_len {
            let token = match i % 16 {
                5 => "+".to_string(),
                11 => "%C3%A9".to_string(),
                _ => char::from(b'a' + (i % 26) as u8).to_string(),
            };
            written += token.len();
            out.push_str(&token);
            i += 1;
        }
        if out.len() >= size {
            break;
        }
    }
    out.into_bytes()
}

/// One JSON line item per line (NDJSON), about `size` bytes: one record per line.
pub fn ndjson(size: usize) -> Vec<u8> {
    let mut out = String::new();
    let mut index = 0;
    loop {
        let item = json_item(index);
        if index > 0 && out.len() + item.len() + 1 > size {
            break;
        }
        out.push_str(&item);
        out.push('\n');
        index += 1;
    }
    out.into_bytes()
}

/// A CSV export of about `size` bytes: a header row, then one order line per row, with a quoted
/// field holding the delimiter and a doubled quote, as spreadsheets write them.
pub fn csv(size: usize) -> Vec<u8> {
    let mut out = String::from("sku,title,qty,price,note\r\n");
    let mut index = 0;
    loop {
        let row = format!(
            "SKU-{index:06},\"Widget {index}, \"\"blue\"\"\",{},{}.{:02},order line {index}\r\n",
            index % 7 + 1,
            index % 90 + 10,
            index % 100
        );
        if index > 0 && out.len() + row.len() > size {
            break;
        }
        out.push_str(&row);
        index += 1;
    }
    out.into_bytes()
}

/// The boundary of [`multipart`] bodies (as a browser picks one).
pub const MULTIPART_BOUNDARY: &str = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

/// A `multipart/form-data` body of about `size` bytes as a browser builds it: three text fields
/// and one binary file part that takes the rest.
pub fn multipart(size: usize) -> Vec<u8> {
    let boundary = MULTIPART_BOUNDARY;
    let mut out = Vec::new();
    for (name, value) in [
        ("order_id", "1001"),
        ("customer", "Jane Doe"),
        ("note", "leave at the door"),
    ] {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    let file_head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"invoice\"; filename=\"invoice.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    out.extend_from_slice(file_head.as_bytes());
    let file_len = size.saturating_sub(out.len() + tail.len()).max(16);
    out.extend((0..file_len).map(|i| (i.wrapping_mul(131) % 251) as u8));
    out.extend_from_slice(tail.as_bytes());
    out
}
