//! A fetch over HTTP/2 (prior knowledge) from a "server" that sends
//! whatever bytes the fuzzer chose: through the whole client path (the
//! `h2` connection driven on the library's loop through the adapter in
//! src/http/h2/io.rs, the response head and body rules), over a real Unix
//! socket. The server writes its bytes in fuzz-chosen pieces to every
//! connection the fetch makes (a retry after GOAWAY makes a second), then
//! closes its side. Nothing may panic, and the fetch must end soon after: with an
//! error, or with a response those bytes made, never in the request
//! timeout (a hang).
//!
//! The first byte: bit 0 puts a valid server preface (an empty SETTINGS
//! frame) before the rest, so most inputs reach past it into frame
//! parsing; bits 1-7 pick the piece size (1 to 128 bytes, or all at once).
#![no_main]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tornado_rs::http::client::{AsyncHTTPClient, ClientOptions};
use tornado_rs::http::request::HTTPRequest;
use tornado_rs::http::{kind_of, FetchErrorKind, HttpVersion};
use tornado_rs::IOLoop;

/// An empty SETTINGS frame: the server's connection preface.
const SETTINGS: [u8; 9] = [0, 0, 0, 4, 0, 0, 0, 0, 0];

/// The socket the fetches connect to (one for the whole run).
fn listener() -> &'static (PathBuf, UnixListener) {
    static LISTENER: OnceLock<(PathBuf, UnixListener)> = OnceLock::new();
    LISTENER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tornado_rs-fuzz-h2-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("server.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind the fuzz socket");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        (path, listener)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    let mut sent = Vec::with_capacity(data.len() + SETTINGS.len());
    if mode & 1 != 0 {
        sent.extend_from_slice(&SETTINGS);
    }
    sent.extend_from_slice(data);
    let piece = match usize::from(mode >> 1) {
        0 => sent.len().max(1),
        n => n,
    };
    let (path, listener) = listener();
    let listener = listener.try_clone().expect("clone the listener");
    // Every connection the fetch makes (a retry after GOAWAY makes a
    // second) gets the same bytes, each on its own thread.
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let server = std::thread::spawn(move || {
        let sent = Arc::new(sent);
        let mut served = Vec::new();
        while !stopped.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((socket, _)) => {
                    let sent = sent.clone();
                    served.push(std::thread::spawn(move || serve(socket, &sent, piece)));
                }
                Err(_) => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        for thread in served {
            let _ = thread.join();
        }
    });

    let lp = IOLoop::new().expect("a loop");
    let client = AsyncHTTPClient::new(&lp, ClientOptions::default()).expect("a client");
    let mut request = HTTPRequest::new("http://127.0.0.1/fuzz");
    request.unix_socket = Some(path.clone());
    request.http_version = Some(HttpVersion::Http2PriorKnowledge);
    request.request_timeout = Some(Duration::from_secs(5));
    let fetched = client.fetch(request).expect("fetch starts");
    lp.run_until(|| fetched.done(), Some(Duration::from_secs(10)))
        .expect("the fetch ends");
    let response = fetched.result().expect("done").expect("a fetch future resolves");
    if let Some(error) = &response.error {
        assert_ne!(
            kind_of(error),
            Some(FetchErrorKind::Timeout),
            "the server closed its side, yet the fetch waited for the timeout: {error:?}"
        );
    } else {
        assert_eq!(response.version, 20);
    }
    // Dropping the client and the loop closes the connection: the server
    // thread sees the end and returns.
    drop(fetched);
    drop(client);
    drop(lp);
    stop.store(true, Ordering::SeqCst);
    server.join().expect("the server thread");
});

/// Writes `sent` in pieces, closes the writing side, and reads until the
/// client closes (so its writes never fail for want of a reader before it
/// has seen everything).
fn serve(mut socket: UnixStream, sent: &[u8], piece: usize) {
    let _ = socket.set_nonblocking(false);
    let _ = socket.set_read_timeout(Some(Duration::from_secs(10)));
    for chunk in sent.chunks(piece) {
        if socket.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = socket.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 16 * 1024];
    while matches!(socket.read(&mut sink), Ok(n) if n > 0) {}
}
