//! The portal's state: the current model (swapped atomically), the sealed
//! cookies, the OIDC client of the roster's issuer, the live-data source
//! and the clock. Shared by every request as `Arc<Portal>`.

use crate::config::PortalSettings;
use crate::error::PortalError;
use crate::live::QuotaSource;
use crate::model::PortalModel;
use crate::oidc::Oidc;
use crate::pages::{Chrome, Me};
use crate::session::{Clock, CookieSealer, Opened, SESSION_COOKIE, SessionData, random_hex, unix};
use arc_swap::ArcSwap;
use axum::http::HeaderMap;
use std::sync::{Arc, Mutex};

/// The portal. Build it once; call [`Portal::publish`] whenever the roster
/// or a reconcile changes what it shows.
pub struct Portal {
    model: ArcSwap<PortalModel>,
    pub(crate) settings: PortalSettings,
    pub(crate) sealer: CookieSealer,
    oidc: Mutex<Option<Arc<Oidc>>>,
    /// Sessions signed out before they expired (by their CSRF token, which
    /// is unique per session), until they expire: a copy of a signed-out
    /// cookie is refused by this process. (Per process: with several
    /// replicas, a copied cookie stays valid elsewhere until it expires.)
    revoked: Mutex<std::collections::HashMap<String, u64>>,
    pub(crate) quotas: Arc<dyn QuotaSource>,
    pub(crate) clock: Clock,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal").field("public_url", &self.settings.public_url.as_str()).finish_non_exhaustive()
    }
}

/// A request's signed-in person, checked against the current model.
pub(crate) struct SignedIn {
    pub session: SessionData,
    pub model: Arc<PortalModel>,
}

impl SignedIn {
    pub fn admin(&self) -> bool {
        self.model.user(&self.session.user).is_some_and(|u| u.is_admin())
    }

    /// Whether this person may see `user`'s pages: their own, or anyone's as an admin.
    pub fn may_see(&self, user: &str) -> bool {
        self.session.user == user || self.admin()
    }

    pub fn chrome(&self, title: impl Into<String>) -> Chrome {
        Chrome {
            title: title.into(),
            platform: self.model.platform.name.clone(),
            me: Some(Me {
                user: self.session.user.clone(),
                email: self.session.email.clone(),
                admin: self.admin(),
                csrf: self.session.csrf.clone(),
            }),
        }
    }
}

/// Why a request has no usable session.
pub(crate) enum NoSession {
    Absent,
    /// A cookie that does not open with this portal's key.
    Refused,
    Expired,
    /// The person is no longer in the roster (or under another email).
    Gone,
}

impl Portal {
    /// A portal over `model`. `quotas` reads live usage; `clock` tells the
    /// time (sessions expire by it).
    pub fn new(
        settings: PortalSettings,
        model: PortalModel,
        quotas: Arc<dyn QuotaSource>,
        clock: Clock,
    ) -> Result<Arc<Portal>, PortalError> {
        let sealer =
            CookieSealer::new(settings.cookie_key.as_ref().map(|k| k.expose().as_bytes()), settings.secure_cookies());
        Ok(Arc::new(Portal {
            model: ArcSwap::from_pointee(model),
            settings,
            sealer,
            oidc: Mutex::new(None),
            revoked: Mutex::new(std::collections::HashMap::new()),
            quotas,
            clock,
        }))
    }

    /// Show `model` from the next request on; requests in flight finish
    /// with the model they started with.
    pub fn publish(&self, model: PortalModel) {
        self.model.store(Arc::new(model));
    }

    /// The model pages are built from now.
    pub fn model(&self) -> Arc<PortalModel> {
        self.model.load_full()
    }

    pub fn settings(&self) -> &PortalSettings {
        &self.settings
    }

    /// A session cookie (`name=value`) for `user`, as the sign-in would set
    /// it: for tests and benchmarks. Whoever holds the portal holds its key.
    pub fn session_cookie(&self, user: &str) -> Option<String> {
        let model = self.model();
        let person = model.user(user)?;
        let now = unix((self.clock)());
        let session = SessionData {
            user: person.view.user.clone(),
            email: person.view.email.clone(),
            issued: now,
            expires: now + self.settings.session_ttl.as_secs(),
            csrf: random_hex(16),
        };
        let set = self.sealer.seal(SESSION_COOKIE, &session, self.settings.session_ttl);
        set.split(';').next().map(str::to_string)
    }

    /// The OIDC client for the roster's issuer (a new one when the roster
    /// names another issuer), or `None` when the roster names none.
    pub(crate) fn oidc(&self) -> Result<Option<Arc<Oidc>>, PortalError> {
        let model = self.model();
        let Some(issuer) = model.platform.oidc.as_ref().map(|o| o.issuer_url.clone()) else { return Ok(None) };
        let mut cached = self.oidc.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(oidc) = cached.as_ref().filter(|o| o.issuer() == issuer) {
            return Ok(Some(Arc::clone(oidc)));
        }
        let oidc = Arc::new(Oidc::new(&issuer, &self.settings)?);
        *cached = Some(Arc::clone(&oidc));
        Ok(Some(oidc))
    }

    /// The signed-in person of a request: a cookie sealed by this portal,
    /// not expired, naming a user still in the roster under the same email.
    pub(crate) fn signed_in(&self, headers: &HeaderMap) -> Result<SignedIn, NoSession> {
        let session = match self.sealer.open::<SessionData>(headers, SESSION_COOKIE) {
            Opened::Absent => return Err(NoSession::Absent),
            Opened::Refused => return Err(NoSession::Refused),
            Opened::Valid(session) => session,
        };
        let now = unix((self.clock)());
        if now >= session.expires {
            return Err(NoSession::Expired);
        }
        if self.revoked.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&session.csrf) {
            return Err(NoSession::Refused);
        }
        let model = self.model();
        match model.user(&session.user) {
            Some(user) if user.view.email.eq_ignore_ascii_case(&session.email) => Ok(SignedIn { session, model }),
            _ => Err(NoSession::Gone),
        }
    }

    /// Refuse `session` from now until it expires (sign-out).
    pub(crate) fn revoke(&self, session: &SessionData) {
        let now = unix((self.clock)());
        let mut revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        revoked.retain(|_, expires| *expires > now);
        revoked.insert(session.csrf.clone(), session.expires);
    }

    /// The frame of a page nobody is signed in to.
    pub(crate) fn anonymous_chrome(&self, title: impl Into<String>) -> Chrome {
        Chrome { title: title.into(), platform: self.model().platform.name.clone(), me: None }
    }
}
