//! The HTTP client against an independent server: Tornado's own HTTPServer
//! (tests/servers/tornado_app.py, Python 3 with the `tornado` package,
//! which `.ci/run` installs) on 127.0.0.1.

mod common;

use std::time::Duration;

use common::tornado_server::TornadoServer;

use tornado_rs::http::client::{AsyncHTTPClient, ClientOptions};
use tornado_rs::http::request::HTTPRequest;
use tornado_rs::http::response::HTTPResponse;
use tornado_rs::IOLoop;

fn fetch_all(
    lp: &IOLoop,
    client: &AsyncHTTPClient,
    requests: Vec<HTTPRequest>,
) -> Vec<HTTPResponse> {
    let futures: Vec<_> = requests
        .into_iter()
        .map(|r| client.fetch(r).unwrap())
        .collect();
    lp.run_until(
        || futures.iter().all(|f| f.done()),
        Some(Duration::from_secs(30)),
    )
    .unwrap();
    futures
        .iter()
        .map(|f| f.result().unwrap().unwrap())
        .collect()
}

#[test]
fn against_tornado_httpserver() {
    let server = TornadoServer::start();
    let lp = IOLoop::new().unwrap();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();

    let mut post = HTTPRequest::new(server.url("/echo"));
    post.method = "POST".into();
    post.body = Some(vec![b'p'; 12345]);
    let responses = fetch_all(
        &lp,
        &client,
        vec![
            HTTPRequest::new(server.url("/echo?a=1")),
            post,
            HTTPRequest::new(server.url("/big?n=3000000")),
            HTTPRequest::new(server.url("/chunked")),
            HTTPRequest::new(server.url("/redirect?status=301")),
            HTTPRequest::new(server.url("/headers")),
        ],
    );
    for r in &responses {
        assert_eq!(r.code, 200, "{} {:?}", r.effective_url, r.error);
    }
    assert_eq!(responses[0].body, b"GET /echo?a=1");
    assert_eq!(responses[1].body, b"POST 12345");
    assert_eq!(responses[2].body.len(), 3_000_000);
    assert_eq!(
        responses[2].headers.get("Content-Encoding"),
        Some("gzip"),
        "Tornado compresses large bodies when asked"
    );
    let expected: String = (0..10).map(|i| format!("part {i}\n")).collect();
    assert_eq!(responses[3].body, expected.as_bytes());
    assert_eq!(responses[4].body, b"GET /echo?from=redirect");
    assert_eq!(
        responses[4].effective_url,
        server.url("/echo?from=redirect")
    );
    let cookies: Vec<&str> = responses[5].headers.get_all("Set-Cookie").collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert!(responses[5].body.starts_with(b"tornado_rs/"));

    // Sequential fetches reuse the pooled connections.
    let before = client.idle_connections();
    assert!(before >= 1);
    for _ in 0..20 {
        let r = fetch_all(&lp, &client, vec![HTTPRequest::new(server.url("/echo"))]);
        assert_eq!(r[0].code, 200);
    }
    assert_eq!(client.idle_connections(), before, "no new connections");
}
