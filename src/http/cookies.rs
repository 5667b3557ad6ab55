//! An opt-in cookie jar for a client (RFC 6265), as curl's cookie engine:
//! `Set-Cookie` lines of every response (redirects included) are stored by
//! RFC 6265's rules and sent back as one `Cookie` header to the URLs they
//! match, across redirects and fetches. The storage and matching rules are
//! `cookie_store`'s; this module adds curl's (Netscape's) cookie file
//! format, to load and save a jar.
//!
//! Refused as the RFC says: a cookie whose Domain does not domain-match the
//! host that set it (a server cannot set cookies for another site), a
//! malformed line, an expired one. `Secure` cookies go to https URLs and to
//! loopback hosts (a secure context, as browsers treat it). A host may set
//! a cookie for its parent domain, but not for a public suffix (RFC 6265
//! 5.3 step 5, as curl with libpsl): `Domain=co.uk` or `Domain=com` is
//! refused (unless the host is that suffix itself: then the cookie is
//! host-only), `Domain=example.co.uk` kept. The list is the snapshot built
//! in (`public_suffix_list.dat` beside this file, Debian's publicsuffix
//! package of 2023-02-09), or a file the client names
//! (`ClientOptions::public_suffix_file`). IP hosts only ever get
//! host-only cookies.
//!
//! The Netscape format, one cookie a line, seven fields separated by tabs:
//! `domain  include-subdomains  path  secure  expires  name  value`, where
//! the flags are `TRUE`/`FALSE`, `expires` is Unix seconds (0: a session
//! cookie), a leading `.` on the domain goes with `TRUE`, and a
//! `#HttpOnly_` prefix marks an HttpOnly cookie. Other lines starting with
//! `#`, and empty lines, are comments.

use std::cell::RefCell;
use std::fmt;
use std::io::Write;
use std::path::Path;

use cookie::time::OffsetDateTime;
use cookie_store::{CookieDomain, CookieExpiration, CookieStore, RawCookie};
use publicsuffix::Psl;
use url::Url;

use super::headers::Headers;
use crate::error::{Error, Result};

/// The most cookies a jar holds; a response that would add more has the
/// rest refused (a server cannot grow a client's memory without bound).
pub const MAX_COOKIES: usize = 3000;
/// The most bytes of one `Set-Cookie` value taken (RFC 6265 §6.1 asks for
/// at least 4096 per cookie; curl takes up to 8190).
const MAX_SET_COOKIE: usize = 8190;

/// The public suffix list built in (see the module's documentation).
const BUILT_IN_SUFFIXES: &str = include_str!("public_suffix_list.dat");

/// A public suffix list: the built-in one (parsed once per thread; a jar
/// takes a copy), or the list in `file` (PSL format).
pub fn public_suffixes(file: Option<&Path>) -> Result<publicsuffix::List> {
    thread_local! {
        static BUILT_IN: publicsuffix::List = BUILT_IN_SUFFIXES
            .parse()
            .expect("the built-in public suffix list parses");
    }
    let Some(file) = file else {
        return Ok(BUILT_IN.with(Clone::clone));
    };
    let text = std::fs::read(file)
        .map_err(|e| Error::from_io(&format!("cannot read {}", file.display()), e))?;
    let bad = |why: String| {
        Error::invalid(format!(
            "{} is not a public suffix list: {why}",
            file.display()
        ))
    };
    let list = publicsuffix::List::from_bytes(&text).map_err(|e| bad(e.to_string()))?;
    // An empty or unrelated file parses as a list without rules: refused,
    // rather than a jar that quietly takes `Domain=com`.
    if !list.suffix(b"example.com").is_some_and(|s| s.is_known()) {
        return Err(bad("it does not list com".into()));
    }
    Ok(list)
}

/// A cookie jar. Shared by a client's fetches (behind an `Rc`).
pub struct CookieJar {
    store: RefCell<CookieStore>,
}

/// An empty jar with the built-in public suffix list.
impl Default for CookieJar {
    fn default() -> CookieJar {
        let list = public_suffixes(None).expect("the built-in list needs no I/O");
        CookieJar::with_public_suffixes(list)
    }
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CookieJar({} cookies)", self.len())
    }
}

/// Why one `Set-Cookie` line was not stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The `Set-Cookie` value as received.
    pub line: String,
    /// Why it was refused (the cookie store's words).
    pub reason: String,
}

impl CookieJar {
    /// An empty jar (with the built-in public suffix list).
    pub fn new() -> CookieJar {
        CookieJar::default()
    }

    /// An empty jar refusing cookies for the public suffixes of `list`.
    pub fn with_public_suffixes(list: publicsuffix::List) -> CookieJar {
        CookieJar {
            store: RefCell::new(CookieStore::new_with_public_suffix(Some(list))),
        }
    }

    /// Unexpired cookies held.
    pub fn len(&self) -> usize {
        self.store.borrow().iter_unexpired().count()
    }

    /// Whether no unexpired cookie is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every cookie.
    pub fn clear(&self) {
        self.store.borrow_mut().clear();
    }

    /// The `Cookie` header value for a request to `url` ("a=1; b=2"), or
    /// None when no cookie matches. Secure cookies go to https URLs only.
    pub fn header_for(&self, url: &str) -> Option<String> {
        let url = Url::parse(url).ok()?;
        let store = self.store.borrow();
        let mut value = String::new();
        for (name, cookie_value) in store.get_request_values(&url) {
            if !value.is_empty() {
                value.push_str("; ");
            }
            value.push_str(name);
            value.push('=');
            value.push_str(cookie_value);
        }
        (!value.is_empty()).then_some(value)
    }

    /// Stores the `Set-Cookie` lines of a response to `url`; returns the
    /// ones refused, with why (for the log: a refusal is not an error).
    pub fn store_from(&self, url: &str, headers: &Headers) -> Vec<Refused> {
        let mut refused = Vec::new();
        let Ok(url) = Url::parse(url) else {
            return refused;
        };
        let mut store = self.store.borrow_mut();
        for line in headers.get_all("Set-Cookie") {
            let refuse = |reason: &str| Refused {
                line: line.chars().take(200).collect(),
                reason: reason.to_string(),
            };
            if line.len() > MAX_SET_COOKIE {
                refused.push(refuse("longer than 8190 bytes"));
                continue;
            }
            if store.iter_any().count() >= MAX_COOKIES {
                refused.push(refuse("the jar is full"));
                continue;
            }
            if line.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                refused.push(refuse("control characters"));
                continue;
            }
            if let Err(e) = store.parse(line, &url) {
                refused.push(refuse(&e.to_string()));
            }
        }
        refused
    }

    /// Adds the cookies of a Netscape cookie file's text to the jar (a
    /// cookie with the same domain, path and name replaces the one held).
    /// A malformed line fails the whole load, saying which line, and the
    /// jar is left as it was. Returns how many cookies were added.
    pub fn load_netscape_str(&self, text: &str) -> Result<usize> {
        let mut parsed = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            match parse_netscape_line(line) {
                Ok(Some(entry)) => parsed.push(entry),
                Ok(None) => {}
                Err(reason) => {
                    return Err(Error::invalid(format!(
                        "malformed cookie file: line {}: {reason}",
                        i + 1
                    )))
                }
            }
        }
        let mut store = self.store.borrow_mut();
        if store.iter_any().count() + parsed.len() > MAX_COOKIES {
            return Err(Error::invalid(format!(
                "malformed cookie file: over {MAX_COOKIES} cookies"
            )));
        }
        let mut added = 0;
        for (cookie, url) in parsed {
            // Expired cookies in the file are skipped, as curl does.
            if store.insert_raw(&cookie, &url).is_ok() {
                added += 1;
            }
        }
        Ok(added)
    }

    /// [`Self::load_netscape_str`] from a file.
    pub fn load_netscape(&self, path: &Path) -> Result<usize> {
        let text = std::fs::read(path)
            .map_err(|e| Error::from_io(&format!("cannot read {}", path.display()), e))?;
        let text = String::from_utf8(text).map_err(|_| {
            Error::invalid(format!(
                "malformed cookie file: {} is not UTF-8",
                path.display()
            ))
        })?;
        self.load_netscape_str(&text)
    }

    /// The jar as a Netscape cookie file (session cookies with expiry 0,
    /// as curl writes them).
    pub fn to_netscape(&self) -> String {
        let mut text = String::from(
            "# Netscape HTTP Cookie File\n# Written by tornado_rs. Edit at your own risk.\n\n",
        );
        let store = self.store.borrow();
        for cookie in store.iter_unexpired() {
            let (domain, subdomains) = match &cookie.domain {
                CookieDomain::HostOnly(host) => (host.clone(), "FALSE"),
                CookieDomain::Suffix(suffix) => (format!(".{suffix}"), "TRUE"),
                CookieDomain::NotPresent | CookieDomain::Empty => continue,
            };
            let expires = match &cookie.expires {
                CookieExpiration::AtUtc(at) => at.unix_timestamp().max(1),
                CookieExpiration::SessionEnd => 0,
            };
            let http_only = if cookie.http_only().unwrap_or(false) {
                "#HttpOnly_"
            } else {
                ""
            };
            let secure = if cookie.secure().unwrap_or(false) {
                "TRUE"
            } else {
                "FALSE"
            };
            let path = String::from(&cookie.path);
            text.push_str(&format!(
                "{http_only}{domain}\t{subdomains}\t{path}\t{secure}\t{expires}\t{}\t{}\n",
                cookie.name(),
                cookie.value()
            ));
        }
        text
    }

    /// Writes [`Self::to_netscape`] to `path` (through a temporary file
    /// renamed into place: a failed save leaves the old file whole).
    pub fn save_netscape(&self, path: &Path) -> Result<()> {
        let text = self.to_netscape();
        let tmp = path.with_extension("tmp-tornado");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::from_io(&format!("cannot write {}", path.display()), e)
        })
    }
}

/// One line of a Netscape cookie file: a cookie and a URL it could have
/// come from (for the store's rules), None for a comment, or why the line
/// is malformed.
fn parse_netscape_line(
    line: &str,
) -> std::result::Result<Option<(RawCookie<'static>, Url)>, String> {
    let (http_only, line) = match line.strip_prefix("#HttpOnly_") {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split('\t').collect();
    let [domain, subdomains, path, secure, expires, name, value] = fields[..] else {
        return Err(format!("{} fields, not 7 separated by tabs", fields.len()));
    };
    let flag = |field: &str, what: &str| match field {
        "TRUE" => Ok(true),
        "FALSE" => Ok(false),
        other => Err(format!("{what} is {other:?}, not TRUE or FALSE")),
    };
    let subdomains = flag(subdomains, "include-subdomains")?;
    let secure = flag(secure, "secure")?;
    let expires: i64 = expires
        .parse()
        .map_err(|_| format!("expiry {expires:?} is not a number"))?;
    let host = domain.trim_start_matches('.').to_ascii_lowercase();
    if host.is_empty() || name.is_empty() {
        return Err("empty domain or name".into());
    }
    if !path.starts_with('/') {
        return Err(format!("path {path:?} does not start with /"));
    }
    let url_host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let scheme = if secure { "https" } else { "http" };
    let url = Url::parse(&format!("{scheme}://{url_host}{path}"))
        .map_err(|e| format!("domain {domain:?}: {e}"))?;
    let mut cookie = RawCookie::new(name.to_string(), value.to_string());
    cookie.set_path(path.to_string());
    cookie.set_secure(secure);
    cookie.set_http_only(http_only);
    if subdomains {
        cookie.set_domain(host);
    }
    if expires != 0 {
        let at = OffsetDateTime::from_unix_timestamp(expires)
            .map_err(|_| format!("expiry {expires} is out of range"))?;
        cookie.set_expires(at);
    }
    Ok(Some((cookie, url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[&str]) -> Headers {
        let mut h = Headers::new();
        for line in lines {
            h.add("Set-Cookie", line);
        }
        h
    }

    #[test]
    fn public_suffixes_are_refused_as_cookie_domains() {
        let jar = CookieJar::new();
        let refused = jar.store_from(
            "http://www.example.co.uk/",
            &headers(&[
                "suffix=1; Domain=co.uk",
                "tld=1; Domain=.uk",
                "site=1; Domain=example.co.uk",
            ]),
        );
        let lines: Vec<&str> = refused.iter().map(|r| r.line.as_str()).collect();
        assert_eq!(lines, ["suffix=1; Domain=co.uk", "tld=1; Domain=.uk"]);
        assert_eq!(
            jar.header_for("http://other.example.co.uk/").as_deref(),
            Some("site=1")
        );
        assert_eq!(jar.header_for("http://evil.co.uk/"), None);
        // A host that is a public suffix itself gets a host-only cookie.
        let jar = CookieJar::new();
        assert!(jar
            .store_from("http://github.io/", &headers(&["a=1; Domain=github.io"]))
            .is_empty());
        assert_eq!(jar.header_for("http://github.io/").as_deref(), Some("a=1"));
        assert_eq!(jar.header_for("http://x.github.io/"), None);
        // A cookie file cannot smuggle one in either: `.co.uk` with
        // subdomains is taken as co.uk's own host-only cookie (what co.uk
        // itself could have set), never sent to the sites under it.
        let jar = CookieJar::new();
        jar.load_netscape_str(
            ".co.uk\tTRUE\t/\tFALSE\t0\tx\t1\nexample.co.uk\tFALSE\t/\tFALSE\t0\ty\t2\n",
        )
        .unwrap();
        assert_eq!(
            jar.header_for("http://example.co.uk/").as_deref(),
            Some("y=2")
        );
        assert_eq!(jar.header_for("http://www.other.co.uk/"), None);
    }

    #[test]
    fn a_suffix_list_file_must_be_one() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.dat");
        std::fs::write(&empty, "// nothing\n").unwrap();
        let e = public_suffixes(Some(&empty)).unwrap_err();
        assert!(e.message().contains("is not a public suffix list"), "{e}");
        let unrelated = dir.path().join("unrelated.dat");
        std::fs::write(&unrelated, "// ===BEGIN ICANN DOMAINS===\nexample\n").unwrap();
        let e = public_suffixes(Some(&unrelated)).unwrap_err();
        assert!(e.message().contains("does not list com"), "{e}");
        assert!(public_suffixes(Some(&dir.path().join("missing"))).is_err());
        let own = dir.path().join("own.dat");
        std::fs::write(&own, "// ===BEGIN ICANN DOMAINS===\ncom\ntest\n").unwrap();
        let jar = CookieJar::with_public_suffixes(public_suffixes(Some(&own)).unwrap());
        let refused = jar.store_from(
            "http://a.b.test/",
            &headers(&["x=1; Domain=test", "y=1; Domain=b.test"]),
        );
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(jar.header_for("http://c.b.test/").as_deref(), Some("y=1"));
    }

    #[test]
    fn stored_and_sent_back_by_the_rules() {
        let jar = CookieJar::new();
        let refused = jar.store_from(
            "https://site.test:8000/a/b",
            &headers(&["one=1; Path=/", "two=2", "sec=3; Secure; Path=/"]),
        );
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(
            jar.header_for("http://site.test:8000/x").as_deref(),
            Some("one=1")
        );
        let deeper = jar.header_for("http://site.test:8000/a/c").unwrap();
        assert!(
            deeper.contains("one=1") && deeper.contains("two=2"),
            "{deeper}"
        );
        assert!(jar
            .header_for("https://site.test/")
            .unwrap()
            .contains("sec=3"));
        assert_eq!(jar.header_for("http://other.test/"), None);
        // Max-Age=0 deletes.
        jar.store_from(
            "http://site.test:8000/",
            &headers(&["one=; Max-Age=0; Path=/"]),
        );
        assert_eq!(jar.header_for("http://site.test:8000/x"), None);
        // Loopback is a secure context (as in browsers): Secure cookies
        // set by and sent to http://127.0.0.1 too.
        jar.store_from("http://127.0.0.1/", &headers(&["lo=1; Secure"]));
        assert_eq!(jar.header_for("http://127.0.0.1/").as_deref(), Some("lo=1"));
    }

    #[test]
    fn a_foreign_domain_is_refused() {
        let jar = CookieJar::new();
        let refused = jar.store_from(
            "http://127.0.0.1/",
            &headers(&["evil=1; Domain=example.com", "ok=1"]),
        );
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].line.starts_with("evil=1"));
        assert_eq!(jar.len(), 1);
    }

    #[test]
    fn netscape_round_trip() {
        let jar = CookieJar::new();
        let text = "# Netscape HTTP Cookie File\n\
            .example.test\tTRUE\t/\tFALSE\t4102444800\tsub\tyes\n\
            #HttpOnly_site.test\tFALSE\t/p\tTRUE\t0\tsess\tv=1\n\
            127.0.0.1\tFALSE\t/\tFALSE\t1\told\tgone\n";
        assert_eq!(jar.load_netscape_str(text).unwrap(), 2);
        assert_eq!(
            jar.header_for("http://www.example.test/").as_deref(),
            Some("sub=yes")
        );
        assert_eq!(
            jar.header_for("https://site.test/p/q").as_deref(),
            Some("sess=v=1")
        );
        assert_eq!(jar.header_for("http://site.test/p/q"), None);
        assert_eq!(jar.header_for("https://www.site.test/p/q"), None);
        let saved = jar.to_netscape();
        assert!(
            saved.contains(".example.test\tTRUE\t/\tFALSE\t4102444800\tsub\tyes\n"),
            "{saved}"
        );
        assert!(
            saved.contains("#HttpOnly_site.test\tFALSE\t/p\tTRUE\t0\tsess\tv=1\n"),
            "{saved}"
        );
        let again = CookieJar::new();
        assert_eq!(again.load_netscape_str(&saved).unwrap(), 2);
    }

    #[test]
    fn a_malformed_file_changes_nothing() {
        let jar = CookieJar::new();
        jar.store_from("http://127.0.0.1/", &headers(&["kept=1"]));
        for bad in [
            "127.0.0.1\tFALSE\t/\tFALSE\t0\tname\n",
            "127.0.0.1\tMAYBE\t/\tFALSE\t0\tn\tv\n",
            "127.0.0.1\tFALSE\t/\tFALSE\tsoon\tn\tv\n",
            "127.0.0.1\tFALSE\tnoslash\tFALSE\t0\tn\tv\n",
        ] {
            let text = format!("good.test\tFALSE\t/\tFALSE\t0\tg\t1\n{bad}");
            let err = jar.load_netscape_str(&text).unwrap_err();
            assert!(err.message().contains("line 2"), "{}", err.message());
        }
        assert_eq!(jar.len(), 1);
        assert_eq!(
            jar.header_for("http://127.0.0.1/").as_deref(),
            Some("kept=1")
        );
    }
}
