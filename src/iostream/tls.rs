//! TLS on a stream (Tornado's `SSLIOStream`): `start_tls` on either side,
//! the handshake, and the session's record I/O under reads and writes.

use std::io::ErrorKind;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::{ClientConfig, ServerConfig};

use super::io::{is_tls_failure, Io, TlsTunnel};
use super::session::TlsSession;
use super::IOStream;
use crate::error::{Error, Result};
use crate::tls::tls_error;

impl IOStream {
    /// Starts TLS as a client on this connected stream (Tornado's
    /// `start_tls(server_side=False)`) and completes the handshake. No read
    /// may be pending and no write queued. Fails, closing the stream, if the
    /// handshake fails (a bad certificate, a peer that is not TLS). Turns
    /// TCP_NODELAY on first, unless `set_nodelay` chose already.
    pub async fn start_tls_client(
        &self,
        config: std::sync::Arc<ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Result<()> {
        let session = UnbufferedClientConnection::new(config, server_name).map_err(tls_error)?;
        if !self.inner.nodelay_chosen.get() {
            // As curl: TCP_NODELAY before the handshake (unless the caller
            // chose), so the first write after it does not wait behind
            // Nagle's algorithm for the ACK of the client's Finished, which
            // the server may hold back for its delayed-ACK timer (40 ms).
            if let Some(s) = self.inner.io.borrow().as_ref().and_then(Io::tcp) {
                // Its result is not needed: at worst writes wait, as before.
                let _ = s.set_nodelay(true);
            }
        }
        self.start_tls(Box::new(TlsSession::client(session))).await
    }

    /// Starts a second TLS session inside this stream's TLS session and
    /// completes its handshake: TLS to a target through the tunnel an
    /// https:// proxy opened over the TLS connection to it (curl's TLS in
    /// TLS). The session so far becomes the transport: its plaintext
    /// carries the new session's records. No read may be pending and no
    /// write queued; fails, closing the stream, as `start_tls_client`.
    pub async fn start_tls_client_in_tunnel(
        &self,
        config: std::sync::Arc<ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Result<()> {
        let session = UnbufferedClientConnection::new(config, server_name).map_err(tls_error)?;
        if self.closed() {
            return Err(self.closed_error());
        }
        if self.writing() {
            return Err(Error::invalid("start_tls with writes still queued"));
        }
        let outer = match self.inner.tls.borrow_mut().take() {
            Some(outer) if !outer.is_handshaking() => outer,
            other => {
                *self.inner.tls.borrow_mut() = other;
                return Err(Error::invalid(
                    "a TLS tunnel needs a stream whose own TLS handshake is done",
                ));
            }
        };
        {
            let mut io = self.inner.io.borrow_mut();
            let transport = io.take().ok_or_else(|| self.closed_error())?;
            *io = Some(Io::Tunnel(Box::new(TlsTunnel {
                io: transport,
                session: std::cell::RefCell::new(outer),
            })));
        }
        self.start_tls(Box::new(TlsSession::client(session))).await
    }

    /// Starts TLS as a server on this accepted stream and completes the handshake.
    pub async fn start_tls_server(&self, config: std::sync::Arc<ServerConfig>) -> Result<()> {
        let session = UnbufferedServerConnection::new(config).map_err(tls_error)?;
        self.start_tls(Box::new(TlsSession::server(session))).await
    }

    /// True once TLS has started on this stream.
    pub fn is_tls(&self) -> bool {
        self.inner.tls.borrow().is_some()
    }

    /// The ALPN protocol agreed in the handshake, if any.
    pub fn alpn_protocol(&self) -> Option<Vec<u8>> {
        let tls = self.inner.tls.borrow();
        tls.as_ref()?.common().alpn_protocol().map(<[u8]>::to_vec)
    }

    /// The TLS version the handshake agreed ("TLSv1.2", "TLSv1.3"); None
    /// before the handshake is done or on a plain stream.
    pub fn tls_version(&self) -> Option<&'static str> {
        let tls = self.inner.tls.borrow();
        match tls.as_ref()?.common().protocol_version()? {
            rustls::ProtocolVersion::TLSv1_2 => Some("TLSv1.2"),
            rustls::ProtocolVersion::TLSv1_3 => Some("TLSv1.3"),
            other => other.as_str(),
        }
    }

    /// The cipher suite the handshake agreed, by its IANA name (e.g.
    /// "TLS13_AES_256_GCM_SHA384"); None before the handshake is done or
    /// on a plain stream.
    pub fn tls_cipher(&self) -> Option<&'static str> {
        let tls = self.inner.tls.borrow();
        tls.as_ref()?
            .common()
            .negotiated_cipher_suite()?
            .suite()
            .as_str()
    }

    /// Whether the handshake resumed an earlier session (Some(false): a
    /// full handshake); None before the handshake is done or on a plain stream.
    pub fn tls_resumed(&self) -> Option<bool> {
        let tls = self.inner.tls.borrow();
        let kind = tls.as_ref()?.common().handshake_kind()?;
        Some(kind == rustls::HandshakeKind::Resumed)
    }

    /// The session comes boxed: it is large, and it would otherwise sit in
    /// the state of every future that awaits a connect.
    async fn start_tls(&self, mut session: Box<TlsSession>) -> Result<()> {
        if self.closed() {
            return Err(self.closed_error());
        }
        if self.is_tls() {
            return Err(Error::invalid("TLS has already started on this stream"));
        }
        if self.writing() {
            return Err(Error::invalid("start_tls with writes still queued"));
        }
        let _guard = self.begin_read()?;
        // Bytes read before TLS started are the peer's first TLS records.
        let early = std::mem::take(&mut *self.inner.read_buffer.borrow_mut());
        let begun = session.begin(early.bytes()).map_err(tls_error);
        *self.inner.tls.borrow_mut() = Some(session);
        let outcome = match begun {
            // The first records were bad: the alert goes out, the stream closes.
            Err(e) => {
                let _ = self.send_tls_records();
                Err(e)
            }
            Ok(()) => self.handshake().await,
        };
        if let Err(e) = &outcome {
            self.close(Some(e.clone()));
        }
        outcome
    }

    /// Drives the handshake: sends what the session has to send, reads what
    /// it waits for, until it is done.
    async fn handshake(&self) -> Result<()> {
        loop {
            let Some(registration) = self.registration() else {
                return Err(self.closed_error());
            };
            if self.tls_wants_write() {
                match self.send_tls_records() {
                    Ok(()) => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        registration.clear_write_ready();
                        registration.writable().await;
                        continue;
                    }
                    Err(e) => return Err(Error::from_io("tls handshake write failed", e)),
                }
            }
            if !self.tls_handshaking() {
                // What was written during the handshake waited for it.
                self.flush();
                if self.closed() {
                    return Err(self.error().unwrap_or_else(|| self.closed_error()));
                }
                return self.ensure_flusher();
            }
            match self.receive_tls_records() {
                Ok(0) => {
                    return Err(tls_error(
                        "the peer closed the connection during the handshake",
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    registration.clear_read_ready();
                    registration.readable().await;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_tls_failure(&e) => {
                    // Best effort: tell the peer why (the alert rustls queued).
                    let _ = self.send_tls_records();
                    return Err(tls_error(e));
                }
                Err(e) => return Err(Error::from_io("tls handshake read failed", e)),
            }
        }
    }

    /// True while the stream's TLS handshake is under way.
    pub(super) fn tls_handshaking(&self) -> bool {
        self.inner
            .tls
            .borrow()
            .as_ref()
            .is_some_and(|tls| tls.is_handshaking())
    }

    /// Writes the session's pending records until done or the socket is full.
    fn send_tls_records(&self) -> std::io::Result<()> {
        let io = self.inner.io.borrow();
        let mut tls = self.inner.tls.borrow_mut();
        let (Some(io), Some(tls)) = (io.as_ref(), tls.as_mut()) else {
            return Ok(());
        };
        while tls.wants_write() {
            tls.write_tls(io)?;
        }
        // Through a proxy's TLS, what its session still holds goes too.
        io.flush_pending()
    }

    /// Reads and processes one batch of records: Ok(0) at end of stream.
    fn receive_tls_records(&self) -> std::io::Result<usize> {
        let io = self.inner.io.borrow();
        let mut tls = self.inner.tls.borrow_mut();
        let (Some(io), Some(tls)) = (io.as_ref(), tls.as_mut()) else {
            return Ok(0);
        };
        tls.receive(io)
    }

    /// On a clean close, tells a TLS peer so (best effort, never blocks).
    pub(super) fn send_close_notify(&self) {
        if let Some(tls) = self.inner.tls.borrow_mut().as_mut() {
            tls.send_close_notify();
        }
        let _ = self.send_tls_records();
    }
}

impl IOStream {
    /// Lends `sink` the TLS session's next piece of decrypted plaintext,
    /// pulling records from the socket until there is one, and consumes
    /// what it took: `Some(taken)`, or `None` at the end of the stream (as
    /// `tls_read`'s `Ok(0)`). `WouldBlock` when the socket has nothing
    /// more; `sink` is called at most once.
    pub(super) fn lend_plaintext(
        &self,
        sink: &mut Option<impl FnOnce(&[u8]) -> usize>,
    ) -> std::io::Result<Option<usize>> {
        let io = self.inner.io.borrow();
        let mut tls = self.inner.tls.borrow_mut();
        let (Some(io), Some(tls)) = (io.as_ref(), tls.as_mut()) else {
            return Ok(None);
        };
        tls.lend(io, sink)
    }
}
