//! TLS of hookpipe's HTTP clients (import-worker targets, the management CLI): rustls with the
//! Mozilla root certificates built in, or the CA certificates of a PEM file instead (a private
//! CA, a self-signed target).

use std::path::Path;

use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};

/// The TLS settings of a client: `ca_file`'s certificates as the only roots when given, else
/// the built-in Mozilla roots. Errors say what is wrong with the file.
pub fn client_config(ca_file: Option<&Path>) -> Result<TlsConfig, String> {
    let roots = match ca_file {
        None => RootCerts::WebPki,
        Some(path) => RootCerts::new_with_certs(&ca_certificates(path)?),
    };
    Ok(TlsConfig::builder().root_certs(roots).build())
}

/// The certificates of a PEM file (other PEM sections, such as keys, are ignored).
pub fn ca_certificates(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let mut certificates = Vec::new();
    for item in parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(certificate)) => certificates.push(certificate),
            Ok(_) => {}
            Err(error) => return Err(format!("{} is not valid PEM: {error}", path.display())),
        }
    }
    if certificates.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files_must_hold_certificates() {
        let dir = std::env::temp_dir().join(format!("hookpipe-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        assert!(ca_certificates(&missing).unwrap_err().contains("cannot read"));
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        assert!(ca_certificates(&empty).unwrap_err().contains("no PEM certificate"));
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, certified.cert.pem() + &certified.key_pair.serialize_pem()).unwrap();
        assert_eq!(ca_certificates(&cert).unwrap().len(), 1, "the key is ignored");
        assert!(client_config(Some(&cert)).is_ok());
        assert!(client_config(None).is_ok());
        std::fs::remove_dir_all(&dir).ok();
    }
}
