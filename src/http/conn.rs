//! The client's connections, as hyper's `client/conn/{http1,http2}`: an
//! HTTP/1.1 connection carries one exchange at a time and goes back to the
//! idle pool between them; an HTTP/2 connection carries many fetches at
//! once as streams and stays in the shared pool while it is open.
//!
//! [`SharedPool`] holds the HTTP/2 connections per pool key, and the
//! connect in progress to each origin: fetches that race to an origin while
//! its first connection is being made wait for it (curl's PIPEWAIT) instead
//! of each opening one, unless the origin answered in HTTP/1.1 before.

use std::collections::HashMap;
use std::hash::Hash;

use super::h2::H2Connection;
use crate::future::Future;
use crate::ioloop::LoopRef;
use crate::iostream::IOStream;

/// A connection a fetch exchanges on.
pub(crate) enum Connection {
    /// HTTP/1.1: one exchange at a time, on the stream itself. (An upgrade
    /// after a 101 hands this stream over.)
    Http1(IOStream),
    /// HTTP/2: one stream of the shared connection.
    Http2(H2Connection),
}

/// What the shared pool knows of one origin (pool key).
#[derive(Default)]
struct Entry {
    connections: Vec<H2Connection>,
    /// Done once the connect in progress is over (whatever it gave).
    connecting: Option<Future<()>>,
    /// The origin answered a connect in HTTP/1.1 (ALPN): fetches racing to
    /// it then connect on their own, as for any HTTP/1.1 origin.
    spoke_h1: bool,
}

/// HTTP/2 connections shared by fetches, per pool key.
pub(crate) struct SharedPool<K> {
    entries: HashMap<K, Entry, foldhash::fast::RandomState>,
}

impl<K> Default for SharedPool<K> {
    fn default() -> Self {
        SharedPool {
            entries: HashMap::default(),
        }
    }
}

/// A connect in progress, announced to the pool: racing fetches wait for
/// it. Dropped (connected, failed or cancelled), it lets them go on.
pub(crate) struct ConnectTurn {
    done: Future<()>,
}

impl Drop for ConnectTurn {
    fn drop(&mut self) {
        let _ = self.done.set_result(());
    }
}

impl<K: Hash + Eq> SharedPool<K> {
    /// An open connection for `key` with a stream to spare, the least busy.
    pub(crate) fn pick(&mut self, key: &K) -> Option<H2Connection> {
        let entry = self.entries.get_mut(key)?;
        entry.connections.retain(H2Connection::is_open);
        entry
            .connections
            .iter()
            .filter(|c| c.active_streams() < c.max_streams())
            .min_by_key(|c| c.active_streams())
            .cloned()
    }

    /// The connect in progress to `key` that a new fetch should wait for:
    /// one that may give an HTTP/2 connection.
    pub(crate) fn connecting(&self, key: &K) -> Option<Future<()>> {
        let entry = self.entries.get(key)?;
        if entry.spoke_h1 {
            return None;
        }
        entry.connecting.clone().filter(|f| !f.done())
    }

    /// Announces a connect to `key` that may give an HTTP/2 connection.
    pub(crate) fn begin_connect(&mut self, lp: &LoopRef, key: K) -> ConnectTurn {
        let done = Future::new(lp);
        self.entries.entry(key).or_default().connecting = Some(done.clone());
        ConnectTurn { done }
    }

    /// Keeps a new HTTP/2 connection for the fetches to come.
    pub(crate) fn add(&mut self, key: K, connection: H2Connection) {
        let entry = self.entries.entry(key).or_default();
        entry.spoke_h1 = false;
        entry.connections.push(connection);
    }

    /// The origin answered in HTTP/1.1: racing fetches no longer wait.
    pub(crate) fn note_http1(&mut self, key: K) {
        self.entries.entry(key).or_default().spoke_h1 = true;
    }

    /// Drops the connections that closed, and those with no stream open
    /// that have been idle `idle_ns` or more (dropping the last handle
    /// ends the connection: GOAWAY, then the socket closes). Returns how
    /// many stay open.
    pub(crate) fn sweep(&mut self, now_ns: u64, idle_ns: u64) -> usize {
        let mut open = 0;
        self.entries.retain(|_, entry| {
            entry.connections.retain(|c| {
                c.is_open()
                    && (c.active_streams() > 0
                        || now_ns.saturating_sub(c.idle_since_ns()) < idle_ns)
            });
            open += entry.connections.len();
            !entry.connections.is_empty() || entry.spoke_h1 || entry.connecting.is_some()
        });
        open
    }

    /// Open connections (for tests and monitoring).
    pub(crate) fn open_connections(&self) -> usize {
        let all = self.entries.values().flat_map(|e| e.connections.iter());
        all.filter(|c| c.is_open()).count()
    }

    /// Forgets every connection (each ends once its streams are done).
    pub(crate) fn clear(&mut self) -> Vec<H2Connection> {
        self.entries
            .drain()
            .flat_map(|(_, entry)| entry.connections)
            .collect()
    }
}
