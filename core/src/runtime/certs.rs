//! The server's certificate: PEM files named in the configuration, or a self-signed
//! certificate for the host name, generated on first start and kept in the data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read {path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate a certificate: {0}")]
    Generate(String),
    #[error("unusable certificate or key: {0}")]
    Invalid(String),
}

/// A loaded certificate, ready for new handshakes.
pub struct LoadedCert {
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the leaf certificate, as colon-separated hex.
    pub fingerprint: String,
    pub cert_path: PathBuf,
}

/// Loads `cert`/`key` when both are set, else the self-signed pair in `data_dir/tls/`
/// (generated for `hostname` if missing).
pub fn load(
    cert: &str,
    key: &str,
    data_dir: &Path,
    hostname: &str,
) -> Result<LoadedCert, CertError> {
    let (cert_path, key_path) = if cert.is_empty() || key.is_empty() {
        let dir = data_dir.join("tls");
        let pair = (dir.join("cert.pem"), dir.join("key.pem"));
        if !pair.0.exists() || !pair.1.exists() {
            generate(&dir, &pair.0, &pair.1, hostname)?;
        }
        pair
    } else {
        (PathBuf::from(cert), PathBuf::from(key))
    };
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| CertError::Read {
            path: path.to_owned(),
            detail: e.to_string(),
        })
    };
    let checked = from_pem(&read(&cert_path)?, &read(&key_path)?).map_err(|e| match e {
        CertError::Invalid(detail) => CertError::Invalid(format!(
            "{} and {}: {detail}",
            cert_path.display(),
            key_path.display()
        )),
        other => other,
    })?;
    Ok(LoadedCert {
        cert_path,
        ..checked
    })
}

/// A certificate chain (the server's first) and its private key, in PEM, made into the
/// TLS configuration every listener uses: an error when either does not parse, the chain
/// is empty or rustls refuses the pair (a key that is not the certificate's).
pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<LoadedCert, CertError> {
    let invalid =
        |what: &str, e: &dyn std::fmt::Display| CertError::Invalid(format!("{what}: {e}"));
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid("the certificate chain", &e))?;
    let leaf = chain
        .first()
        .ok_or_else(|| CertError::Invalid("no certificate in the chain".into()))?;
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| invalid("the private key", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // A key that is not the certificate's: refused here, not at the first handshake.
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| invalid("the private key", &e))?;
    let certified = rustls::sign::CertifiedKey::new(chain.clone(), signing);
    certified
        .keys_match()
        .map_err(|e| invalid("the key and the certificate", &e))?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| CertError::Invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| CertError::Invalid(e.to_string()))?;
    Ok(LoadedCert {
        config: Arc::new(config),
        fingerprint,
        cert_path: PathBuf::new(),
    })
}

/// Writes a checked certificate chain and key where the server reads them at start, each
/// whole or not at all (a temporary file renamed over it); the key for its owner only.
pub fn install(
    cert_path: &Path,
    key_path: &Path,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<(), CertError> {
    let replace = |path: &Path, data: &[u8], private: bool| -> Result<(), CertError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| CertError::Write {
                path: dir.to_owned(),
                source,
            })?;
        }
        let temp = path.with_extension("new");
        if private {
            write_private(&temp, data)?;
        } else {
            std::fs::write(&temp, data).map_err(|source| CertError::Write {
                path: temp.clone(),
                source,
            })?;
        }
        std::fs::rename(&temp, path).map_err(|source| CertError::Write {
            path: path.to_owned(),
            source,
        })
    };
    replace(key_path, key_pem, true)?;
    replace(cert_path, cert_pem, false)
}

fn generate(
    dir: &Path,
    cert_path: &Path,
    key_path: &Path,
    hostname: &str,
) -> Result<(), CertError> {
    let mut names = vec![hostname.to_string()];
    if hostname != "localhost" {
        names.push("localhost".into());
    }
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| CertError::Generate(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|source| CertError::Write {
        path: dir.to_owned(),
        source,
    })?;
    write_private(key_path, certified.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, certified.cert.pem()).map_err(|source| CertError::Write {
        path: cert_path.to_owned(),
        source,
    })?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed certificate for {hostname}");
    Ok(())
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, data: &[u8]) -> Result<(), CertError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(data)?;
        f.sync_all()
    };
    write().map_err(|source| CertError::Write {
        path: path.to_owned(),
        source,
    })
}

fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let first = load("", "", dir.path(), "mx.example.test").unwrap();
        let second = load("", "", dir.path(), "mx.example.test").unwrap();
        assert_eq!(first.fingerprint, second.fingerprint);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("tls/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Configured files are used as they are.
        let cert = dir.path().join("tls/cert.pem");
        let key = dir.path().join("tls/key.pem");
        let named = load(
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
            Path::new("/nonexistent"),
            "x",
        )
        .unwrap();
        assert_eq!(named.fingerprint, first.fingerprint);
        assert!(load(
            "/nonexistent/cert.pem",
            "/nonexistent/key.pem",
            dir.path(),
            "x"
        )
        .is_err());
    }
}
