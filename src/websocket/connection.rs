//! An open WebSocket: Tornado's `WebSocketClientConnection` after the
//! handshake. A task on the loop reads frames (pausing while a message
//! waits unread, as Tornado's one-message read queue does), answers pings,
//! and ends the connection on a close or a broken rule; writes go straight
//! to the stream, in order, within a bounded buffer.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::time::Duration;

use ring::rand::SystemRandom;

use super::deflate::Deflater;
use super::frame::{
    close_payload, encode_frame_into, is_valid_close_code, Event, ProtocolError, Receiver,
    CLOSE_NORMAL, CLOSE_TOO_BIG, MAX_CONTROL_PAYLOAD, MAX_FRAME_HEADER, OP_BINARY, OP_CLOSE,
    OP_PING, OP_PONG, OP_TEXT,
};
use super::handshake::random_bytes;
use super::{ws_error, Message, WebSocketOptions};
use crate::error::{Code, Error, Result};
use crate::future::Future;
use crate::gen;
use crate::ioloop::{LoopRef, TimeoutId};
use crate::iostream::IOStream;

/// How much one read hands the frame parser.
const READ_CHUNK: usize = 64 * 1024;
/// Masking keys drawn from the system's random source at a time.
const MASK_BYTES: usize = 1024;
/// The frame buffer is reused for the next frame up to this capacity.
const KEPT_FRAME_BUFFER: usize = 64 * 1024;

/// Called with each message, then once with None when the connection ends.
pub type MessageCallback = Rc<dyn Fn(Option<Message>)>;
/// Called with a ping's or a pong's payload.
pub type ControlCallback = Rc<dyn Fn(&[u8])>;

/// An open WebSocket connection. Cheap to clone (shared); dropping the
/// last clone closes the connection at once (no close handshake).
#[derive(Clone)]
pub struct WebSocket {
    inner: Rc<Inner>,
}

struct Inner {
    lp: LoopRef,
    stream: IOStream,
    subprotocol: Option<String>,
    extensions: Option<String>,
    max_write_buffer: usize,
    close_timeout: Duration,
    rng: SystemRandom,
    state: RefCell<State>,
    /// Where each frame is encoded (and masked) before the stream takes it.
    frame_buffer: RefCell<Vec<u8>>,
}

#[derive(Default)]
struct State {
    /// Messages received and not yet read.
    received: VecDeque<Message>,
    /// read_message futures waiting, oldest first.
    readers: VecDeque<Future<Option<Message>>>,
    /// Set by the reading task while it waits for `received` to drain.
    room: Option<Future<()>>,
    on_message: Option<MessageCallback>,
    /// A message callback was set while messages waited in `received`: a
    /// loop callback hands them over (`flush_received`), and until it has,
    /// new messages queue behind them and the end waits its turn.
    flush_pending: bool,
    on_ping: Option<ControlCallback>,
    on_pong: Option<ControlCallback>,
    deflater: Option<Deflater>,
    close_sent: bool,
    close_received: bool,
    close_code: Option<u16>,
    close_reason: Option<String>,
    /// None while open; the way it ended (Ok: a clean close).
    ended: Option<std::result::Result<(), Error>>,
    close_waiters: Vec<Future<()>>,
    close_timer: Option<TimeoutId>,
    /// Bytes handed to the stream and not yet on the wire.
    unsent: usize,
    /// A pong is being written; the latest ping received meanwhile.
    pong_in_flight: bool,
    pong_pending: Option<Vec<u8>>,
    received_pong: bool,
    /// Random bytes for masking keys (one getrandom per 256 frames); the
    /// first `masks_left` are unused.
    masks: Vec<u8>,
    masks_left: usize,
    /// The stream's future of the last frame written (done: all are out).
    last_write: Option<Future<()>>,
}

impl WebSocket {
    /// Wraps a stream whose handshake is done, and starts reading.
    pub(crate) fn start(
        stream: IOStream,
        options: &WebSocketOptions,
        negotiated: super::handshake::Negotiated,
        extensions: Option<String>,
    ) -> Result<WebSocket> {
        let lp = stream.loop_ref().clone();
        let inflater = negotiated
            .deflate
            .as_ref()
            .map(super::deflate::Inflater::new);
        let deflater = match (&negotiated.deflate, &options.compression) {
            (Some(agreed), Some(c)) => Some(Deflater::new(agreed, c.compression_level)),
            _ => None,
        };
        let receiver = Receiver::new(options.max_message_size, inflater);
        let inner = Rc::new(Inner {
            lp: lp.clone(),
            stream: stream.clone(),
            subprotocol: negotiated.subprotocol,
            extensions,
            max_write_buffer: options.max_write_buffer,
            close_timeout: options.close_timeout,
            rng: SystemRandom::new(),
            state: RefCell::new(State {
                deflater,
                ..State::default()
            }),
            frame_buffer: RefCell::new(Vec::new()),
        });
        lp.spawn(read_frames(Rc::downgrade(&inner), stream, receiver))?;
        if let Some(interval) = options.ping_interval.filter(|i| !i.is_zero()) {
            // Tornado: the timeout defaults to the interval and never exceeds it.
            let timeout = options.ping_timeout.map_or(interval, |t| t.min(interval));
            lp.spawn(ping_periodically(Rc::downgrade(&inner), interval, timeout))?;
        }
        Ok(WebSocket { inner })
    }

    /// The loop the connection runs on.
    pub fn loop_ref(&self) -> &LoopRef {
        &self.inner.lp
    }

    /// The subprotocol the server chose (None when it chose none).
    pub fn subprotocol(&self) -> Option<&str> {
        self.inner.subprotocol.as_deref()
    }

    /// The extensions agreed (the server's `Sec-WebSocket-Extensions`).
    pub fn extensions(&self) -> Option<&str> {
        self.inner.extensions.as_deref()
    }

    /// The next message: None once the connection closed cleanly (a close
    /// handshake); an error when it ended otherwise (a broken rule, a lost
    /// connection, a ping timeout). Messages already received are read
    /// first. With a message callback set, nothing is left to read: None.
    pub fn read_message(&self) -> Result<Future<Option<Message>>> {
        let lp = &self.inner.lp;
        lp.check_thread()?;
        let mut state = self.inner.state.borrow_mut();
        // (With a callback set, what waits in `received` is the callback's.)
        let queued = match state.on_message {
            None => state.received.pop_front(),
            Some(_) => None,
        };
        if let Some(message) = queued {
            drop(state);
            self.inner.release_room();
            return Ok(Future::ready(lp, Some(message)));
        }
        let future = Future::new(lp);
        match &state.ended {
            Some(Ok(())) => {
                let _ = future.set_result(None);
            }
            Some(Err(e)) => {
                let _ = future.set_error(e.clone());
            }
            None if state.on_message.is_some() => {
                let _ = future.set_result(None);
            }
            None => state.readers.push_back(future.clone()),
        }
        Ok(future)
    }

    /// Calls `callback` with each message from now on (the messages already
    /// received first, from the loop), then with None when the connection
    /// ends (Tornado's `on_message_callback`). None goes back to
    /// `read_message`.
    pub fn set_message_callback(&self, callback: Option<MessageCallback>) -> Result<()> {
        self.inner.lp.check_thread()?;
        let mut state = self.inner.state.borrow_mut();
        state.on_message = callback;
        let waiting = !state.received.is_empty() || state.ended.is_some();
        if state.on_message.is_none() || !waiting || state.flush_pending {
            return Ok(());
        }
        state.flush_pending = true;
        drop(state);
        // From the loop, not from inside this call; through a weak
        // reference, so that a connection released (and its callbacks
        // removed) before then calls nothing.
        let weak = Rc::downgrade(&self.inner);
        self.inner.lp.add_callback(move || {
            if let Some(inner) = weak.upgrade() {
                inner.flush_received();
            }
        })?;
        Ok(())
    }

    /// Calls `callback` with each ping's payload (after the pong is queued).
    pub fn set_ping_callback(&self, callback: Option<ControlCallback>) -> Result<()> {
        self.inner.lp.check_thread()?;
        self.inner.state.borrow_mut().on_ping = callback;
        Ok(())
    }

    /// Calls `callback` with each pong's payload.
    pub fn set_pong_callback(&self, callback: Option<ControlCallback>) -> Result<()> {
        self.inner.lp.check_thread()?;
        self.inner.state.borrow_mut().on_pong = callback;
        Ok(())
    }

    /// Sends a text message; the future resolves once it is on the wire.
    pub fn write_text(&self, text: &str) -> Result<Future<()>> {
        self.write_message(OP_TEXT, text.as_bytes())
    }

    /// Sends a binary message; the future resolves once it is on the wire.
    pub fn write_binary(&self, data: &[u8]) -> Result<Future<()>> {
        self.write_message(OP_BINARY, data)
    }

    /// Sends `message`.
    pub fn write(&self, message: &Message) -> Result<Future<()>> {
        match message {
            Message::Text(text) => self.write_text(text),
            Message::Binary(data) => self.write_binary(data),
        }
    }

    fn write_message(&self, opcode: u8, data: &[u8]) -> Result<Future<()>> {
        self.inner.lp.check_thread()?;
        {
            let state = self.inner.state.borrow();
            if state.ended.is_some() || state.close_sent {
                return Err(closed_error());
            }
        }
        // Everything that can refuse the message comes before the deflater
        // sees it: with context takeover, a message compressed but not sent
        // would leave the server's inflater and ours apart, and corrupt
        // every later message. The room is judged on the uncompressed size
        // (compression seldom grows a message, and then by a few bytes).
        self.inner.check_room(data.len() + MAX_FRAME_HEADER)?;
        let mask = self.inner.next_mask()?;
        let compressed =
            (self.inner.state.borrow_mut().deflater.as_mut()).map(|d| d.compress(data));
        let (payload, rsv1) = match &compressed {
            Some(c) => (c.as_slice(), true),
            None => (data, false),
        };
        self.inner.send_masked(opcode, rsv1, payload, mask)
    }

    /// Sends a ping with `data` (at most 125 bytes).
    pub fn ping(&self, data: &[u8]) -> Result<Future<()>> {
        self.inner.lp.check_thread()?;
        if data.len() > MAX_CONTROL_PAYLOAD {
            return Err(Error::invalid("a ping's payload is at most 125 bytes"));
        }
        {
            let state = self.inner.state.borrow();
            if state.ended.is_some() || state.close_sent {
                return Err(closed_error());
            }
        }
        self.inner.send_frame(OP_PING, data)
    }

    /// Starts the close handshake with `code` (None: a close frame without
    /// one) and `reason` (at most 123 bytes; only with a code). The future
    /// resolves when the server's close frame came and the connection is
    /// closed; it fails with a timeout if the server does not answer within
    /// the close timeout (the connection is then closed anyway). Calling it
    /// again waits for the same end. Messages received before stay
    /// readable; once closing, one that arrives while another waits unread
    /// is dropped (the server's close is read past it).
    pub fn close(&self, code: Option<u16>, reason: &str) -> Result<Future<()>> {
        let lp = &self.inner.lp;
        lp.check_thread()?;
        if let Some(code) = code {
            if !is_valid_close_code(code) {
                return Err(Error::invalid(format!(
                    "{code} is not a close code that may be sent"
                )));
            }
        } else if !reason.is_empty() {
            return Err(Error::invalid("a close reason needs a close code"));
        }
        if reason.len() > MAX_CONTROL_PAYLOAD - 2 {
            return Err(Error::invalid("a close reason is at most 123 bytes"));
        }
        let future = Future::new(lp);
        let send = {
            let mut state = self.inner.state.borrow_mut();
            match &state.ended {
                Some(Ok(())) => {
                    let _ = future.set_result(());
                    return Ok(future);
                }
                Some(Err(e)) => {
                    let _ = future.set_error(e.clone());
                    return Ok(future);
                }
                None => {}
            }
            state.close_waiters.push(future.clone());
            !std::mem::replace(&mut state.close_sent, true)
        };
        if send {
            let payload = close_payload(code, reason);
            if let Err(e) = self.inner.send_frame(OP_CLOSE, &payload) {
                self.inner.end(Err(e), false);
                return Ok(future);
            }
            self.inner.arm_close_timer();
            // The reading task may wait for room behind an unread
            // message: it reads on now, to the server's close.
            self.inner.release_room();
        }
        Ok(future)
    }

    /// The code of the server's close frame (None before one came, or
    /// when it had none).
    pub fn close_code(&self) -> Option<u16> {
        self.inner.state.borrow().close_code
    }

    /// The reason of the server's close frame.
    pub fn close_reason(&self) -> Option<String> {
        self.inner.state.borrow().close_reason.clone()
    }

    /// Why the connection ended, if not by a clean close.
    pub fn error(&self) -> Option<Error> {
        match &self.inner.state.borrow().ended {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// True once the connection ended (cleanly or not).
    pub fn is_closed(&self) -> bool {
        self.inner.state.borrow().ended.is_some()
    }

    /// Bytes written and not yet on the wire.
    pub fn buffered_amount(&self) -> usize {
        self.inner.state.borrow().unsent
    }

    /// Closes the connection at once, without a close handshake.
    pub fn abort(&self) {
        self.inner.end(Err(closed_error()), false);
    }
}

/// The last handle gone: the connection closes at once, and reads and
/// closes still waiting fail with `CLOSED`.
impl Drop for Inner {
    fn drop(&mut self) {
        self.stream.close(None);
        let state = self.state.get_mut();
        if let Some(timer) = state.close_timer.take() {
            let _ = self.lp.remove_timeout(timer);
        }
        for reader in state.readers.drain(..) {
            let _ = reader.set_error(closed_error());
        }
        for waiter in state.close_waiters.drain(..) {
            let _ = waiter.set_error(closed_error());
        }
    }
}

pub(crate) fn closed_error() -> Error {
    ws_error(Code::CLOSED, "closed", "the WebSocket is closed")
}

impl Inner {
    fn next_mask(&self) -> Result<[u8; 4]> {
        let mut state = self.state.borrow_mut();
        let State {
            masks, masks_left, ..
        } = &mut *state;
        if *masks_left < 4 {
            masks.resize(MASK_BYTES, 0);
            random_bytes(&self.rng, masks)?;
            *masks_left = masks.len();
        }
        *masks_left -= 4;
        let at = *masks_left;
        Ok(masks[at..at + 4].try_into().expect("4 bytes"))
    }

    /// Refuses a data frame of `len` bytes while the bytes waiting to be
    /// sent would pass max_write_buffer with it (one frame always goes).
    fn check_room(&self, len: usize) -> Result<()> {
        let state = self.state.borrow();
        if state.unsent > 0 && state.unsent + len > self.max_write_buffer {
            return Err(ws_error(
                Code::TOO_LARGE,
                "write_buffer_full",
                format!(
                    "{} bytes are waiting to be sent (max_write_buffer {})",
                    state.unsent, self.max_write_buffer
                ),
            ));
        }
        Ok(())
    }

    /// Masks and writes one control frame (never refused for room).
    fn send_frame(self: &Rc<Self>, opcode: u8, payload: &[u8]) -> Result<Future<()>> {
        let mask = self.next_mask()?;
        self.send_masked(opcode, false, payload, mask)
    }

    /// Writes one frame masked with `mask`.
    fn send_masked(
        self: &Rc<Self>,
        opcode: u8,
        rsv1: bool,
        payload: &[u8],
        mask: [u8; 4],
    ) -> Result<Future<()>> {
        let mut frame = self.frame_buffer.borrow_mut();
        encode_frame_into(&mut frame, opcode, rsv1, payload, mask);
        let len = frame.len();
        self.state.borrow_mut().unsent += len;
        let written = self.stream.write(&frame);
        // The stream copied what the socket did not take: the buffer is
        // free again (a big one is not kept).
        if frame.capacity() > KEPT_FRAME_BUFFER {
            *frame = Vec::new();
        }
        drop(frame);
        let written = match written {
            Ok(written) => written,
            Err(_) => {
                self.state.borrow_mut().unsent -= len;
                return Err(closed_error());
            }
        };
        self.state.borrow_mut().last_write = Some(written.clone());
        if written.done() {
            // On the wire already (the socket took it all: the usual case).
            // The stream's future says so; no callback, no future of our own.
            self.state.borrow_mut().unsent -= len;
            if written.error().is_none() {
                return Ok(written);
            }
            let failed = Future::new(&self.lp);
            let _ = failed.set_error(closed_error());
            return Ok(failed);
        }
        let weak = Rc::downgrade(self);
        let result = Future::new(&self.lp);
        let done = result.clone();
        written.add_done_callback(move |written| {
            if let Some(inner) = weak.upgrade() {
                inner.state.borrow_mut().unsent -= len;
            }
            let _ = done.complete(match written.error() {
                None => Ok(()),
                Some(_) => Err(closed_error()),
            });
        })?;
        Ok(result)
    }

    fn arm_close_timer(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        let limit = self.close_timeout;
        let timer = self.lp.call_later(limit, move || {
            if let Some(inner) = weak.upgrade() {
                inner.state.borrow_mut().close_timer = None;
                let error = ws_error(
                    Code::TIMEOUT,
                    "timeout",
                    format!(
                        "the server did not answer the close within {:.1} s",
                        limit.as_secs_f64()
                    ),
                );
                inner.end(Err(error), false);
            }
        });
        self.state.borrow_mut().close_timer = timer.ok();
    }

    /// Ends the connection: the stream closes (with `flush`, once what was
    /// written, such as a close frame, is on the wire), readers and close waiters learn the outcome, the
    /// message callback gets None.
    fn end(self: &Rc<Self>, outcome: std::result::Result<(), Error>, flush: bool) {
        let (readers, waiters, callback, timer) = {
            let mut state = self.state.borrow_mut();
            if state.ended.is_some() {
                return;
            }
            state.ended = Some(outcome.clone());
            let readers: Vec<_> = state.readers.drain(..).collect();
            let waiters = std::mem::take(&mut state.close_waiters);
            // With a flush pending, the flush tells the callback, after
            // the messages that came before the end.
            let callback = match state.flush_pending {
                false => state.on_message.clone(),
                true => None,
            };
            (readers, waiters, callback, state.close_timer.take())
        };
        if let Some(timer) = timer {
            let _ = self.lp.remove_timeout(timer);
        }
        self.release_room();
        self.close_stream(flush);
        for reader in readers {
            let _ = match &outcome {
                Ok(()) => reader.set_result(None),
                Err(e) => reader.set_error(e.clone()),
            };
        }
        for waiter in waiters {
            let _ = waiter.complete(outcome.clone());
        }
        if let Some(callback) = callback {
            callback(None);
        }
    }

    /// Sends a close frame for a broken rule, then ends with the error.
    fn fail(self: &Rc<Self>, error: ProtocolError) {
        let close_sent = std::mem::replace(&mut self.state.borrow_mut().close_sent, true);
        if !close_sent {
            let reason = if error.close_code == CLOSE_TOO_BIG {
                "message too big"
            } else {
                ""
            };
            let payload = close_payload(Some(error.close_code), reason);
            let _ = self.send_frame(OP_CLOSE, &payload);
        }
        let (code, kind) = if error.close_code == CLOSE_TOO_BIG {
            (Code::TOO_LARGE, "message_too_large")
        } else {
            (Code::PROTOCOL, "protocol")
        };
        let message = format!("{} (closed with {})", error.message, error.close_code);
        // The close frame goes out before the stream closes.
        self.end(Err(ws_error(code, kind, message)), true);
    }

    /// Closes the stream; with `flush`, once the last frame written is on
    /// the wire (at most close_timeout later: a peer that reads nothing
    /// cannot keep it open).
    fn close_stream(self: &Rc<Self>, flush: bool) {
        let last = self.state.borrow_mut().last_write.take();
        match last {
            Some(last) if flush && !last.done() => {
                let stream = self.stream.clone();
                let give_up = stream.clone();
                let timer = self
                    .lp
                    .call_later(self.close_timeout, move || give_up.close(None));
                let lp = self.lp.clone();
                let registered = last.add_done_callback(move |_| {
                    stream.close(None);
                    if let Ok(timer) = timer {
                        let _ = lp.remove_timeout(timer);
                    }
                });
                if registered.is_err() {
                    self.stream.close(None);
                }
            }
            _ => self.stream.close(None),
        }
    }

    /// Hands the messages that waited when a message callback was set to
    /// the callback now set, in order, then lets the reading task go on
    /// (and tells the end, if the connection ended meanwhile). A callback
    /// removed or replaced on the way is honoured at each message.
    fn flush_received(self: &Rc<Self>) {
        loop {
            let (callback, message) = {
                let mut state = self.state.borrow_mut();
                let Some(callback) = state.on_message.clone() else {
                    state.flush_pending = false;
                    return; // back to read_message: the rest stays queued
                };
                match state.received.pop_front() {
                    Some(message) => (callback, Some(message)),
                    None => {
                        state.flush_pending = false;
                        let ended = state.ended.is_some();
                        drop(state);
                        self.release_room();
                        if ended {
                            callback(None);
                        }
                        return;
                    }
                }
            };
            callback(message);
        }
    }

    fn deliver(self: &Rc<Self>, message: Message) {
        let mut state = self.state.borrow_mut();
        if state.flush_pending {
            state.received.push_back(message); // behind the ones waiting
            return;
        }
        if let Some(callback) = state.on_message.clone() {
            drop(state);
            callback(Some(message));
            return;
        }
        while let Some(reader) = state.readers.pop_front() {
            if !reader.done() {
                drop(state);
                let _ = reader.set_result(Some(message));
                return;
            }
        }
        if state.close_sent && !state.received.is_empty() {
            // Closing, with a message already unread: nobody is reading,
            // and the task no longer waits for room. Dropped.
            return;
        }
        state.received.push_back(message);
    }

    fn handle(self: &Rc<Self>, event: Event) {
        match event {
            Event::Text(text) => self.deliver(Message::Text(text)),
            Event::Binary(data) => self.deliver(Message::Binary(data)),
            Event::Ping(data) => {
                self.send_pong(data.clone());
                let callback = self.state.borrow().on_ping.clone();
                if let Some(callback) = callback {
                    callback(&data);
                }
            }
            Event::Pong(data) => {
                let callback = {
                    let mut state = self.state.borrow_mut();
                    state.received_pong = true;
                    state.on_pong.clone()
                };
                if let Some(callback) = callback {
                    callback(&data);
                }
            }
            Event::Close(code, reason) => {
                let echo = {
                    let mut state = self.state.borrow_mut();
                    state.close_received = true;
                    state.close_code = code;
                    state.close_reason = Some(reason);
                    !std::mem::replace(&mut state.close_sent, true)
                };
                if echo {
                    // Echo the code received (RFC 6455 section 5.5.1).
                    let _ = self.send_frame(OP_CLOSE, &close_payload(code, ""));
                }
                self.end(Ok(()), true);
            }
        }
    }

    /// At most one pong in flight: a ping that comes meanwhile is answered
    /// when it is sent, only the latest (RFC 6455 section 5.5.3), so a peer
    /// that pings faster than it reads cannot fill the write buffer.
    fn send_pong(self: &Rc<Self>, data: Vec<u8>) {
        {
            let mut state = self.state.borrow_mut();
            if state.close_sent || state.ended.is_some() {
                return;
            }
            if state.pong_in_flight {
                state.pong_pending = Some(data);
                return;
            }
            state.pong_in_flight = true;
        }
        let Ok(sent) = self.send_frame(OP_PONG, &data) else {
            self.state.borrow_mut().pong_in_flight = false;
            return;
        };
        let weak = Rc::downgrade(self);
        let _ = sent.add_done_callback(move |_| {
            let Some(inner) = weak.upgrade() else { return };
            let next = {
                let mut state = inner.state.borrow_mut();
                state.pong_in_flight = false;
                state.pong_pending.take()
            };
            if let Some(next) = next {
                inner.send_pong(next);
            }
        });
    }

    /// Lets the reading task go on if it waits for room (`wait_for_room`).
    fn release_room(&self) {
        let room = self.state.borrow_mut().room.take();
        if let Some(room) = room {
            let _ = room.set_result(());
        }
    }

    /// A future to wait on while a message waits unread (None: read on).
    /// Once our close frame is out the task reads on regardless, or the
    /// server's close would wait behind an unread message until the close
    /// timeout (`deliver` then keeps memory bounded).
    fn wait_for_room(&self) -> Option<Future<()>> {
        let mut state = self.state.borrow_mut();
        if state.received.is_empty() || state.ended.is_some() || state.close_sent {
            return None;
        }
        let room = Future::new(&self.lp);
        state.room = Some(room.clone());
        Some(room)
    }
}

/// The reading task: frames in, events handled, until the connection ends.
async fn read_frames(weak: Weak<Inner>, stream: IOStream, mut receiver: Receiver) {
    let mut events = VecDeque::new();
    loop {
        let room = match weak.upgrade() {
            Some(inner) if inner.state.borrow().ended.is_some() => return,
            Some(inner) => inner.wait_for_room(),
            None => return,
        };
        if let Some(room) = room {
            room.wait().await;
            continue;
        }
        let result = stream
            .read_available(READ_CHUNK, |bytes| receiver.feed(bytes, &mut events))
            .await;
        let Some(inner) = weak.upgrade() else { return };
        // Whatever came whole before a broken rule is delivered first.
        for event in events.drain(..) {
            inner.handle(event);
        }
        match result {
            Ok((_, Ok(()))) => {}
            Ok((_, Err(broken))) => {
                inner.fail(broken);
                return;
            }
            Err(lost) => {
                let error = ws_error(
                    Code::CLOSED,
                    "closed",
                    format!(
                        "the connection ended without a close frame ({})",
                        lost.message()
                    ),
                );
                inner.end(Err(error), false);
                return;
            }
        }
    }
}

/// Tornado's `periodic_ping`: a ping every `interval`; no pong within
/// `timeout` closes the connection (code 1000, "ping timed out").
async fn ping_periodically(weak: Weak<Inner>, interval: Duration, timeout: Duration) {
    let lp = match weak.upgrade() {
        Some(inner) => inner.lp.clone(),
        None => return,
    };
    let nap = |d: Duration| gen::sleep(&lp, d);
    let Ok(first) = nap(interval) else { return };
    first.wait().await;
    loop {
        let started = std::time::Instant::now();
        {
            let Some(inner) = weak.upgrade() else { return };
            {
                let mut state = inner.state.borrow_mut();
                if state.ended.is_some() || state.close_sent {
                    return;
                }
                state.received_pong = false;
            }
            if inner.send_frame(OP_PING, b"").is_err() {
                return;
            }
        }
        let Ok(wait) = nap(timeout) else { return };
        wait.wait().await;
        {
            let Some(inner) = weak.upgrade() else { return };
            let (ended, ponged) = {
                let state = inner.state.borrow();
                (
                    state.ended.is_some() || state.close_sent,
                    state.received_pong,
                )
            };
            if ended {
                return;
            }
            if !timeout.is_zero() && !ponged {
                inner.state.borrow_mut().close_sent = true;
                let payload = close_payload(Some(CLOSE_NORMAL), "ping timed out");
                let _ = inner.send_frame(OP_CLOSE, &payload);
                let error = ws_error(
                    Code::TIMEOUT,
                    "timeout",
                    format!(
                        "no pong within ping_timeout ({:.1} s)",
                        timeout.as_secs_f64()
                    ),
                );
                inner.end(Err(error), true);
                return;
            }
        }
        let rest = interval.saturating_sub(started.elapsed());
        let Ok(wait) = nap(rest) else { return };
        wait.wait().await;
    }
}
