//! Where the daemon is and how to open a connection to it.
//!
//! Mirrors the docker CLI: `DOCKER_HOST` (`unix:///path` or `tcp://host:port`,
//! default `unix:///var/run/docker.sock`), TLS when `DOCKER_TLS_VERIFY` is
//! set, with `ca.pem`, `cert.pem` and `key.pem` from `DOCKER_CERT_PATH`
//! (default `~/.docker`). The connector below plugs into hyper-util's pooled
//! client, so connections are kept alive between requests.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::swarm::Error;

/// The default daemon socket.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A unix socket path.
    Unix(PathBuf),
    /// A TCP address `host:port`.
    Tcp { host: String, port: u16 },
}

impl Host {
    /// Parse a `DOCKER_HOST` value: `unix:///path`, `tcp://host:port`
    /// (port defaults to 2375, or 2376 with TLS, like the CLI).
    pub fn parse(s: &str, tls: bool) -> Result<Self, Error> {
        let bad = |message: &str| Error::ConnectFailed {
            host: s.to_string(),
            message: message.to_string(),
        };
        if let Some(path) = s.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(bad("empty socket path"));
            }
            return Ok(Host::Unix(PathBuf::from(path)));
        }
        let rest = s
            .strip_prefix("tcp://")
            .or_else(|| s.strip_prefix("http://"))
            .or_else(|| s.strip_prefix("https://"))
            .ok_or_else(|| bad("unsupported scheme: use unix:///path or tcp://host:port"))?;
        let rest = rest.trim_end_matches('/');
        let default_port = if tls { 2376 } else { 2375 };
        // `[::1]:2375`, `host:2375`, `host`.
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => {
                (h, p.parse::<u16>().map_err(|_| bad("invalid port number"))?)
            }
            _ => (rest, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("empty host name"));
        }
        Ok(Host::Tcp {
            host: host.to_string(),
            port,
        })
    }
}

/// TLS client material, read from `DOCKER_CERT_PATH`-style files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// `ca.pem`, `cert.pem` and `key.pem` in `dir`.
    #[must_use]
    pub fn in_dir(dir: &Path) -> Self {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    /// Build a rustls client configuration (server verified against `ca`,
    /// client authenticated with `cert`/`key`).
    pub(crate) fn client_config(&self, host: &str) -> Result<rustls::ClientConfig, Error> {
        let fail = |what: &Path, e: &dyn std::fmt::Display| Error::ConnectFailed {
            host: host.to_string(),
            message: format!("TLS: cannot read {}: {e}", what.display()),
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).map_err(|e| fail(&self.ca, &e))? {
            let cert = cert.map_err(|e| fail(&self.ca, &e))?;
            roots.add(cert).map_err(|e| fail(&self.ca, &e))?;
        }
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| fail(&self.cert, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(&self.cert, &e))?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| fail(&self.key, &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| {
                b.with_root_certificates(roots)
                    .with_client_auth_cert(certs, key)
            })
            .map_err(|e| Error::ConnectFailed {
                host: host.to_string(),
                message: format!("TLS: {e}"),
            })
    }
}

/// Opens connections to one daemon; cloned into hyper-util's pool.
#[derive(Clone)]
pub(crate) struct Connector {
    host: Host,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Connector {
    pub(crate) fn new(host: Host, tls: Option<rustls::ClientConfig>) -> Result<Self, Error> {
        let tls = match (tls, &host) {
            (None, _) => None,
            (Some(_), Host::Unix(p)) => {
                return Err(Error::ConnectFailed {
                    host: format!("unix://{}", p.display()),
                    message: "TLS is only supported over tcp://".to_string(),
                });
            }
            (Some(config), Host::Tcp { host, .. }) => {
                let name =
                    ServerName::try_from(host.clone()).map_err(|e| Error::ConnectFailed {
                        host: host.clone(),
                        message: format!("TLS: invalid server name: {e}"),
                    })?;
                Some((TlsConnector::from(Arc::new(config)), name))
            }
        };
        Ok(Connector { host, tls })
    }

    async fn open(self) -> io::Result<TokioIo<Stream>> {
        let stream = match &self.host {
            Host::Unix(path) => Stream::Unix(UnixStream::connect(path).await?),
            Host::Tcp { host, port } => {
                let tcp = TcpStream::connect((host.as_str(), *port)).await?;
                tcp.set_nodelay(true)?;
                match self.tls {
                    None => Stream::Tcp(tcp),
                    Some((tls, name)) => Stream::Tls(Box::new(tls.connect(name, tcp).await?)),
                }
            }
        };
        Ok(TokioIo::new(stream))
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<Stream>>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        Box::pin(self.clone().open())
    }
}

/// One connection to the daemon.
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_like_the_docker_cli() {
        assert_eq!(
            Host::parse("unix:///run/m1.sock", false).ok(),
            Some(Host::Unix(PathBuf::from("/run/m1.sock")))
        );
        assert_eq!(
            Host::parse("tcp://10.0.0.1:2376", true).ok(),
            Some(Host::Tcp {
                host: "10.0.0.1".into(),
                port: 2376
            })
        );
        assert_eq!(
            Host::parse("tcp://docker", false).ok(),
            Some(Host::Tcp {
                host: "docker".into(),
                port: 2375
            })
        );
        assert_eq!(
            Host::parse("tcp://[::1]:1234", false).ok(),
            Some(Host::Tcp {
                host: "::1".into(),
                port: 1234
            })
        );
        assert!(Host::parse("ssh://me@host", false).is_err());
        assert!(Host::parse("tcp://host:notaport", false).is_err());
        assert!(Host::parse("unix://", false).is_err());
    }

    #[test]
    fn missing_tls_files_name_the_file() {
        let dir = tempfile::tempdir().ok();
        let dir = dir.as_ref().map_or(Path::new("/nonexistent"), |d| d.path());
        let err = TlsFiles::in_dir(dir).client_config("tcp://h:2376").err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("ca.pem"), "{msg}");
    }
}
