//! HTTP Digest authentication (RFC 7616), as Tornado's curl client offers
//! with `auth_mode="digest"`: the first request goes without credentials;
//! a 401 with a `Digest` challenge is answered once with an `Authorization`
//! computed from it. MD5 and SHA-256 (and their `-sess` forms), qop `auth`
//! or none; a challenge asking for anything else is not answered (the 401
//! is then the response).

use md5::{Digest as _, Md5};

use super::headers::Headers;

/// The hash a challenge names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// `MD5` (RFC 7616's default when a challenge names none).
    Md5,
    /// `SHA-256`, preferred when a server offers both.
    Sha256,
}

/// A `Digest` challenge from `WWW-Authenticate`, as far as it is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space the credentials are for (`realm`), echoed back.
    pub realm: String,
    /// The server's nonce (`nonce`), hashed into the answer and echoed back.
    pub nonce: String,
    /// Data the server wants returned unchanged (`opaque`), if it sent any.
    pub opaque: Option<String>,
    /// The hash of the answer (`algorithm`; MD5 when the challenge names none).
    pub algorithm: Algorithm,
    /// `-sess`: the hash of the credentials includes the nonces.
    pub session: bool,
    /// qop `auth` offered (else the RFC 2069 form, with no qop).
    pub qop_auth: bool,
}

/// The best `Digest` challenge of a 401's `WWW-Authenticate` headers:
/// SHA-256 before MD5; None when there is none this client can answer.
pub fn challenge(headers: &Headers) -> Option<Challenge> {
    let mut found: Vec<Challenge> = headers
        .get_all("WWW-Authenticate")
        .flat_map(digest_challenges)
        .collect();
    found.sort_by_key(|c| c.algorithm != Algorithm::Sha256);
    found.into_iter().next()
}

/// Every answerable Digest challenge in one header value (which may hold
/// several challenges of several schemes, RFC 9110 §11.6.1).
fn digest_challenges(value: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some((scheme, params, after)) = next_challenge(rest) {
        if scheme.eq_ignore_ascii_case("Digest") {
            out.extend(answerable(&params));
        }
        rest = after;
    }
    out
}

/// A challenge's auth-params: (name in lower case, value).
type Params = Vec<(String, String)>;

/// Splits off the first challenge: its scheme, its parameters and what
/// follows it.
fn next_challenge(text: &str) -> Option<(&str, Params, &str)> {
    let text = text.trim_start_matches([' ', '\t', ',']);
    let scheme_end = text.find([' ', '\t', ',']).unwrap_or(text.len());
    if scheme_end == 0 {
        return None;
    }
    let scheme = &text[..scheme_end];
    let mut rest = &text[scheme_end..];
    let mut params = Vec::new();
    loop {
        let trimmed = rest.trim_start_matches([' ', '\t', ',']);
        // The name ends at the first separator; only '=' makes it a
        // parameter (else the token is the next scheme). One scan per token.
        let eq = match trimmed.find([' ', '\t', ',', '=', '"']) {
            Some(at) if trimmed.as_bytes()[at] == b'=' && at > 0 => at,
            _ => return Some((scheme, params, trimmed)),
        };
        let name = &trimmed[..eq];
        let (value, after) = param_value(trimmed[eq + 1..].trim_start_matches([' ', '\t']))?;
        params.push((name.to_ascii_lowercase(), value));
        rest = after;
    }
}

/// A token or a quoted-string (with `\` escapes), and what follows it.
fn param_value(text: &str) -> Option<(String, &str)> {
    let Some(quoted) = text.strip_prefix('"') else {
        let end = text.find([',', ' ', '\t']).unwrap_or(text.len());
        return Some((text[..end].to_string(), &text[end..]));
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &quoted[i + 1..])),
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    None // unterminated: the header is malformed
}

fn answerable(params: &[(String, String)]) -> Option<Challenge> {
    let get = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let (algorithm, session) = match get("algorithm").map(|a| a.to_ascii_uppercase()).as_deref() {
        None | Some("MD5") => (Algorithm::Md5, false),
        Some("MD5-SESS") => (Algorithm::Md5, true),
        Some("SHA-256") => (Algorithm::Sha256, false),
        Some("SHA-256-SESS") => (Algorithm::Sha256, true),
        Some(_) => return None,
    };
    let qop_auth = match get("qop") {
        None => false,
        Some(qop)
            if qop
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth")) =>
        {
            true
        }
        Some(_) => return None, // only auth-int offered
    };
    Some(Challenge {
        realm: get("realm")?.clone(),
        nonce: get("nonce")?.clone(),
        opaque: get("opaque").cloned(),
        algorithm,
        session,
        qop_auth,
    })
}

fn hex_hash(algorithm: Algorithm, text: &str) -> String {
    let digest: Vec<u8> = match algorithm {
        Algorithm::Md5 => Md5::digest(text.as_bytes()).to_vec(),
        Algorithm::Sha256 => ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
            .as_ref()
            .to_vec(),
    };
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh client nonce: 16 random bytes in hex.
pub fn new_cnonce() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `s` as a quoted-string.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The `Authorization` value answering `challenge` for a `method` request
/// of `uri` (its request-target), with client nonce `cnonce` and nonce
/// count 1 (every answer is to a fresh challenge).
pub fn authorization(
    challenge: &Challenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> String {
    let alg = challenge.algorithm;
    let nc = "00000001";
    let mut ha1 = hex_hash(alg, &format!("{username}:{}:{password}", challenge.realm));
    if challenge.session {
        ha1 = hex_hash(alg, &format!("{ha1}:{}:{cnonce}", challenge.nonce));
    }
    let ha2 = hex_hash(alg, &format!("{method}:{uri}"));
    let response = if challenge.qop_auth {
        hex_hash(
            alg,
            &format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", challenge.nonce),
        )
    } else {
        hex_hash(alg, &format!("{ha1}:{}:{ha2}", challenge.nonce))
    };
    let name = match (alg, challenge.session) {
        (Algorithm::Md5, false) => "MD5",
        (Algorithm::Md5, true) => "MD5-sess",
        (Algorithm::Sha256, false) => "SHA-256",
        (Algorithm::Sha256, true) => "SHA-256-sess",
    };
    let mut value = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, algorithm={name}, response=\"{response}\"",
        quoted(username),
        quoted(&challenge.realm),
        quoted(&challenge.nonce),
        quoted(uri),
    );
    if challenge.qop_auth {
        value.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
    }
    if let Some(opaque) = &challenge.opaque {
        value.push_str(&format!(", opaque={}", quoted(opaque)));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> Headers {
        let mut h = Headers::new();
        for v in values {
            h.add("WWW-Authenticate", v);
        }
        h
    }

    #[test]
    fn rfc_7616_examples() {
        // RFC 7616 §3.9.1: SHA-256 and MD5 challenges for Mufasa.
        let h = headers(&[
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        ]);
        let c = challenge(&h).expect("a challenge");
        assert_eq!(c.algorithm, Algorithm::Sha256, "SHA-256 preferred");
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let auth = authorization(
            &c,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            cnonce,
        );
        assert!(
            auth.contains(
                r#"response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1""#
            ),
            "{auth}"
        );
        let md5 = answerable(&[
            ("realm".into(), "http-auth@example.org".into()),
            (
                "nonce".into(),
                "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v".into(),
            ),
            ("qop".into(), "auth".into()),
        ])
        .unwrap();
        let auth = authorization(
            &md5,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            cnonce,
        );
        assert!(
            auth.contains(r#"response="8ca523f5e9506fed4657c9700eebdbec""#),
            "{auth}"
        );
        assert!(auth.contains("qop=auth, nc=00000001"));
    }

    #[test]
    fn challenges_among_other_schemes_and_odd_values() {
        let h = headers(&[r#"Basic realm="x", Digest realm="a \"b\"", nonce=abc, stale=FALSE"#]);
        let c = challenge(&h).unwrap();
        assert_eq!((c.realm.as_str(), c.nonce.as_str()), (r#"a "b""#, "abc"));
        assert!(!c.qop_auth);
        assert_eq!(c.algorithm, Algorithm::Md5);
        let only_int = headers(&[r#"Digest realm="r", nonce="n", qop="auth-int""#]);
        assert!(
            challenge(&only_int).is_none(),
            "auth-int only: not answered"
        );
        let unknown = headers(&[r#"Digest realm="r", nonce="n", algorithm=SHA-512-256"#]);
        assert!(challenge(&unknown).is_none());
        for broken in [
            r#"Digest realm="unterminated"#,
            "Digest",
            "Digest nonce=1",
            "",
            ",,,",
            "=",
            "Digest =x",
        ] {
            assert!(challenge(&headers(&[broken])).is_none(), "{broken:?}");
        }
        let sess =
            headers(&[r#"Digest realm="r", nonce="n", qop=auth, algorithm=MD5-sess, opaque="o""#]);
        let c = challenge(&sess).unwrap();
        assert!(c.session);
        let auth = authorization(&c, "u\"x", "p", "POST", "/a?b", "cn");
        assert!(
            auth.starts_with(
                r#"Digest username="u\"x", realm="r", nonce="n", uri="/a?b", algorithm=MD5-sess"#
            ),
            "{auth}"
        );
        assert!(auth.ends_with(r#", opaque="o""#));
    }

    #[test]
    fn cnonces_are_fresh() {
        let (a, b) = (new_cnonce(), new_cnonce());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
