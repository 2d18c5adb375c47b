//! The floor under the gateway: the barest pingora proxy there is — every request to one
//! backend, no routing, headers, metrics, logging or health checks — built with the gateway's
//! allocator and release profile. `cargo xtask bench gateway` runs it beside nginx and the
//! gateway, so that the cost of pingora itself and the cost of what the gateway adds to it are
//! told apart.
//!
//! `pingora_floor LISTEN BACKEND THREADS`, e.g. `pingora_floor 127.0.0.1:8080 127.0.0.1:9000 2`.

use std::net::SocketAddr;

use anyhow::Context;
use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::Server;
use pingora::server::configuration::{Opt, ServerConf};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Floor(SocketAddr);

#[async_trait]
impl ProxyHttp for Floor {
    type CTX = ();

    fn new_ctx(&self) {}

    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.0, false, String::new())))
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, backend, threads] = args.as_slice() else {
        anyhow::bail!("usage: pingora_floor LISTEN BACKEND THREADS");
    };
    let backend: SocketAddr = backend.parse().context("BACKEND")?;
    let threads: usize = threads.parse().context("THREADS")?;
    let conf = ServerConf { threads, ..ServerConf::default() };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, Floor(backend));
    proxy.add_tcp(listen);
    server.add_service(proxy);
    server.run_forever()
}
