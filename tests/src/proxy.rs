//! A TCP proxy between the app and PostgreSQL, for tests of the database
//! going away under a running service: the app is built (and its isolation
//! guard passes) through the proxy, then [`Proxy::cut`] drops every
//! connection and refuses new ones.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

#[derive(Debug)]
pub struct Proxy {
    port: u16,
    cut: Arc<Notify>,
}

impl Proxy {
    /// Listens on 127.0.0.1 (port 0) and forwards to `target` (`host:port`).
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let cut = Arc::new(Notify::new());
        let stop = Arc::clone(&cut);
        tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut client, _)) = accepted else { break };
                        let target = target.clone();
                        conns.spawn(async move {
                            if let Ok(mut server) = TcpStream::connect(&target).await {
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        });
                    }
                    () = stop.notified() => break,
                }
            }
            // Dropping the listener refuses new connections; aborting the
            // tasks drops every open one.
            conns.abort_all();
        });
        Self { port, cut }
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// From now on, the database is unreachable through this proxy.
    pub async fn cut(&self) {
        self.cut.notify_one();
        // Let the proxy task see it and drop its sockets.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
