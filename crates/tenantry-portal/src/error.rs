//! The portal's errors: configuration (with the fix) and sign-in failures
//! (shown to the person signing in, never with a token or secret in them).

/// What went wrong setting up the portal or signing someone in.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("{message}")]
    Config { message: String, help: String },
    #[error(transparent)]
    Secret(#[from] tenantry_secret::SecretError),
    #[error(transparent)]
    App(#[from] tenantry_app::AppError),
    /// The identity provider could not be reached or answered nonsense.
    #[error("the identity provider at {issuer} cannot be used: {detail}")]
    Issuer { issuer: String, detail: String },
    /// The sign-in answer was refused (state, nonce, signature, audience, expiry…).
    #[error("the sign-in was refused: {0}")]
    SignIn(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl PortalError {
    /// How to fix it, when there is something to do.
    pub fn help(&self) -> Option<String> {
        match self {
            PortalError::Config { help, .. } => Some(help.clone()),
            PortalError::Secret(_) => None,
            PortalError::App(error) => error.help(),
            PortalError::Issuer { .. } => {
                Some("check platform.oidc.issuer_url in the roster and [portal] issuer_ca_file".to_string())
            }
            PortalError::SignIn(_) => Some("sign in again".to_string()),
            PortalError::Listen { .. } => Some("choose another address with --listen".to_string()),
        }
    }
}
