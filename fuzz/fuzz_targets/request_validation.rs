//! URLs, methods and header fields from the fuzzer: a request that passes
//! validation yields a head with no line break outside the line ends (no
//! header injection), and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tornado_rs::http::request::HTTPRequest;
use tornado_rs::http::url::parse_target;
use tornado_rs::http::h1::request_head::request_head;
use tornado_rs::http::validate::validate_request;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\u{1}');
    let url = parts.next().unwrap_or("");
    let method = parts.next().unwrap_or("GET");
    let name = parts.next().unwrap_or("X-A");
    let value = parts.next().unwrap_or("");
    let Ok(target) = parse_target(url) else { return };
    let mut request = HTTPRequest::new(url);
    request.method = method.to_string();
    request.headers.add(name, value);
    if validate_request(&request).is_err() {
        return;
    }
    let head = request_head(&request, &target, false);
    let text = String::from_utf8_lossy(&head);
    let body = text.strip_suffix("\r\n\r\n").expect("a head ends with a blank line");
    for line in body.split("\r\n") {
        assert!(!line.contains('\r') && !line.contains('\n'), "injected line break in {line:?}");
    }
    assert_eq!(body.split("\r\n").count(), head.iter().filter(|&&b| b == b'\n').count() - 1);
});
