//! Trusted roots for HTTPS probes, read from a monitor's `tls.ca_file`. Config validation
//! and the prober both read the file through here, so `check` fails exactly when a probe
//! could not start.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why a `ca_file` cannot serve as trusted roots.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS: cannot read ca_file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("TLS: ca_file {}: {reason}", path.display())]
    Certificate { path: PathBuf, reason: String },
    #[error("TLS: ca_file {} holds no PEM certificate", path.display())]
    Empty { path: PathBuf },
}

/// Every certificate in the PEM file at `path`, as the only trusted roots.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    for cert in certs {
        let cert = cert.map_err(|e| TlsError::Certificate {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| TlsError::Certificate {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(roots)
}
