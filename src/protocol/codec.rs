//! Declarative codecs: an API is described once and its decoder, encoder, minimum sizes and
//! tests are generated from the description.
//!
//! * [`kafka_struct!`] declares a message struct: each field with its type and the versions it
//!   exists in (`[3..]`, `[1..=4]`), optionally its value when absent (`default -1`) and, for
//!   a tagged field (KIP-482), its tag (`tag 0`). It generates the struct, `Default` (every
//!   field at its absent value) and a [`Field`] impl: decode, encode and `min_bytes`.
//! * [`kafka_api!`] declares an API: key, valid versions, first flexible version, request and
//!   response structs and the kafka-protocol (oracle) types. It generates the `API_KEY` /
//!   `MIN_VERSION` / `MAX_VERSION` / `FLEXIBLE_FROM` consts `protocol::api` reads, the
//!   `decode`/`encode` entry points, and a test module that, at every valid version, round-trips
//!   a sample with every field set, fails on every truncation, checks `min_bytes` against the
//!   encoding of the default value, cross-checks the bytes with kafka-protocol and feeds random
//!   bytes to both decoders.
//!
//! Why `macro_rules!` and not a build script over JSON schemas: the descriptions stay Rust a
//! reader can jump into, need no generated files or build step, and a field's type is a Rust
//! type, so a handler reads the same struct the description declares.
//!
//! Decoding stays bounded: an array's count is checked against the bytes that remain at the
//! element type's `min_bytes` before anything is allocated (see [`Reader::array`]).

use super::wire::{DecodeResult, Reader, Writer};
use bytes::Bytes;

/// A type that can be a field of a Kafka message at some version.
pub trait Field: Sized {
    /// Decode at `version` (`flex`: the version is flexible). `name` labels errors.
    fn read(r: &mut Reader, version: i16, flex: bool, name: &'static str) -> DecodeResult<Self>;
    /// Encode at `version`.
    fn write(&self, w: &mut Writer, version: i16, flex: bool);
    /// The fewest bytes any value takes at `version`: the bound for an array's count.
    fn min_bytes(version: i16, flex: bool) -> usize;
    /// A value with every field present at `version` set (to `seed`-derived values), for the
    /// generated tests.
    #[cfg(test)]
    fn sample(version: i16, flex: bool, seed: u8) -> Self;
}

/// A [`Field`] impl in one entry: the closure-like head names the reader, writer, value,
/// flexible flag, field name and test seed that the `min`, `read`, `write` and `sample`
/// expressions use.
macro_rules! field {
    ($t:ty, |$r:ident, $w:ident, $v:ident, $flex:ident, $name:ident, $seed:ident|
        min $min:expr, read $read:expr, write $write:expr, sample $sample:expr) => {
        #[allow(unused_variables)]
        impl Field for $t {
            fn read(
                $r: &mut Reader,
                _: i16,
                $flex: bool,
                $name: &'static str,
            ) -> DecodeResult<Self> {
                $read
            }
            fn write(&self, $w: &mut Writer, _: i16, $flex: bool) {
                let $v = self;
                $write
            }
            fn min_bytes(_: i16, $flex: bool) -> usize {
                $min
            }
            #[cfg(test)]
            fn sample(_: i16, _: bool, $seed: u8) -> Self {
                $sample
            }
        }
    };
}

/// A fixed-width field: the same method name on [`Reader`] and [`Writer`].
macro_rules! fixed_field {
    ($t:ty, $m:ident, $n:expr, |$seed:ident| $sample:expr) => {
        field!($t, |r, w, v, flex, name, $seed| min $n, read r.$m(name), write w.$m(*v), sample $sample);
    };
}

fixed_field!(i8, i8, 1, |seed| seed as i8);
fixed_field!(i16, i16, 2, |seed| i16::from(seed));
fixed_field!(i32, i32, 4, |seed| i32::from(seed));
fixed_field!(i64, i64, 8, |seed| i64::from(seed));
fixed_field!(u32, u32, 4, |seed| u32::from(seed));
fixed_field!(bool, bool, 1, |seed| true);

/// Length prefix size of a string (i16), bytes or array (i32), or any compact one (uvarint).
fn prefix_bytes(flex: bool, wide: bool) -> usize {
    match (flex, wide) {
        (true, _) => 1,
        (false, false) => 2,
        (false, true) => 4,
    }
}

field!(super::ErrorCode, |r, w, v, flex, name, seed| min 2,
    read r.i16(name).map(super::ErrorCode), write w.i16(v.0),
    sample super::ErrorCode(i16::from(seed)));
field!([u8; 16], |r, w, v, flex, name, seed| min 16,
    read r.uuid(name), write w.uuid(v), sample [seed; 16]);
field!(String, |r, w, v, flex, name, seed| min prefix_bytes(flex, false),
    read r.string(flex, name), write w.string(v, flex), sample format!("s{seed}"));
field!(Option<String>, |r, w, v, flex, name, seed| min prefix_bytes(flex, false),
    read r.nullable_string(flex, name), write w.nullable_string(v.as_deref(), flex),
    sample Some(format!("n{seed}")));
field!(Bytes, |r, w, v, flex, name, seed| min prefix_bytes(flex, true),
    read r.bytes(flex, name), write w.bytes(v, flex), sample Bytes::from(vec![seed; 3]));
field!(Option<Bytes>, |r, w, v, flex, name, seed| min prefix_bytes(flex, true),
    read r.nullable_bytes(flex, name), write w.nullable_bytes(v.as_deref(), flex),
    sample Some(Bytes::from(vec![seed; 2])));

impl<T: Field> Field for Vec<T> {
    fn read(r: &mut Reader, version: i16, flex: bool, name: &'static str) -> DecodeResult<Self> {
        let min = T::min_bytes(version, flex);
        r.array(flex, min, name, |r| T::read(r, version, flex, name))
    }
    fn write(&self, w: &mut Writer, version: i16, flex: bool) {
        w.array(self, flex, |w, item| item.write(w, version, flex));
    }
    fn min_bytes(_: i16, flex: bool) -> usize {
        prefix_bytes(flex, true)
    }
    #[cfg(test)]
    fn sample(version: i16, flex: bool, seed: u8) -> Self {
        vec![T::sample(version, flex, seed.wrapping_add(1))]
    }
}

impl<T: Field> Field for Option<Vec<T>> {
    fn read(r: &mut Reader, version: i16, flex: bool, name: &'static str) -> DecodeResult<Self> {
        let min = T::min_bytes(version, flex);
        r.nullable_array(flex, min, name, |r| T::read(r, version, flex, name))
    }
    fn write(&self, w: &mut Writer, version: i16, flex: bool) {
        w.nullable_array(self.as_deref(), flex, |w, item| {
            item.write(w, version, flex)
        });
    }
    fn min_bytes(_: i16, flex: bool) -> usize {
        prefix_bytes(flex, true)
    }
    #[cfg(test)]
    fn sample(version: i16, flex: bool, seed: u8) -> Self {
        Some(vec![T::sample(version, flex, seed.wrapping_add(1))])
    }
}

/// A wire encoding of a field that differs from its type's own (`[.., as W]` in a table).
pub trait FieldAs<T> {
    fn read(r: &mut Reader, version: i16, flex: bool, name: &'static str) -> DecodeResult<T>;
    fn write(value: &T, w: &mut Writer, version: i16, flex: bool);
    /// A sample this encoding keeps at `version` (by default the type's own).
    #[cfg(test)]
    fn sample(version: i16, flex: bool, seed: u8) -> T
    where
        T: Field,
    {
        T::sample(version, flex, seed)
    }
}

/// A string that is nullable only from version `V`: before it, null is written as "" (Kafka
/// schemas' `"nullableVersions": "V+"`).
pub struct NullableFrom<const V: i16>;

impl<const V: i16> FieldAs<Option<String>> for NullableFrom<V> {
    fn read(
        r: &mut Reader,
        version: i16,
        flex: bool,
        name: &'static str,
    ) -> DecodeResult<Option<String>> {
        if version >= V {
            return r.nullable_string(flex, name);
        }
        r.string(flex, name).map(Some)
    }
    fn write(value: &Option<String>, w: &mut Writer, version: i16, flex: bool) {
        if version >= V {
            return w.nullable_string(value.as_deref(), flex);
        }
        w.string(value.as_deref().unwrap_or(""), flex);
    }
}

/// Decode a tagged field's value from its tag data, which it must fill exactly.
pub fn read_tagged<T: Field>(data: Bytes, version: i16, name: &'static str) -> DecodeResult<T> {
    let mut r = Reader::new(data);
    let value = T::read(&mut r, version, true, name)?;
    if r.remaining() != 0 {
        return Err(super::wire::DecodeError::BadLength {
            field: name,
            len: r.remaining() as i64,
        });
    }
    Ok(value)
}

/// Write one tagged field: tag, size, value.
pub fn write_tagged<T: Field>(w: &mut Writer, tag: u32, value: &T, version: i16) {
    let mut data = Writer::new();
    value.write(&mut data, version, true);
    let data = data.finish_contiguous();
    w.uvarint(tag);
    w.uvarint(data.len() as u32);
    w.raw(&data);
}

/// Declares a message struct from its field table; see the module documentation.
macro_rules! kafka_struct {
    ($(#[$m:meta])* pub struct $name:ident {
        $($(#[$fm:meta])* pub $f:ident : $t:ty
            [$vers:expr $(, default $def:expr)? $(, tag $tag:literal)? $(, as $wire:ty)?]),* $(,)?
    }) => {
        $(#[$m])*
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($f: $crate::protocol::codec::kafka_struct!(@default $($def)?),)* }
            }
        }

        impl $crate::protocol::codec::Field for $name {
            #[allow(unused_variables, unused_mut)]
            fn read(
                r: &mut $crate::protocol::Reader,
                version: i16,
                flex: bool,
                _: &'static str,
            ) -> $crate::protocol::DecodeResult<Self> {
                let mut out = $name::default();
                $($crate::protocol::codec::kafka_struct!(
                    @read r, version, flex, out.$f, $t, stringify!($f),
                    $vers $(, tag $tag)? $(, as $wire)?);)*
                if flex {
                    r.tagged_fields(|tag, data| {
                        $($crate::protocol::codec::kafka_struct!(
                            @read_tag tag, data, version, out.$f, $t, stringify!($f),
                            $vers $(, tag $tag)? $(, as $wire)?);)*
                        Ok(())
                    })?;
                }
                Ok(out)
            }

            #[allow(unused_variables)]
            fn write(&self, w: &mut $crate::protocol::Writer, version: i16, flex: bool) {
                $($crate::protocol::codec::kafka_struct!(
                    @write w, version, flex, self.$f, $vers $(, tag $tag)? $(, as $wire)?);)*
                if flex {
                    let defaults = $name::default();
                    let count = 0u32 $(+ $crate::protocol::codec::kafka_struct!(
                        @count version, self.$f, defaults.$f,
                        $vers $(, tag $tag)? $(, as $wire)?))*;
                    w.uvarint(count);
                    $($crate::protocol::codec::kafka_struct!(
                        @write_tag w, version, self.$f, defaults.$f,
                        $vers $(, tag $tag)? $(, as $wire)?);)*
                }
            }

            #[allow(unused_variables)]
            fn min_bytes(version: i16, flex: bool) -> usize {
                usize::from(flex) $(+ $crate::protocol::codec::kafka_struct!(
                    @min version, flex, $t, $vers $(, tag $tag)? $(, as $wire)?))*
            }

            #[cfg(test)]
            #[allow(unused_variables)]
            fn sample(version: i16, flex: bool, seed: u8) -> Self {
                let mut out = $name::default();
                let mut seed = seed;
                $(seed = seed.wrapping_add(1);
                if ($vers).contains(&version)
                    && (flex || !$crate::protocol::codec::kafka_struct!(@is_tag $($tag)?))
                {
                    out.$f = $crate::protocol::codec::kafka_struct!(
                        @sample version, flex, seed, $t $(, as $wire)?);
                })*
                out
            }
        }
    };

    (@default) => { Default::default() };
    (@default $def:expr) => { $def };
    (@is_tag) => { false };
    (@is_tag $tag:literal) => { true };
    (@sample $v:ident, $flex:ident, $seed:ident, $t:ty) => {
        <$t as $crate::protocol::codec::Field>::sample($v, $flex, $seed)
    };
    (@sample $v:ident, $flex:ident, $seed:ident, $t:ty, as $wire:ty) => {
        <$wire as $crate::protocol::codec::FieldAs<$t>>::sample($v, $flex, $seed)
    };

    (@read $r:ident, $v:ident, $flex:ident, $dst:expr, $t:ty, $name:expr, $vers:expr) => {
        if ($vers).contains(&$v) {
            $dst = <$t as $crate::protocol::codec::Field>::read($r, $v, $flex, $name)?;
        }
    };
    (@read $r:ident, $v:ident, $flex:ident, $dst:expr, $t:ty, $name:expr, $vers:expr,
        tag $tag:literal) => {};
    (@read $r:ident, $v:ident, $flex:ident, $dst:expr, $t:ty, $name:expr, $vers:expr,
        as $wire:ty) => {
        if ($vers).contains(&$v) {
            $dst = <$wire as $crate::protocol::codec::FieldAs<$t>>::read($r, $v, $flex, $name)?;
        }
    };

    (@read_tag $tag_var:ident, $data:ident, $v:ident, $dst:expr, $t:ty, $name:expr,
        $vers:expr) => {};
    (@read_tag $tag_var:ident, $data:ident, $v:ident, $dst:expr, $t:ty, $name:expr,
        $vers:expr, as $wire:ty) => {};
    (@read_tag $tag_var:ident, $data:ident, $v:ident, $dst:expr, $t:ty, $name:expr, $vers:expr,
        tag $tag:literal) => {
        if $tag_var == $tag && ($vers).contains(&$v) {
            $dst = $crate::protocol::codec::read_tagged::<$t>($data.clone(), $v, $name)?;
        }
    };

    (@write $w:ident, $v:ident, $flex:ident, $src:expr, $vers:expr) => {
        if ($vers).contains(&$v) {
            $crate::protocol::codec::Field::write(&$src, $w, $v, $flex);
        }
    };
    (@write $w:ident, $v:ident, $flex:ident, $src:expr, $vers:expr, tag $tag:literal) => {};
    (@write $w:ident, $v:ident, $flex:ident, $src:expr, $vers:expr, as $wire:ty) => {
        if ($vers).contains(&$v) {
            <$wire as $crate::protocol::codec::FieldAs<_>>::write(&$src, $w, $v, $flex);
        }
    };

    (@count $v:ident, $src:expr, $def:expr, $vers:expr) => { 0 };
    (@count $v:ident, $src:expr, $def:expr, $vers:expr, as $wire:ty) => { 0 };
    (@count $v:ident, $src:expr, $def:expr, $vers:expr, tag $tag:literal) => {
        u32::from(($vers).contains(&$v) && $src != $def)
    };

    (@write_tag $w:ident, $v:ident, $src:expr, $def:expr, $vers:expr) => {};
    (@write_tag $w:ident, $v:ident, $src:expr, $def:expr, $vers:expr, as $wire:ty) => {};
    (@write_tag $w:ident, $v:ident, $src:expr, $def:expr, $vers:expr, tag $tag:literal) => {
        if ($vers).contains(&$v) && $src != $def {
            $crate::protocol::codec::write_tagged($w, $tag, &$src, $v);
        }
    };

    (@min $v:ident, $flex:ident, $t:ty, $vers:expr) => {
        if ($vers).contains(&$v) {
            <$t as $crate::protocol::codec::Field>::min_bytes($v, $flex)
        } else {
            0
        }
    };
    (@min $v:ident, $flex:ident, $t:ty, $vers:expr, tag $tag:literal) => { 0 };
    (@min $v:ident, $flex:ident, $t:ty, $vers:expr, as $wire:ty) => {
        $crate::protocol::codec::kafka_struct!(@min $v, $flex, $t, $vers)
    };
}
pub(crate) use kafka_struct;

/// Declares an API (consts, entry points and generated tests); see the module documentation.
/// `oracle` names the kafka-protocol request and response types and the lowest version the
/// Kafka 4.1 schemas still know.
macro_rules! kafka_api {
    (key $key:literal, versions $min:literal ..= $max:literal, flexible $flex:expr,
     $req:ident, $resp:ident, oracle $oreq:ident, $oresp:ident from $omin:literal) => {
        /// Kafka API key.
        pub const API_KEY: i16 = $key;
        /// Lowest version we advertise.
        pub const MIN_VERSION: i16 = $min;
        /// Highest version we advertise.
        pub const MAX_VERSION: i16 = $max;
        /// First flexible (KIP-482) version (`i16::MAX`: none).
        pub const FLEXIBLE_FROM: i16 = $flex;

        $crate::protocol::codec::kafka_api!(@entry $req);
        $crate::protocol::codec::kafka_api!(@entry $resp);

        #[cfg(test)]
        mod described {
            use super::*;
            use $crate::protocol::codec::testkit::{check_api, Api};

            #[test]
            fn generated_codec_checks_at_every_version() {
                let api = Api { min: MIN_VERSION, max: MAX_VERSION, flexible_from: FLEXIBLE_FROM };
                check_api::<_, kafka_protocol::messages::$oreq>(
                    api, $omin, $req::encode, $req::decode);
                check_api::<_, kafka_protocol::messages::$oresp>(
                    api, $omin, $resp::encode, $resp::decode);
            }
        }
    };
    (@entry $t:ident) => {
        impl $t {
            /// Decode the body at `version`; an unserved version is an error.
            pub fn decode(
                r: &mut $crate::protocol::Reader,
                version: i16,
            ) -> $crate::protocol::DecodeResult<Self> {
                $crate::protocol::wire::check_version(API_KEY, version, MIN_VERSION, MAX_VERSION)?;
                $crate::protocol::codec::Field::read(r, version, version >= FLEXIBLE_FROM, "body")
            }
            /// Encode the body at `version`.
            pub fn encode(&self, w: &mut $crate::protocol::Writer, version: i16) {
                $crate::protocol::codec::Field::write(self, w, version, version >= FLEXIBLE_FROM);
            }
        }
    };
}
pub(crate) use kafka_api;

#[cfg(test)]
pub(crate) mod testkit {
    //! The checks every described API gets (see [`check_api`]).
    use super::Field;
    use crate::protocol::api::testkit::{encode, truncations_fail, Dec, Enc};
    use crate::protocol::api::testkit::{oracle_agrees, random_bytes_never_panic, round_trip};
    use bytes::Bytes;
    use std::fmt::Debug;

    /// An API's valid and flexible versions.
    #[derive(Clone, Copy)]
    pub struct Api {
        pub min: i16,
        pub max: i16,
        pub flexible_from: i16,
    }

    /// At every version of `api`: a sample with every field present round-trips to itself,
    /// every strict prefix of it fails to decode, the default value encodes to exactly
    /// `min_bytes`, kafka-protocol (`O`) reads our bytes and writes them back identically
    /// (from `oracle_min`), and random bytes never make the decoder panic.
    pub fn check_api<T, O>(api: Api, oracle_min: i16, enc: Enc<T>, dec: Dec<T>)
    where
        T: Field + Default + PartialEq + Debug,
        O: kafka_protocol::protocol::Decodable + kafka_protocol::protocol::Encodable,
    {
        let mut seeds: Vec<Bytes> = Vec::new();
        for v in api.min..=api.max {
            let flex = v >= api.flexible_from;
            let sample = T::sample(v, flex, 7);
            let (got, bytes) = round_trip(&sample, v, enc, dec);
            assert_eq!(got, sample, "v{v}: a field did not survive the round trip");
            truncations_fail(&bytes, v, dec);
            let empty = encode(&T::default(), v, enc);
            assert_eq!(empty.len(), T::min_bytes(v, flex), "v{v}: min_bytes");
            if v >= oracle_min {
                oracle_agrees::<O>(&bytes, v);
                oracle_agrees::<O>(&empty, v);
            }
            seeds.push(bytes);
        }
        random_bytes_never_panic(&seeds, api.min..=api.max, dec, 1000);
    }
}
