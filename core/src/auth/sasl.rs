//! SASL PLAIN (RFC 4616) and LOGIN, as protocol-neutral decoding shared by SMTP, IMAP and
//! POP3: base64 in, credentials or an error out.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// A username and password presented by a client.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslError {
    /// Not base64, or not the mechanism's format.
    Malformed,
    /// The client sent "*".
    Cancelled,
    /// PLAIN asked to act as another user (authzid differs from authcid).
    AuthzNotPermitted,
}

/// Decodes one base64 client response; "*" cancels.
pub fn decode_response(line: &[u8]) -> Result<Vec<u8>, SaslError> {
    let line = line.trim_ascii();
    if line == b"*" {
        return Err(SaslError::Cancelled);
    }
    if line == b"=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(line).map_err(|_| SaslError::Malformed)
}

/// PLAIN: `authzid NUL authcid NUL passwd`.
pub fn parse_plain(decoded: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = decoded.split(|&b| b == 0);
    let (Some(authz), Some(user), Some(pass), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| SaslError::Malformed);
    let (authz, username, password) = (text(authz)?, text(user)?, text(pass)?);
    if username.is_empty() || password.is_empty() {
        return Err(SaslError::Malformed);
    }
    if !authz.is_empty() && !authz.eq_ignore_ascii_case(&username) {
        return Err(SaslError::AuthzNotPermitted);
    }
    Ok(Credentials { username, password })
}

/// One decoded LOGIN field (username or password).
pub fn parse_login_field(decoded: Vec<u8>) -> Result<String, SaslError> {
    String::from_utf8(decoded).map_err(|_| SaslError::Malformed)
}

/// The challenges of LOGIN, base64 of "Username:" and "Password:".
pub const LOGIN_USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
pub const LOGIN_PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> Vec<u8> {
        STANDARD.encode(s).into_bytes()
    }

    #[test]
    fn plain() {
        let c = parse_plain(&decode_response(&b64(b"\0alice@example.test\0Secret123")).unwrap())
            .unwrap();
        assert_eq!(c.username, "alice@example.test");
        assert_eq!(c.password, "Secret123");
        assert!(parse_plain(b"alice@example.test\0alice@example.test\0pw").is_ok());
        assert_eq!(
            parse_plain(b"bob\0alice\0pw"),
            Err(SaslError::AuthzNotPermitted)
        );
        assert_eq!(parse_plain(b"\0alice"), Err(SaslError::Malformed));
        assert_eq!(parse_plain(b"\0alice\0pw\0more"), Err(SaslError::Malformed));
        assert_eq!(parse_plain(b"\0\0pw"), Err(SaslError::Malformed));
        assert_eq!(parse_plain(b"\0al\xffice\0pw"), Err(SaslError::Malformed));
    }

    #[test]
    fn responses() {
        assert_eq!(decode_response(b"*"), Err(SaslError::Cancelled));
        assert_eq!(decode_response(b"not base64!"), Err(SaslError::Malformed));
        assert_eq!(decode_response(b"YWxpY2U="), Ok(b"alice".to_vec()));
        assert_eq!(decode_response(b"="), Ok(Vec::new()));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
