//! Seeded draws of training batches that depend on `(seed, iteration)` alone, so that a
//! resumed run draws what the uninterrupted one would have.

use serde::{Deserialize, Serialize};

/// How training draws its (item, start) pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sampling {
    /// SoL's (`karman_train.py`, `newEpoch`): every pair once per epoch, in an order
    /// shuffled anew each epoch; a batch may straddle two epochs. At docs/wake-flow.md §7's 1000 iterations
    /// it measured worse than independent draws (RESULTS.md), so it is not the default.
    Epochs,
    /// Independent uniform draws keyed by `(seed, iteration)`; pairs repeat within an epoch.
    Independent,
}

/// SplitMix64 from `state`: a stream of well-mixed 64-bit numbers.
pub fn splitmix(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The (simulation, start frame) pairs of iteration `k`, a function of `(seed, k)` alone so
/// that a resumed run draws what the uninterrupted one would have. [`Sampling::Epochs`]:
/// draw `i = k·batch + b` is entry `i mod P` of epoch `i / P`'s shuffle (Fisher–Yates keyed
/// by `(seed, epoch)`) of the `P = sims·starts` pairs; [`Sampling::Independent`]: uniform
/// draws keyed by `(seed, k)`.
pub fn batch_of(
    sampling: Sampling,
    seed: u64,
    k: usize,
    batch: usize,
    (sims, starts): (usize, usize),
) -> Vec<(usize, usize)> {
    let key = |n: usize| seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    match sampling {
        Sampling::Independent => {
            let mut next = splitmix(key(k));
            (0..batch)
                .map(|_| {
                    (
                        (next() % sims as u64) as usize,
                        (next() % starts as u64) as usize,
                    )
                })
                .collect()
        }
        Sampling::Epochs => {
            let pairs = sims * starts;
            let shuffle = |epoch: usize| {
                let mut order: Vec<usize> = (0..pairs).collect();
                let mut next = splitmix(key(epoch) ^ 0x005E_ED0F_E90C);
                for i in (1..pairs).rev() {
                    order.swap(i, (next() % (i as u64 + 1)) as usize);
                }
                order
            };
            let first = k * batch;
            let mut epoch = (first / pairs, shuffle(first / pairs));
            (first..first + batch)
                .map(|i| {
                    if i / pairs != epoch.0 {
                        epoch = (i / pairs, shuffle(i / pairs));
                    }
                    let pair = epoch.1[i % pairs];
                    (pair / starts, pair % starts)
                })
                .collect()
        }
    }
}
