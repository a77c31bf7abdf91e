//! Verification of push webhooks (`POST /hooks/git`).
//!
//! A webhook only makes a git source sync now rather than at its next poll,
//! so the worst a forged one could do is cause extra fetches; still, nothing
//! unsigned gets through. Supported:
//!
//! - GitHub (and Gitea/Forgejo, Bitbucket Server, which copy it):
//!   `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`;
//! - Gitea/Forgejo/Gogs: `X-Gitea-Signature` / `X-Gogs-Signature: <hex>`;
//! - GitLab: `X-Gitlab-Token: <secret>` (a shared token, not a signature).
//!
//! Comparisons are constant-time (the HMAC crate's `verify_slice` for
//! signatures; for GitLab tokens both sides are hashed first, so not even
//! the length leaks). The HTTP layer maps every [`Rejection`] to 401.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Who signed the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `X-Hub-Signature-256`.
    GitHub,
    /// `X-Gitea-Signature` or `X-Gogs-Signature`.
    Gitea,
    /// `X-Gitlab-Token`.
    GitLab,
}

/// Why a request was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No webhook secret is configured: every request is refused.
    #[error("no webhook secret is configured")]
    NoSecret,
    /// None of the known signature headers is present.
    #[error(
        "the request is not signed (expected X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token)"
    )]
    Unsigned,
    /// The signature header is not of the expected form.
    #[error("malformed {header} header")]
    Malformed { header: &'static str },
    /// The signature or token does not match the configured secret.
    #[error("{header} does not match the configured secret")]
    Mismatch { header: &'static str },
}

const GITHUB: &str = "x-hub-signature-256";
const GITEA: &str = "x-gitea-signature";
const GOGS: &str = "x-gogs-signature";
const GITLAB: &str = "x-gitlab-token";

/// Check a webhook request against the configured `secret`. Header names
/// are matched case-insensitively; the first known header decides.
pub fn verify(
    headers: &[(&str, &[u8])],
    body: &[u8],
    secret: &[u8],
) -> Result<Provider, Rejection> {
    if secret.is_empty() {
        return Err(Rejection::NoSecret);
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    };
    if let Some(value) = header(GITHUB) {
        let hex = value
            .strip_prefix(b"sha256=")
            .ok_or(Rejection::Malformed { header: GITHUB })?;
        check_hmac(GITHUB, hex, body, secret)?;
        return Ok(Provider::GitHub);
    }
    for name in [GITEA, GOGS] {
        if let Some(value) = header(name) {
            check_hmac(name, value, body, secret)?;
            return Ok(Provider::Gitea);
        }
    }
    if let Some(token) = header(GITLAB) {
        let same: bool = Sha256::digest(token).ct_eq(&Sha256::digest(secret)).into();
        return if same {
            Ok(Provider::GitLab)
        } else {
            Err(Rejection::Mismatch { header: GITLAB })
        };
    }
    Err(Rejection::Unsigned)
}

/// The GitHub-style signature header value of `body`: `sha256=<hex>`.
#[must_use]
pub fn sign(body: &[u8], secret: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::from("sha256=");
    for b in tag {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"))
}

fn check_hmac(
    header: &'static str,
    hex: &[u8],
    body: &[u8],
    secret: &[u8],
) -> Result<(), Rejection> {
    let tag = decode_hex(hex.trim_ascii()).ok_or(Rejection::Malformed { header })?;
    let mut mac = mac(secret);
    mac.update(body);
    mac.verify_slice(&tag)
        .map_err(|_| Rejection::Mismatch { header })
}

fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16);
    hex.chunks_exact(2)
        .map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of GitHub's "Validating webhook deliveries" docs.
    const DOCS_SECRET: &[u8] = b"It's a Secret to Everybody";
    const DOCS_BODY: &[u8] = b"Hello, World!";
    const DOCS_SIGNATURE: &[u8] =
        b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_published_example_signature_is_accepted() {
        let headers: [(&str, &[u8]); 1] = [("X-Hub-Signature-256", DOCS_SIGNATURE)];
        assert_eq!(
            verify(&headers, DOCS_BODY, DOCS_SECRET),
            Ok(Provider::GitHub)
        );
        assert_eq!(sign(DOCS_BODY, DOCS_SECRET).as_bytes(), DOCS_SIGNATURE);
    }

    #[test]
    fn a_signature_computed_by_openssl_is_accepted() {
        let body = br#"{"ref":"refs/heads/main","after":"0123"}"#;
        let secret = "s3cret-webhook";
        let mut child = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-hmac", secret, "-r"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("openssl runs");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), body).expect("write");
        let out = child.wait_with_output().expect("openssl output");
        let hex = String::from_utf8(out.stdout).expect("utf-8");
        let hex = hex.split_whitespace().next().expect("a digest");
        let header = format!("sha256={hex}");
        let headers: [(&str, &[u8]); 1] = [("x-hub-signature-256", header.as_bytes())];
        assert_eq!(
            verify(&headers, body, secret.as_bytes()),
            Ok(Provider::GitHub)
        );
        let gitea: [(&str, &[u8]); 1] = [("X-Gitea-Signature", hex.as_bytes())];
        assert_eq!(verify(&gitea, body, secret.as_bytes()), Ok(Provider::Gitea));
    }

    #[test]
    fn a_wrong_signature_or_changed_body_is_rejected() {
        let headers: [(&str, &[u8]); 1] = [("X-Hub-Signature-256", DOCS_SIGNATURE)];
        assert_eq!(
            verify(&headers, b"Hello, World?", DOCS_SECRET),
            Err(Rejection::Mismatch { header: GITHUB })
        );
        assert_eq!(
            verify(&headers, DOCS_BODY, b"another secret"),
            Err(Rejection::Mismatch { header: GITHUB })
        );
    }

    #[test]
    fn malformed_signatures_are_rejected() {
        for bad in [
            &b"757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"[..],
            b"sha1=757107ea",
            b"sha256=zz",
            b"sha256=757",
        ] {
            let headers: [(&str, &[u8]); 1] = [("X-Hub-Signature-256", bad)];
            assert_eq!(
                verify(&headers, DOCS_BODY, DOCS_SECRET),
                Err(Rejection::Malformed { header: GITHUB }),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let short: [(&str, &[u8]); 1] = [("X-Hub-Signature-256", b"sha256=7571")];
        assert_eq!(
            verify(&short, DOCS_BODY, DOCS_SECRET),
            Err(Rejection::Mismatch { header: GITHUB })
        );
    }

    #[test]
    fn gitlab_tokens_must_equal_the_secret() {
        let ok: [(&str, &[u8]); 1] = [("X-Gitlab-Token", b"tok-123")];
        assert_eq!(verify(&ok, b"{}", b"tok-123"), Ok(Provider::GitLab));
        let wrong: [(&str, &[u8]); 1] = [("X-Gitlab-Token", b"tok-12")];
        assert_eq!(
            verify(&wrong, b"{}", b"tok-123"),
            Err(Rejection::Mismatch { header: GITLAB })
        );
    }

    #[test]
    fn unsigned_requests_and_an_unset_secret_are_rejected() {
        let none: [(&str, &[u8]); 1] = [("Content-Type", b"application/json")];
        assert_eq!(verify(&none, b"{}", b"s"), Err(Rejection::Unsigned));
        let signed: [(&str, &[u8]); 1] = [("X-Gitlab-Token", b"")];
        assert_eq!(verify(&signed, b"{}", b""), Err(Rejection::NoSecret));
    }
}
