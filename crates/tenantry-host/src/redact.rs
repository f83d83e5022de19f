//! Credentials embedded in URLs (`https://user:token@host/…`) never reach
//! the plan, a message or a log: the userinfo is shown as `***`.

/// Every `scheme://userinfo@` in `text` with the secret part replaced: the
/// password of `user:password`, or the whole userinfo of an http(s) URL
/// (where a lone token is the usual form). An ssh user name (`ssh://git@`)
/// is kept: it is not a secret, and the admin needs it to read the plan.
pub fn urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let scheme_start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let scheme = &rest[scheme_start..at];
        let authority_start = at + 3;
        let authority_len = rest[authority_start..]
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(rest.len() - authority_start);
        let authority = &rest[authority_start..authority_start + authority_len];
        out.push_str(&rest[..authority_start]);
        match authority.rfind('@') {
            Some(at_sign) => {
                let userinfo = &authority[..at_sign];
                let shown = match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:***"),
                    None if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {
                        "***".to_string()
                    }
                    None => userinfo.to_string(),
                };
                out.push_str(&shown);
                out.push_str(&authority[at_sign..]);
            }
            None => out.push_str(authority),
        }
        rest = &rest[authority_start + authority_len..];
    }
    out.push_str(rest);
    out
}
