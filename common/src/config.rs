//! What both daemons' configs share: durations as operators write them,
//! one-line errors, TOML with line numbers, secrets that never print, and the
//! checks of addresses, URLs and token files.

use std::net::SocketAddr;
use std::time::Duration;

/// A token or password: its `Debug` and `Display` never show it, so that
/// logging a config or an error cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends or compares it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// The listen address `text` (`key` names it in errors; `default` shows the
/// form, e.g. `0.0.0.0:9797`).
pub fn listen_address(text: &str, default: &str) -> Result<SocketAddr, String> {
    let port = default.rsplit(':').next().unwrap_or("PORT");
    text.parse().map_err(|_| {
        format!("{text:?} is not an address; write it like 0.0.0.0:{port} or 127.0.0.1:{port}")
    })
}

/// An http:// or https:// URL with a host; `what` names it and `example`
/// shows the form in the error. The trailing slash is dropped.
pub fn http_url(url: &str, what: &str, example: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(format!(
            "{:?} is not a {what}; write it like {example}",
            redact_url(url)
        )),
    }
}

/// A URL as it may appear in a log line or a label: without its user
/// information (`user:password@`) or query string, either of which may hold
/// a secret, and without a fragment.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((_, host)) => ("***@", host),
        None => ("", authority),
    };
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    let (path, after) = tail.split_at(path_end);
    let query = if after.starts_with('?') { "?***" } else { "" };
    format!("{scheme}{userinfo}{host}{path}{query}")
}

/// The tokens of a token file: one per line, trimmed; blank lines and lines
/// starting with `#` are skipped.
pub fn token_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// A duration in `min..=max`, or why not.
pub fn bounded_duration(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let value = parse_duration(text)?;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "{} is out of range; use {} to {}",
            humantime::format_duration(value),
            humantime::format_duration(min),
            humantime::format_duration(max)
        ))
    }
}

/// Parses a duration as operators write it in configs and flags: `10s`, `500ms`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration {text:?} ({e}); write it like 10s, 500ms or 2m"))
}

/// At most this much of someone else's text is quoted in an error or a log
/// line: a 15 KB string in a report must not make a 15 MB answer.
pub const QUOTE_LIMIT: usize = 200;

/// `text` on one line, cut to [`QUOTE_LIMIT`] characters with a note of the rest.
pub fn quote_limited(text: &str) -> String {
    let line = one_line(text);
    match line.char_indices().nth(QUOTE_LIMIT) {
        None => line,
        Some((cut, _)) => format!("{}… ({} more bytes)", &line[..cut], line.len() - cut),
    }
}

/// Folds a multi-line message (TOML and regex errors draw carets) into one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Deserializes a TOML config; an error is one line: `ORIGIN line N: what`.
pub fn from_toml<T: serde::de::DeserializeOwned>(text: &str, origin: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| format!(" line {}", text[..span.start].matches('\n').count() + 1))
            .unwrap_or_default();
        format!("{origin}{line}: {}", one_line(e.message()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redacted_url_keeps_where_it_points_and_nothing_secret() {
        for (url, shown) in [
            (
                "https://agent:s3cret@collector.example:9798/base?token=abc#x",
                "https://***@collector.example:9798/base?***",
            ),
            (
                "http://collector.example:9798",
                "http://collector.example:9798",
            ),
            ("http://a@b@host/p", "http://***@host/p"),
            ("http://host?key=1", "http://host?***"),
            ("host:9798/x", "host:9798/x"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn toml_errors_are_one_line_with_the_line_number() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Config {
            #[allow(dead_code)]
            name: String,
        }
        let err = from_toml::<Config>("name = \"a\"\nnmae = 1\n", "config x.toml").unwrap_err();
        assert!(
            err.starts_with("config x.toml line 2: unknown field `nmae`"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }

    #[test]
    fn addresses_urls_and_token_files() {
        assert_eq!(
            listen_address("127.0.0.1:9797", "0.0.0.0:9797")
                .unwrap()
                .port(),
            9797
        );
        assert_eq!(
            listen_address("nine", "0.0.0.0:9798").unwrap_err(),
            "\"nine\" is not an address; write it like 0.0.0.0:9798 or 127.0.0.1:9798"
        );
        assert_eq!(
            http_url("http://am:9093/", "URL", "http://am:9093"),
            Ok("http://am:9093".into())
        );
        for bad in ["am:9093", "http://", "https:///x", "ftp://a"] {
            assert!(http_url(bad, "URL", "http://am:9093")
                .unwrap_err()
                .ends_with("is not a URL; write it like http://am:9093"));
        }
        assert_eq!(token_lines("# rack 1\nabc\n\n  def  \n"), ["abc", "def"]);
        let second = Duration::from_secs(1);
        assert_eq!(bounded_duration("5s", second, 10 * second), Ok(5 * second));
        assert_eq!(
            bounded_duration("5ms", second, 10 * second).unwrap_err(),
            "5ms is out of range; use 1s to 10s"
        );
    }

    #[test]
    fn quotes_are_one_line_and_cut() {
        assert_eq!(quote_limited("a\n  b"), "a b");
        let long = "x".repeat(15_000);
        let quoted = quote_limited(&long);
        assert!(quoted.len() < 300, "{}", quoted.len());
        assert!(quoted.ends_with("… (14800 more bytes)"), "{quoted}");
    }

    #[test]
    fn durations_parse_in_operator_units() {
        assert_eq!(
            parse_duration("10s"),
            Ok(std::time::Duration::from_secs(10))
        );
        assert_eq!(
            parse_duration(" 250ms "),
            Ok(std::time::Duration::from_millis(250))
        );
        let err = parse_duration("ten").unwrap_err();
        assert!(err.contains("\"ten\"") && err.contains("10s"), "{err}");
    }
}
