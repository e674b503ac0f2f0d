//! Prints the constant ruleset batch, for review with `nft -c -f -`.
fn main() {
    print!("{}", berth_firewall::ruleset::skeleton());
}
