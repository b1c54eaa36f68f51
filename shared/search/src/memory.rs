//! Hints to the memory system for the index's large arrays, which queries read at
//! random: prefetching a bucket before it is needed, and huge pages, so a random read
//! does not also miss the TLB (one 2 MiB page covers what 512 small pages would).
#![allow(unsafe_code)]

/// Asks for the cache line holding `x`; a hint that never faults.
#[inline(always)]
pub(crate) fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing architecturally and cannot fault; the pointer
    // comes from a live reference anyway.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(x).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// Asks the kernel to back `v`'s allocation with transparent huge pages. Call it before
/// the memory is first written: pages already touched stay small until the kernel's
/// background collapse gets to them. Where the kernel has THP off, this does nothing.
pub(crate) fn advise_huge_pages<T>(v: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = v.capacity() * std::mem::size_of::<T>();
        if bytes < 2 * HUGE {
            return;
        }
        let start = v.as_ptr() as usize;
        // madvise wants a page-aligned start: advise the whole huge pages inside.
        let first = start.next_multiple_of(HUGE);
        let end = (start + bytes) / HUGE * HUGE;
        if end <= first {
            return;
        }
        // SAFETY: the range lies inside `v`'s live allocation; MADV_HUGEPAGE changes how
        // it is backed, never its contents or its validity.
        let rc =
            unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "madvise(MADV_HUGEPAGE) refused; the index runs on small pages"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}
