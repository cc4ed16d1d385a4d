//! A fixed, versioned 64-bit hash: trace identity, fingerprints and sharding.
//!
//! We never use `std`'s `DefaultHasher` for anything that must be stable:
//! its algorithm is explicitly unspecified and may change between releases,
//! which would silently change every trace hash and every shard placement.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bumped whenever the algorithm below changes; reports print it so that a
/// changed hash can be told apart from a changed behaviour.
pub const STABLE_HASH_VERSION: u32 = 1;

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// A word-at-a-time multiplicative hasher with a splitmix64 finalizer.
///
/// Fast enough to hash every trace entry; the finalizer gives full avalanche
/// so the output is fit for jump consistent hashing.
#[derive(Clone, Debug)]
pub struct StableHasher {
    state: u64,
}

impl StableHasher {
    /// A hasher with the fixed initial state.
    pub fn new() -> Self {
        Self {
            state: 0x243F_6A88_85A3_08D3,
        }
    }

    #[inline]
    fn mix(&mut self, word: u64) {
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Default for StableHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// The splitmix64 finalizer: a bijective avalanche step.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Hasher for StableHasher {
    #[inline]
    fn finish(&self) -> u64 {
        mix64(self.state)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word: [u8; 8] = chunk.try_into().expect("chunks of 8");
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // The tail, zero-padded, little-endian: assembled byte by byte,
            // since a copy of a variable 1 to 7 bytes is a call to memcpy,
            // and most strings hashed here end in one.
            let mut word = 0u64;
            for (shift, &byte) in rest.iter().enumerate() {
                word |= u64::from(byte) << (8 * shift);
            }
            self.mix(word);
        }
        self.mix(bytes.len() as u64);
    }

    #[inline]
    fn write_u8(&mut self, value: u8) {
        self.mix(u64::from(value));
    }
    #[inline]
    fn write_u16(&mut self, value: u16) {
        self.mix(u64::from(value));
    }
    #[inline]
    fn write_u32(&mut self, value: u32) {
        self.mix(u64::from(value));
    }
    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }
    #[inline]
    fn write_u128(&mut self, value: u128) {
        self.mix(value as u64);
        self.mix((value >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, value: usize) {
        // Widen so 32- and 64-bit hosts agree.
        self.mix(value as u64);
    }
    #[inline]
    fn write_i8(&mut self, value: i8) {
        self.write_u8(value as u8);
    }
    #[inline]
    fn write_i16(&mut self, value: i16) {
        self.write_u16(value as u16);
    }
    #[inline]
    fn write_i32(&mut self, value: i32) {
        self.write_u32(value as u32);
    }
    #[inline]
    fn write_i64(&mut self, value: i64) {
        self.write_u64(value as u64);
    }
    #[inline]
    fn write_isize(&mut self, value: isize) {
        self.write_u64(value as i64 as u64);
    }
}

/// Hashes any `Hash` value with [`StableHasher`].
pub fn stable_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut hasher = StableHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// An immutable value shared by reference count, with its
/// [`stable_hash`] worked out once, when it is made.
///
/// For the large values a store hands out again and again: every read
/// that returns one shares it instead of copying its strings, and every
/// message that carries one hashes into the trace as the one word of its
/// digest instead of all its fields. So `Hash` writes the digest, not the
/// value: two different values hash alike only if their 64-bit digests
/// collide. Equality, `Debug` and serde see the value itself, and a
/// deserialized value gets its digest again.
pub struct Digested<T>(Arc<DigestedInner<T>>);

struct DigestedInner<T> {
    digest: u64,
    value: T,
}

impl<T: Hash> Digested<T> {
    /// Shares `value`, hashing it once.
    pub fn new(value: T) -> Self {
        Digested(Arc::new(DigestedInner {
            digest: stable_hash(&value),
            value,
        }))
    }
}

impl<T> Digested<T> {
    /// The value's [`stable_hash`].
    pub fn digest(this: &Self) -> u64 {
        this.0.digest
    }
}

impl<T: Clone> Digested<T> {
    /// The value, moved out if this is its last share, else cloned.
    pub fn into_inner(this: Self) -> T {
        match Arc::try_unwrap(this.0) {
            Ok(inner) => inner.value,
            Err(shared) => shared.value.clone(),
        }
    }
}

impl<T: Hash> From<T> for Digested<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T> Clone for Digested<T> {
    fn clone(&self) -> Self {
        Digested(Arc::clone(&self.0))
    }
}

impl<T> std::ops::Deref for Digested<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0.value
    }
}

impl<T> Hash for Digested<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.digest);
    }
}

impl<T: PartialEq> PartialEq for Digested<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.digest == other.0.digest && self.0.value == other.0.value)
    }
}

impl<T: Eq> Eq for Digested<T> {}

impl<T: fmt::Debug> fmt::Debug for Digested<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.value.fmt(f)
    }
}

impl<T: Serialize> Serialize for Digested<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.value.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de> + Hash> Deserialize<'de> for Digested<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_are_pinned() {
        // A change here changes every trace hash: bump STABLE_HASH_VERSION.
        assert_eq!(stable_hash(&0u64), 0x5f46_aef8_0dcb_7d08);
        assert_eq!(stable_hash("resource-1"), 0x89d8_8382_cdab_0b4f);
        assert_eq!(stable_hash(&(1u32, 2u64)), 0xbe17_bd4a_7838_d1d4);
        assert_ne!(stable_hash("resource-1"), stable_hash("resource-2"));
    }

    #[test]
    fn a_digested_value_hashes_as_its_digest_and_compares_as_itself() {
        let a = Digested::new(("resource-1".to_string(), 3u64));
        let b = Digested::new(("resource-1".to_string(), 3u64));
        let c = Digested::new(("resource-1".to_string(), 4u64));
        assert_eq!(Digested::digest(&a), stable_hash(&*a));
        assert_eq!(stable_hash(&a), stable_hash(&Digested::digest(&a)));
        assert_eq!(a, b);
        assert_eq!(stable_hash(&a), stable_hash(&b));
        assert_ne!(a, c);
        assert_ne!(stable_hash(&a), stable_hash(&c));
        assert_eq!(format!("{a:?}"), format!("{:?}", &*a));
        assert_eq!(Digested::into_inner(a.clone()), *b);
    }

    #[test]
    fn byte_strings_of_different_length_differ() {
        assert_ne!(stable_hash(&[0u8; 0][..]), stable_hash(&[0u8; 1][..]));
        assert_ne!(stable_hash(&[1u8, 0][..]), stable_hash(&[1u8][..]));
    }
}
