//! `memcpy`, `memmove`, `memset`, `memcmp` and `bcmp`: the compiler emits calls to them, and
//! with `-nostdlib` there is no libc to provide them (the prebuilt `compiler_builtins` leaves
//! them to libc on Linux targets). String instructions in inline assembly, so the compiler
//! cannot turn their bodies back into calls to themselves. Host unit tests use libc's symbols
//! and call these as ordinary (mangled) functions.

use core::arch::asm;
use core::ffi::c_int;

/// Copies `n` bytes from `src` to `dest` (non-overlapping).
///
/// # Safety
/// The C contract: `src` readable and `dest` writable for `n` bytes, not overlapping.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: per the C contract; `rep movsb` copies forwards (DF is clear per the ABI and
    // the System V calling convention).
    unsafe {
        asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags),
        );
    }
    dest
}

/// Copies `n` bytes from `src` to `dest`; the ranges may overlap.
///
/// # Safety
/// The C contract: `src` readable and `dest` writable for `n` bytes.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if dest.addr().wrapping_sub(src.addr()) >= n {
        // `dest` is below `src` or past its end: a forward copy never reads a byte it wrote.
        // SAFETY: per the C contract.
        return unsafe { memcpy(dest, src, n) };
    }
    // `dest` overlaps the tail of `src`: copy backwards, from the last byte down.
    // SAFETY: per the C contract; `n > 0` here, so the last bytes are `n - 1` in; the
    // direction flag is set only around the copy and cleared again.
    unsafe {
        asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rdi") dest.add(n - 1) => _,
            inout("rsi") src.add(n - 1) => _,
            options(nostack),
        );
    }
    dest
}

/// Fills `n` bytes at `dest` with the low byte of `c`.
///
/// # Safety
/// The C contract: `dest` writable for `n` bytes.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn memset(dest: *mut u8, c: c_int, n: usize) -> *mut u8 {
    // SAFETY: per the C contract; `rep stosb` stores forwards.
    unsafe {
        asm!(
            "rep stosb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            in("al") c as u8,
            options(nostack, preserves_flags),
        );
    }
    dest
}

/// Compares `n` bytes: negative, zero or positive as the first differing byte of `a` is
/// below, equal to or above that of `b`.
///
/// # Safety
/// The C contract: `a` and `b` readable for `n` bytes.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
    if n == 0 {
        return 0;
    }
    let (last_a, last_b): (u8, u8);
    // SAFETY: per the C contract; `repe cmpsb` stops after the first differing byte (or after
    // `n` bytes), so the bytes just behind `rsi`/`rdi` are the last ones compared.
    unsafe {
        asm!(
            "repe cmpsb",
            "mov {la}, byte ptr [rsi - 1]",
            "mov {lb}, byte ptr [rdi - 1]",
            la = out(reg_byte) last_a,
            lb = out(reg_byte) last_b,
            inout("rcx") n => _,
            inout("rsi") a => _,
            inout("rdi") b => _,
            options(nostack, readonly),
        );
    }
    c_int::from(last_a) - c_int::from(last_b)
}

/// Like [`memcmp`], but only zero versus non-zero is meaningful.
///
/// # Safety
/// The C contract: `a` and `b` readable for `n` bytes.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
    // SAFETY: the same contract as `memcmp`.
    unsafe { memcmp(a, b, n) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_and_set() {
        let src: Vec<u8> = (0..=255).collect();
        let mut dst = vec![0u8; 256];
        // SAFETY: both buffers hold 256 bytes and do not overlap.
        unsafe { memcpy(dst.as_mut_ptr(), src.as_ptr(), 256) };
        assert_eq!(dst, src);
        // SAFETY: `dst` holds 256 bytes.
        unsafe { memset(dst.as_mut_ptr().add(10), 0x1ab, 5) };
        assert_eq!(&dst[8..17], &[8, 9, 0xab, 0xab, 0xab, 0xab, 0xab, 15, 16]);
        // SAFETY: zero bytes touch nothing.
        unsafe { memcpy(dst.as_mut_ptr(), src.as_ptr().add(100), 0) };
        assert_eq!(dst[0], 0);
    }

    #[test]
    fn move_overlapping_both_ways() {
        let mut buf: Vec<u8> = (0..32).collect();
        let p = buf.as_mut_ptr();
        // SAFETY: both ranges lie inside `buf`.
        unsafe { memmove(p.add(4), p, 16) };
        let expected: Vec<u8> = (0..4).chain(0..16).chain(20..32).collect();
        assert_eq!(buf, expected);
        let mut buf: Vec<u8> = (0..32).collect();
        let p = buf.as_mut_ptr();
        // SAFETY: both ranges lie inside `buf`.
        unsafe { memmove(p, p.add(4), 16) };
        let expected: Vec<u8> = (4..20).chain(16..32).collect();
        assert_eq!(buf, expected);
        // SAFETY: zero bytes touch nothing.
        unsafe { memmove(p.add(1), p, 0) };
    }

    #[test]
    fn compare() {
        let a = b"abcdef";
        let b = b"abcxef";
        // SAFETY: both are 6 readable bytes.
        unsafe {
            assert!(memcmp(a.as_ptr(), b.as_ptr(), 6) < 0);
            assert!(memcmp(b.as_ptr(), a.as_ptr(), 6) > 0);
            assert_eq!(memcmp(a.as_ptr(), b.as_ptr(), 3), 0);
            assert_eq!(memcmp(a.as_ptr(), b.as_ptr(), 0), 0);
            assert_ne!(bcmp(a.as_ptr(), b.as_ptr(), 6), 0);
            assert_eq!(bcmp(a.as_ptr(), a.as_ptr(), 6), 0);
            assert_eq!(memcmp(b"\xff".as_ptr(), b"\x01".as_ptr(), 1), 254);
        }
    }
}
