//! Who is asking, and may they: HTTP Basic with a user name and a token.
//!
//! Tokens are stored as SHA-256 digests in the config and compared in constant
//! time. The role a request needs is decided by its caller; this module only
//! authenticates and checks a user's role on one repository.
//!
//! Existence is a secret too: a client without credentials is asked for
//! them (401) whether or not the repository it names exists, and a user is
//! told "not registered, or no role" (404) alike for a repository that does
//! not exist and for one they hold no role on. Only a user with some role on
//! a repository learns from a 403 which role an action needs. Every route
//! (Git, published view, API, events) decides through [`access`] or
//! [`authorize`], so the answers are the same bytes either way.

use base64::Engine as _;
use cadgate_config::{Config, Role};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::HttpError;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name from the config.
    pub name: String,
}

/// Credentials as sent: a user name and a token.
#[derive(Debug)]
struct BasicCredentials {
    user: String,
    token: String,
}

/// Authenticate the request's `Authorization` header.
///
/// Returns `Ok(None)` when the request carries no credentials, so the caller can
/// decide between anonymous access and a 401 challenge.
pub fn authenticate(config: &Config, headers: &HeaderMap) -> Result<Option<Principal>, HttpError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let credentials = parse_basic(value.as_bytes()).ok_or_else(|| {
        HttpError::unauthorized(
            "the Authorization header is not HTTP Basic with user name and token",
        )
    })?;
    let presented: [u8; 32] = Sha256::digest(credentials.token.as_bytes()).into();
    // Compare against a dummy digest for unknown users so that the time taken
    // does not tell which user names exist.
    let (expected, known) = match config.user(&credentials.user) {
        Some(user) => (user.token_sha256, true),
        None => ([0u8; 32], false),
    };
    let matches: bool = presented.ct_eq(&expected).into();
    if matches && known {
        Ok(Some(Principal {
            name: credentials.user,
        }))
    } else {
        Err(HttpError::unauthorized(
            "wrong user name or token; check the credentials git uses for this URL",
        ))
    }
}

/// The answer for a repository that does not exist or that the user holds no
/// role on: the same for both, so it tells neither.
/// It does not repeat the name, so its length tells nothing either.
pub fn unknown_repository(_repository: &str) -> HttpError {
    HttpError::not_found(
        "this repository is not registered on this server, or you have no role on it",
    )
}

/// Who reads a repository: a user (with their role, if any) or nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The authenticated user; `None`: anonymous.
    pub principal: Option<Principal>,
    /// Their role on the repository (`None` for anonymous readers, and for
    /// users without a role on a view anyone may read).
    pub role: Option<Role>,
}

/// Decide who may address repository `name` (registered or not: `exists`),
/// answering a missing repository exactly like one the caller may not see.
///
/// - no credentials: allowed when `anonymous` (anyone may read it, and it
///   exists); otherwise 401 with `challenge`, which must not depend on
///   whether the repository exists;
/// - wrong credentials: 401 (on a view anyone may read they count as none);
/// - a user: allowed when they hold a role on it (or anyone may read it);
///   otherwise [`unknown_repository`].
pub fn access(
    config: &Config,
    headers: &HeaderMap,
    name: &str,
    exists: bool,
    anonymous: bool,
    challenge: impl FnOnce() -> String,
) -> Result<Access, HttpError> {
    let public = exists && anonymous;
    let principal = match authenticate(config, headers) {
        Ok(principal) => principal,
        Err(_) if public => None,
        Err(e) => return Err(e),
    };
    let Some(principal) = principal else {
        return if public {
            Ok(Access {
                principal: None,
                role: None,
            })
        } else {
            Err(HttpError::unauthorized(challenge()))
        };
    };
    let role = config
        .user(&principal.name)
        .and_then(|user| user.role_for(name))
        .filter(|_| exists);
    if role.is_none() && !public {
        return Err(unknown_repository(name));
    }
    Ok(Access {
        principal: Some(principal),
        role,
    })
}

/// Require that `principal` holds at least `needed` on `repository`; a user
/// with no role at all gets [`unknown_repository`].
pub fn authorize(
    config: &Config,
    principal: &Principal,
    repository: &str,
    needed: Role,
    action: &str,
) -> Result<Role, HttpError> {
    let held = config
        .user(&principal.name)
        .and_then(|user| user.role_for(repository));
    match held {
        Some(role) if role >= needed => Ok(role),
        Some(role) => Err(HttpError::forbidden(format!(
            "user '{}' has role '{role}' on repository '{repository}'; {action} needs '{needed}' or higher",
            principal.name
        ))),
        None => Err(unknown_repository(repository)),
    }
}

fn parse_basic(header: &[u8]) -> Option<BasicCredentials> {
    let header = std::str::from_utf8(header).ok()?;
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, token) = decoded.split_once(':')?;
    Some(BasicCredentials {
        user: user.to_string(),
        token: token.to_string(),
    })
}

/// A fresh random token: 192 bits from the OS, URL-safe, with a `cgt_` prefix
/// so secret scanners can recognise it.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(format!(
        "cgt_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_basic_credentials() {
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:s3:cret")
        );
        let c = parse_basic(header.as_bytes()).expect("valid header");
        assert_eq!(c.user, "alice");
        assert_eq!(c.token, "s3:cret");
        assert!(parse_basic(b"Bearer abc").is_none());
        assert!(parse_basic(b"Basic !!!").is_none());
        assert!(parse_basic(b"Basic").is_none());
    }
}
