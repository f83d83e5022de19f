//! The session cookie and the short-lived sign-in cookie.
//!
//! Both are sealed with AES-256-GCM (the `cookie` crate's private jar):
//! encrypted and authenticated, the cookie's name bound as associated data,
//! so a tampered, truncated or swapped cookie opens to nothing. Expiry is
//! inside the sealed value and checked against the portal's clock (a
//! parameter, so tests move time). Cookies are HttpOnly, SameSite=Lax,
//! Path=/, and Secure when the portal is served over TLS.

use cookie::{Cookie, CookieJar, Key, SameSite};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tenantry_portal";
/// The sign-in (authorization request) cookie's name.
pub const LOGIN_COOKIE: &str = "tenantry_portal_login";
/// How long a started sign-in may take at the identity provider.
pub const LOGIN_TTL: Duration = Duration::from_secs(10 * 60);

/// What time it is, for session expiry.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(SystemTime::now)
}

/// Seconds since the epoch.
pub fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// A signed-in person. Their tier is not stored: it is read from the
/// current roster on every request, so a change takes effect at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionData {
    /// The roster key.
    pub user: String,
    /// The email the identity provider vouched for (checked again against the roster).
    pub email: String,
    pub issued: u64,
    pub expires: u64,
    /// The token forms that change state (sign-out) carry.
    pub csrf: String,
}

/// An authorization request in flight: what the callback must see again.
#[derive(Serialize, Deserialize)]
pub struct LoginState {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Where to go after signing in (a local path).
    pub next: String,
    pub expires: u64,
}

impl std::fmt::Debug for LoginState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginState").field("next", &self.next).finish_non_exhaustive()
    }
}

/// Seals and opens the portal's cookies.
#[derive(Clone)]
pub struct CookieSealer {
    key: Key,
    secure: bool,
}

impl std::fmt::Debug for CookieSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieSealer").field("secure", &self.secure).finish_non_exhaustive()
    }
}

impl CookieSealer {
    /// From key material (≥ 32 bytes; expanded with HKDF), or a random key.
    pub fn new(material: Option<&[u8]>, secure: bool) -> CookieSealer {
        let key = match material {
            Some(bytes) if bytes.len() >= 32 => Key::derive_from(bytes),
            _ => {
                let mut bytes = [0u8; 64];
                fill_random(&mut bytes);
                Key::from(&bytes)
            }
        };
        CookieSealer { key, secure }
    }

    /// `Set-Cookie` value holding `value` sealed under `name`.
    pub fn seal<T: Serialize>(&self, name: &'static str, value: &T, max_age: Duration) -> String {
        let json = serde_json::to_string(value).unwrap_or_default();
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key).add(Cookie::new(name, json));
        let sealed = jar.get(name).map(|c| c.value().to_string()).unwrap_or_default();
        let max_age = cookie::time::Duration::seconds(i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX));
        self.cookie(name, sealed).max_age(max_age).build().to_string()
    }

    /// `Set-Cookie` value removing `name`.
    pub fn clear(&self, name: &'static str) -> String {
        self.cookie(name, String::new()).max_age(cookie::time::Duration::ZERO).build().to_string()
    }

    fn cookie(&self, name: &'static str, value: String) -> cookie::CookieBuilder<'static> {
        Cookie::build((name, value)).http_only(true).secure(self.secure).same_site(SameSite::Lax).path("/")
    }

    /// The value sealed under `name` in a request's `Cookie` headers, if
    /// present and intact.
    pub fn open<T: for<'de> Deserialize<'de>>(&self, headers: &axum::http::HeaderMap, name: &str) -> Opened<T> {
        let mut found = false;
        for header in headers.get_all(axum::http::header::COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            for cookie in Cookie::split_parse(text.to_string()).flatten() {
                if cookie.name() != name {
                    continue;
                }
                found = true;
                let mut jar = CookieJar::new();
                jar.add_original(cookie.into_owned());
                if let Some(open) = jar.private(&self.key).get(name)
                    && let Ok(value) = serde_json::from_str(open.value())
                {
                    return Opened::Valid(value);
                }
            }
        }
        if found { Opened::Refused } else { Opened::Absent }
    }
}

/// What a request's cookie held.
#[derive(Debug)]
pub enum Opened<T> {
    Absent,
    /// Present but not sealed by this portal's key (tampered, or another key).
    Refused,
    Valid(T),
}

/// `n` random bytes from the operating system, hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    fill_random(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fill `bytes` from the kernel's random source (getrandom(2)).
pub fn fill_random(bytes: &mut [u8]) {
    let mut filled = 0;
    while filled < bytes.len() {
        match rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            // getrandom(2) only fails on bad arguments; a zeroed buffer
            // would be a predictable token: never hand one out.
            Err(_) => std::process::abort(),
        }
    }
}

/// Compare two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, header};

    fn request_with(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&format!("other=1; {pair}")).unwrap());
        headers
    }

    fn session() -> SessionData {
        SessionData { user: "alice".into(), email: "alice@x.org".into(), issued: 1, expires: 2, csrf: random_hex(16) }
    }

    #[test]
    fn a_sealed_session_opens_only_with_its_key_and_name() {
        let sealer = CookieSealer::new(Some(&[7u8; 48]), true);
        let set = sealer.seal(SESSION_COOKIE, &session(), Duration::from_secs(60));
        assert!(set.contains("HttpOnly") && set.contains("Secure") && set.contains("SameSite=Lax"), "{set}");
        assert!(!set.contains("alice"), "the value is encrypted: {set}");
        let Opened::Valid(opened) = sealer.open::<SessionData>(&request_with(&set), SESSION_COOKIE) else { panic!() };
        assert_eq!(opened.user, "alice");

        let other_key = CookieSealer::new(Some(&[8u8; 48]), true);
        assert!(matches!(other_key.open::<SessionData>(&request_with(&set), SESSION_COOKIE), Opened::Refused));
        // The same sealed value under another name does not open (the name is bound).
        let renamed = set.replacen(SESSION_COOKIE, LOGIN_COOKIE, 1);
        assert!(matches!(sealer.open::<SessionData>(&request_with(&renamed), LOGIN_COOKIE), Opened::Refused));
        assert!(matches!(sealer.open::<SessionData>(&HeaderMap::new(), SESSION_COOKIE), Opened::Absent));
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let sealer = CookieSealer::new(None, false);
        let set = sealer.seal(SESSION_COOKIE, &session(), Duration::from_secs(60));
        assert!(!set.contains("Secure"), "plain http: no Secure flag");
        let pair = set.split(';').next().unwrap();
        let (name, value) = pair.split_once('=').unwrap();
        for index in 0..value.len() {
            let mut bytes = value.as_bytes().to_vec();
            bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
            let tampered = format!("{name}={}", String::from_utf8(bytes).unwrap());
            assert!(
                !matches!(sealer.open::<SessionData>(&request_with(&tampered), SESSION_COOKIE), Opened::Valid(_)),
                "byte {index} changed and still opened"
            );
        }
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd") && !same_secret("abc", "ab") && !same_secret("", "a"));
        assert_eq!(random_hex(16).len(), 32);
        assert_ne!(random_hex(16), random_hex(16));
    }
}
