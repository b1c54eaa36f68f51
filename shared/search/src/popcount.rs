//! Hardware popcount for the query loops. Without a `target-cpu` setting `count_ones`
//! compiles to a dozen shifts and adds; every query (the scan baseline and the
//! multi-index alike) instead runs through a copy of its loop compiled with POPCNT when
//! the CPU has it, checked at run time, so the build stays portable. The banded join
//! also has a copy with AVX-512's vector popcount, which compares eight words at once.
#![allow(unsafe_code)]

/// Runs `query` compiled with the POPCNT instruction where the CPU has it. The query's
/// functions are inlined into the copy below (one call site each), which is what gives
/// their `count_ones` the instruction.
#[inline(always)]
pub(crate) fn fast<R>(query: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("popcnt") {
        // SAFETY: the CPU was just checked to have POPCNT, the only feature enabled.
        return unsafe { with_popcnt(query) };
    }
    query()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn with_popcnt<R>(query: impl FnOnce() -> R) -> R {
    query()
}

/// A loop body compiled for the CPU: with AVX-512 and its vector popcount (VPOPCNTDQ),
/// with POPCNT, or plain. `run` must be `#[inline(always)]`, and so must what it calls
/// per code (no closures there): being inlined into the copies below is what compiles
/// it for their instructions. It compares runs of codes through `C`, which each copy
/// sets to the routine its instructions allow.
pub(crate) trait Kernel {
    type Out;
    fn run<C: Compare>(&self, arg: u32) -> Self::Out;
}

/// Whether any code of a run is within a radius of one code.
pub(crate) trait Compare {
    fn any_near<const W: usize>(x: &[u64; W], ys: &[[u64; W]], radius: u32) -> bool;
}

/// One code at a time (the POPCNT and plain copies).
struct Scalar;

impl Compare for Scalar {
    #[inline(always)]
    fn any_near<const W: usize>(x: &[u64; W], ys: &[[u64; W]], radius: u32) -> bool {
        ys.iter().any(|y| crate::code::distance(x, y) <= radius)
    }
}

/// Eight words at a time. Private to this module and handed to `run` only by
/// [`kernel_avx512`], which is entered only on a CPU with the features.
#[cfg(target_arch = "x86_64")]
struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Compare for Avx512 {
    #[inline(always)]
    fn any_near<const W: usize>(x: &[u64; W], ys: &[[u64; W]], radius: u32) -> bool {
        // SAFETY: only reached from `kernel_avx512` (see the type's comment).
        unsafe { avx512::nearest(x, ys.as_flattened()) <= radius }
    }
}

/// Runs `kernel.run(arg)` in the widest copy the CPU has. For loops that compare one
/// code with runs of codes (the banded join's buckets).
#[inline]
pub(crate) fn wide<K: Kernel>(kernel: &K, arg: u32) -> K::Out {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
        && std::arch::is_x86_feature_detected!("popcnt")
    {
        // SAFETY: the CPU was just checked to have every feature enabled.
        return unsafe { kernel_avx512(kernel, arg) };
    }
    scalar(kernel, arg)
}

/// Runs `kernel.run(arg)` compiled with POPCNT where the CPU has it: for loops whose
/// codes come one at a time from random places (probing), where vectors do not help.
#[inline]
pub(crate) fn scalar<K: Kernel>(kernel: &K, arg: u32) -> K::Out {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("popcnt") {
        // SAFETY: as above, POPCNT only.
        return unsafe { kernel_popcnt(kernel, arg) };
    }
    kernel.run::<Scalar>(arg)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt,avx512f,avx512vpopcntdq")]
fn kernel_avx512<K: Kernel>(kernel: &K, arg: u32) -> K::Out {
    kernel.run::<Avx512>(arg)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn kernel_popcnt<K: Kernel>(kernel: &K, arg: u32) -> K::Out {
    kernel.run::<Scalar>(arg)
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512i, _mm512_add_epi64, _mm512_loadu_si512, _mm512_min_epu64, _mm512_permutexvar_epi64,
        _mm512_popcnt_epi64, _mm512_reduce_min_epu64, _mm512_set_epi64, _mm512_set1_epi64,
        _mm512_shuffle_i64x2, _mm512_xor_si512,
    };

    /// The least distance from `x` to a code of `W` words in `flat` (row after row),
    /// `u32::MAX` for none. Eight words per vector: XOR with the probe repeated,
    /// popcount each word, add a code's words (so every lane holds its code's
    /// distance), and keep the least per lane: no branch and no scalar step per vector.
    #[target_feature(enable = "popcnt,avx512f,avx512vpopcntdq")]
    #[inline]
    pub(super) fn nearest<const W: usize>(x: &[u64; W], flat: &[u64]) -> u32 {
        let lane = |k: usize| x[k % W] as i64;
        let probe = _mm512_set_epi64(
            lane(7),
            lane(6),
            lane(5),
            lane(4),
            lane(3),
            lane(2),
            lane(1),
            lane(0),
        );
        // Each lane's partner in its pair of words.
        let swap = _mm512_set_epi64(6, 7, 4, 5, 2, 3, 0, 1);
        let mut least = _mm512_set1_epi64(i64::MAX);
        let mut chunks = flat.chunks_exact(8);
        for chunk in &mut chunks {
            // SAFETY: `chunk` is 8 words, exactly one unaligned 512-bit load.
            let v = unsafe { _mm512_loadu_si512(chunk.as_ptr().cast::<__m512i>()) };
            let mut d = _mm512_popcnt_epi64(_mm512_xor_si512(v, probe));
            if W >= 2 {
                d = _mm512_add_epi64(d, _mm512_permutexvar_epi64(swap, d));
            }
            if W >= 4 {
                // 128-bit lanes swapped in pairs: a code's two pair sums added.
                d = _mm512_add_epi64(d, _mm512_shuffle_i64x2::<0b10_11_00_01>(d, d));
            }
            least = _mm512_min_epu64(least, d);
        }
        let mut best = _mm512_reduce_min_epu64(least).min(u64::from(u32::MAX)) as u32;
        for y in chunks.remainder().chunks_exact(W) {
            let d: u32 = y.iter().zip(x).map(|(a, b)| (a ^ b).count_ones()).sum();
            best = best.min(d);
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// Asks whether any of `ys` is within each radius of `x`, through a kernel.
    struct Near<const W: usize> {
        x: [u64; W],
        ys: Vec<[u64; W]>,
    }

    impl<const W: usize> Kernel for Near<W> {
        type Out = Vec<bool>;

        #[inline(always)]
        fn run<C: Compare>(&self, _: u32) -> Vec<bool> {
            (0..=64 * W as u32)
                .map(|r| C::any_near(&self.x, &self.ys, r))
                .collect()
        }
    }

    fn check<const W: usize>(rng: &mut SmallRng) {
        for len in 0..40 {
            let x: [u64; W] = std::array::from_fn(|_| rng.random());
            let ys: Vec<[u64; W]> = (0..len)
                .map(|_| {
                    std::array::from_fn(|w| x[w] ^ (rng.random::<u64>() & rng.random::<u64>()))
                })
                .collect();
            let near = Near { x, ys };
            // The widest copy (AVX-512 here when the CPU has it) against the plain one.
            assert_eq!(wide(&near, 0), near.run::<Scalar>(0), "W {W}, {len} codes");
            assert_eq!(scalar(&near, 0), near.run::<Scalar>(0));
        }
    }

    #[test]
    fn every_copy_of_a_kernel_gives_the_same_answers() {
        let mut rng = SmallRng::seed_from_u64(3);
        for _ in 0..20 {
            check::<1>(&mut rng);
            check::<2>(&mut rng);
            check::<4>(&mut rng);
        }
    }
}
