//! The command line, as the brief's CLI contract defines it.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "A container network stack: bridge, overlay, host and none networks, containers, NAT"
)]
pub(crate) struct Cli {
    /// State directory (berth.db).
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth"
    )]
    pub(crate) root: PathBuf,
    /// Runtime directory (namespaces, container files, locks).
    #[arg(
        long,
        global = true,
        env = "BERTH_RUN_ROOT",
        default_value = "/run/berth"
    )]
    pub(crate) run_root: PathBuf,
    /// Config file (store, host_name, advertise); /etc/berth/config.toml when it exists.
    #[arg(long, global = true, env = "BERTH_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Cluster store for overlay networks: etcd://HOST:PORT[,HOST:PORT...].
    #[arg(long, global = true, env = "BERTH_STORE")]
    pub(crate) store: Option<String>,
    /// This host's name in the cluster (default: the hostname).
    #[arg(long, global = true, env = "BERTH_HOST_NAME")]
    pub(crate) host_name: Option<String>,
    /// This host's VTEP address (default: the source address towards the store).
    #[arg(long, global = true, env = "BERTH_ADVERTISE")]
    pub(crate) advertise: Option<String>,
    /// Log filter for stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, env = "BERTH_LOG", default_value = "warn")]
    pub(crate) log_level: String,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Run a command in a new container.
    Run(RunArgs),
    /// Create a container with its network, without starting its command.
    Create(ContainerArgs),
    /// Start created containers in the background.
    Start {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List a container's published ports.
    Port {
        container: String,
        /// Only this container port (`80` or `80/udp`).
        private_port: Option<String>,
    },
    /// berth's nftables table.
    #[command(subcommand)]
    Firewall(FirewallCommand),
    /// The per-host agent: container DNS, firewall repair, metrics (started on demand).
    Agent(AgentArgs),
    /// List containers.
    Ps(PsArgs),
    /// Show containers as JSON.
    Inspect(InspectArgs),
    /// Run a command inside a container's namespaces.
    Exec(ExecArgs),
    /// Show a detached container's output.
    Logs { container: String },
    /// Stop containers (SIGTERM, then SIGKILL after the timeout).
    Stop(StopArgs),
    /// Remove containers and their network.
    Rm(RmArgs),
    /// Reconcile the kernel with berth's state: remove leftovers of crashes.
    Gc,
    /// Live traffic per container and interface (rx/tx bytes, packets, errors, drops, rates).
    Stats(StatsArgs),
    /// Walk the path from SRC to DST and name what stops the traffic, with the fix.
    Diagnose(DiagnoseArgs),
    /// Draw this host's networks, bridges, containers, addresses and published ports.
    Topology(TopologyArgs),
    /// Stream network, container and firewall events.
    Events(EventsArgs),
    /// Act as podman's netavark (what an executable named `netavark` does): setup,
    /// teardown, version, update.
    Netavark {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// (internal) Supervise a detached container's process.
    #[command(hide = true)]
    ContainerShim { id: String },
}

#[derive(Args, Debug)]
pub(crate) struct AgentArgs {
    /// Stay in the foreground (for systemd); otherwise start it detached and print its pid.
    #[arg(long)]
    pub(crate) foreground: bool,
    /// DNS port on the gateway addresses.
    #[arg(long, default_value_t = 53)]
    pub(crate) dns_port: u16,
    /// Address of the Prometheus `/metrics` endpoint, or `off`.
    #[arg(long, default_value = "127.0.0.1:9355")]
    pub(crate) metrics_addr: String,
}

#[derive(Subcommand, Debug)]
pub(crate) enum FirewallCommand {
    /// Reinstall berth's table and every element from berth's state.
    Reload,
}

#[derive(Subcommand, Debug)]
pub(crate) enum NetworkCommand {
    /// Create a network.
    Create(NetworkCreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(FormatArgs),
    /// Show networks as JSON.
    Inspect(NetworkInspectArgs),
    /// Remove networks.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect { network: String, container: String },
    /// Remove every user network without containers.
    Prune,
}

#[derive(Args, Debug)]
pub(crate) struct NetworkCreateArgs {
    /// bridge (default); host and none exist once, built in.
    #[arg(short, long)]
    pub(crate) driver: Option<String>,
    #[arg(long)]
    pub(crate) subnet: Vec<String>,
    #[arg(long)]
    pub(crate) gateway: Vec<String>,
    #[arg(long)]
    pub(crate) ip_range: Option<String>,
    /// No traffic leaves or enters the network except to the host.
    #[arg(long)]
    pub(crate) internal: bool,
    #[arg(long)]
    pub(crate) ipv6: bool,
    #[arg(long)]
    pub(crate) mtu: Option<String>,
    /// Driver options: bridge_name=NAME, icc=true|false, mtu=N, fastpath=true|false.
    #[arg(short = 'o', long = "opt")]
    pub(crate) opt: Vec<String>,
    #[arg(long)]
    pub(crate) label: Vec<String>,
    pub(crate) name: String,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub(crate) struct FormatArgs {
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JsonFormat {
    Json,
}

#[derive(Args, Debug)]
pub(crate) struct NetworkInspectArgs {
    #[arg(long, value_enum, default_value = "json")]
    pub(crate) format: JsonFormat,
    #[arg(required = true)]
    pub(crate) networks: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct ConnectArgs {
    #[arg(long)]
    pub(crate) ip: Option<String>,
    #[arg(long)]
    pub(crate) alias: Vec<String>,
    pub(crate) network: String,
    pub(crate) container: String,
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Run in the background and print the container id.
    #[arg(short, long)]
    pub(crate) detach: bool,
    #[command(flatten)]
    pub(crate) container: ContainerArgs,
}

#[derive(Args, Debug)]
pub(crate) struct ContainerArgs {
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Network to join (repeatable); host and none select those modes.
    #[arg(long = "network", alias = "net")]
    pub(crate) networks: Vec<String>,
    /// Static IPv4 address on the first network.
    #[arg(long)]
    pub(crate) ip: Option<String>,
    #[arg(long = "alias", alias = "network-alias")]
    pub(crate) aliases: Vec<String>,
    #[arg(long)]
    pub(crate) hostname: Option<String>,
    /// DNS servers for the container's resolv.conf.
    #[arg(long)]
    pub(crate) dns: Vec<String>,
    /// Publish a container port: [HOSTIP:][HOSTPORT[-END]:]CTRPORT[-END][/tcp|/udp|/sctp].
    #[arg(short = 'p', long = "publish")]
    pub(crate) publish: Vec<String>,
    /// Remove the container when its command exits.
    #[arg(long)]
    pub(crate) rm: bool,
    /// The command and its arguments (flags after the command belong to it).
    #[arg(required = true, trailing_var_arg = true)]
    pub(crate) command: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct PsArgs {
    /// Show exited containers too.
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Print only container ids.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: Format,
}

#[derive(Args, Debug)]
pub(crate) struct InspectArgs {
    #[arg(long, value_enum, default_value = "json")]
    pub(crate) format: JsonFormat,
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct ExecArgs {
    pub(crate) container: String,
    /// The command and its arguments (flags after the command belong to it).
    #[arg(required = true, trailing_var_arg = true)]
    pub(crate) command: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct StopArgs {
    /// Seconds to wait after SIGTERM before SIGKILL.
    #[arg(short, long, default_value_t = 10)]
    pub(crate) time: u64,
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct RmArgs {
    /// Kill a running container first; a missing container is not an error.
    #[arg(short, long)]
    pub(crate) force: bool,
    #[arg(required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct StatsArgs {
    /// Containers to show (default: every running container).
    pub(crate) containers: Vec<String>,
    /// Print one sample and exit instead of redrawing every second.
    #[arg(long)]
    pub(crate) no_stream: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: Format,
}

#[derive(Args, Debug)]
pub(crate) struct DiagnoseArgs {
    /// A container, `host`, or an address.
    pub(crate) src: String,
    /// A container, `host`, or an address, with an optional `:PORT` and `/tcp|/udp`.
    pub(crate) dst: String,
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TopologyFormat {
    Text,
    Dot,
    Svg,
    Json,
}

#[derive(Args, Debug)]
pub(crate) struct TopologyArgs {
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) format: TopologyFormat,
}

#[derive(Args, Debug)]
pub(crate) struct EventsArgs {
    /// Show events since this time: RFC 3339 (`2026-12-01T18:00:00Z`), Unix seconds, or a
    /// duration ago (`10m`, `2h`, `30s`). Default: only new events. The log keeps the newest
    /// 10000 events.
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Stop at this time (same forms; `0s` = now: print the past and exit).
    #[arg(long)]
    pub(crate) until: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: Format,
}
