//! One sort for ward's short, cold lists: status rows, cgroup candidates.
//! Owns ordering only; it allocates a key per element, so what the census
//! orders every sample (its index by parent, the unreaped zombies, a
//! process table read from a fixture tree, the OOM candidates) uses the
//! heapsort under it in place ([`heapsort_by_key`]).
//!
//! Why it exists: each `sort_by_key` on a new element type or key is its own
//! copy of std's sort, 2-3 KiB apiece in the binary. Here a call site only
//! maps each element to a [`Rank`], and one small heapsort of `(Rank,
//! position)` pairs orders every list.

/// A sort key, compared as a pair, first field first.
pub type Rank = (u64, u64);

/// Orders `v` by `rank`, ascending; equal ranks keep their order (stable,
/// like `sort_by_key`).
pub fn sort<T>(v: &mut Vec<T>, rank: impl Fn(&T) -> Rank) {
    let mut order: Vec<(Rank, usize)> = v.iter().map(rank).zip(0..).collect();
    sort_ranked(&mut order);
    let mut slots: Vec<Option<T>> = v.drain(..).map(Some).collect();
    // `order` holds each position once, so every slot is taken exactly once.
    v.extend(order.iter().filter_map(|&(_, i)| slots[i].take()));
}

/// The one sort every [`sort`] shares. The position breaks ties, so no
/// two elements are equal and the order is the stable one.
#[inline(never)]
fn sort_ranked(order: &mut [(Rank, usize)]) {
    heapsort_by_key(order, |&x| x);
}

/// Orders `v` by `key`, ascending, in place and without allocating: a
/// heapsort, O(n log n) at worst, in a few hundred bytes where std's sort
/// for each element type is about 3 KiB. Not stable.
pub fn heapsort_by_key<T, K: Ord>(v: &mut [T], key: impl Fn(&T) -> K) {
    let n = v.len();
    for root in (0..n / 2).rev() {
        sift_down(v, root, n, &key);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift_down(v, 0, end, &key);
    }
}

/// Moves `v[root]` down within `v[..end]`, a max-heap on `key`, to where
/// it belongs.
pub fn sift_down<T, K: Ord>(v: &mut [T], mut root: usize, end: usize, key: &impl Fn(&T) -> K) {
    loop {
        let mut child = 2 * root + 1;
        if child >= end {
            return;
        }
        if child + 1 < end && key(&v[child]) < key(&v[child + 1]) {
            child += 1;
        }
        if key(&v[root]) >= key(&v[child]) {
            return;
        }
        v.swap(root, child);
        root = child;
    }
}

/// Moves `v[i]` up within `v`, a max-heap on `key` but for it, to where it
/// belongs.
pub fn sift_up<T, K: Ord>(v: &mut [T], mut i: usize, key: &impl Fn(&T) -> K) {
    while i > 0 {
        let parent = (i - 1) / 2;
        if key(&v[parent]) >= key(&v[i]) {
            return;
        }
        v.swap(parent, i);
        i = parent;
    }
}

/// A key that ranks larger values first.
pub fn desc(x: u64) -> u64 {
    !x
}

/// A signed key (a pid) in its natural order.
pub fn signed(x: i64) -> u64 {
    (x as u64) ^ (1 << 63)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_sort_by_key_and_keeps_ties_in_order() {
        let items = [(3, 'a'), (-1, 'b'), (3, 'c'), (0, 'd'), (-1, 'e'), (7, 'f')];
        let mut ours = items.to_vec();
        sort(&mut ours, |&(k, _)| (signed(k), 0));
        let mut std_order = items.to_vec();
        std_order.sort_by_key(|&(k, _)| k);
        assert_eq!(ours, std_order);

        let counts = [
            (3u64, 'a'),
            (1, 'b'),
            (3, 'c'),
            (0, 'd'),
            (1, 'e'),
            (7, 'f'),
        ];
        let mut ours = counts.to_vec();
        sort(&mut ours, |&(k, _)| (desc(k), 0));
        let mut std_order = counts.to_vec();
        std_order.sort_by_key(|&(k, _)| std::cmp::Reverse(k));
        assert_eq!(ours, std_order);
        assert_eq!(ours.iter().map(|x| x.1).collect::<String>(), "facbed");
    }

    /// Every length to 70, 20 orders each, with many ties (keys 0-7): a
    /// simple xorshift from `seed`.
    fn key_lists(seed: u64) -> impl Iterator<Item = Vec<u64>> {
        let mut x = seed;
        (0..70usize)
            .flat_map(|len| std::iter::repeat_n(len, 20))
            .map(move |len| {
                (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x % 8
                    })
                    .collect()
            })
    }

    #[test]
    fn sorts_as_std_does_any_order_of_any_length() {
        for v in key_lists(0x2545_f491_4f6c_dd1d) {
            let mut ours: Vec<(u64, usize)> = v.iter().copied().zip(0..).collect();
            sort(&mut ours, |&(k, _)| (k, 0));
            let mut std_order: Vec<(u64, usize)> = v.iter().copied().zip(0..).collect();
            std_order.sort_by_key(|&(k, _)| k);
            assert_eq!(ours, std_order, "{v:?}");
        }
    }

    #[test]
    fn the_heapsort_in_place_orders_as_std_does() {
        for keys in key_lists(0x9e37_79b9_7f4a_7c15) {
            // As the census sorts: indices by the key they point at.
            let mut ours: Vec<usize> = (0..keys.len()).collect();
            heapsort_by_key(&mut ours, |&i| keys[i]);
            let sorted: Vec<u64> = ours.iter().map(|&i| keys[i]).collect();
            let mut std_order = keys.clone();
            std_order.sort_unstable();
            assert_eq!(sorted, std_order, "{keys:?}");
            ours.sort_unstable();
            assert!(ours.iter().copied().eq(0..keys.len()), "each index once");
        }
    }

    #[test]
    fn pairs_compare_first_field_first() {
        let mut v = vec![(2, 1), (1, 9), (2, 0), (1, 2)];
        sort(&mut v, |&(a, b)| (a, b));
        assert_eq!(v, [(1, 2), (1, 9), (2, 0), (2, 1)]);
        let mut empty: Vec<u8> = Vec::new();
        sort(&mut empty, |_| (0, 0));
        assert!(empty.is_empty());
    }
}
