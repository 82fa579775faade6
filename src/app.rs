//! Composition root: spawn one glommio executor per shard (pinned
//! to its CPU, each with its own io_uring), wire each shard's router, shard state and
//! listener, and shut everything down on SIGTERM/SIGINT.
//!
//! Start-up: shard 0 starts the node-to-node transport and this node's controller, whose
//! image (from its snapshot and log) it hands to the other shards; every shard opens
//! (recovers) the partitions of this node it owns before it listens; the
//! line `ringmq ready` is printed once every shard listens. Shutdown: each shard stops
//! accepting, waits for the requests in flight, then — once every shard has stopped
//! taking requests — flushes, fdatasyncs and closes its partitions; the process exits 0.

use crate::cluster::{LocalMetadata, MembershipView, MetadataImage, NodeInfo};
use crate::config::{BrokerConfig, Listener};
use crate::membership::driver::GossipDriver;
use crate::router::{Envelope, Router, MESH_CHANNEL_CAPACITY};
use crate::server::ServerCtx;
use crate::shard::controller::ControllerDriver;
use crate::shard::Shard;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// For `ringmq check --data-dir` (cli reaches storage through the composition root).
pub use crate::storage::is_quarantine_file;
use std::time::Duration;

/// How long shutdown waits for requests in flight before closing partitions anyway.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long start-up waits for a listener left by a dead process to go away.
const PORT_RELEASE_WAIT: Duration = Duration::from_secs(10);

/// What every shard sees: the start-up and shutdown barriers, the node's client
/// connections (`--max-connections`, `--max-connections-per-ip`) and the TLS listeners'
/// settings (read once at start).
struct Barriers {
    ready: AtomicUsize,
    drained: AtomicUsize,
    closed: AtomicUsize,
    connections: Arc<crate::server::limits::ConnectionLimits>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Barriers {
    fn new(config: &BrokerConfig) -> Result<Self, String> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(
                crate::tls::server_config(cert, key, config.tls_client_ca.as_deref())
                    .map_err(|e| e.to_string())?,
            ),
            _ => None,
        };
        Ok(Barriers {
            ready: AtomicUsize::new(0),
            drained: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            connections: crate::server::limits::ConnectionLimits::new(
                config.max_connections,
                config.max_connections_per_ip,
            ),
            tls,
        })
    }
}

async fn wait_all(counter: &AtomicUsize, n: usize) {
    while counter.load(Ordering::Acquire) < n {
        glommio::timer::sleep(Duration::from_millis(2)).await;
    }
}

/// Refuse to start if another process holds the data directory or the port.
fn guard_exclusive(config: &BrokerConfig) -> Result<std::fs::File, String> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", config.data_dir.display()))?;
    let lock_path = config.data_dir.join(".lock");
    let lock =
        std::fs::File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!(
            "data dir {} is in use by another ringmq",
            config.data_dir.display()
        ));
    }
    // Our listeners use SO_REUSEPORT, so binding would silently share a port another
    // process listens on: look for a listening socket on the port first. (A plain test bind
    // is no good: sockets left over from a killed broker make it fail spuriously.)
    // A broker killed a moment ago still shows its listener while the kernel tears down its
    // io_uring (which holds the socket), so wait a little before calling the port taken.
    let kafka = config.listeners.iter().map(|l| ("", l.addr));
    for (what, addr) in kafka.chain([(" for RPC", config.rpc_listen)]) {
        let deadline = std::time::Instant::now() + PORT_RELEASE_WAIT;
        while port_has_listener(addr.port()) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if port_has_listener(addr.port()) {
            return Err(format!(
                "cannot listen{what} on {addr}: another process is listening on port {}",
                addr.port()
            ));
        }
    }
    Ok(lock)
}

/// Whether /proc/net/tcp{,6} shows a socket in LISTEN state on `port`.
fn port_has_listener(port: u16) -> bool {
    const TCP_LISTEN: &str = "0A";
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|path| {
        let table = std::fs::read_to_string(path).unwrap_or_default();
        table.lines().skip(1).any(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1).unwrap_or("");
            let state = fields.nth(1).unwrap_or("");
            let local_port = local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            local_port == Some(port) && state == TCP_LISTEN
        })
    })
}

/// Check the data dir's node and cluster id against the configured ones (recording them at
/// the first start) and run with the data dir's identity.
fn adopt_identity(config: &mut BrokerConfig) -> Result<(), String> {
    let id = crate::cluster::identity::establish(
        &config.data_dir,
        config.node_id_set.then_some(config.node_id),
        config.cluster_id_set.then_some(config.cluster_id.as_str()),
        &config.cluster_id,
    )
    .map_err(|e| e.to_string())?;
    crate::info!(
        "node {} of cluster '{}' (data dir {})",
        id.node_id,
        id.cluster_id,
        config.data_dir.display()
    );
    config.node_id = id.node_id;
    config.cluster_id = id.cluster_id;
    Ok(())
}

/// The CPUs this process may run on (its affinity mask: `taskset`, systemd `CPUAffinity=`),
/// in ascending order; shard i runs on the i-th of them (wrapping around).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: pid 0 is this thread; `set` is a valid, writable cpu_set_t of `size` bytes.
    let rc = unsafe { libc::sched_getaffinity(0, size, &mut set) };
    let cpus: Vec<usize> = if rc == 0 {
        // SAFETY: CPU_ISSET reads the set we own, for indexes below CPU_SETSIZE.
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect()
    } else {
        Vec::new()
    };
    if cpus.is_empty() {
        vec![0]
    } else {
        cpus
    }
}

pub fn run(mut config: BrokerConfig) -> Result<(), String> {
    crate::base::logging::init_from_env()?;
    config.validate()?;
    let _lock = guard_exclusive(&config)?;
    // glommio opens directories relative to nothing: relative paths fail with EBADF when a
    // partition directory is synced, so work with the absolute path from here on.
    config.data_dir = std::fs::canonicalize(&config.data_dir)
        .map_err(|e| format!("data dir {}: {e}", config.data_dir.display()))?;
    adopt_identity(&mut config)?;
    let n = config.shards as usize;
    // shard 0 opens the controller and hands its image to the others before they open logs
    let (init_tx, init_rx) = flume::bounded::<Arc<MetadataImage>>(n);
    let mut init_tx = Some(init_tx);
    let config = Arc::new(config);
    let mesh = MeshBuilder::<Envelope, _>::full(n, MESH_CHANNEL_CAPACITY);
    let barriers = Arc::new(Barriers::new(&config)?);
    let mut shutdown_txs = Vec::new();
    let cpus = allowed_cpus();
    let mut handles = Vec::new();
    for i in 0..n {
        let (tx, rx) = flume::bounded::<()>(1);
        shutdown_txs.push(tx);
        let (config, mesh, barriers) = (config.clone(), mesh.clone(), barriers.clone());
        let init = (if i == 0 { init_tx.take() } else { None }, init_rx.clone());
        let handle = LocalExecutorBuilder::new(Placement::Fixed(cpus[i % cpus.len()]))
            .name(&format!("shard-{i}"))
            .spin_before_park(Duration::from_micros(config.spin_before_park_us))
            .spawn(move || async move {
                let (senders, receivers) = mesh.join().await.expect("mesh join");
                let router = Router::new(senders, n as u16);
                router.set_owner_override(config.bench_owner_shard.map(crate::model::ShardId));
                let metadata = local_metadata(&config, Arc::default());
                let metrics = Rc::new(crate::metrics::ShardMetrics::default());
                let shard = Shard::new(
                    config.clone(),
                    metadata.clone(),
                    router.clone(),
                    metrics.clone(),
                );
                router.set_handler(shard.clone());
                router.spawn_receivers(receivers);
                shard_main(i, config, shard, router, metadata, rx, barriers, init).await
            })
            .map_err(|e| format!("cannot start shard {i}: {e}"))?;
        handles.push(handle);
    }
    spawn_signal_thread(shutdown_txs)?;
    let mut failed = None;
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = Some(format!("shard {i}: {e}")),
            Err(e) => failed = Some(format!("shard {i} failed: {e}")),
        }
    }
    match failed {
        Some(e) => Err(e),
        None => {
            crate::info!("ringmq stopped cleanly");
            Ok(())
        }
    }
}

fn spawn_signal_thread(txs: Vec<flume::Sender<()>>) -> Result<(), String> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                crate::info!("ringmq: signal {sig} received, shutting down");
                for tx in &txs {
                    let _ = tx.try_send(());
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// `/metrics` and `/health` on shard 0. A busy port is a warning, not a failed start.
fn start_http(config: &BrokerConfig, router: &Rc<Router>, barriers: &Arc<Barriers>) {
    let Some(addr) = config.metrics_listen else {
        return;
    };
    match crate::server::http::bind(addr) {
        Ok(listener) => {
            crate::info!("shard 0: metrics on http://{addr}/metrics, health on /health");
            let (n, barriers) = (config.shards as usize, barriers.clone());
            let ready = move || barriers.ready.load(Ordering::Acquire) >= n;
            glommio::spawn_local(crate::server::http::serve(listener, router.clone(), ready))
                .detach();
        }
        Err(e) => crate::warn!("shard 0: metrics disabled: cannot listen on {addr}: {e}"),
    }
}

/// Shard 0: the node-to-node transport on `--rpc-listen`, saying hello to the seeds. The
/// controller (and later partition replication) reach other nodes through it.
fn start_rpc(config: &BrokerConfig) -> Result<Rc<crate::rpc::Rpc>, String> {
    let listener = glommio::net::TcpListener::bind(config.rpc_listen)
        .map_err(|e| format!("cannot listen for RPC on {}: {e}", config.rpc_listen))?;
    let rpc = crate::rpc::Rpc::new(crate::rpc::RpcConfig::new(
        config.node_id,
        &config.cluster_id,
        &config.rpc_advertise(),
    ));
    glommio::spawn_local(rpc.clone().serve(listener)).detach();
    glommio::spawn_local(rpc.clone().bootstrap(config.seeds.clone())).detach();
    crate::info!(
        "shard 0: node-to-node RPC on {} (advertised as {}), seeds: [{}]",
        config.rpc_listen,
        config.rpc_advertise(),
        config.seeds.join(", ")
    );
    Ok(rpc)
}

/// A shard's copy of cluster state at start: the image, and a membership of this node alone
/// until gossip pushes the first view.
fn local_metadata(
    config: &BrokerConfig,
    image: Arc<crate::cluster::MetadataImage>,
) -> Rc<LocalMetadata> {
    let metadata = Rc::new(LocalMetadata::new(image));
    let solo = MembershipView::solo(node_card(config), config.rpc_listen);
    metadata.apply_membership(Arc::new(solo));
    metadata
}

/// What this node tells the cluster about itself through gossip.
fn node_card(config: &BrokerConfig) -> crate::cluster::NodeCard {
    crate::cluster::NodeCard {
        node_id: config.node_id,
        kafka_host: config.advertise_host.clone(),
        kafka_port: config.advertise_port,
        rpc: config.rpc_advertise(),
        rack: config.rack.clone(),
    }
}

/// Shard 0: SWIM gossip over UDP on the RPC listen address. Every view change goes to every
/// shard (`ApplyMembership`) and tells the RPC transport where each live node is.
fn start_gossip(
    config: &BrokerConfig,
    router: &Rc<Router>,
    rpc: &Rc<crate::rpc::Rpc>,
) -> Result<Rc<GossipDriver>, String> {
    use crate::membership::{driver, Gossip, GossipConfig};
    let advertise = config.rpc_advertise();
    let addr = *driver::resolve(std::slice::from_ref(&advertise))
        .first()
        .ok_or_else(|| format!("cannot resolve the RPC advertise address {advertise}"))?;
    let socket = glommio::net::UdpSocket::bind(config.rpc_listen).map_err(|e| {
        format!(
            "cannot listen for gossip (UDP) on {}: {e}",
            config.rpc_listen
        )
    })?;
    let generation = driver::next_generation(&config.data_dir)
        .map_err(|e| format!("cannot record the gossip generation: {e}"))?;
    let seeds = driver::resolve(&config.seeds);
    let rng_seed = generation ^ (u64::from(config.node_id as u32) << 40);
    let gossip = Gossip::new(
        node_card(config),
        addr,
        generation,
        GossipConfig::default(),
        rng_seed,
        seeds,
    );
    let (router, rpc) = (router.clone(), rpc.clone());
    let on_view = Box::new(move |view: Arc<MembershipView>| {
        for m in view.live().filter(|m| m.card.node_id != view.me) {
            if let Some(a) = driver::resolve(std::slice::from_ref(&m.card.rpc)).first() {
                if rpc.peer_addr(m.card.node_id) != Some(*a) {
                    rpc.set_peer(m.card.node_id, *a);
                }
            }
        }
        let router = router.clone();
        glommio::spawn_local(async move {
            for s in 0..router.shard_count() {
                let call = crate::router::ShardCall::ApplyMembership(view.clone());
                let _ = router.call(crate::model::ShardId(s), call).await;
            }
        })
        .detach();
    });
    let driver = GossipDriver::new(gossip, socket, config.seeds.clone(), on_view);
    glommio::spawn_local(driver.clone().run()).detach();
    crate::info!(
        "shard 0: gossip (UDP) on {}, generation {generation}",
        config.rpc_listen
    );
    Ok(driver)
}

/// The initial image: shard 0 sends it (once per other shard), every other shard receives it.
type InitImage = (
    Option<flume::Sender<Arc<MetadataImage>>>,
    flume::Receiver<Arc<MetadataImage>>,
);

/// Shard 0: the transport, this node's controller and its registration. A cluster of one
/// registers before it is ready (its commits are immediate), so its first CreateTopics
/// already counts this node as live; a bigger cluster registers once a leader is elected.
async fn start_metadata(
    config: &Arc<BrokerConfig>,
    shard: &Rc<Shard>,
    router: &Rc<Router>,
) -> Result<
    (
        Rc<crate::rpc::Rpc>,
        Rc<ControllerDriver>,
        Arc<MetadataImage>,
    ),
    String,
> {
    let rpc = start_rpc(config)?;
    shard.start_replication_transport(rpc.clone())?;
    let (driver, image) = ControllerDriver::start(config, rpc.clone(), router.clone())?;
    shard.set_controller(driver.clone());
    let me = NodeInfo {
        id: config.node_id,
        host: config.advertise_host.clone(),
        port: i32::from(config.advertise_port),
        rpc: config.rpc_advertise(),
        rack: config.rack.clone(),
    };
    let register = driver.clone().register(me);
    if driver.leader() == Some(config.node_id) && config.seeds.len() <= 1 {
        register.await;
        driver.settled().await;
    } else {
        glommio::spawn_local(register).detach();
    }
    Ok((rpc, driver, image))
}

/// Attempts (one a second) to create the bootstrap user before giving up.
const BOOTSTRAP_USER_ATTEMPTS: u32 = 300;

/// Shard 0: create `RINGMQ_BOOTSTRAP_USER` unless the metadata already holds that user. A
/// cluster of one does it before it is ready; a node of a larger cluster retries in the
/// background until a controller leader commits it (or finds that another node did).
async fn bootstrap_user(config: &BrokerConfig, router: &Rc<Router>, metadata: &Rc<LocalMetadata>) {
    let Some(user) = config.bootstrap_user.clone() else {
        return;
    };
    let (router, metadata) = (router.clone(), metadata.clone());
    let task = async move {
        for attempt in 0..BOOTSTRAP_USER_ATTEMPTS {
            if metadata.get().users.contains_key(&user.name) {
                crate::info!("bootstrap user '{}' exists", user.name);
                return;
            }
            match create_bootstrap_user(&router, &user).await {
                Ok(()) => {
                    crate::info!(
                        "bootstrap user '{}' created ({})",
                        user.name,
                        user.mechanism
                    );
                    return;
                }
                Err(e) if attempt % 10 == 0 => {
                    crate::warn!("bootstrap user '{}' not created yet: {e}", user.name)
                }
                Err(_) => {}
            }
            glommio::timer::sleep(Duration::from_secs(1)).await;
        }
        crate::error!("bootstrap user '{}' could not be created", user.name);
    };
    if config.seeds.len() <= 1 {
        task.await;
    } else {
        glommio::spawn_local(task).detach();
    }
}

async fn create_bootstrap_user(
    router: &Router,
    user: &crate::config::BootstrapUser,
) -> Result<(), String> {
    use crate::auth::scram::{ScramCredential, DEFAULT_ITERATIONS, DEFAULT_SALT_BYTES};
    use crate::router::{AdminCall, ShardCall, ShardReply};
    let mechanism = crate::auth::Mechanism::parse(&user.mechanism)
        .ok_or_else(|| format!("unknown mechanism {}", user.mechanism))?;
    let mut salt = vec![0u8; DEFAULT_SALT_BYTES];
    crate::auth::random_bytes(&mut salt)?;
    let credential = ScramCredential::from_password(
        mechanism,
        user.password.as_bytes(),
        salt,
        DEFAULT_ITERATIONS,
    );
    let cmd = crate::cluster::Command::UpsertScram {
        user: user.name.clone(),
        credential,
    };
    let call = ShardCall::Admin(AdminCall::AlterScram(cmd));
    match router.call(crate::model::ShardId(0), call).await {
        Ok(ShardReply::Admin(Ok(_))) => Ok(()),
        Ok(ShardReply::Admin(Err(e))) => Err(format!("{e:?}")),
        _ => Err("the metadata shard did not answer".into()),
    }
}

/// What shard 0 runs for the whole node: the RPC transport, the controller driver and gossip.
struct NodeServices {
    rpc: Rc<crate::rpc::Rpc>,
    controller: Rc<ControllerDriver>,
    gossip: Rc<GossipDriver>,
}

/// One shard's life: start (shard 0 also starts the node's services), recover its partitions,
/// accept clients until shutdown, then drain and close in step with the other shards.
#[allow(clippy::too_many_arguments)]
async fn shard_main(
    i: usize,
    config: Arc<BrokerConfig>,
    shard: Rc<Shard>,
    router: Rc<Router>,
    metadata: Rc<LocalMetadata>,
    shutdown: flume::Receiver<()>,
    barriers: Arc<Barriers>,
    init: InitImage,
) -> Result<(), String> {
    let n = config.shards as usize;
    crate::info!("shard {i}: started");
    let (node, image) = start_node(&config, &shard, &router, &barriers, init).await?;
    recover(i, &shard, image).await?;
    if node.is_some() {
        bootstrap_user(&config, &router, &metadata).await;
    }
    let listeners = bind_listeners(i, &config)?;
    let ctx = Rc::new(ServerCtx::new(
        config.clone(),
        router.clone(),
        metadata,
        shard.metrics.clone(),
        barriers.connections.clone(),
        barriers.tls.clone(),
    ));
    if barriers.ready.fetch_add(1, Ordering::AcqRel) + 1 == n {
        let urls: Vec<String> = config.listeners.iter().map(|l| l.to_url()).collect();
        let adv: Vec<String> = config
            .listeners
            .iter()
            .map(|l| l.advertised_url())
            .collect();
        crate::info!(
            "ringmq ready: listening on {}, advertised as {}, {n} shard(s), data in {}",
            urls.join(","),
            adv.join(","),
            config.data_dir.display()
        );
    }
    futures_lite::future::race(accept(i, &listeners, &ctx), async {
        let _ = shutdown.recv_async().await;
    })
    .await;
    drop(listeners);
    if let Some(node) = &node {
        node.gossip.leave().await;
        node.controller.close();
        node.rpc.close();
    }
    close(i, n, &ctx, &shard, &router, &barriers).await;
    Ok(())
}

/// Shard 0 starts the metrics listener, the controller and gossip and sends the initial image
/// to every other shard, which waits for it. Gossip reports the node Ready once every shard is.
async fn start_node(
    config: &Arc<BrokerConfig>,
    shard: &Rc<Shard>,
    router: &Rc<Router>,
    barriers: &Arc<Barriers>,
    (init_tx, init_rx): InitImage,
) -> Result<(Option<NodeServices>, Arc<MetadataImage>), String> {
    let n = config.shards as usize;
    let Some(tx) = init_tx else {
        let image = init_rx.recv_async().await;
        return Ok((None, image.map_err(|_| "shard 0 failed to start")?));
    };
    start_http(config, router, barriers);
    let (rpc, controller, image) = start_metadata(config, shard, router).await?;
    for _ in 1..n {
        let _ = tx.send_async(image.clone()).await;
    }
    let gossip = start_gossip(config, router, &rpc)?;
    shard.set_gossip(gossip.clone());
    let (g, barriers) = (gossip.clone(), barriers.clone());
    glommio::spawn_local(async move {
        wait_all(&barriers.ready, n).await;
        g.set_health(crate::cluster::Health::Ready).await;
    })
    .detach();
    let node = NodeServices {
        rpc,
        controller,
        gossip,
    };
    Ok((Some(node), image))
}

/// Apply the initial image (which opens and recovers this shard's partitions), load the
/// groups it coordinates, and start housekeeping.
async fn recover(i: usize, shard: &Rc<Shard>, image: Arc<MetadataImage>) -> Result<(), String> {
    let t0 = std::time::Instant::now();
    shard.apply_metadata(image).await;
    shard.start_groups().await?;
    crate::info!(
        "shard {i}: recovered {} partitions in {} ms",
        shard.open_partition_count(),
        t0.elapsed().as_millis()
    );
    glommio::spawn_local(shard.clone().housekeeping(Duration::from_millis(5))).detach();
    glommio::spawn_local(shard.clone().replication_loop()).detach();
    Ok(())
}

/// The Kafka listeners of this shard (SO_REUSEPORT), one per configured listener, unless
/// `--bench-accept-shard` names another shard.
fn bind_listeners(
    i: usize,
    config: &BrokerConfig,
) -> Result<Vec<(glommio::net::TcpListener, Rc<Listener>)>, String> {
    if config
        .bench_accept_shard
        .is_some_and(|s| usize::from(s) != i)
    {
        crate::info!("shard {i}: not accepting (--bench-accept-shard)");
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for l in &config.listeners {
        let bound = glommio::net::TcpListener::bind(l.addr)
            .map_err(|e| format!("bind {}: {e}", l.to_url()))?;
        crate::info!("shard {i}: accepting {} on {}", l.protocol, l.addr);
        out.push((bound, Rc::new(l.clone())));
    }
    Ok(out)
}

/// Serve every accepted connection of every listener on its own task; never returns
/// (pending without a listener).
async fn accept(
    i: usize,
    listeners: &[(glommio::net::TcpListener, Rc<Listener>)],
    ctx: &Rc<ServerCtx>,
) {
    if listeners.is_empty() {
        return futures_lite::future::pending().await;
    }
    crate::base::join_all(
        listeners
            .iter()
            .map(|(l, info)| accept_on(i, ctx.clone(), l, info.clone())),
    )
    .await;
}

/// Accept connections on one listener until the shard stops (the caller drops the future).
async fn accept_on(
    i: usize,
    ctx: Rc<ServerCtx>,
    listener: &glommio::net::TcpListener,
    info: Rc<Listener>,
) {
    loop {
        match listener.accept().await {
            Ok(stream) => crate::server::conn::accepted(&ctx, info.clone(), stream),
            Err(e) => {
                crate::warn!("shard {i}: accept on {} failed: {e}", info.to_url());
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Shutdown in step with the other shards: drain connections (up to [`DRAIN_TIMEOUT`]), then
/// once every shard has drained flush and close the partitions, then once every shard has
/// closed stop the router.
async fn close(
    i: usize,
    n: usize,
    ctx: &ServerCtx,
    shard: &Shard,
    router: &Router,
    barriers: &Barriers,
) {
    let _ = glommio::timer::timeout(DRAIN_TIMEOUT, async {
        ctx.drained().await;
        Ok(())
    })
    .await;
    barriers.drained.fetch_add(1, Ordering::AcqRel);
    wait_all(&barriers.drained, n).await;
    shard.close_all().await;
    crate::info!("shard {i}: partitions flushed and closed");
    barriers.closed.fetch_add(1, Ordering::AcqRel);
    wait_all(&barriers.closed, n).await;
    router.close();
}

#[cfg(test)]
mod tests {
    #[test]
    fn allowed_cpus_follow_the_affinity_mask() {
        let cpus = super::allowed_cpus();
        assert!(cpus.windows(2).all(|w| w[0] < w[1]), "{cpus:?}");
        let last = *cpus.last().expect("at least one CPU");
        // A thread restricted to one CPU sees exactly that CPU.
        let seen = std::thread::spawn(move || {
            // SAFETY: plain-data cpu_set_t, set for this thread only.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(last, &mut set);
                assert_eq!(
                    libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
                    0
                );
            }
            super::allowed_cpus()
        })
        .join()
        .unwrap();
        assert_eq!(seen, vec![last]);
    }

    #[test]
    fn sees_a_listening_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(super::port_has_listener(port));
        drop(l);
        assert!(!super::port_has_listener(port));
    }
}
