//! Merkle tree hashing, inclusion and consistency proofs exactly as RFC 9162
//! section 2.1 defines them (identical to RFC 6962's), so that any CT-style
//! tooling can check the notary's log.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// SHA-256(0x00 || data): the prefix keeps a leaf from passing for a node.
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(data)
        .finalize()
        .into()
}

/// SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// MTH of a list of leaf hashes (already [`leaf_hash`]ed); the empty tree's
/// root is SHA-256 of the empty string.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => Sha256::digest([]).into(),
        [leaf] => *leaf,
        // Recursing on slices of the caller's list keeps the extra memory to
        // the O(log n) stack; both halves are non-empty.
        _ => {
            let (left, right) = leaves.split_at(split(leaves.len()));
            node_hash(&root(left), &root(right))
        }
    }
}

/// PATH(m, D\[n\]) of RFC 9162 2.1.3.1 for leaf `index`, deepest sibling
/// first; `None` if `index` is not a leaf of the tree.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Option<Vec<Hash>> {
    let index = usize::try_from(index).ok().filter(|&i| i < leaves.len())?;
    let mut proof = Vec::new();
    path(index, leaves, &mut proof);
    Some(proof)
}

/// The verification algorithm of RFC 9162 2.1.3.2. An inclusion proof does
/// not pin the tree size on its own (a proof for size n also passes for any
/// size whose path has the same shape); the signed tree head does that.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut node, mut last) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if last == 0 {
            return false;
        }
        if node & 1 == 1 || node == last {
            r = node_hash(p, &r);
            // A right-edge node with no sibling is promoted unchanged.
            while node & 1 == 0 && node != 0 {
                node >>= 1;
                last >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        node >>= 1;
        last >>= 1;
    }
    last == 0 && r == *root
}

/// PROOF(m, D\[n\]) of RFC 9162 2.1.4.1 from the first `old_size` leaves to
/// all of them; `None` if `old_size` exceeds the tree, empty when there is
/// nothing to prove (`old_size` is 0 or the whole tree).
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Option<Vec<Hash>> {
    let old_size = usize::try_from(old_size)
        .ok()
        .filter(|&m| m <= leaves.len())?;
    let mut proof = Vec::new();
    if old_size > 0 {
        subproof(old_size, leaves, true, &mut proof);
    }
    Some(proof)
}

/// The verification algorithm of RFC 9162 2.1.4.2. Equal sizes need equal
/// roots and an empty proof; every tree is consistent with the empty one, so
/// `old_size == 0` needs only an empty proof; trees never shrink.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty();
    }
    if proof.is_empty() {
        return false;
    }
    // The RFC prepends old_root when old_size is a power of two (the old tree
    // is then a complete subtree, which PROOF leaves out); seeding with it
    // instead saves copying the proof.
    let seeded = if old_size.is_power_of_two() {
        Some((old_root, proof))
    } else {
        proof.split_first()
    };
    let Some((seed, rest)) = seeded else {
        return false;
    };
    let (mut node, mut last) = (old_size - 1, new_size - 1);
    while node & 1 == 1 {
        node >>= 1;
        last >>= 1;
    }
    let (mut old, mut new) = (*seed, *seed);
    for c in rest {
        if last == 0 {
            return false;
        }
        if node & 1 == 1 || node == last {
            old = node_hash(c, &old);
            new = node_hash(c, &new);
            while node & 1 == 0 && node != 0 {
                node >>= 1;
                last >>= 1;
            }
        } else {
            new = node_hash(&new, c);
        }
        node >>= 1;
        last >>= 1;
    }
    last == 0 && old == *old_root && new == *new_root
}

/// The largest power of two below `n` (n >= 2): where RFC 9162 splits a tree.
fn split(n: usize) -> usize {
    1 << (n - 1).ilog2()
}

fn path(index: usize, leaves: &[Hash], proof: &mut Vec<Hash>) {
    if leaves.len() < 2 {
        return;
    }
    let k = split(leaves.len());
    let (left, right) = leaves.split_at(k);
    if index < k {
        path(index, left, proof);
        proof.push(root(right));
    } else {
        path(index - k, right, proof);
        proof.push(root(left));
    }
}

/// SUBPROOF(m, D\[n\], b): `complete` is b, true while the old tree is still a
/// complete subtree whose root the verifier already knows.
fn subproof(m: usize, leaves: &[Hash], complete: bool, proof: &mut Vec<Hash>) {
    if m == leaves.len() {
        if !complete {
            proof.push(root(leaves));
        }
        return;
    }
    let k = split(leaves.len());
    let (left, right) = leaves.split_at(k);
    if m <= k {
        subproof(m, left, complete, proof);
        proof.push(root(right));
    } else {
        subproof(m - k, right, false, proof);
        proof.push(root(left));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Hash {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    fn hs(list: &[&str]) -> Vec<Hash> {
        list.iter().map(|s| h(s)).collect()
    }

    // transparency-dev/merkle testonly/constants.go (also certificate-transparency's
    // merkle_tree_test): the leaf inputs, every tree's root, and the hashes of
    // the complete subtrees of the 8-leaf tree by level.
    const LEAF_INPUTS: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    const NODES: [&[&str]; 4] = [
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        ],
        &[
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ],
        &[
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
        &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
    ];

    // transparency-dev/merkle proof/verify_test.go, with its 1-based leaf
    // numbers turned into 0-based indices: (index, size, proof).
    const INCLUSION: [(u64, u64, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];

    // Same file: (old size, new size, proof).
    const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];

    fn vector_leaves() -> Vec<Hash> {
        LEAF_INPUTS
            .iter()
            .map(|s| leaf_hash(&hex::decode(s).unwrap()))
            .collect()
    }

    fn node(level: usize, index: usize) -> Hash {
        h(NODES[level][index])
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn flip(hash: &Hash) -> Hash {
        let mut flipped = *hash;
        flipped[0] ^= 0x10;
        flipped
    }

    #[test]
    fn roots_match_published_vectors() {
        let leaves = vector_leaves();
        for (n, expected) in ROOTS.iter().enumerate() {
            assert_eq!(root(&leaves[..n]), h(expected), "root of {n} leaves");
        }
    }

    #[test]
    fn complete_subtrees_match_published_node_hashes() {
        let leaves = vector_leaves();
        for (level, hashes) in NODES.iter().enumerate() {
            let width = 1 << level;
            for (i, expected) in hashes.iter().enumerate() {
                let range = &leaves[i * width..(i + 1) * width];
                assert_eq!(root(range), h(expected), "level {level} node {i}");
            }
        }
    }

    #[test]
    fn inclusion_proofs_match_published_vectors() {
        let leaves = vector_leaves();
        for (index, size, expected) in INCLUSION {
            let tree = &leaves[..size as usize];
            let proof = inclusion_proof(tree, index).unwrap();
            assert_eq!(proof, hs(expected), "PATH({index}, D[{size}])");
            let leaf = &leaves[index as usize];
            assert!(verify_inclusion(leaf, index, size, &proof, &root(tree)));
        }
    }

    #[test]
    fn consistency_proofs_match_published_vectors() {
        let leaves = vector_leaves();
        for (old, new, expected) in CONSISTENCY {
            let proof = consistency_proof(&leaves[..new as usize], old).unwrap();
            assert_eq!(proof, hs(expected), "PROOF({old}, D[{new}])");
            let (old_root, new_root) = (h(ROOTS[old as usize]), h(ROOTS[new as usize]));
            assert!(verify_consistency(old, new, &old_root, &new_root, &proof));
        }
    }

    // The node lists of transparency-dev/merkle proof/proof_test.go
    // (TestInclusion, TestConsistency) for trees of up to 8 leaves, resolved
    // to the published node hashes. MTH(D[4:7]) is not a complete subtree, so
    // it is the one hash not in the table.
    #[test]
    fn proof_shapes_match_reference_node_lists() {
        let leaves = vector_leaves();
        let n = node;
        let l7 = node_hash(&n(1, 2), &n(0, 6));
        let inclusion = [
            (1, 0, vec![]),
            (2, 0, vec![n(0, 1)]),
            (2, 1, vec![n(0, 0)]),
            (3, 1, vec![n(0, 0), n(0, 2)]),
            (7, 0, vec![n(0, 1), n(1, 1), l7]),
            (7, 1, vec![n(0, 0), n(1, 1), l7]),
            (7, 2, vec![n(0, 3), n(1, 0), l7]),
            (7, 3, vec![n(0, 2), n(1, 0), l7]),
            (7, 4, vec![n(0, 5), n(0, 6), n(2, 0)]),
            (7, 5, vec![n(0, 4), n(0, 6), n(2, 0)]),
            (7, 6, vec![n(1, 2), n(2, 0)]),
            (4, 2, vec![n(0, 3), n(1, 0)]),
            (5, 3, vec![n(0, 2), n(1, 0), n(0, 4)]),
            (6, 3, vec![n(0, 2), n(1, 0), n(1, 2)]),
            (6, 4, vec![n(0, 5), n(2, 0)]),
        ];
        for (size, index, expected) in inclusion {
            let proof = inclusion_proof(&leaves[..size], index).unwrap();
            assert_eq!(proof, expected, "PATH({index}, D[{size}])");
        }
        let consistency = [
            (1, 2, vec![n(0, 1)]),
            (1, 4, vec![n(0, 1), n(1, 1)]),
            (1, 6, vec![n(0, 1), n(1, 1), n(1, 2)]),
            (2, 3, vec![n(0, 2)]),
            (2, 8, vec![n(1, 1), n(2, 1)]),
            (3, 7, vec![n(0, 2), n(0, 3), n(1, 0), l7]),
            (4, 7, vec![l7]),
            (5, 7, vec![n(0, 4), n(0, 5), n(0, 6), n(2, 0)]),
            (6, 7, vec![n(1, 2), n(0, 6), n(2, 0)]),
            (7, 8, vec![n(0, 6), n(0, 7), n(1, 2), n(2, 0)]),
            (2, 4, vec![n(1, 1)]),
            (3, 5, vec![n(0, 2), n(0, 3), n(1, 0), n(0, 4)]),
            (3, 6, vec![n(0, 2), n(0, 3), n(1, 0), n(1, 2)]),
            (4, 6, vec![n(1, 2)]),
            (1, 7, vec![n(0, 1), n(1, 1), l7]),
        ];
        for (old, new, expected) in consistency {
            let proof = consistency_proof(&leaves[..new], old).unwrap();
            assert_eq!(proof, expected, "PROOF({old}, D[{new}])");
        }
        for size in 1..=8 {
            assert!(consistency_proof(&leaves[..size], size as u64)
                .unwrap()
                .is_empty());
        }
    }

    #[test]
    fn out_of_range_requests_give_none() {
        let leaves = leaves(7);
        assert_eq!(inclusion_proof(&leaves, 7), None);
        assert_eq!(inclusion_proof(&leaves, u64::MAX), None);
        assert_eq!(inclusion_proof(&[], 0), None);
        assert_eq!(consistency_proof(&leaves, 8), None);
        assert_eq!(consistency_proof(&leaves, 0), Some(vec![]));
        assert_eq!(consistency_proof(&[], 0), Some(vec![]));
    }

    // Builds level by level, carrying an unpaired last node up unchanged: an
    // independent construction of the same tree.
    #[test]
    fn root_agrees_with_bottom_up_construction() {
        let all = leaves(300);
        for n in 1..=all.len() {
            let mut level = all[..n].to_vec();
            while level.len() > 1 {
                level = level
                    .chunks(2)
                    .map(|pair| {
                        pair.iter()
                            .copied()
                            .reduce(|l, r| node_hash(&l, &r))
                            .unwrap()
                    })
                    .collect();
            }
            assert_eq!(root(&all[..n]), level[0], "{n} leaves");
        }
    }

    /// Which side each sibling sits on along PATH(index, D[size]), from the
    /// generator's recursion rather than the verifier's arithmetic.
    fn shape(index: u64, size: u64) -> Vec<bool> {
        if size < 2 {
            return vec![];
        }
        let k = 1 << (size - 1).ilog2();
        let (mut below, sibling_right) = if index < k {
            (shape(index, k), true)
        } else {
            (shape(index - k, size - k), false)
        };
        below.push(sibling_right);
        below
    }

    #[test]
    fn inclusion_proofs_verify_and_reject_tampering() {
        let all = leaves(64);
        for n in 1..=64u64 {
            let tree = &all[..n as usize];
            let root = root(tree);
            for index in 0..n {
                let leaf = &tree[index as usize];
                let proof = inclusion_proof(tree, index).unwrap();
                assert!(verify_inclusion(leaf, index, n, &proof, &root));

                assert!(!verify_inclusion(&flip(leaf), index, n, &proof, &root));
                for (other, wrong) in tree.iter().enumerate() {
                    if other as u64 != index {
                        assert!(!verify_inclusion(wrong, index, n, &proof, &root));
                    }
                }
                assert!(!verify_inclusion(leaf, index, n, &proof, &flip(&root)));
                for other in (0..=n + 1).filter(|&i| i != index) {
                    assert!(!verify_inclusion(leaf, other, n, &proof, &root));
                }
                // A size passes exactly when its path has the same shape.
                for size in (1..=2 * n + 2).filter(|&s| s != n) {
                    let same_shape = index < size && shape(index, size) == shape(index, n);
                    assert_eq!(
                        verify_inclusion(leaf, index, size, &proof, &root),
                        same_shape,
                        "leaf {index} of {n} claimed in a tree of {size}"
                    );
                }
                assert!(!verify_inclusion(leaf, index, n * 2, &proof, &root));
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i] = flip(&bad[i]);
                    assert!(!verify_inclusion(leaf, index, n, &bad, &root));
                }
                let mut longer = proof.clone();
                longer.push(root);
                assert!(!verify_inclusion(leaf, index, n, &longer, &root));
                if let Some((_, shorter)) = proof.split_last() {
                    assert!(!verify_inclusion(leaf, index, n, shorter, &root));
                }
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_and_reject_tampering() {
        let all = leaves(64);
        for n in 1..=64u64 {
            let new_root = root(&all[..n as usize]);
            for m in 1..=n {
                let old_root = root(&all[..m as usize]);
                let proof = consistency_proof(&all[..n as usize], m).unwrap();
                assert!(verify_consistency(m, n, &old_root, &new_root, &proof));

                let bad_old = flip(&old_root);
                let bad_new = flip(&new_root);
                assert!(!verify_consistency(m, n, &bad_old, &new_root, &proof));
                assert!(!verify_consistency(m, n, &old_root, &bad_new, &proof));
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i] = flip(&bad[i]);
                    assert!(!verify_consistency(m, n, &old_root, &new_root, &bad));
                }
                let mut longer = proof.clone();
                longer.push(new_root);
                assert!(!verify_consistency(m, n, &old_root, &new_root, &longer));
                if let Some((_, shorter)) = proof.split_last() {
                    assert!(!verify_consistency(m, n, &old_root, &new_root, shorter));
                }
                if m < n {
                    assert!(!verify_consistency(n, m, &new_root, &old_root, &proof));
                }
            }
        }
    }

    #[test]
    fn consistency_edge_conventions() {
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        assert!(verify_consistency(0, 0, &a, &a, &[]));
        assert!(!verify_consistency(0, 0, &a, &b, &[]));
        assert!(!verify_consistency(0, 0, &a, &a, &[a]));
        assert!(verify_consistency(0, 5, &a, &b, &[]));
        assert!(!verify_consistency(0, 5, &a, &b, &[a]));
        assert!(verify_consistency(3, 3, &b, &b, &[]));
        assert!(!verify_consistency(3, 3, &a, &b, &[]));
        assert!(!verify_consistency(3, 3, &b, &b, &[b]));
        assert!(!verify_consistency(1, 0, &a, &b, &[]));
        assert!(!verify_consistency(1, 2, &a, &b, &[]));
        assert!(!verify_consistency(4, 8, &a, &b, &[]));
    }

    #[test]
    fn inclusion_edge_cases() {
        let leaf = leaf_hash(b"data");
        // A one-leaf tree's root is its leaf hash and its proof is empty.
        assert!(verify_inclusion(&leaf, 0, 1, &[], &leaf));
        assert!(!verify_inclusion(&leaf, 0, 0, &[], &leaf));
        assert!(!verify_inclusion(&leaf, 1, 1, &[], &leaf));
        assert!(!verify_inclusion(&leaf, u64::MAX, u64::MAX, &[], &leaf));
        let big = u64::MAX;
        assert!(!verify_inclusion(&leaf, big - 1, big, &[leaf; 64], &leaf));
    }
}
