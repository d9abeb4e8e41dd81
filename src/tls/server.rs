//! TLS of the ingest listener itself (`server.tls`), for deployments without a TLS-terminating
//! load balancer: rustls (ring) serving a certificate chain and key read from PEM files.
//!
//! The pair is held by a [`CertificateResolver`], which rustls asks for it on every handshake;
//! [`CertificateResolver::reload`] (on SIGHUP) reads the files again and swaps the pair, so new
//! connections get the new certificate while open ones keep theirs, and nothing stops. A pair
//! that does not load is logged and counted, and the previous one stays in service.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::telemetry::events::{TlsCertificateLoaded, TlsReloadFailed};

/// Which of the two files a problem is with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// `cert_file`: the certificate chain.
    Certificate,
    /// `key_file`: the private key (also where a key that does not match the certificate is
    /// reported: the key is what is wrong for the certificate).
    Key,
}

impl TlsFile {
    /// The configuration key of the file, relative to `[server.tls]`.
    pub fn key(self) -> &'static str {
        match self {
            TlsFile::Certificate => "cert_file",
            TlsFile::Key => "key_file",
        }
    }
}

/// Why a certificate and key could not be loaded. Messages name the file and never quote the
/// key's content.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// Which file.
        file: TlsFile,
        /// Its path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not well-formed PEM.
    #[error("{} is not valid PEM: {reason}", path.display())]
    NotPem {
        /// Which file.
        file: TlsFile,
        /// Its path.
        path: PathBuf,
        /// The parser's words.
        reason: String,
    },
    /// The certificate file holds no `CERTIFICATE` section.
    #[error("{} holds no PEM certificate (BEGIN CERTIFICATE)", path.display())]
    NoCertificate {
        /// Its path.
        path: PathBuf,
    },
    /// The certificate does not parse as X.509.
    #[error("{} holds a certificate that is not valid X.509 DER: {reason}", path.display())]
    BadCertificate {
        /// Its path.
        path: PathBuf,
        /// rustls's words.
        reason: String,
    },
    /// The key file holds no private-key section.
    #[error("{} holds no PEM private key (BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)", path.display())]
    NoKey {
        /// Its path.
        path: PathBuf,
    },
    /// The key does not load (corrupt, or of an unsupported algorithm).
    #[error("{} holds a private key that cannot be used (RSA, ECDSA P-256/P-384 and Ed25519 are supported): {reason}", path.display())]
    BadKey {
        /// Its path.
        path: PathBuf,
        /// rustls's words.
        reason: String,
    },
    /// The key is not the one of the certificate.
    #[error("{} does not match the certificate of {}", key_path.display(), cert_path.display())]
    KeyMismatch {
        /// The certificate file.
        cert_path: PathBuf,
        /// The key file.
        key_path: PathBuf,
    },
}

impl CertificateError {
    /// The file the problem is reported at.
    pub fn file(&self) -> TlsFile {
        match self {
            CertificateError::Unreadable { file, .. } | CertificateError::NotPem { file, .. } => *file,
            CertificateError::NoCertificate { .. } | CertificateError::BadCertificate { .. } => TlsFile::Certificate,
            CertificateError::NoKey { .. } | CertificateError::BadKey { .. } | CertificateError::KeyMismatch { .. } => {
                TlsFile::Key
            }
        }
    }
}

/// A certificate chain with its key, ready to serve.
pub struct LoadedCertificate {
    /// What rustls serves.
    pub certified_key: Arc<CertifiedKey>,
    /// The end-entity certificate's `notAfter`, seconds since the Unix epoch (`None` if its
    /// DER could not be read for it; rustls accepted it all the same).
    pub not_after_unix: Option<i64>,
}

/// The crypto provider of the listener: ring, as for hookpipe's TLS clients.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the chain of `cert_path` (end-entity certificate first) and the key of `key_path`,
/// and checks that the key is the certificate's.
pub fn load(cert_path: &Path, key_path: &Path) -> Result<LoadedCertificate, CertificateError> {
    load_with(&provider(), cert_path, key_path)
}

fn load_with(
    provider: &CryptoProvider,
    cert_path: &Path,
    key_path: &Path,
) -> Result<LoadedCertificate, CertificateError> {
    let cert_pem = read(TlsFile::Certificate, cert_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| not_pem(TlsFile::Certificate, cert_path, error))?;
    if chain.is_empty() {
        return Err(CertificateError::NoCertificate {
            path: cert_path.to_path_buf(),
        });
    }
    let key_pem = read(TlsFile::Key, key_path)?;
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(key) => key,
        Err(pem::Error::NoItemsFound) => {
            return Err(CertificateError::NoKey {
                path: key_path.to_path_buf(),
            })
        }
        Err(error) => return Err(not_pem(TlsFile::Key, key_path, error)),
    };
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| CertificateError::BadKey {
            path: key_path.to_path_buf(),
            reason: error.to_string(),
        })?;
    let not_after_unix = super::validity::not_after_unix(&chain[0]);
    let certified_key = CertifiedKey::new(chain, signing_key);
    match certified_key.keys_match() {
        // A key that cannot tell its public half (none of ring's) is taken on trust, as rustls does.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(CertificateError::KeyMismatch {
                cert_path: cert_path.to_path_buf(),
                key_path: key_path.to_path_buf(),
            })
        }
        Err(error) => {
            return Err(CertificateError::BadCertificate {
                path: cert_path.to_path_buf(),
                reason: error.to_string(),
            })
        }
    }
    Ok(LoadedCertificate {
        certified_key: Arc::new(certified_key),
        not_after_unix,
    })
}

fn read(file: TlsFile, path: &Path) -> Result<Vec<u8>, CertificateError> {
    std::fs::read(path).map_err(|source| CertificateError::Unreadable {
        file,
        path: path.to_path_buf(),
        source,
    })
}

fn not_pem(file: TlsFile, path: &Path, error: pem::Error) -> CertificateError {
    let reason = match error {
        // The section start line is a PEM header, never key material.
        pem::Error::MissingSectionEnd { .. } => "a section has no END line".to_string(),
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed".to_string(),
        pem::Error::Base64Decode(_) => "a section is not valid base64".to_string(),
        other => other.to_string(),
    };
    CertificateError::NotPem {
        file,
        path: path.to_path_buf(),
        reason,
    }
}

/// The listener's certificate: the pair in service, and the files it is read from again on
/// [`CertificateResolver::reload`].
#[derive(Debug)]
pub struct CertificateResolver {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertificateResolver {
    /// Loads the pair (the start fails on a bad one) and puts it in service.
    pub fn open(cert_path: &Path, key_path: &Path) -> Result<CertificateResolver, CertificateError> {
        let provider = provider();
        let loaded = load_with(&provider, cert_path, key_path)?;
        TlsCertificateLoaded {
            cert_file: &cert_path.display(),
            not_after_unix: loaded.not_after_unix,
            reloaded: false,
        }
        .emit();
        Ok(CertificateResolver {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            provider,
            current: RwLock::new(loaded.certified_key),
        })
    }

    /// Reads the files again: a good pair replaces the one in service for new handshakes; a bad
    /// one is logged and counted, and the one in service stays.
    pub fn reload(&self) -> Result<(), CertificateError> {
        match load_with(&self.provider, &self.cert_path, &self.key_path) {
            Ok(loaded) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = loaded.certified_key;
                TlsCertificateLoaded {
                    cert_file: &self.cert_path.display(),
                    not_after_unix: loaded.not_after_unix,
                    reloaded: true,
                }
                .emit();
                Ok(())
            }
            Err(error) => {
                TlsReloadFailed { reason: &error }.emit();
                Err(error)
            }
        }
    }

    /// The pair in service.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The rustls configuration of the listener: TLS 1.2 and 1.3 (rustls's safe defaults), no
    /// client certificates, the certificate from this resolver. actix-web adds the ALPN
    /// protocols it speaks (HTTP/1.1 only: hookpipe builds actix-web without HTTP/2).
    pub fn server_config(self: &Arc<Self>) -> rustls::ServerConfig {
        rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports rustls's default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone())
    }
}

impl ResolvesServerCert for CertificateResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// Reloads `resolver` on every SIGHUP, for as long as the actix system runs; without TLS
/// (`None`) a SIGHUP is logged and changes nothing (the configuration file is read only at
/// start), so a `kill -HUP` meant for a reload never ends the process. The handler is
/// installed before this returns (from then on SIGHUP no longer terminates the process); must
/// be called inside the actix (tokio) runtime.
pub fn reload_on_sighup(resolver: Option<Arc<CertificateResolver>>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup())?;
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            match &resolver {
                // Failures are logged and counted by `reload`; the pair in service stays.
                Some(resolver) => {
                    let _ = resolver.reload();
                }
                None => crate::telemetry::events::HangupIgnored { tier: "serve" }.emit(),
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    /// A temporary directory, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new() -> Dir {
            let dir = std::env::temp_dir().join(format!("hookpipe-tls-server-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }

        fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, contents).unwrap();
            path
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A self-signed certificate for `name`, as (certificate PEM, PKCS#8 key PEM, key).
    fn self_signed(name: &str) -> (String, String, rcgen::KeyPair) {
        let certified = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        (
            certified.cert.pem(),
            certified.key_pair.serialize_pem(),
            certified.key_pair,
        )
    }

    fn pem(label: &str, der: &[u8]) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|chunk| std::str::from_utf8(chunk).unwrap())
            .collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    }

    #[test]
    fn a_pair_loads_with_its_chain_and_expiry() {
        let dir = Dir::new();
        let (cert, key, _) = self_signed("localhost");
        let (other_cert, _, _) = self_signed("intermediate.example");
        let cert_path = dir.write("cert.pem", format!("{cert}{other_cert}"));
        let key_path = dir.write("key.pem", &key);
        let loaded = load(&cert_path, &key_path).unwrap();
        assert_eq!(loaded.certified_key.cert.len(), 2, "the whole chain is served");
        assert!(loaded.not_after_unix.is_some());
        // One file holding both works too (other sections are skipped).
        let both = dir.write("both.pem", format!("{key}{cert}"));
        assert!(load(&both, &both).is_ok());
    }

    #[test]
    fn a_sec1_ec_key_loads() {
        let dir = Dir::new();
        let (cert, _, key) = self_signed("localhost");
        // The ECPrivateKey inside the PKCS#8 document is the SEC1 form of the same key.
        let pkcs8 = key.serialize_der();
        let sec1 = sec1_of(&pkcs8);
        let cert_path = dir.write("cert.pem", cert);
        let key_path = dir.write("key.pem", pem("EC PRIVATE KEY", &sec1));
        assert!(load(&cert_path, &key_path).is_ok());
    }

    /// The OCTET STRING content of a PKCS#8 `PrivateKeyInfo` (version, algorithm, key).
    fn sec1_of(pkcs8: &[u8]) -> Vec<u8> {
        /// Tag, content and rest of the DER element at the start of `input`.
        fn split(input: &[u8]) -> (u8, &[u8], &[u8]) {
            let (length, header) = match input[1] {
                short @ 0..=0x7f => (usize::from(short), 2),
                0x81 => (usize::from(input[2]), 3),
                long => panic!("length form {long:#x} not expected in a P-256 key"),
            };
            (input[0], &input[header..header + length], &input[header + length..])
        }
        let (_, info, _) = split(pkcs8);
        let (_, _, after_version) = split(info);
        let (_, _, after_algorithm) = split(after_version);
        let (tag, sec1, _) = split(after_algorithm);
        assert_eq!(tag, 0x04, "OCTET STRING");
        sec1.to_vec()
    }

    #[test]
    fn each_problem_is_named_at_its_file() {
        let dir = Dir::new();
        let (cert, key, _) = self_signed("localhost");
        let (_, other_key, _) = self_signed("other");
        let cert_path = dir.write("cert.pem", &cert);
        let key_path = dir.write("key.pem", &key);
        let missing = dir.0.join("missing.pem");
        let check = |cert_path: &Path, key_path: &Path, file: TlsFile, words: &str| {
            let error = load(cert_path, key_path).err().expect("an error");
            let message = error.to_string();
            assert_eq!(error.file(), file, "{message}");
            assert!(message.contains(words), "{message:?} should say {words:?}");
            assert!(!message.contains("MII"), "no key or certificate bytes in {message:?}");
        };
        check(&missing, &key_path, TlsFile::Certificate, "cannot read");
        check(&cert_path, &missing, TlsFile::Key, "cannot read");
        let empty = dir.write("empty.pem", "");
        check(&empty, &key_path, TlsFile::Certificate, "no PEM certificate");
        check(&cert_path, &empty, TlsFile::Key, "no PEM private key");
        check(&key_path, &key_path, TlsFile::Certificate, "no PEM certificate");
        check(&cert_path, &cert_path, TlsFile::Key, "no PEM private key");
        let cut = dir.write("cut.pem", &cert[..cert.len() / 2]);
        check(&cut, &key_path, TlsFile::Certificate, "not valid PEM");
        let garbage_cert = dir.write("garbage-cert.pem", pem("CERTIFICATE", b"not a certificate"));
        check(&garbage_cert, &key_path, TlsFile::Certificate, "not valid X.509");
        let garbage_key = dir.write("garbage-key.pem", pem("RSA PRIVATE KEY", b"not a key"));
        check(&cert_path, &garbage_key, TlsFile::Key, "cannot be used");
        let other_key_path = dir.write("other-key.pem", &other_key);
        check(
            &cert_path,
            &other_key_path,
            TlsFile::Key,
            "does not match the certificate",
        );
    }

    #[test]
    fn a_reload_swaps_a_good_pair_in_and_keeps_the_old_one_on_a_bad_one() {
        let dir = Dir::new();
        let (cert, key, _) = self_signed("first.example");
        let cert_path = dir.write("cert.pem", &cert);
        let key_path = dir.write("key.pem", &key);
        let resolver = CertificateResolver::open(&cert_path, &key_path).unwrap();
        let first = resolver.current();

        let (second_cert, second_key, _) = self_signed("second.example");
        dir.write("cert.pem", &second_cert);
        dir.write("key.pem", &second_key);
        resolver.reload().unwrap();
        let second = resolver.current();
        assert_ne!(second.cert[0], first.cert[0], "the new certificate is in service");

        // A certificate written before its key: the pair does not match, the old one stays.
        let (third_cert, _, _) = self_signed("third.example");
        dir.write("cert.pem", &third_cert);
        assert!(matches!(resolver.reload(), Err(CertificateError::KeyMismatch { .. })));
        assert_eq!(resolver.current().cert[0], second.cert[0]);
        dir.write("cert.pem", "broken");
        assert!(resolver.reload().is_err());
        assert_eq!(resolver.current().cert[0], second.cert[0]);

        let metrics = crate::telemetry::METRICS.render();
        assert!(
            metrics.contains("hookpipe_tls_reloads_total{outcome=\"reloaded\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("hookpipe_tls_reloads_total{outcome=\"failed\"} 2"),
            "{metrics}"
        );
        assert!(
            metrics.contains("hookpipe_tls_certificate_expiry_timestamp_seconds "),
            "{metrics}"
        );
    }

    #[test]
    fn the_server_config_speaks_tls_with_the_resolver_s_certificate() {
        let dir = Dir::new();
        let (cert, key, _) = self_signed("localhost");
        let cert_path = dir.write("cert.pem", &cert);
        let key_path = dir.write("key.pem", &key);
        let resolver = Arc::new(CertificateResolver::open(&cert_path, &key_path).unwrap());
        let config = resolver.server_config();
        // A handshake in memory, client to server, with the certificate as the only root.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(resolver.current().cert[0].clone()).unwrap();
        let client_config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(client_config), name).unwrap();
        let mut server = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        for _ in 0..10 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).unwrap();
            }
            server.read_tls(&mut wire.as_slice()).unwrap();
            server.process_new_packets().unwrap();
            let mut wire = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut wire).unwrap();
            }
            client.read_tls(&mut wire.as_slice()).unwrap();
            client.process_new_packets().unwrap();
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
        }
        assert!(!client.is_handshaking(), "handshake completed");
        assert_eq!(client.peer_certificates().unwrap()[0], resolver.current().cert[0]);
    }
}
