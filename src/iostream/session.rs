//! A stream's TLS session on rustls' unbuffered API: the session owns the
//! buffer the socket's records are read into (in large reads), rustls
//! decrypts them there, and the plaintext is lent from the record it came
//! in (to `lend`'s sink) or copied once into the caller's buffer (`read`).
//! Records to send (handshake flights, application data, alerts) are
//! encoded into one outgoing buffer that goes out in one write.
//!
//! Why not rustls' buffered `Connection`: it reads the socket at most
//! 4 KiB at a time (several reads for one 16 KiB record) into a buffer it
//! shrinks each time it empties, and copies each record's plaintext into
//! a fresh allocation laid out the same way each time, which on some CPUs
//! (AMD Zen with glibc before 2.39) puts the copy in `rep movsb`'s slow
//! case (destination a few bytes after the source, modulo 4 KiB).
//! rustls 0.23's unbuffered API still copies each record's plaintext once
//! (`ReadTraffic` hands out a `Vec`), but out of this long-lived buffer.

use std::io::ErrorKind;

use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError,
    UnbufferedStatus,
};
use rustls::CommonState;

use super::buffer::ByteQueue;
use super::io::{tls_io_error, Io};

/// The most one read from the socket asks for. Reads start at
/// `FIRST_READ` and double each time one fills its space, so connections
/// with small messages keep small buffers and bulk transfers get large
/// reads.
const READ_SIZE: usize = 64 * 1024;
const FIRST_READ: usize = 4 * 1024;
/// What the incoming buffer may hold at most: one handshake message
/// (rustls refuses those over 64 KiB) with its record headers, or one
/// largest record (16 KiB of plaintext plus 2 KiB of expansion), plus
/// what one read adds. A peer cannot make it grow past this: rustls
/// refuses larger records and messages.
const MAX_INCOMING: usize = 0x1_0000 + 4 * 1024 + READ_SIZE;
/// An emptied incoming buffer larger than this is released when the
/// socket has nothing more (idle connections stay small).
const KEEP_INCOMING: usize = 16 * 1024;
/// Plaintext accepted for encryption while records wait to be sent: the
/// outgoing buffer stays bounded by about this much.
const MAX_OUTGOING: usize = 64 * 1024;
/// An emptied outgoing buffer larger than this is released.
const KEEP_OUTGOING: usize = 2 * MAX_OUTGOING;
/// Room first offered to encode a handshake message or an alert; rustls
/// asks for more when it needs it.
const ENCODE_ROOM: usize = 1024;
/// What each record adds to its plaintext, at most (header, explicit
/// nonce, tag, content type), rounded up: room for an encryption in one go.
const RECORD_OVERHEAD: usize = 64;
/// The largest plaintext one record carries.
const MAX_FRAGMENT: usize = 16 * 1024;

enum Conn {
    Client(UnbufferedClientConnection),
    Server(UnbufferedServerConnection),
}

/// Encoded records not yet sent: `buf[sent..]`.
#[derive(Default)]
struct Outgoing {
    buf: Vec<u8>,
    sent: usize,
}

impl Outgoing {
    fn pending(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Forgets the `n` bytes the socket took; an emptied buffer larger
    /// than `KEEP_OUTGOING` is released (a connection that sent a large
    /// upload does not keep its memory).
    fn consume(&mut self, n: usize) {
        self.sent += n;
        if self.sent == self.buf.len() {
            self.sent = 0;
            if self.buf.capacity() > KEEP_OUTGOING {
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
        }
    }

    /// Runs `encode` on spare room at the end (first `room` bytes, then
    /// what the encoder says it needs). Records already sent are dropped
    /// from the front first, so the buffer holds only what waits to go
    /// out: at most about `MAX_OUTGOING`, however long the socket stays
    /// slow.
    fn encode_with(
        &mut self,
        mut room: usize,
        mut encode: impl FnMut(&mut [u8]) -> Result<usize, Option<InsufficientSizeError>>,
    ) -> Result<(), rustls::Error> {
        if self.sent > 0 {
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
        loop {
            let end = self.buf.len();
            self.buf.resize(end + room, 0);
            match encode(&mut self.buf[end..]) {
                Ok(n) => {
                    self.buf.truncate(end + n);
                    return Ok(());
                }
                Err(Some(InsufficientSizeError { required_size })) => {
                    self.buf.truncate(end);
                    room = required_size;
                }
                Err(None) => {
                    self.buf.truncate(end);
                    return Err(rustls::Error::General("cannot encode a TLS record".into()));
                }
            }
        }
    }
}

/// What `process` is asked to do once the session may send application
/// data.
enum Action<'a> {
    Nothing,
    Encrypt(&'a [u8]),
    CloseNotify,
}

/// Where `process` stopped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stop {
    /// Plaintext was delivered.
    Data,
    /// More records are needed (the handshake waits for the peer, or
    /// application data is incomplete).
    NeedRecords,
    /// The peer sent close_notify: no more plaintext comes.
    PeerClosed,
}

pub(super) struct TlsSession {
    conn: Conn,
    /// Records read and not yet processed (decrypted in place there).
    incoming: ByteQueue,
    outgoing: Outgoing,
    /// Plaintext a sink did not take, lent before any newer record.
    plaintext: ByteQueue,
    /// The socket reported its end.
    eof: bool,
    /// The peer's close_notify was seen.
    peer_closed: bool,
    /// The error that ended the session: reported again on each use.
    failed: Option<rustls::Error>,
    /// The size of the next read (see `FIRST_READ`).
    read_size: usize,
}

impl TlsSession {
    pub(super) fn client(conn: UnbufferedClientConnection) -> TlsSession {
        TlsSession::new(Conn::Client(conn))
    }

    pub(super) fn server(conn: UnbufferedServerConnection) -> TlsSession {
        TlsSession::new(Conn::Server(conn))
    }

    fn new(conn: Conn) -> TlsSession {
        TlsSession {
            conn,
            incoming: ByteQueue::default(),
            outgoing: Outgoing::default(),
            plaintext: ByteQueue::default(),
            eof: false,
            peer_closed: false,
            failed: None,
            read_size: FIRST_READ,
        }
    }

    /// The negotiated parameters (ALPN, version, cipher suite, ...).
    pub(super) fn common(&self) -> &CommonState {
        match &self.conn {
            Conn::Client(c) => c,
            Conn::Server(s) => s,
        }
    }

    pub(super) fn is_handshaking(&self) -> bool {
        self.common().is_handshaking()
    }

    /// True while encoded records wait to be sent.
    pub(super) fn wants_write(&self) -> bool {
        self.outgoing.pending() > 0
    }

    /// Sends encoded records with one write: Ok(n) for what the socket
    /// took (a whole handshake flight goes out in one segment).
    pub(super) fn write_tls(&mut self, io: &Io) -> std::io::Result<usize> {
        let out = &mut self.outgoing;
        let n = io.write(&out.buf[out.sent..])?;
        out.consume(n);
        Ok(n)
    }

    /// Starts the handshake: takes the records read from the socket
    /// before TLS started (`early`, often none) and encodes the first
    /// flight (a client's ClientHello).
    pub(super) fn begin(&mut self, mut early: &[u8]) -> Result<(), rustls::Error> {
        loop {
            let room = MAX_INCOMING - self.incoming.len();
            if room == 0 {
                return Err(too_large());
            }
            let n = room.min(early.len());
            self.incoming.push(&early[..n]);
            early = &early[n..];
            self.process_into_queue(&mut Action::Nothing)?;
            if early.is_empty() {
                return Ok(());
            }
        }
    }

    /// Reads records from the socket once and processes them (the
    /// handshake's step): Ok(0) at the end of the stream.
    pub(super) fn receive(&mut self, io: &Io) -> std::io::Result<usize> {
        let n = self.read_records(io)?;
        self.process_into_queue(&mut Action::Nothing)
            .map_err(tls_io_error)?;
        Ok(n)
    }

    /// Encrypts as much of `data` as the outgoing buffer's bound allows;
    /// Ok(0) before the handshake is done (the caller keeps the bytes and
    /// offers them again once it is) or while that buffer is full. The
    /// error that ended the session, once it has; an error too once both
    /// sides closed (nothing can be sent any more).
    pub(super) fn write_plaintext(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Some(e) = &self.failed {
            return Err(tls_io_error(e.clone()));
        }
        let room = MAX_OUTGOING.saturating_sub(self.outgoing.pending());
        let data = &data[..data.len().min(room)];
        if data.is_empty() || self.is_handshaking() {
            return Ok(0);
        }
        let mut action = Action::Encrypt(data);
        self.process_into_queue(&mut action).map_err(tls_io_error)?;
        if !matches!(action, Action::Nothing) {
            return Err(ErrorKind::BrokenPipe.into());
        }
        Ok(data.len())
    }

    /// Queues close_notify (once the handshake is done; best effort).
    pub(super) fn send_close_notify(&mut self) {
        if !self.is_handshaking() && self.failed.is_none() {
            let _ = self.process_into_queue(&mut Action::CloseNotify);
        }
    }

    /// Lends `sink` the next piece of plaintext (straight from the record
    /// it came in when no earlier piece is left over), reading records
    /// from the socket until there is one: Some(taken), None at the end
    /// of the stream (with or without close_notify). `sink` is called at
    /// most once; what it leaves is kept for the next call.
    pub(super) fn lend(
        &mut self,
        io: &Io,
        sink: &mut Option<impl FnOnce(&[u8]) -> usize>,
    ) -> std::io::Result<Option<usize>> {
        loop {
            if self.plaintext.len() > 0 {
                let piece = self.plaintext.bytes();
                let taken = sink.take().map_or(0, |sink| sink(piece).min(piece.len()));
                self.plaintext.consume(taken);
                return Ok(Some(taken));
            }
            let mut taken = None;
            let mut plaintext = std::mem::take(&mut self.plaintext);
            let stop = self.process(&mut Action::Nothing, &mut |piece| match sink.take() {
                Some(sink) if taken.is_none() => {
                    let n = sink(piece).min(piece.len());
                    taken = Some(n);
                    plaintext.push(&piece[n..]);
                }
                _ => plaintext.push(piece),
            });
            self.plaintext = plaintext;
            let stop = stop.map_err(tls_io_error)?;
            if let Some(n) = taken {
                return Ok(Some(n));
            }
            match stop {
                Stop::Data => continue,
                Stop::PeerClosed => return Ok(None),
                Stop::NeedRecords if self.eof => return Ok(None),
                Stop::NeedRecords => {}
            }
            self.read_records(io)?;
        }
    }

    /// Copies plaintext into `buf`, reading records from the socket as
    /// needed: Ok(0) at the end of the stream (with or without
    /// close_notify: peers that just close are common, and the framing
    /// above detects truncation where it matters).
    pub(super) fn read(&mut self, io: &Io, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut n = self.plaintext.len().min(buf.len());
            buf[..n].copy_from_slice(&self.plaintext.bytes()[..n]);
            self.plaintext.consume(n);
            let mut stop = Stop::Data;
            while n < buf.len() && stop == Stop::Data {
                let mut plaintext = std::mem::take(&mut self.plaintext);
                let result = self.process(&mut Action::Nothing, &mut |piece| {
                    let fits = piece.len().min(buf.len() - n);
                    buf[n..n + fits].copy_from_slice(&piece[..fits]);
                    n += fits;
                    plaintext.push(&piece[fits..]);
                });
                self.plaintext = plaintext;
                stop = result.map_err(tls_io_error)?;
            }
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            if stop == Stop::PeerClosed || self.eof {
                return Ok(0);
            }
            self.read_records(io)?;
        }
    }

    /// One read from the socket into the incoming buffer: Ok(0) at its end.
    fn read_records(&mut self, io: &Io) -> std::io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        let want = self.read_size.min(MAX_INCOMING - self.incoming.len());
        if want == 0 {
            // rustls refuses records and messages that would fill it.
            return Err(tls_io_error(too_large()));
        }
        match io.read(self.incoming.spare(want)) {
            Ok(0) => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => {
                self.incoming.commit(n);
                io.after_read(n);
                if n == want {
                    self.read_size = (want * 2).min(READ_SIZE);
                }
                Ok(n)
            }
            Err(e) => {
                if e.kind() == ErrorKind::WouldBlock
                    && self.incoming.release_if_empty(KEEP_INCOMING)
                {
                    self.read_size = FIRST_READ;
                }
                Err(e)
            }
        }
    }

    /// Processes records until more are needed, queueing any plaintext.
    /// `action` is left `Action::Nothing` once done.
    fn process_into_queue(&mut self, action: &mut Action<'_>) -> Result<Stop, rustls::Error> {
        let mut plaintext = std::mem::take(&mut self.plaintext);
        let mut deliver = |piece: &[u8]| plaintext.push(piece);
        let mut result = self.process(action, &mut deliver);
        while let Ok(Stop::Data) = result {
            result = self.process(action, &mut deliver);
        }
        self.plaintext = plaintext;
        result
    }

    /// Runs rustls over the records held until it delivers plaintext
    /// (to `deliver`), needs more records, or sees close_notify; encodes
    /// what it has to send, and does `action` once it may send
    /// application data. A failure is kept, and the alert rustls queued
    /// for the peer is encoded (best effort: sent with the next write).
    fn process(
        &mut self,
        action: &mut Action<'_>,
        deliver: &mut dyn FnMut(&[u8]),
    ) -> Result<Stop, rustls::Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.peer_closed && matches!(*action, Action::Nothing) {
            return Ok(Stop::PeerClosed);
        }
        loop {
            let records = self.incoming.bytes_mut();
            let step = match &mut self.conn {
                Conn::Client(c) => step(
                    c.process_tls_records(records),
                    &mut self.outgoing,
                    action,
                    deliver,
                ),
                Conn::Server(s) => step(
                    s.process_tls_records(records),
                    &mut self.outgoing,
                    action,
                    deliver,
                ),
            };
            let (discard, outcome) = step;
            self.incoming.consume(discard);
            match outcome {
                Ok(Step::Continue) => {}
                Ok(Step::Stop(Stop::PeerClosed)) => {
                    self.peer_closed = true;
                    if matches!(*action, Action::Nothing) {
                        return Ok(Stop::PeerClosed);
                    }
                }
                Ok(Step::Stop(stop)) => return Ok(stop),
                Ok(Step::Closed) => return Ok(Stop::PeerClosed),
                Err(e) => {
                    self.failed = Some(e.clone());
                    self.encode_alert();
                    return Err(e);
                }
            }
        }
    }

    /// After a failure: encodes what rustls queued for the peer, the
    /// alert last (a TLS 1.3 server may have queued its ServerHello
    /// first). rustls hands out one queued record per call, before it
    /// looks at the incoming records; those are never processed again
    /// (they would fail again, and rustls would queue a second alert).
    fn encode_alert(&mut self) {
        while self.common().wants_write() {
            let records = self.incoming.bytes_mut();
            let encoded = match &mut self.conn {
                Conn::Client(c) => {
                    encode_queued(c.process_tls_records(records), &mut self.outgoing)
                }
                Conn::Server(s) => {
                    encode_queued(s.process_tls_records(records), &mut self.outgoing)
                }
            };
            if !encoded {
                return;
            }
        }
    }
}

/// Encodes the record rustls hands out first, if that is what it does:
/// true if it did.
fn encode_queued<Data>(status: UnbufferedStatus<'_, '_, Data>, outgoing: &mut Outgoing) -> bool {
    match status.state {
        Ok(ConnectionState::EncodeTlsData(mut data)) => {
            encode_tls_data(&mut data, outgoing).is_ok()
        }
        _ => false,
    }
}

/// Appends a handshake message or alert rustls hands out to `outgoing`.
fn encode_tls_data<Data>(
    data: &mut EncodeTlsData<'_, Data>,
    outgoing: &mut Outgoing,
) -> Result<(), rustls::Error> {
    outgoing.encode_with(ENCODE_ROOM, |room| match data.encode(room) {
        Ok(n) => Ok(n),
        Err(EncodeError::InsufficientSize(e)) => Err(Some(e)),
        Err(_) => Err(None),
    })
}

/// What one state of rustls' unbuffered state machine led to.
enum Step {
    Continue,
    Stop(Stop),
    /// Both sides sent close_notify.
    Closed,
}

/// Handles one state rustls reports: returns the bytes to discard from
/// the front of the records given to it, and what comes next.
fn step<Data>(
    status: UnbufferedStatus<'_, '_, Data>,
    outgoing: &mut Outgoing,
    action: &mut Action<'_>,
    deliver: &mut dyn FnMut(&[u8]),
) -> (usize, Result<Step, rustls::Error>) {
    let UnbufferedStatus { mut discard, state } = status;
    let state = match state {
        Ok(state) => state,
        Err(e) => return (discard, Err(e)),
    };
    let outcome = match state {
        ConnectionState::ReadTraffic(mut traffic) => {
            let mut delivered = false;
            while let Some(record) = traffic.next_record() {
                match record {
                    Ok(record) => {
                        discard += record.discard;
                        if !record.payload.is_empty() {
                            deliver(record.payload);
                            delivered = true;
                        }
                    }
                    Err(e) => return (discard, Err(e)),
                }
            }
            Ok(if delivered {
                Step::Stop(Stop::Data)
            } else {
                Step::Continue
            })
        }
        ConnectionState::EncodeTlsData(mut data) => {
            encode_tls_data(&mut data, outgoing).map(|()| Step::Continue)
        }
        // The records are in `outgoing`: they go out, in order, before
        // anything encoded later.
        ConnectionState::TransmitTlsData(transmit) => {
            transmit.done();
            Ok(Step::Continue)
        }
        ConnectionState::BlockedHandshake => Ok(Step::Stop(Stop::NeedRecords)),
        ConnectionState::WriteTraffic(mut traffic) => {
            let done = match std::mem::replace(action, Action::Nothing) {
                Action::Nothing => Ok(()),
                Action::Encrypt(data) => {
                    let records = data.len().div_ceil(MAX_FRAGMENT);
                    let room = data.len() + records * RECORD_OVERHEAD;
                    outgoing.encode_with(room, |room| encrypt_error(traffic.encrypt(data, room)))
                }
                Action::CloseNotify => outgoing.encode_with(ENCODE_ROOM, |room| {
                    encrypt_error(traffic.queue_close_notify(room))
                }),
            };
            done.map(|()| Step::Stop(Stop::NeedRecords))
        }
        ConnectionState::PeerClosed => Ok(Step::Stop(Stop::PeerClosed)),
        ConnectionState::Closed => Ok(Step::Closed),
        // Early data is never enabled in our server configurations.
        _ => Err(rustls::Error::General(
            "unexpected TLS early data".to_string(),
        )),
    };
    (discard, outcome)
}

fn encrypt_error(
    result: Result<usize, EncryptError>,
) -> Result<usize, Option<InsufficientSizeError>> {
    match result {
        Ok(n) => Ok(n),
        Err(EncryptError::InsufficientSize(e)) => Err(Some(e)),
        Err(_) => Err(None),
    }
}

fn too_large() -> rustls::Error {
    rustls::Error::General("a TLS record or message is too large".to_string())
}

#[cfg(test)]
mod tests {
    use super::{Outgoing, KEEP_OUTGOING, MAX_OUTGOING};

    fn encode(outgoing: &mut Outgoing, len: usize, byte: u8) {
        outgoing
            .encode_with(16, |room| {
                if room.len() < len {
                    return Err(Some(rustls::unbuffered::InsufficientSizeError {
                        required_size: len,
                    }));
                }
                room[..len].fill(byte);
                Ok(len)
            })
            .unwrap();
    }

    /// A socket that keeps taking only part of what waits does not make
    /// the buffer hold everything ever encoded: what was sent is dropped
    /// before more is added.
    #[test]
    fn the_outgoing_buffer_holds_only_what_waits() {
        let mut outgoing = Outgoing::default();
        for round in 0..100u8 {
            encode(&mut outgoing, MAX_OUTGOING / 2, round);
            let half = outgoing.pending() / 2;
            outgoing.consume(half);
            assert!(outgoing.buf.len() <= MAX_OUTGOING, "round {round}");
        }
        // What waits is the newest bytes, in order.
        let waiting = &outgoing.buf[outgoing.sent..];
        assert_eq!(*waiting.last().unwrap(), 99);
        outgoing.consume(outgoing.pending());
        assert_eq!(outgoing.pending(), 0);
        assert!(outgoing.buf.capacity() <= KEEP_OUTGOING);
    }

    /// An emptied large buffer is released.
    #[test]
    fn a_large_emptied_outgoing_buffer_is_released() {
        let mut outgoing = Outgoing::default();
        encode(&mut outgoing, 4 * KEEP_OUTGOING, 1);
        outgoing.consume(outgoing.pending());
        assert_eq!(outgoing.buf.capacity(), 0);
    }
}
