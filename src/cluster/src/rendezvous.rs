//! Preferred owners of streams by highest-random-weight (rendezvous) hashing over nodes.
//!
//! Every node computes a weight for each (node, stream) pair and the stream's preferred
//! owner is the node of highest weight. Every node reaches the same answer from the same
//! list of live nodes, without talking to the others; streams spread evenly; and when a
//! node joins, only the streams it now wins move (about 1/n of them), when one leaves, only
//! its own streams move. The lease (lease.rs) is what makes ownership exclusive: this
//! module only says who should try first.
//!
//! The weight must be the same on every node and in every release, so it is computed here
//! rather than by std's `DefaultHasher`, whose algorithm may change between Rust releases:
//! 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over the bytes of
//! the node id, one 0x00 byte, and the bytes of the stream id (0x00 cannot occur in an id,
//! so distinct pairs give distinct inputs); then the SplitMix64 finalizer, because FNV-1a
//! alone mixes its last bytes poorly into the high bits and ids often differ only in a
//! trailing digit. Ties (probability 2^-64) go to the smaller node id, so the order is
//! total and deterministic.

use crate::names::NodeId;

/// The key whose preferred owner compacts the cluster's log. A space is not allowed in a
/// stream id, so it is nobody's stream; part of the protocol, like the weight.
pub const COMPACTOR_KEY: &str = "log compaction";

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The weight of a node for a stream (see the module's documentation). Stable: part of the
/// cluster's protocol, since nodes of different builds must agree on it.
pub fn weight(node_id: &str, stream_id: &str) -> u64 {
    let mut hash = FNV_OFFSET_BASIS;
    let bytes = node_id.bytes().chain([0u8]).chain(stream_id.bytes());
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    splitmix64_finalize(hash)
}

/// The output function of SplitMix64 (Steele, Lea and Flood, 2014).
fn splitmix64_finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The preferred owner of a stream among the live nodes; `None` when there are none.
pub fn owner<'a>(stream_id: &str, live_nodes: &'a [NodeId]) -> Option<&'a NodeId> {
    live_nodes.iter().max_by(|a, b| rank(stream_id, a, b))
}

/// The `k` nodes that should own a stream, best first: the first is `owner`, the next one
/// takes over when it leaves, and so on.
pub fn preferred<'a>(stream_id: &str, nodes: &'a [NodeId], k: usize) -> Vec<&'a NodeId> {
    let mut ranked: Vec<&NodeId> = nodes.iter().collect();
    ranked.sort_by(|a, b| rank(stream_id, b, a));
    ranked.truncate(k);
    ranked
}

/// Orders nodes by weight for a stream; on a tie the smaller id ranks higher.
fn rank(stream_id: &str, a: &NodeId, b: &NodeId) -> std::cmp::Ordering {
    weight(a.as_str(), stream_id).cmp(&weight(b.as_str(), stream_id)).then_with(|| b.cmp(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(names: &[&str]) -> Vec<NodeId> {
        names.iter().map(|name| NodeId::new(*name).unwrap()).collect()
    }

    fn streams() -> Vec<String> {
        (0..3000).map(|i| format!("stream-{i}")).collect()
    }

    #[test]
    fn the_weight_is_fixed_for_all_releases() {
        // FNV-1a of the empty input is the offset basis; these pin the whole function.
        assert_eq!(weight("", ""), splitmix64_finalize(0xaf63_bd4c_8601_b7df));
        // Computed independently of this code (a few lines of Python big integers).
        assert_eq!(weight("node-a", "s1"), 0x19e7_0426_3550_e6f9);
        assert_ne!(weight("node-a", "s1"), weight("node-a1", "s"));
        assert_eq!(splitmix64_finalize(0), 0);
        assert_eq!(splitmix64_finalize(1), 0x5692_161d_100b_05e5);
    }

    #[test]
    fn owner_is_deterministic_and_independent_of_list_order() {
        let forward = nodes(&["a", "b", "c"]);
        let backward = nodes(&["c", "b", "a"]);
        for stream in streams().iter().take(200) {
            assert_eq!(owner(stream, &forward), owner(stream, &backward));
            assert_eq!(preferred(stream, &forward, 3), preferred(stream, &backward, 3));
            assert_eq!(preferred(stream, &forward, 1)[0], owner(stream, &forward).unwrap());
        }
        assert_eq!(owner("s", &[]), None);
        assert_eq!(preferred("s", &forward, 5).len(), 3);
    }

    #[test]
    fn three_nodes_share_three_thousand_streams_evenly() {
        let three = nodes(&["node-1", "node-2", "node-3"]);
        for node in &three {
            let owned = streams().iter().filter(|stream| owner(stream, &three) == Some(node)).count();
            assert!((900..=1100).contains(&owned), "{node} owns {owned}");
        }
    }

    #[test]
    fn a_joining_node_takes_only_its_share() {
        let three = nodes(&["node-1", "node-2", "node-3"]);
        let four = nodes(&["node-1", "node-2", "node-3", "node-4"]);
        let mut moved = 0;
        for stream in streams() {
            let before = owner(&stream, &three).unwrap();
            let after = owner(&stream, &four).unwrap();
            if before != after {
                assert_eq!(after.as_str(), "node-4", "{stream} moved between old nodes");
                moved += 1;
            }
        }
        // A quarter of 3000 is 750; the binomial's standard deviation is about 24.
        assert!((650..=850).contains(&moved), "{moved} streams moved");
    }

    #[test]
    fn a_leaving_node_gives_up_only_its_own_streams() {
        let three = nodes(&["node-1", "node-2", "node-3"]);
        let two = nodes(&["node-1", "node-3"]);
        for stream in streams() {
            let before = owner(&stream, &three).unwrap();
            let after = owner(&stream, &two).unwrap();
            if before.as_str() != "node-2" {
                assert_eq!(before, after, "{stream} moved though its owner stayed");
            }
        }
    }
}
