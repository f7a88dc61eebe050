//! An axum app served on 127.0.0.1 from its own thread and runtime, so blocking tests can use
//! it; it stops when dropped.

use std::net::TcpListener;
use std::thread::JoinHandle;

use axum::Router;
use tokio::sync::oneshot;

/// A running server; dropping it stops it (and any open keep-alive connections).
pub(crate) struct BackgroundServer {
    port: u16,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundServer {
    /// Bind a free port on 127.0.0.1 (known and owned before the thread starts) and serve `app`
    /// there. `name` names the thread and the panics of a failed start.
    pub(crate) fn start(name: &str, app: Router) -> Self {
        let listener =
            TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind {name}: {e}"));
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("local addr").port();
        let (tx, rx) = oneshot::channel::<()>();
        let what = name.to_string();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{port}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("{what} runtime: {e}"));
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    tokio::spawn(async move {
                        let _ = axum::serve(listener, app).await;
                    });
                    let _ = rx.await;
                });
                // Dropping the runtime aborts the server and open keep-alive connections: no
                // waiting on clients that keep them.
            })
            .unwrap_or_else(|e| panic!("start {name} thread: {e}"));
        Self {
            port,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// The port it listens on (127.0.0.1).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
