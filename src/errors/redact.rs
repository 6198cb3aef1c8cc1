//! Redaction of secrets from messages and URLs.
//!
//! Every error message that reaches Python passes through [`redact`]; URLs
//! shown in reprs, logs and exceptions pass through [`redact_url`]. This is
//! the one place that knows what a secret looks like.

/// Keys whose values never appear in a message (compared case-insensitively,
/// with `-` and `_` ignored).
const SECRET_KEYS: &[&str] = &[
    "signature",
    "sig",
    "token",
    "accesstoken",
    "refreshtoken",
    "apikey",
    "key",
    "secret",
    "apisecret",
    "secretkey",
    "password",
    "passwd",
    "pass",
    "auth",
    "authorization",
    "proxyauthorization",
    "xmbxapikey",
    "cookie",
    "setcookie",
    "session",
    "sessionid",
    "listenkey",
    "privatekey",
    "bearer",
];

fn normalise_key(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(|c| c.to_lowercase())
        .collect()
}

fn is_secret_key(key: &str) -> bool {
    let k = normalise_key(key.trim_matches(|c: char| c == '"' || c == '\'' || c.is_whitespace()));
    SECRET_KEYS.contains(&k.as_str())
}

const MASK: &str = "[redacted]";

/// Removes secrets from a message: query strings of URLs (absolute, and paths
/// like `/api/v3/order?...`), userinfo in URLs, and the value of every
/// `key: value`, `key=value` or `"key": "value"` whose key names a secret
/// (headers such as `Authorization` and `X-MBX-APIKEY` included, wherever
/// they stand in the line), with `Bearer`/`Basic`/`token` schemes masked
/// together with their credential. Everything else is kept so that the
/// cause stays readable.
pub fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, line) in message.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&redact_pairs(&redact_urls(line)));
    }
    out
}

const SCHEMES: &[&str] = &["bearer", "basic", "token", "digest", "apikey"];

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Masks the values of secret keys.
fn redact_pairs(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let n = chars.len();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < n {
        if !is_ident(chars[i]) || (i > 0 && is_ident(chars[i - 1])) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // an identifier starts at i
        let start = i;
        while i < n && is_ident(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        out.push_str(&word);
        if !is_secret_key(&word) {
            continue;
        }
        // optional closing quote, spaces, then ':' or '='
        let mut j = i;
        if j < n && (chars[j] == '"' || chars[j] == '\'') {
            j += 1;
        }
        while j < n && chars[j] == ' ' {
            j += 1;
        }
        if j >= n || (chars[j] != ':' && chars[j] != '=') {
            continue;
        }
        j += 1;
        while j < n && chars[j] == ' ' {
            j += 1;
        }
        let quote = if j < n && (chars[j] == '"' || chars[j] == '\'') {
            Some(chars[j])
        } else {
            None
        };
        // copy the separator and opening quote as they are
        let sep: String = chars[i..j + usize::from(quote.is_some())].iter().collect();
        out.push_str(&sep);
        let mut k = j + usize::from(quote.is_some());
        let value_start = k;
        let ends = |c: char| -> bool {
            match quote {
                Some(q) => c == q,
                None => c.is_whitespace() || matches!(c, ',' | ';' | '&' | '}' | ')' | ']'),
            }
        };
        while k < n && !ends(chars[k]) {
            k += 1;
        }
        let value: String = chars[value_start..k].iter().collect();
        // "Bearer xyz": the credential follows the scheme
        if quote.is_none() && SCHEMES.contains(&value.to_ascii_lowercase().as_str()) {
            let mut m = k;
            while m < n && chars[m] == ' ' {
                m += 1;
            }
            let cred_start = m;
            while m < n && !chars[m].is_whitespace() && !matches!(chars[m], ',' | ';') {
                m += 1;
            }
            if m > cred_start {
                k = m;
            }
        }
        if k > value_start {
            out.push_str(MASK);
        }
        i = k;
    }
    // "Bearer <token>" anywhere (e.g. a quoted header value)
    mask_schemes(&out)
}

fn mask_schemes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    loop {
        let lower = rest.to_ascii_lowercase();
        let found = ["bearer ", "basic "]
            .iter()
            .filter_map(|p| lower.find(p).map(|at| (at, p.len())))
            .filter(|(at, _)| *at == 0 || !is_ident(rest[..*at].chars().last().unwrap_or(' ')))
            .min();
        let Some((at, plen)) = found else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at + plen]);
        let after = &rest[at + plen..];
        let end = after
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '}' | ')'))
            .unwrap_or(after.len());
        if end > 0 && !after.starts_with(MASK) {
            out.push_str(MASK);
        } else {
            out.push_str(&after[..end]);
        }
        rest = &after[end..];
    }
}

/// Strips query strings, fragments and userinfo from URLs and URL paths.
fn redact_urls(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        let start = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if rest.is_empty() {
            break;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        out.push_str(&redact_url_token(&rest[..end]));
        rest = &rest[end..];
    }
    out
}

fn redact_url_token(token: &str) -> String {
    // a leading "(" or quote is kept: find where the URL or path begins
    let begin = token
        .find("://")
        .map(|p| {
            token[..p]
                .rfind(|c: char| !c.is_ascii_alphanumeric() && c != '+' && c != '.' && c != '-')
                .map_or(0, |q| q + 1)
        })
        .or_else(|| {
            token.find('/').filter(|p| {
                token[*p..].contains('?') && token[..*p].chars().all(|c| !c.is_ascii_alphanumeric())
            })
        });
    let Some(b) = begin else {
        return token.to_string();
    };
    let (prefix, url) = token.split_at(b);
    let trailing_len = url
        .chars()
        .rev()
        .take_while(|c| matches!(c, '\'' | '"' | ')' | ']' | ',' | '.' | ';' | '>' | ':'))
        .map(|c| c.len_utf8())
        .sum::<usize>();
    let (body, trailing) = url.split_at(url.len() - trailing_len);
    let mut body = body.to_string();
    if let Some(scheme_end) = body.find("://") {
        let (head, tail) = body.split_at(scheme_end + 3);
        let mut tail = tail.to_string();
        let authority_end = tail.find(['/', '?', '#']).unwrap_or(tail.len());
        if let Some(at) = tail[..authority_end].rfind('@') {
            tail = format!("{MASK}@{}", &tail[at + 1..]);
        }
        body = format!("{head}{tail}");
    }
    if let Some(q) = body.find('?') {
        body.truncate(q);
        body.push_str("?[query redacted]");
    } else if let Some(f) = body.find('#') {
        body.truncate(f);
    }
    format!("{prefix}{body}{trailing}")
}

/// A URL fit to show: the scheme, host, port and path, without user info
/// (a password), query string (signatures, keys) or fragment. Text that is
/// not a URL comes back with the same parts removed where it has them.
pub fn redact_url(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = match url.find("://") {
        Some(p) => url.split_at(p + 3),
        None => ("", url),
    };
    let rest = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rfind('@')
        .map_or(authority, |at| &authority[at + 1..]);
    format!("{scheme}{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::{ErrorKind, FtError};

    #[test]
    fn strips_query_strings() {
        let m = redact("error sending request for url (https://api.example.com/api/v3/order?symbol=BTC&signature=abc123): connection reset");
        assert!(!m.contains("abc123"), "{m}");
        assert!(!m.contains("symbol=BTC"), "{m}");
        assert!(
            m.contains("https://api.example.com/api/v3/order?[query redacted]"),
            "{m}"
        );
        assert!(m.contains("connection reset"), "{m}");
    }

    #[test]
    fn masks_secret_pairs_and_headers() {
        let m = redact("bad request: signature=deadbeef&timestamp=1 api_key=XYZ");
        assert!(!m.contains("deadbeef") && !m.contains("XYZ"), "{m}");
        assert!(m.contains("timestamp=1"), "{m}");
        let m = redact(
            "headers:\nX-MBX-APIKEY: supersecret\nAuthorization: Bearer tok.en\nContent-Type: json",
        );
        assert!(!m.contains("supersecret") && !m.contains("tok.en"), "{m}");
        assert!(m.contains("Content-Type: json"), "{m}");
        let m = redact("sent Bearer abc.def.ghi to host");
        assert!(!m.contains("abc.def.ghi") && m.contains("to host"), "{m}");
    }

    #[test]
    fn masks_userinfo_and_keeps_plain_text() {
        let m = redact("connect to http://user:pw@127.0.0.1:8080/x failed");
        assert!(!m.contains("pw@"), "{m}");
        assert!(m.contains("127.0.0.1:8080/x failed"), "{m}");
        assert_eq!(
            redact("timer fired late by 3 ms"),
            "timer fired late by 3 ms"
        );
    }

    #[test]
    fn secrets_anywhere_in_a_line() {
        for (msg, secret) in [
            ("request failed; X-MBX-APIKEY: k123", "k123"),
            ("request failed, sent Authorization: token tok123", "tok123"),
            (
                "403 Forbidden, headers={'X-MBX-APIKEY': 'k123', 'Accept': 'json'}",
                "k123",
            ),
            (
                "request headers: {\"Authorization\": \"Bearer tok123\"}",
                "tok123",
            ),
            (
                "POST /api/v3/order?symbol=BTC&signature=abc failed",
                "symbol=BTC",
            ),
            ("POST /api/v3/order?symbol=BTC&signature=abc failed", "abc"),
            ("password=hunter2 user=bob", "hunter2"),
        ] {
            let r = redact(msg);
            assert!(!r.contains(secret), "{msg:?} -> {r:?}");
        }
        let r = redact("403 Forbidden, headers={'X-MBX-APIKEY': 'k123', 'Accept': 'json'}");
        assert!(r.contains("'Accept': 'json'"), "{r}");
        assert_eq!(
            redact("POST /api/v3/order failed: 400"),
            "POST /api/v3/order failed: 400"
        );
    }

    #[test]
    fn urls_lose_user_info_query_and_fragment() {
        for (url, shown) in [
            (
                "https://api.example.com/api/v3/order?symbol=BTC&signature=abc#x",
                "https://api.example.com/api/v3/order",
            ),
            (
                "redis://:s3cret@127.0.0.1:6379/0",
                "redis://127.0.0.1:6379/0",
            ),
            ("redis://user:p@ss@[::1]:6379/2", "redis://[::1]:6379/2"),
            ("unix:///tmp/redis.sock?db=1", "unix:///tmp/redis.sock"),
            ("user:pw@127.0.0.1:6379", "127.0.0.1:6379"),
            ("/api/v3/order?signature=abc", "/api/v3/order"),
            ("http://h/p@q", "http://h/p@q"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn cause_chain_is_kept() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = FtError::with_cause(ErrorKind::Connect, "connect failed", &io);
        assert_eq!(e.to_string(), "connect failed: refused");
    }
}
