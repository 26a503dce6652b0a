//! URLs as the crate records them: the one place that takes a URL apart, and the one rule
//! for what of it is kept. A query string or user information can hold a secret (a token, a
//! signature, a password), so neither is ever recorded.

/// `scheme://host[:port]/path` from a URL's parts, without user information or query;
/// `host[:port]/path` where it names no scheme (a `CONNECT`'s authority form), the path alone
/// where it names no authority (a relative request).
#[cfg_attr(
    not(any(feature = "tower", feature = "reqwest", feature = "lambda-http")),
    allow(dead_code)
)]
pub(crate) fn sanitized(scheme: Option<&str>, authority: Option<&str>, path: &str) -> String {
    let Some(authority) = authority.map(without_userinfo) else {
        return path.to_owned();
    };
    let scheme_len = scheme.map_or(0, |s| s.len() + 3);
    let mut url = String::with_capacity(scheme_len + authority.len() + path.len());
    if let Some(scheme) = scheme {
        url.push_str(scheme);
        url.push_str("://");
    }
    url.push_str(authority);
    url.push_str(path);
    url
}

/// `scheme://[user@]host[:port]/path?query` → (`host[:port]`, `/path?query`); the path is
/// `/` where the URL has none (`http://host?q` → (`host`, `/`)).
pub(crate) fn split(url: &str) -> (&str, &str) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    // The authority ends at the path, the query or the fragment.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let path = if path.starts_with('/') { path } else { "/" };
    (without_userinfo(authority), path)
}

/// `host[:port]` → `host`; an IPv6 literal keeps its brackets (`[::1]:80` → `[::1]`).
pub(crate) fn host(authority: &str) -> &str {
    if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or(authority)
    } else {
        authority.split(':').next().unwrap_or(authority)
    }
}

/// `user:password@host:port` → `host:port`.
fn without_userinfo(authority: &str) -> &str {
    // Looked for by byte, a word at a time (`@` is ASCII; a char searcher from the end cost
    // a few hundred instructions for each request an HTTP function serves): most have none.
    if !authority.as_bytes().contains(&b'@') {
        return authority;
    }
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (none too)
/// and everything else for itself, ASCII case ignored: Powertools' `ignore_endpoint` patterns.
#[cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]
pub(crate) fn glob_matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    // The last `*` seen and where in `text` its run would end next: backtrack there on a
    // mismatch (linear in practice, never exponential).
    let (mut p, mut t, mut star, mut resume) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            resume = t;
            p += 1;
        } else if p < pattern.len() && pattern[p].eq_ignore_ascii_case(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some(at) = star {
            p = at + 1;
            resume += 1;
            t = resume;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    #[test]
    fn globs_match_as_powertools_patterns_do() {
        use super::glob_matches;
        for (pattern, text, matches) in [
            ("api.example.com", "api.example.com", true),
            ("api.example.com", "API.Example.com", true),
            ("*.example.com", "api.example.com", true),
            ("*.example.com", "example.com", false),
            ("/health", "/health", true),
            ("/health", "/healthz", false),
            ("/orders/*", "/orders/42/items", true),
            ("/orders/*/items", "/orders/42/items", true),
            ("/orders/*/items", "/orders/42/lines", false),
            ("*", "", true),
            ("", "", true),
            ("", "x", false),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
        ] {
            assert_eq!(glob_matches(pattern, text), matches, "{pattern:?} {text:?}");
        }
    }

    use super::*;

    #[test]
    fn sanitized_urls_keep_scheme_host_and_path_only() {
        for ((scheme, authority, path), expected) in [
            (
                (Some("https"), Some("user:pass@api.example.com"), "/v1/x"),
                "https://api.example.com/v1/x",
            ),
            (
                (Some("http"), Some("127.0.0.1:8080"), "/orders"),
                "http://127.0.0.1:8080/orders",
            ),
            ((None, None, "/relative"), "/relative"),
            ((Some("https"), None, "/health"), "/health"),
            ((None, Some("proxy.internal:443"), ""), "proxy.internal:443"),
        ] {
            assert_eq!(sanitized(scheme, authority, path), expected);
        }
    }

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(
            split("https://user@api.example.com:8443/v1/users/7?x=1"),
            ("api.example.com:8443", "/v1/users/7?x=1")
        );
        assert_eq!(split("http://[::1]:80"), ("[::1]:80", "/"));
        assert_eq!(split("http://host?q=1#f"), ("host", "/"));
        assert_eq!(
            split("bucket.s3.amazonaws.com/key"),
            ("bucket.s3.amazonaws.com", "/key")
        );
        assert_eq!(host("api.example.com:8443"), "api.example.com");
        assert_eq!(host("[::1]:80"), "[::1]");
        assert_eq!(host("example.com"), "example.com");
    }

    proptest::proptest! {
        /// Whatever the URL, nothing after `?` and nothing before an `@` of the authority is
        /// kept.
        #[test]
        fn no_query_and_no_userinfo_survive(
            scheme in "[a-z]{1,5}",
            user in "[a-z]{1,6}(:[a-z]{1,6})?",
            host in "[a-z0-9.]{1,12}(:[0-9]{1,5})?",
            path in "(/[a-z0-9]{0,5}){0,3}",
            query in "[a-z=&]{0,10}",
        ) {
            let authority = format!("{user}@{host}");
            let url = sanitized(Some(&scheme), Some(&authority), &path);
            proptest::prop_assert_eq!(&url, &format!("{scheme}://{host}{path}"));
            let full = format!("{scheme}://{authority}{path}?{query}");
            let (kept, _) = split(&full);
            proptest::prop_assert_eq!(kept, host.as_str());
        }
    }
}
