//! One fetch on a loop and client of its own, run to its end (at most 20 s).

#![allow(dead_code)]

use std::time::Duration;

use tornado_rs::http::client::{AsyncHTTPClient, ClientOptions};
use tornado_rs::http::request::HTTPRequest;
use tornado_rs::http::response::HTTPResponse;
use tornado_rs::IOLoop;

pub fn fetch_once(request: HTTPRequest) -> HTTPResponse {
    let lp = IOLoop::new().unwrap();
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).unwrap();
    let f = client.fetch(request).unwrap();
    lp.run_until(|| f.done(), Some(Duration::from_secs(20)))
        .expect("done in time");
    f.result().expect("done").expect("fetch futures resolve")
}

/// A loop and a client kept across fetches (its pool, cookie jar and DNS
/// cache live as long as it does); each fetch runs to its end (20 s).
pub struct Client {
    pub lp: IOLoop,
    pub client: AsyncHTTPClient,
}

impl Client {
    pub fn new(options: ClientOptions) -> Client {
        let lp = IOLoop::new().unwrap();
        let client = AsyncHTTPClient::new(&lp, options).unwrap();
        Client { lp, client }
    }

    pub fn fetch(&self, request: HTTPRequest) -> HTTPResponse {
        let f = self.client.fetch(request).unwrap();
        self.lp
            .run_until(|| f.done(), Some(Duration::from_secs(20)))
            .expect("done in time");
        f.result().expect("done").expect("fetch futures resolve")
    }
}
