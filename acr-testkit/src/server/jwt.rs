//! ES256 JWTs: signing what docker-registry 2.8 accepts, and verifying our own tokens.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde_json::{Map, Value, json};

use super::faults::Shared;
use super::grants::Scope;
use super::keys::SigningKey;

/// Seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// How the JWT header names the signing key (docker-registry tries `x5c`, then `jwk`, then `kid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyId {
    /// `x5c`: the signing certificate itself (standard base64 DER).
    #[default]
    X5c,
    /// `kid`: the libtrust fingerprint of the key, as real ACR tokens carry.
    Libtrust,
}

/// Signs `claims` as an ES256 JWT.
pub(crate) fn sign(key: &SigningKey, key_id: KeyId, claims: &Value) -> Result<String, String> {
    let header = match key_id {
        KeyId::X5c => json!({"typ": "JWT", "alg": "ES256", "x5c": [key.x5c()]}),
        KeyId::Libtrust => json!({"typ": "JWT", "alg": "ES256", "kid": key.kid()}),
    };
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    // ES256 in JWS is the raw 64-byte R‖S, which ring's *_FIXED algorithms produce.
    let signature = key.sign(input.as_bytes())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// Checks an ES256 signature by `public_key` and returns the claims; the error says what is wrong.
pub(crate) fn verify(token: &str, public_key: &[u8]) -> Result<Map<String, Value>, &'static str> {
    let mut parts = token.trim().split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a JWT (expected three dot-separated parts)");
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part.trim_end_matches('='));
    let header: Value = decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or("the JWT header is not base64url JSON")?;
    if header.get("alg").and_then(Value::as_str) != Some("ES256") {
        return Err("the JWT is not signed with ES256");
    }
    let signature = decode(signature).map_err(|_| "the JWT signature is not base64url")?;
    let signed = &token.trim()[..header_len(token.trim())];
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "the JWT signature does not verify with this server's key")?;
    match decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
    {
        Some(Value::Object(claims)) => Ok(claims),
        _ => Err("the JWT payload is not a base64url JSON object"),
    }
}

/// Length of `header.payload`, the signed part.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

/// `exp`/`nbf` checks for tokens this crate verifies (no leeway: tests want exact expiry).
pub(crate) fn check_times(claims: &Map<String, Value>, now: i64) -> Result<(), &'static str> {
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or("the token has no numeric exp claim")?;
    if now >= exp {
        return Err("the token has expired");
    }
    if claims
        .get("nbf")
        .and_then(Value::as_i64)
        .is_some_and(|nbf| nbf > now)
    {
        return Err("the token is not valid yet (nbf in the future)");
    }
    Ok(())
}

/// Issues registry access tokens and refresh tokens for one service.
#[derive(Debug)]
pub(crate) struct Issuer {
    pub(crate) key: SigningKey,
    pub(crate) key_id: KeyId,
    pub(crate) issuer: String,
    pub(crate) service: String,
    pub(crate) shared: Arc<Shared>,
}

/// A token and when it was issued / how long it lives.
pub(crate) struct Issued {
    pub(crate) token: String,
    pub(crate) issued_at: i64,
    pub(crate) expires_in: i64,
}

impl Issuer {
    /// An access token for `subject` carrying exactly `access`; `extra` claims are merged in.
    pub(crate) fn access_token(
        &self,
        subject: &str,
        access: &[Scope],
        default_ttl: i64,
        extra: Value,
    ) -> Result<Issued, String> {
        let ttl = self.shared.access_ttl().unwrap_or(default_ttl);
        let access: Vec<Value> = access
            .iter()
            .map(|s| json!({"type": s.resource_type, "name": s.name, "actions": s.actions}))
            .collect();
        let issued = self.issue(subject, ttl, json!({ "access": access }), extra)?;
        self.shared.count_access_token();
        Ok(issued)
    }

    /// A refresh token (verified only by this crate; `grant_type` marks it).
    pub(crate) fn refresh_token(
        &self,
        subject: &str,
        default_ttl: i64,
        extra: Value,
    ) -> Result<Issued, String> {
        let ttl = self.shared.refresh_ttl().unwrap_or(default_ttl);
        let issued = self.issue(subject, ttl, json!({"grant_type": "refresh_token"}), extra)?;
        self.shared.count_refresh_token();
        Ok(issued)
    }

    fn issue(&self, subject: &str, ttl: i64, own: Value, extra: Value) -> Result<Issued, String> {
        // Backdating simulates a token server whose clock runs behind (see Faults::set_backdate).
        let iat = now() - self.shared.backdate();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": subject,
            // docker-registry 2.8 only accepts a string aud, never an array.
            "aud": self.service,
            "exp": iat + ttl,
            "nbf": iat,
            "iat": iat,
            "jti": self.key.random_id(),
        });
        for extra in [own, extra] {
            if let (Value::Object(claims), Value::Object(extra)) = (&mut claims, extra) {
                claims.extend(extra);
            }
        }
        Ok(Issued {
            token: sign(&self.key, self.key_id, &claims)?,
            issued_at: iat,
            expires_in: ttl,
        })
    }

    /// Verifies a refresh token this issuer made; returns its claims.
    pub(crate) fn verify_refresh_token(
        &self,
        token: &str,
    ) -> Result<Map<String, Value>, &'static str> {
        let claims = verify(token, self.key.public_key())?;
        check_times(&claims, now())?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err("the refresh token was issued by someone else");
        }
        if claims.get("aud").and_then(Value::as_str) != Some(self.service.as_str()) {
            return Err("the refresh token is for another service");
        }
        if claims.get("grant_type").and_then(Value::as_str) != Some("refresh_token") {
            return Err("the token is not a refresh token");
        }
        if claims.get("sub").and_then(Value::as_str).is_none() {
            return Err("the refresh token has no subject");
        }
        Ok(claims)
    }
}

/// RFC 3339 UTC time (`issued_at` of the token response), without a date library.
pub(crate) fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_706_077_034), "2024-01-24T06:17:14Z");
    }
}
