//! The firewall's error type.

/// What can go wrong programming nftables.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `nft` program is not installed.
    #[error("nft not found {place}: install the nftables package (apt-get install nftables)")]
    MissingNft {
        /// Where berth looked: "in PATH", or the `BERTH_NFT` path.
        place: String,
    },
    /// The kernel lacks nf_tables or one of the expressions berth uses.
    #[error("{op}: the kernel lacks an nftables feature berth needs ({detail}): load the nf_tables, nft_nat, nft_ct, nft_fib and nft_masq modules or use a kernel with them")]
    KernelFeature { op: String, detail: String },
    /// `nft` rejected a batch.
    #[error("{op}: nft failed: {detail}")]
    Nft { op: String, detail: String },
    /// An nf_tables netlink request failed.
    #[error("{op}: {source}")]
    Netlink {
        op: String,
        #[source]
        source: berth_kernel::Error,
    },
    /// `nft` could not be run.
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
}

/// Result with the firewall's error.
pub type Result<T> = std::result::Result<T, Error>;
