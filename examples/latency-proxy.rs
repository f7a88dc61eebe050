//! A TCP proxy on 127.0.0.1 that adds network latency, so the benchmark can show what signers see
//! against a remote registry (benches/sign_throughput.sh --wan).
//!
//! Every chunk read from one side is written to the other side `ONE_WAY_MS` after it arrived,
//! in order. Each direction is a delay line (a queue of timestamped chunks), not a sleep per
//! read, so many chunks are in flight at once and throughput is not limited, as on a real
//! link. A new connection also pays the TCP handshake: the client's first bytes leave one
//! round trip (2 x ONE_WAY_MS) after the proxy accepted it. Slow start and loss are not modelled.
//!
//! Usage: `latency-proxy UPSTREAM_HOST:PORT ONE_WAY_MS [LISTEN_PORT]`
//! Prints the address it listens on (`127.0.0.1:PORT`, port 0 = any free one) as its first
//! line on stdout and runs until it is killed.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let usage = "usage: latency-proxy UPSTREAM_HOST:PORT ONE_WAY_MS [LISTEN_PORT]";
    let mut args = std::env::args().skip(1);
    let upstream: SocketAddr = args
        .next()
        .ok_or_else(|| anyhow::anyhow!(usage))?
        .parse()
        .map_err(|e| anyhow::anyhow!("UPSTREAM must be IP:PORT ({e}); {usage}"))?;
    let one_way_ms: u64 = args
        .next()
        .ok_or_else(|| anyhow::anyhow!(usage))?
        .parse()
        .map_err(|e| anyhow::anyhow!("ONE_WAY_MS must be a whole number ({e}); {usage}"))?;
    let listen_port: u16 = args.next().map(|p| p.parse()).transpose()?.unwrap_or(0);
    let listener = TcpListener::bind(("127.0.0.1", listen_port)).await?;
    println!("{}", listener.local_addr()?);
    serve(listener, upstream, Duration::from_millis(one_way_ms)).await
}

/// Accepts connections for ever, relaying each to `upstream` with `one_way` added each way.
async fn serve(
    listener: TcpListener,
    upstream: SocketAddr,
    one_way: Duration,
) -> anyhow::Result<()> {
    loop {
        let (client, _) = listener.accept().await?;
        let accepted = Instant::now();
        tokio::spawn(async move {
            if let Err(e) = relay(client, upstream, one_way, accepted).await {
                // Resets and broken pipes are how clients end connections; only say the rest.
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                ) {
                    eprintln!("latency-proxy: connection to {upstream}: {e}");
                }
            }
        });
    }
}

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    one_way: Duration,
    accepted: Instant,
) -> io::Result<()> {
    // Delays are the proxy's to add; Nagle would add its own on small writes.
    client.set_nodelay(true)?;
    let server = TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = delay_line(client_read, server_write, one_way, accepted + 2 * one_way);
    let down = delay_line(server_read, client_write, one_way, accepted);
    tokio::try_join!(up, down)?;
    Ok(())
}

/// When a chunk that arrived at `arrived` is written: one-way latency after it arrived, and
/// never before the direction may send at all (`not_before`, the end of the handshake).
fn due(arrived: Instant, not_before: Instant, one_way: Duration) -> Instant {
    arrived.max(not_before) + one_way
}

/// Copies `from` to `to`, each chunk delayed by [`due`], preserving order; end of stream is
/// passed on (as a write shutdown) with the same delay.
async fn delay_line<R, W>(
    mut from: R,
    mut to: W,
    one_way: Duration,
    not_before: Instant,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Unbounded: the queue holds what is "on the wire", which a real link does not cap either.
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Option<Vec<u8>>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = from.read(&mut buf).await?;
            let when = due(Instant::now(), not_before, one_way);
            let chunk = (n > 0).then(|| buf[..n].to_vec());
            // The writer is gone only after a write failed; that error is the one to report.
            if tx.send((when, chunk)).is_err() || n == 0 {
                return io::Result::Ok(());
            }
        }
    };
    let writer = async move {
        while let Some((when, chunk)) = rx.recv().await {
            tokio::time::sleep_until(when).await;
            match chunk {
                Some(bytes) => to.write_all(&bytes).await?,
                None => {
                    to.shutdown().await?;
                    break;
                }
            }
        }
        io::Result::Ok(())
    };
    tokio::try_join!(reader, writer)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_waits_for_the_handshake_then_the_one_way_latency() {
        let t0 = Instant::now();
        let one_way = Duration::from_millis(25);
        let handshake_done = t0 + 2 * one_way;
        assert_eq!(due(t0, handshake_done, one_way), t0 + 3 * one_way);
        let later = t0 + Duration::from_secs(1);
        assert_eq!(due(later, handshake_done, one_way), later + one_way);
    }

    /// An echo server behind the proxy gets every byte, in order, and the client sees the
    /// echo and the end of stream after its own half-close.
    #[tokio::test]
    async fn bytes_pass_both_ways_in_order_and_end_of_stream_is_passed_on() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut conn, _) = echo.accept().await.unwrap();
            let (mut r, mut w) = conn.split();
            tokio::io::copy(&mut r, &mut w).await.unwrap();
            w.shutdown().await.unwrap();
        });
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = proxy.local_addr().unwrap();
        tokio::spawn(serve(proxy, echo_addr, Duration::from_millis(2)));

        let mut conn = TcpStream::connect(proxy_addr).await.unwrap();
        let sent: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (mut r, mut w) = conn.split();
        let write = async {
            for chunk in sent.chunks(7_919) {
                w.write_all(chunk).await.unwrap();
            }
            w.shutdown().await.unwrap();
        };
        let read = async {
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = tokio::join!(write, read);
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "the echo differs from what was sent");
    }
}
